"""Checks on the lesson notebooks that nbdev's own tools do not make:
1. each lesson (`nbs/NN_*.ipynb`) opens with an "Open in Colab" badge whose link is built from the repository URL and branch
   in pyproject.toml, followed by the one-line cell that installs the package only in Colab (`! [ -e /content ] && pip install ...`);
2. saved outputs carry no progress-bar redraws;
3. with `--executed DIR` (a copy of nbs/ executed by `nbdev-test --save`): every code cell that produces output when run
   also has output saved in the committed notebook (cells that only define exported code are exempt).
Exits 1 and names each problem."""
import sys, json, re, argparse
from pathlib import Path

def colab_url(cfg, nb_name):
    owner_repo = cfg['git_url'].split('github.com/')[1].rstrip('/')
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{cfg['branch']}/{Path(cfg.nbs_path).relative_to(cfg.config_path).as_posix()}/{nb_name}"

def src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']
def is_export(c): return bool(re.match(r'\s*#\|\s*export', src(c)))
NOISE = ('█', '|----', 'progress-bar', '<progress')

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--executed', help='folder of the same notebooks, executed with `nbdev-test --save`')
    args = ap.parse_args()
    from nbdev.config import get_config   # reads [tool.nbdev] on every Python nbdev supports (tomllib is 3.11+)
    cfg = get_config()
    problems = []
    lessons = sorted(Path(cfg.nbs_path).glob('[0-9][0-9]_*.ipynb'))
    for f in lessons:
        cells = json.load(open(f))['cells']
        url = colab_url(cfg, f.name)
        md = [src(c) for c in cells[:3] if c['cell_type'] == 'markdown']
        if not any(url in m and 'colab-badge' in m for m in md):
            problems.append(f'{f.name}: no "Open in Colab" badge linking {url} near the top')
        first_code = next((src(c) for c in cells if c['cell_type'] == 'code'), '')
        if '[ -e /content ]' not in first_code or 'pip install' not in first_code:
            problems.append(f'{f.name}: the first code cell should be `! [ -e /content ] && pip install ...`, installing the package only in Colab')
        for i, c in enumerate(cells):
            if c['cell_type'] == 'code' and any(n in json.dumps(c.get('outputs', []), ensure_ascii=False) for n in NOISE):
                problems.append(f'{f.name}: cell {i} has progress-bar output saved')
        if args.executed:
            ex = {c.get('id'): c for c in json.load(open(Path(args.executed)/f.name))['cells']}
            for i, c in enumerate(cells):
                if c['cell_type'] != 'code' or is_export(c) or c.get('outputs'): continue
                e = ex.get(c.get('id'))
                # stderr is left out: which process prints a one-time library warning depends on scheduling
                if e is not None and [o for o in e.get('outputs', []) if o.get('name') != 'stderr']:
                    problems.append(f'{f.name}: cell {i} ({src(c).splitlines()[0][:50]!r}) produces output when run but has none saved')
    print(f'checked {len(lessons)} lesson notebooks' + (' against executed copies' if args.executed else ''))
    for p in problems: print('  ' + p)
    if problems:
        print('Fix: re-run the notebooks and save their outputs (`nbdev-test --flags slow --save`, then `nbdev-clean`).')
        sys.exit(1)
    print('ok: badges, install cells and saved outputs')

if __name__ == '__main__': main()
