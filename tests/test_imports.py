"""scalelaw's import graph: no cycles, and every layer imports only the layers to its left.

The graph is read from the sources with ``ast``: every ``import`` and ``from ... import``
of a scalelaw module, at module level, inside functions and under ``TYPE_CHECKING``
alike (a lazy import still ties the two modules together). ``from package import name``
is an edge to the submodule ``package.name`` when there is one, else to the package.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import scalelaw

ROOT = Path(scalelaw.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def graph() -> dict[str, frozenset[str]]:
    """``{module: the scalelaw modules it imports}`` for every module under scalelaw/."""
    files = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
    out = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    deps.add(sub if sub in files else base)
        out[name] = frozenset(d for d in deps if d in files and d != name)
    return out


def _cycles(g: dict[str, frozenset[str]]) -> list[list[str]]:
    """One cycle (a path ``a -> ... -> a``) per strongly connected component (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)
    return [_path_through(g, comp) for comp in components]


def _path_through(g: dict[str, frozenset[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, by breadth-first search."""
    start = min(comp)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(g[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def _reach(start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    g, seen, todo = graph(), set(), [start]
    while todo:
        for dep in g[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _under(prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in graph() if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_the_graph_sees_lazy_and_function_level_imports():
    g = graph()
    assert "scalelaw.train.loop" in g["scalelaw"]  # the TYPE_CHECKING mirror
    assert "scalelaw.train.loop" in g["scalelaw.sweep.executors"]  # inside a function
    assert "scalelaw.schedules" in g["scalelaw.train._member"]  # from scalelaw import schedules


def test_no_import_cycles():
    g = graph()
    cycles = _cycles(g)
    assert not cycles, "import cycles:\n" + "\n".join(
        f"{' -> '.join(c)}  (modules in this knot: {', '.join(sorted(_knot(g, c[0])))})"
        for c in cycles)


def _knot(g: dict[str, frozenset[str]], module: str) -> set[str]:
    """The modules on some cycle through ``module``: reachable from it and reaching it."""
    def reach(v: str, edges: dict[str, set[str]]) -> set[str]:
        seen, todo = set(), [v]
        while todo:
            for w in edges.get(todo.pop(), ()):
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    back: dict[str, set[str]] = {}
    for v, ws in g.items():
        for w in ws:
            back.setdefault(w, set()).add(v)
    return reach(module, {k: set(v) for k, v in g.items()}) & reach(module, back)


def test_the_cycle_finder_finds_a_cycle():
    g = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}),
         "d": frozenset({"a"})}
    assert _cycles(g) == [["a", "b", "c", "a"]]


LAYERS = [
    # (modules, what none of them may import, directly or through others)
    (("scalelaw.mup", "scalelaw.schedules"),
     ("scalelaw.models", "scalelaw.train", "scalelaw.sweep", "scalelaw.fit",
      "scalelaw.recommend", "scalelaw.published", "scalelaw.cli", "scalelaw._cli")),
    (("scalelaw.fit", "scalelaw.recommend", "scalelaw.recommendation", "scalelaw.published"),
     ("scalelaw.models", "scalelaw.train", "scalelaw.sweep", "scalelaw.mup.diagnostics",
      "scalelaw.cli", "scalelaw._cli")),
    (("scalelaw.models",), ("scalelaw.train", "scalelaw.sweep", "scalelaw.fit")),
    (("scalelaw.train",), ("scalelaw.sweep", "scalelaw.fit")),
]


@pytest.mark.parametrize(("modules", "forbidden"), LAYERS, ids=lambda x: ",".join(x))
def test_layers_import_only_to_their_left(modules, forbidden):
    bad = {}
    for module in _under(modules):
        reached = [m for m in sorted(_reach(module)) if m in _under(forbidden)]
        if reached:
            bad[module] = reached
    assert not bad, "layering broken (module: what it reaches):\n" + "\n".join(
        f"{m}: {', '.join(r)}" for m, r in bad.items())
