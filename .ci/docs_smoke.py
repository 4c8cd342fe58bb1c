#!/usr/bin/env python
"""Docs smoke test. Proves two things:

1. The docs build runs clean: `nbdev-proc-nbs` (on an emptied _proc/) exits 0 with no traceback or error in its output.
2. Every page (one per notebook in nbs/, index included) opens in headless Chromium and shows all its figures
   (each image output of the processed notebook is an <img> that decodes) and no Python traceback or error output.

Quarto cannot be installed here, so each processed notebook is rendered to HTML with nbconvert instead of Quarto.
Prints one line per page; exits 1 naming each problem, 0 otherwise.  Run from the repo root: python .ci/docs_smoke.py
"""
import html, json, os, re, shutil, signal, subprocess, sys, tempfile
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter
from nbdev.config import get_config

ERROR_RE = re.compile(r'Traceback \(most recent call last\)|^\w*(Error|Exception)\b:', re.M)
# Injected into each page: once it has loaded, write what the checks need into a <pre id="smoke"> the DOM dump shows.
PROBE = '''<script>window.addEventListener("load", function () {
  var local = [].filter.call(document.images, function (i) {  // remote images (the Colab badge) cannot load offline
    return !/^(https?:)?\\/\\//.test(i.getAttribute("src") || ""); });
  var outs = [].map.call(document.querySelectorAll(".jp-OutputArea-output"), function (o) {
    return {stderr: o.dataset.mimeType === "application/vnd.jupyter.stderr", text: o.textContent}; });
  var pre = document.createElement("pre"); pre.id = "smoke";
  pre.textContent = JSON.stringify({imgs: local.map(function (i) { return i.naturalWidth; }), outputs: outs});
  document.body.appendChild(pre);
});</script>'''

def run(cmd, timeout, **kw):
    "Run `cmd` in its own process group (killed whole on timeout: Chromium leaves helpers). -> (rc or None, output)"
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors='replace',
                         start_new_session=True, **kw)
    try: out = p.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        return None, p.communicate()[0]
    return p.returncode, out

def proc_nbs(root, tmp):
    """Run nbdev-proc-nbs on an emptied _proc/ (not `--force`, which would overwrite our hand-written sidebar.yml).
    Without Quarto it would first try to install it; a `quarto` stub that just fails stops that. The notebooks import
    this checkout's library, not another one pip may have installed. -> problems"""
    stub = Path(tmp)/'quarto'
    stub.write_text('#!/bin/sh\nexit 1\n'); stub.chmod(0o755)
    env = dict(os.environ, PATH=f'{tmp}{os.pathsep}{os.environ["PATH"]}',
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]))
    shutil.rmtree(root/'_proc', ignore_errors=True)
    rc, out = run(['nbdev-proc-nbs'], 900, cwd=root, env=env)
    if rc == 0 and not ERROR_RE.search(out): return []
    lines = [l for l in out.splitlines() if ERROR_RE.search(l)] or out.strip().splitlines()[-1:]
    return [f'nbdev-proc-nbs (exit {rc}): ' + ' | '.join(lines[-3:])[:400]]

def render(proc_nb, dst):
    "Render a processed notebook to standalone HTML with the probe. -> number of figure outputs it holds"
    nb = nbformat.read(proc_nb, as_version=4)
    for c in nb.cells: c.metadata.pop('execution', None)  # nbdev writes float timings here, which nbformat rejects
    body, _ = HTMLExporter(template_name='lab').from_notebook_node(nb)
    dst.write_text(body.replace('</body>', PROBE + '</body>', 1), encoding='utf-8')
    outputs = [o for c in nb.cells for o in c.get('outputs', [])]
    return sum(bool({'image/png', 'image/jpeg'} & set(o.get('data', {}))) for o in outputs)

BROWSER = next(filter(shutil.which, ('chromium', 'chromium-browser', 'google-chrome')), None)

def open_page(page, profile):
    "Load a page in headless Chromium (outside hosts fail fast: the pages' CDN scripts). -> the probe's findings"
    rc, dom = run([BROWSER, '--headless', '--no-sandbox', '--disable-gpu', f'--user-data-dir={profile}',
                   '--host-resolver-rules=MAP * ~NOTFOUND', '--virtual-time-budget=5000', '--dump-dom',
                   page.as_uri()], 60)
    m = re.search(r'<pre id="smoke">(.*?)</pre>', dom or '', re.S)
    if rc != 0 or not m: raise RuntimeError(f'Chromium exit {rc}, page did not finish loading: {dom.strip()[-200:]}')
    return json.loads(html.unescape(m.group(1)))

def page_problems(found, nfigs):
    "Figures missing or not decoding, tracebacks or error outputs shown"
    probs, shown = [], sum(w > 0 for w in found['imgs'])
    if shown < len(found['imgs']): probs.append(f'{len(found["imgs"]) - shown} <img> did not decode')
    elif shown < nfigs: probs.append(f'{shown} figure(s) shown, the notebook has {nfigs}')
    for o in found['outputs']:
        named_error = o['stderr'] and re.search(r'\w(Error|Exception)\b', o['text'])  # error outputs and stderr
        if named_error or 'Traceback (most recent call last)' in o['text']:
            probs.append('error output: ' + [l for l in o['text'].splitlines() if l.strip()][-1].strip()[:160])
    return probs

def notebooks(nbs):
    "Every notebook in nbs/ (subfolders too) that nbdev makes a page of: not hidden, not starting with '_'"
    rels = (p.relative_to(nbs) for p in nbs.rglob('*.ipynb'))
    return sorted(r for r in rels if not any(part.startswith(('.', '_')) for part in r.parts))

def main():
    if BROWSER is None:
        print('FAILED: no chromium, chromium-browser or google-chrome on PATH: install one (apt-get install chromium)')
        return 1
    cfg = get_config()
    root, nbs = Path(cfg.config_path), Path(cfg.nbs_path)
    srcs, nfigs_all = notebooks(nbs), 0
    with tempfile.TemporaryDirectory(prefix='docs-smoke-') as tmp:
        problems = proc_nbs(root, tmp)
        print(problems[0] if problems else 'nbdev-proc-nbs: ok')
        for rel in srcs:
            name, proc_nb = rel.with_suffix('').as_posix(), root/'_proc'/rel
            try:  # the page goes next to its notebook in _proc/, so relative links resolve as on the site
                if not proc_nb.exists(): raise RuntimeError('not produced by nbdev-proc-nbs')
                nfigs = render(proc_nb, proc_nb.with_suffix('.html'))
                probs = page_problems(open_page(proc_nb.with_suffix('.html'), Path(tmp)/'profile'), nfigs)
                nfigs_all += nfigs
            except Exception as e: nfigs, probs = '?', [(str(e) if isinstance(e, RuntimeError) else repr(e))[:300]]
            print(f'{name}: {nfigs} figure(s), ' + ('; '.join(probs) or 'ok'))
            problems += [f'{name}: {p}' for p in probs]
    if problems:
        print(f'FAILED, {len(problems)} problem(s):', *problems, sep='\n  ')
        return 1
    print(f'ok: nbdev-proc-nbs ran clean; {len(srcs)} pages show their {nfigs_all} figures and no tracebacks')
    return 0

if __name__ == '__main__': sys.exit(main())
