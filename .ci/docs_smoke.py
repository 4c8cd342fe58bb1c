#!/usr/bin/env python
"""Docs smoke test: build the pages the way nbdev's docs build would, and look at them in a real browser.

Quarto (nbdev's renderer) cannot be installed on our machines, so this stands in for `nbdev-docs`:

1. `nbdev-proc-nbs` (on an emptied _proc/) processes nbs/ into _proc/ exactly as the docs build does (front matter from the H1,
   `#|hide` removed, cells with exports/imports executed for `show_doc`...). It must run clean.
2. Every processed notebook in _proc/ (subfolders too) is rendered to standalone HTML with nbconvert into _proc/_html/,
   with the front matter turned back into an H1 title + description and Quarto's `echo`/`output`/`include: false`
   honoured.
3. Each page is opened in headless Chromium (`--dump-dom`) and must: finish loading, show the notebook's H1 title,
   show its figures (an <img> that decodes, for every page whose source notebook has saved `image/png` outputs), and
   show no Python traceback or error output. Screenshots of the home page and one lesson go to _screenshots/.

Prints one `OK`/`FAIL` line per page; exits 1 if any page fails, 2 if a tool is missing.
Run from the repo root (or any folder inside it):  python .ci/docs_smoke.py
"""
import html, json, os, re, shutil, signal, subprocess, sys, tempfile, time
from html.parser import HTMLParser
from pathlib import Path

CHROME_TIMEOUT = 60       # seconds for one Chromium call
PROC_TIMEOUT = 900        # seconds for one nbdev-proc-nbs call
SCREENSHOT_PAGES = ('index', '01_pixel_similarity')  # source notebook stems; the first lesson is used if one is missing
INSTALL_HINT = {
    'chromium': 'headless Chromium is needed: apt-get update && apt-get install -y chromium',
    'nbconvert': 'nbconvert is needed: pip install nbconvert   (or pip install -e ".[dev]")',
    'nbdev': 'nbdev is needed: pip install -e ".[dev]"',
}

def die_missing(what, detail=''):
    print(f'ERROR: {what} not found{": " + detail if detail else ""}\n  {INSTALL_HINT[what]}')
    sys.exit(2)

def find_chromium():
    for c in (os.environ.get('CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome', '/usr/bin/chromium'):
        if c and (p := shutil.which(c)): return p
    die_missing('chromium', 'no chromium, chromium-browser or google-chrome on PATH (or set CHROMIUM=/path/to/it)')

def run(cmd, timeout, **kw):
    "Run `cmd` in its own process group; on timeout kill that group (Chromium leaves helper processes). -> (rc, out)"
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors='replace',
                         start_new_session=True, **kw)
    try: out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try: os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError: pass
        out, _ = p.communicate()
        return None, out
    return p.returncode, out

