"""Notebook order is dependency order: each module of the library may import only from modules whose notebook comes
earlier in `nbs/`, and the imports form no cycle. Imports inside functions count too: a lazy import is still a
dependency. Exits 1 naming each offending import."""
import ast, re, sys
from pathlib import Path

PKG = 'fastai_course'

def notebook_of(py:Path) -> str:
    "The notebook a module is exported from, from nbdev's header"
    m = re.search(r'File to edit: \.\./nbs/(\S+\.ipynb)', py.read_text())
    return m.group(1) if m else None

def course_imports(py:Path) -> set:
    "Modules of the package that `py` imports, anywhere in the file"
    found = set()
    for node in ast.walk(ast.parse(py.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: base = mod            # from .x import y / from . import x
            elif mod == PKG or mod.startswith(PKG + '.'): base = mod[len(PKG) + 1:]
            else: continue
            found |= {a.name for a in node.names} if base == '' else {base.split('.')[0]}
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith(PKG + '.')}
    return found

def find_cycle(graph:dict) -> list:
    "One cycle of `graph` (module -> modules it imports), or []"
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 'open': return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)): return c
        state[m] = 'done'; stack.pop(); return []
    for m in sorted(graph):
        if m not in state and (c := visit(m)): return c
    return []

def main():
    mods = {p.stem: p for p in Path(PKG).glob('*.py') if not p.stem.startswith('_')}
    nb = {m: notebook_of(p) for m, p in mods.items()}
    graph = {m: {d for d in course_imports(p) if d in mods and d != m} for m, p in mods.items()}
    problems = [f'{m}.py is not exported from a notebook' for m in mods if nb[m] is None]
    problems += [f'{m} ({nb[m]}) imports {d} ({nb[d]}), whose notebook comes later' for m in sorted(graph)
                 for d in sorted(graph[m]) if nb[m] and nb[d] and nb[d] >= nb[m]]
    if cycle := find_cycle(graph): problems.append('import cycle: ' + ' -> '.join(cycle))
    for m in sorted(mods, key=lambda m: nb[m] or ''):
        print(f"  {nb[m] or '?':28s} {m:18s} <- {', '.join(sorted(graph[m], key=lambda d: nb[d] or '')) or '(nothing from the package)'}")
    for p in problems: print('PROBLEM: ' + p)
    if problems: sys.exit(1)
    print(f'ok: {len(mods)} modules, each imports only from earlier notebooks, no cycle')

if __name__ == '__main__': main()
