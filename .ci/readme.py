"""README.md is written from nbs/index.ipynb (its markdown cells, in order), as `nbdev-readme` would do if Quarto could
run here.  `python .ci/readme.py` rewrites README.md;  `python .ci/readme.py --check` exits 1 if it is out of date."""
import json, sys
from pathlib import Path

def readme_text(nb='nbs/index.ipynb'):
    cells = json.loads(Path(nb).read_text())['cells']
    src = lambda c: ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    return '\n\n'.join(src(c).strip() for c in cells if c['cell_type'] == 'markdown') + '\n'

if __name__ == '__main__':
    want, have = readme_text(), Path('README.md').read_text()
    if '--check' not in sys.argv: Path('README.md').write_text(want); sys.exit(0)
    if want != have: print('README.md differs from nbs/index.ipynb: edit the notebook, then run `python .ci/readme.py`'); sys.exit(1)
    print('ok: README.md is nbs/index.ipynb')