# ---------------------------------------------------------------- 1. nbdev-proc-nbs
def quarto_stub_env(tmp):
    """nbdev-proc-nbs first tries to *install* Quarto when it is missing (`sudo` + a download from outside: refused or
    impossible here). It never runs quarto while processing, so a `quarto` that only explains itself skips that."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if shutil.which('quarto'): return env
    d = Path(tmp)/'quarto-stub'; d.mkdir()
    (d/'quarto').write_text('#!/bin/sh\necho "quarto stub (.ci/docs_smoke.py): Quarto is not installed here" >&2\nexit 1\n')
    (d/'quarto').chmod(0o755)
    env['PATH'] = f'{d}{os.pathsep}{env.get("PATH", "")}'
    return env

def proc_error(out):
    "The useful part of a failed nbdev-proc-nbs run: nbdev's `Error in notebook: ... in cell N` and the exception"
    lines = [l.strip() for l in (out or '').strip().splitlines() if l.strip()]
    if not lines: return 'no output'
    starts = [i for i, l in enumerate(lines) if l.startswith('Exception: Error')]
    msg = lines[starts[-1]][len('Exception: '):].rstrip(' :') if starts else ''
    return (f'{msg}: {lines[-1]}' if msg and lines[-1] != msg else msg or lines[-1])[:400]

def mixed_import_cells(out):
    return [' '.join(c.split())[:120] for c in
            re.findall(r'Found cells containing imports and other code\. See FAQ\.\n---\n(.*?)\n---', out, re.S)]

def git_status(root):
    rc, out = run(['git', 'status', '--porcelain'], 30, cwd=root)
    return set(out.splitlines()) if rc == 0 else None

# ---------------------------------------------------------------- 2. nbconvert
def front_matter(nb):
    "Quarto front matter that nbdev puts in a raw cell at the top (title, description, output-file...)"
    import yaml
    for i, c in enumerate(nb.cells[:3]):
        m = re.match(r'\s*---\n(.*?)\n---', c.source, re.S) if c.cell_type == 'raw' else None
        if m:
            try: return i, yaml.safe_load(m.group(1)) or {}
            except yaml.YAMLError: return i, {}
    return None, {}

DIRECTIVE = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')

def quarto_like(nb):
    "Do to a processed notebook what Quarto would before display: title block, cell options. -> (nb, front matter)"
    import nbformat
    idx, fm = front_matter(nb)
    if idx is not None: nb.cells.pop(idx)
    head = []
    if fm.get('title'): head.append(f"# {fm['title']}")
    if fm.get('description'): head.append(f"*{fm['description']}*")
    if head: nb.cells.insert(0, nbformat.v4.new_markdown_cell('\n\n'.join(head)))
    for c in nb.cells:
        c.metadata.pop('execution', None)  # nbdev's exec_show_docs writes float timings there, which nbformat rejects
        if c.cell_type != 'code': continue
        lines = c.source.splitlines()
        opts, n = {}, 0
        while n < len(lines) and (m := DIRECTIVE.match(lines[n])):
            opts[m.group(1).lower()] = m.group(2).strip().strip('"\'').lower(); n += 1
        if not opts: continue
        c.source = '\n'.join(lines[n:])
        if opts.get('output') == 'asis':  # show_doc's markdown carries pandoc link attributes only Quarto understands
            for o in c.get('outputs', []):
                if 'text/markdown' in o.get('data', {}):
                    o.data['text/markdown'] = re.sub(r'(\[[^\]]*\]\([^)]*\))\{[^}]*\}', r'\1', o.data['text/markdown'])
        tags = c.metadata.setdefault('tags', [])
        if opts.get('include') == 'false': tags.append('smoke_remove_cell')
        if opts.get('echo') == 'false': tags.append('smoke_remove_input')
        if opts.get('output') == 'false': tags.append('smoke_remove_output')
    return nb, fm

# Written into every page: after load, record each image's decoded width, then mark the body as loaded.
PROBE = ('<script>window.addEventListener("load",function(){document.querySelectorAll("img").forEach(function(i){'
         'i.setAttribute("data-smoke-width",i.naturalWidth)});document.body.setAttribute("data-smoke-loaded","1")});'
         '</script>')

def render(src, dst):
    "Render processed notebook `src` to standalone HTML at `dst` with nbconvert's lab template"
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    nb, fm = quarto_like(nbformat.read(src, as_version=4))
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {'smoke_remove_cell'}
    c.TagRemovePreprocessor.remove_input_tags = {'smoke_remove_input'}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {'smoke_remove_output'}
    c.HTMLExporter.exclude_input_prompt = c.HTMLExporter.exclude_output_prompt = True  # Quarto shows no prompts
    body, _ = HTMLExporter(config=c, template_name='lab').from_notebook_node(nb)
    body = body.replace('</body>', PROBE + '\n</body>', 1)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(body, encoding='utf-8')
    return fm

# ---------------------------------------------------------------- 3. Chromium
def chrome(chromium, url, *args):
    "One headless Chromium call with a fresh profile. -> (rc or None on timeout, output)"
    with tempfile.TemporaryDirectory(prefix='smoke-chrome-') as prof:
        cmd = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync',
               '--disable-dev-shm-usage', '--hide-scrollbars', f'--user-data-dir={prof}',
               # the pages' only outside resources are nbconvert's CDN scripts (require.js, MathJax): fail them fast
               '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost',
               '--virtual-time-budget=5000', *args, url]
        return run(cmd, CHROME_TIMEOUT)

VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}
ERR_RE = re.compile(r'\b[A-Z]\w*(Error|Exception)\b|Traceback \(most recent call last\)')

class Dom(HTMLParser):
    "What the checks need from a dumped DOM: body attributes, H1 texts, images, and the text of each output block"
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.body, self.h1s, self.imgs, self.outputs = {}, [], [], []
        self.stack, self.h1, self.out = [], None, None   # out: [depth, mime, classes, text parts]
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'body': self.body = a
        if tag == 'img': self.imgs.append(a)
        if tag in VOID: return
        self.stack.append(tag)
        cls = a.get('class') or ''
        if tag == 'h1' and self.h1 is None: self.h1 = [len(self.stack), []]
        if self.out is None and tag == 'div' and ('jp-OutputArea-output' in cls or 'output_subarea' in cls):
            self.out = [len(self.stack), a.get('data-mime-type', ''), cls, []]
    def handle_endtag(self, tag):
        if tag in VOID or tag not in self.stack: return
        while self.stack:
            depth = len(self.stack)
            if self.h1 and depth == self.h1[0]: self.h1s.append(''.join(self.h1[1])); self.h1 = None
            if self.out and depth == self.out[0]: self.outputs.append((self.out[1], self.out[2], ''.join(self.out[3]))); self.out = None
            if self.stack.pop() == tag: break
    def handle_data(self, d):
        if self.h1: self.h1[1].append(d)
        if self.out: self.out[3].append(d)

def norm(s): return ' '.join(re.sub(r'[`*_¶]', '', html.unescape(s)).split()).lower()

def md_title(nb):
    "The H1 of a source notebook: its first markdown line starting with '# '"
    for c in nb.get('cells', []):
        if c.get('cell_type') != 'markdown': continue
        for l in ''.join(c.get('source', '')).splitlines():
            if l.startswith('# '): return l[2:].strip()
    return None

def png_outputs(nb):
    return sum('image/png' in o.get('data', {}) for c in nb.get('cells', []) if c.get('cell_type') == 'code'
               for o in c.get('outputs', []))

def check_page(dom_text, title, src_pngs, proc_pngs):
    "-> (problems, number of figures shown, notes) for one page's DOM"
    d = Dom(); d.feed(dom_text); d.close()
    probs, notes = [], []
    if d.body.get('data-smoke-loaded') != '1': probs.append('page did not finish loading')
    if not title: probs.append('source notebook has no "# " H1 title')
    elif not any(norm(title) in norm(h) for h in d.h1s):
        probs.append(f'no <h1> with the title {title!r} (h1s: {[h.strip(" ¶")[:60] for h in d.h1s][:3]})')
    # figures are embedded (data: URIs) or local files; remote images (badges) cannot load on a closed network
    remote = [i for i in d.imgs if re.match(r'(https?:)?//', i.get('src') or '')]
    figs = [i for i in d.imgs if i not in remote]
    broken = [i for i in figs if i.get('data-smoke-width') in (None, '0')]
    shown = len(figs) - len(broken)
    if broken: probs.append(f'{len(broken)} of {len(figs)} figure <img> did not decode')
    if src_pngs and not figs: probs.append(f'source notebook has {src_pngs} saved figure(s) but the page has no <img>')
    elif shown < proc_pngs: probs.append(f'{shown} figure(s) shown, processed notebook has {proc_pngs}')
    notes += [f'remote image not loaded offline (not checked): {i.get("alt") or i.get("src")}' for i in remote]
    for mime, cls, text in d.outputs:
        if 'Traceback (most recent call last)' in text:
            probs.append('traceback in output: ' + ' '.join(text.split())[:160]); continue
        if 'output_error' in cls or 'application/vnd.jupyter.stderr' in mime:
            if m := ERR_RE.search(text):
                line = next((l for l in text.splitlines() if m.group(0) in l), text)
                probs.append('error output: ' + ' '.join(line.split())[:160])
            elif text.strip():
                w = re.search(r'\b(\w*Warning)\b: ?(.{0,70})', text)
                notes.append('the page shows stderr output: ' +
                             ' '.join((f'{w.group(1)}: {w.group(2)}' if w else text.strip()[:80]).split()))
    return probs, shown, notes

def sidebar_entries(nbs):
    "Pages named in a hand-written nbs/sidebar.yml (None if nbdev generates it or it is missing)"
    import yaml
    from nbdev.config import get_config
    f = nbs/'sidebar.yml'
    if str(get_config().get('custom_sidebar', False)).lower() not in ('true', '1', 'yes') or not f.exists(): return None
    found = set()
    def walk(o):
        if isinstance(o, str): found.add(o)
        elif isinstance(o, list): [walk(x) for x in o]
        elif isinstance(o, dict):
            for k in ('href', 'file', 'contents', 'website', 'sidebar'):
                if k in o: walk(o[k])
    walk(yaml.safe_load(f.read_text()))
    return {Path(x).as_posix() for x in found}

# ---------------------------------------------------------------- main
def main():
    t0 = time.time()
    chromium = find_chromium()
    try: import nbconvert, nbformat, yaml  # noqa: F401
    except ImportError as e: die_missing('nbconvert', str(e))
    try:
        from nbdev.config import get_config
        from nbdev.doclinks import nbglob
    except ImportError as e: die_missing('nbdev', str(e))
    if not shutil.which('nbdev-proc-nbs'): die_missing('nbdev', 'nbdev-proc-nbs is not on PATH')
    rc, ver = run([chromium, '--version'], 30)
    if rc != 0: die_missing('chromium', f'{chromium} --version failed: {(ver or "").strip()[:200]}')
    ver = next((l for l in ver.splitlines() if 'chrom' in l.lower() and ':' not in l), ver.strip())
    cfg = get_config()
    root, nbs = Path(cfg.config_path).resolve(), Path(cfg.nbs_path).resolve()
    proc, out_dir, shots = root/'_proc', root/'_proc'/'_html', root/'_screenshots'
    print(f'docs smoke test in {root} ({ver.strip()}, nbconvert {nbconvert.__version__})')
    failures = 0

    with tempfile.TemporaryDirectory(prefix='docs-smoke-') as tmp:
        # 1. process notebooks as nbdev's docs build does
        env = quarto_stub_env(tmp)
        before = git_status(root)
        t = time.time()
        # a fresh _proc/ rather than `--force`: nbdev passes --force on to nbdev_sidebar, which then overwrites our
        # hand-written nbs/sidebar.yml (custom_sidebar = true)
        shutil.rmtree(proc, ignore_errors=True)
        rc, out = run(['nbdev-proc-nbs'], PROC_TIMEOUT, cwd=root, env=env)
        warned = set()
        def warn_mixed(out, who=''):
            for cell in mixed_import_cells(out):
                if cell in warned: continue
                warned.add(cell)
                print(f'WARN nbdev-proc-nbs{who}: a cell mixes imports and other code, so the docs build runs it out of '
                      f'context (nbdev FAQ: give imports a cell of their own): {cell}')
        warn_mixed(out)
        proc_errs = {}
        if rc == 0: print(f'OK   nbdev-proc-nbs ({time.time()-t:.0f} s)')
        else:
            failures += 1
            print(f'FAIL nbdev-proc-nbs: {"timed out" if rc is None else "exit " + str(rc)}: {proc_error(out)}')
        srcs = sorted(nbglob(nbs, func=Path), key=str)
        missing = [s for s in srcs if not (proc/s.relative_to(nbs)).exists()]
        if rc != 0 and missing:
            # one failing notebook stops the parallel run: process the rest one by one to name the culprit(s)
            print(f'     retrying the {len(missing)} unprocessed notebook(s) one at a time')
            for s in missing:
                r, o = run(['nbdev-proc-nbs', '--file-glob', s.name], PROC_TIMEOUT, cwd=root, env=env)
                warn_mixed(o, f' {s.name}')
                if r != 0 or not (proc/s.relative_to(nbs)).exists(): proc_errs[s] = proc_error(o) if r else 'no output'
        after = git_status(root)
        if before is not None and after is not None and after != before:
            print(f'WARN the work tree changed while nbdev-proc-nbs ran (it or someone else): {sorted(after ^ before)}')

        # 2 + 3. render each processed notebook and look at it
        pages = sorted({p for p in proc.rglob('*.ipynb') if '_html' not in p.relative_to(proc).parts} |
                       {proc/s.relative_to(nbs) for s in srcs}, key=str)
        sidebar = sidebar_entries(nbs)
        rendered = {}
        for p in pages:
            rel = p.relative_to(proc); name = rel.with_suffix('').as_posix(); src = nbs/rel
            def fail(why):
                nonlocal failures; failures += 1; print(f'FAIL {name}: {why}')
            if src in proc_errs: fail(f'nbdev-proc-nbs: {proc_errs[src]}'); continue
            if not p.exists(): fail('not produced by nbdev-proc-nbs'); continue
            if src.exists() and src.stat().st_mtime > p.stat().st_mtime:
                fail('source notebook changed after nbdev-proc-nbs processed it (edited during the run?): run again'); continue
            src_nb = json.loads(src.read_text()) if src.exists() else {}
            proc_nb = json.loads(p.read_text())
            title = md_title(src_nb)
            try:
                _, fm = front_matter(nbformat.reads(p.read_text(), as_version=4))
                title = title or fm.get('title')
                dst = out_dir/rel.parent/(fm.get('output-file') or rel.with_suffix('.html').name)
                render(p, dst)
            except Exception as e: fail(f'nbconvert: {type(e).__name__}: {e}'); continue
            rendered[rel.stem] = dst
            r, dom = chrome(chromium, dst.as_uri(), '--dump-dom')
            if r is None: fail(f'Chromium timed out after {CHROME_TIMEOUT} s'); continue
            if r != 0 or '<html' not in dom: fail(f'Chromium exit {r}: {dom.strip()[-300:]}'); continue
            probs, nimg, notes = check_page(dom, title, png_outputs(src_nb), png_outputs(proc_nb))
            remote = [n.split(': ', 1)[1] for n in notes if n.startswith('remote')]
            extra = f' (+{len(remote)} remote image(s) not checked offline: {", ".join(remote)})' if remote else ''
            if probs: fail('; '.join(probs))
            else: print(f'OK   {name}: "{title}", {nimg} figure(s){extra} -> {dst.relative_to(root)}')
            for n in notes:
                if not n.startswith('remote'): print(f'WARN {name}: {n}')
            if sidebar is not None and rel.as_posix() not in sidebar:
                print(f'WARN {name}: not in nbs/sidebar.yml, so the site has no link to it')

        # screenshots of the home page and one lesson
        lessons = [k for k in rendered if re.match(r'\d\d_', k)]
        want = [k for k in SCREENSHOT_PAGES if k in rendered]
        if SCREENSHOT_PAGES[1] not in rendered and lessons: want.append(lessons[0])
        if want: shots.mkdir(exist_ok=True)
        for k in want:
            png = shots/f'{k}.png'
            png.unlink(missing_ok=True)
            r, o = chrome(chromium, rendered[k].as_uri(), f'--screenshot={png}', '--window-size=1280,2000')
            if r == 0 and png.exists() and png.stat().st_size > 0: print(f'screenshot: {png}')
            else:
                failures += 1
                print(f'FAIL screenshot of {k}: {"timed out" if r is None else "exit " + str(r)}: {o.strip()[-200:]}')

    print(f'docs smoke test: {"FAILED" if failures else "passed"} with {failures} failure(s) '
          f'in {time.time()-t0:.0f} s; pages in {out_dir}')
    return 1 if failures else 0

if __name__ == '__main__': sys.exit(main())
