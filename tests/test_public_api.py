"""The public API as tools see it: ``__all__``, the lazy tables and their TYPE_CHECKING mirrors.

``scalelaw`` and ``scalelaw.train`` import their public names on first use (a string
table, :mod:`scalelaw._lazy`) and list the same names as ordinary imports under
``if TYPE_CHECKING:`` for type checkers and editors. The sources are read with ``ast``, so
the checks see exactly what a static tool sees.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

import scalelaw

PACKAGES = ("scalelaw", "scalelaw.train", "scalelaw.mup")


def _source(package: str) -> ast.Module:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    return ast.parse(Path(spec.origin).read_text())


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt]) -> dict[str, str]:
    """``{name: module}`` of the ``from scalelaw... import name`` statements in ``body``."""
    out: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scalelaw"):
            for alias in node.names:
                assert alias.asname in (None, alias.name), f"renamed import {alias.name}"
                assert alias.name not in out, f"{alias.name} imported twice"
                out[alias.name] = node.module
    return out


def _static(package: str) -> dict[str, object]:
    """What a static reader finds: the lazy table, the TYPE_CHECKING imports, the eager
    imports of scalelaw names and ``__all__``."""
    tree = _source(package)
    found: dict[str, object] = {"type_checking": {}, "exports": None, "all": None}
    eager: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            found["type_checking"] = _imports(node.body)
        elif isinstance(node, ast.ImportFrom):
            eager.update(_imports([node]))
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "_EXPORTS":
                found["exports"] = ast.literal_eval(node.value)
            if isinstance(target, ast.Name) and target.id == "__all__":
                found["all"] = ast.literal_eval(node.value)  # a literal, as tools need
    eager.pop("lazy_exports", None)  # the mechanism, not an export
    found["eager"] = eager
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_type_checking_imports_mirror_the_lazy_table(package: str) -> None:
    found = _static(package)
    exports, mirror = found["exports"], found["type_checking"]
    assert isinstance(exports, dict) and exports, f"{package}: no literal _EXPORTS table"
    missing = {k: v for k, v in exports.items() if mirror.get(k) != v}
    extra = {k: v for k, v in mirror.items() if exports.get(k) != v}
    assert not missing and not extra, (
        f"{package}: the lazy table and the TYPE_CHECKING imports differ: lazy only or "
        f"elsewhere {missing}, TYPE_CHECKING only or elsewhere {extra}")


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_every_public_name_once(package: str) -> None:
    found = _static(package)
    names = found["all"]
    assert isinstance(names, list), f"{package}: __all__ must be a literal list"
    assert len(names) == len(set(names)), f"{package}: __all__ repeats a name"
    expected = set(found["exports"]) | set(found["eager"])
    if package == "scalelaw":
        expected.add("__version__")
    assert set(names) == expected


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_to_its_definition(package: str) -> None:
    pkg = importlib.import_module(package)
    found = _static(package)
    where = {**found["exports"], **found["eager"]}
    for name in pkg.__all__:
        value = getattr(pkg, name)
        if name in where:
            assert value is getattr(importlib.import_module(where[name]), name), name
        if isinstance(value, type | types.FunctionType):
            # go-to-definition lands where the name is defined, not on a re-export
            assert value.__module__ == where[name], f"{name} is defined in {value.__module__}"
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        pkg.no_such_name  # noqa: B018


def test_top_level_names():
    assert scalelaw.ConfigError.__module__ == "scalelaw.errors"
    assert isinstance(scalelaw.__version__, str)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_importing_scalelaw_and_recommending_import_no_jax():
    out = _run("import sys, scalelaw, scalelaw.train\n"
               "def jax(): return sorted(m for m in sys.modules if m.split('.')[0] == 'jax')\n"
               "assert not jax(), ('import', jax())\n"
               "assert sorted(dir(scalelaw)) == sorted(scalelaw.__all__)\n"
               "rec = scalelaw.recommend(7e9, 2e12)\n"
               "assert not jax(), ('recommend', jax())\n"
               "print(rec.batch_sequences)")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_no_submodule_shadows_a_public_name(package: str) -> None:
    """A public name that is also a submodule's name (``scalelaw.recommend``) stays the
    public object after the submodule is imported first, as a user or the CLI may."""
    pkg = importlib.import_module(package)
    clashes = [n for n in pkg.__all__ if importlib.util.find_spec(f"{package}.{n}")]
    for name in clashes:
        out = _run(f"import {package}.{name}, {package}, types, sys\n"
                   f"value = getattr({package}, {name!r})\n"
                   "sys.exit(1 if isinstance(value, types.ModuleType) else 0)")
        assert out.returncode == 0, f"{package}.{name} is the submodule: {out.stderr}"
