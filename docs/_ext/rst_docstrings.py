"""Griffe extension for the docs build: read scalelaw's reST-flavoured numpy docstrings.

The docstrings are written for Sphinx-style readers (``:func:`name```, ``text::`` before a
literal block, reST simple tables, doctest blocks in free text). mkdocstrings renders
Markdown, so before the docstrings are parsed this extension rewrites, in memory only:

- ``:func:`x```, ``:class:`~a.b.C``` and the other Python roles into autorefs
  cross-references ``[`x`][full.path]``, the name resolved in the object's scope as Python
  would (members, then the enclosing class and module, whose imports count); a leading
  ``~`` shows the last component only. Names from other libraries (jax, optax, ...) and
  private names (a component starting with ``_``) become plain code. A name that does not
  resolve is reported as a warning, so ``mkdocs build --strict`` fails on it;
- ``text::`` (reST literal-block marker) into ``text:`` (the indented block below is
  already a Markdown code block);
- reST simple tables (``====  ====`` borders) into Markdown tables;
- doctest blocks outside an ``Examples`` section into fenced ``pycon`` blocks (griffe's
  numpy parser already does this inside ``Examples``).

It also gives classes decorated with ``scalelaw._validation.section`` (frozen pydantic
dataclasses, which static analysis cannot see through) their dataclass ``__init__``, so
their fields are their documented parameters. The source files are not changed.
"""

from __future__ import annotations

import builtins
import re
from typing import Any

import griffe

logger = griffe.get_logger("scalelaw_docs.rst_docstrings")

ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|data|attr|exc|obj|const):`(~?)([^`]+)`")
EXTERNAL = ("jax", "optax", "flax", "nnx", "numpy", "np", "pandas", "pd", "scipy", "orbax",
            "pydantic", "typer", "yaml", "rich", "ray", "matplotlib", "os", "pathlib", "math",
            "json", "typing", "collections", "dataclasses", "functools", "sysconfig")
BUILTINS = frozenset(dir(builtins))
TABLE_BORDER = re.compile(r"^\s*=+(\s+=+)+\s*$")
SECTION_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def _private(path: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in path.split("."))


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """Full path of ``target`` as seen from ``obj``, or None."""
    head, _, rest = target.partition(".")
    if head == "scalelaw":
        return target
    scope: Any = obj
    while scope is not None:
        try:
            path = scope.resolve(head)
        except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError):
            scope = scope.parent
            continue
        return f"{path}.{rest}" if rest else path
    return None


def _not_module(obj: griffe.Object, kind: str, path: str) -> str:
    """``scalelaw.recommend`` is a module and, at run time, the function it defines (the
    package imports it under the module's name): a non-``mod`` role means the function."""
    node: Any = obj.package
    for part in path.split(".")[1:]:
        node = node.members.get(part) if node is not None and not node.is_alias else None
    name = path.rsplit(".", 1)[-1]
    if kind != "mod" and node is not None and node.is_module and name in node.members:
        return f"{path}.{name}"
    return path


def _roles(obj: griffe.Object, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        kind, tilde, target = match.groups()
        target = target.strip()
        shown = target.rsplit(".", 1)[-1] if tilde else target
        if target.split(".")[0] in EXTERNAL or target in BUILTINS:
            return f"`{shown}`"
        path = _resolve(obj, target)
        if path is None:
            logger.warning("%s: cross-reference %r does not resolve", obj.path, target)
            return f"`{shown}`"
        if _private(path) or path.split(".")[0] != "scalelaw":
            return f"`{shown}`"
        return f"[`{shown}`][{_not_module(obj, kind, path)}]"

    return ROLE.sub(replace, text)


def _table(lines: list[str]) -> list[str]:
    """A reST simple table (borders of ``=``; a row whose first cell is blank continues
    the row above) as a Markdown table."""
    border = lines[0]
    indent = border[: len(border) - len(border.lstrip())]
    spans = [m.span() for m in re.finditer(r"=+", border)]

    def cells(line: str) -> list[str]:
        ends = [start for start, _ in spans[1:]] + [max(len(line), spans[-1][1])]
        return [line[start:stop].strip() for (start, _), stop in zip(spans, ends, strict=True)]

    rows: list[list[str]] = []
    header: list[str] = []
    for line in lines[1:]:
        if TABLE_BORDER.match(line):
            if not header:
                header, rows = rows[0] if rows else [], []
            continue
        row = cells(line)
        if rows and not row[0]:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], row, strict=True)]
        else:
            rows.append(row)
    if not header:
        return lines

    def md(row: list[str]) -> str:
        return indent + "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"

    return ["", md(header), indent + "|" + "---|" * len(header), *map(md, rows), ""]


def _blocks(text: str) -> str:
    """Literal-block markers, simple tables and free-text doctest blocks."""
    lines = text.splitlines()
    out: list[str] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and SECTION_UNDERLINE.match(lines[i + 1]) and line.strip():
            section = line.strip().lower()
        if TABLE_BORDER.match(line):  # a simple table: three borders (head, rule, foot)
            end, borders = i, 0
            while end < len(lines):
                borders += bool(TABLE_BORDER.match(lines[end]))
                end += 1
                if borders == 3:
                    break
            out += _table(lines[i:end])
            i = end
            continue
        stripped = line.lstrip()
        if stripped.startswith(">>>") and section not in ("examples", "example"):
            indent = line[: len(line) - len(stripped)]
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            out += [f"{indent}```pycon", *lines[i:end], f"{indent}```"]
            i = end
            continue
        if line.rstrip().endswith("::") and not stripped.startswith(("```", ">>>", "...")):
            line = line.rstrip()[:-1]
        out.append(line)
        i += 1
    return "\n".join(out)


def _section_init(cls: griffe.Class) -> None:
    """Give a ``scalelaw._validation.section`` class its dataclass ``__init__``.

    ``@section`` makes a frozen pydantic dataclass, which griffe's static analysis cannot
    see through: without this, the documented fields "do not appear in the signature".
    """
    if "__init__" in cls.members:
        return
    params = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute or member.annotation is None:
            continue
        if "property" in member.labels or (
                "class-attribute" in member.labels and "instance-attribute" not in member.labels):
            continue
        params.append(griffe.Parameter(member.name, annotation=member.annotation,
                                       kind=griffe.ParameterKind.positional_or_keyword,
                                       default=member.value, docstring=member.docstring))
    cls.set_member("__init__", griffe.Function("__init__", lineno=0, endlineno=0, parent=cls,
                                               parameters=griffe.Parameters(*params),
                                               returns="None"))
    cls.labels.add("dataclass")


def _is_section(cls: griffe.Class) -> bool:
    return any(isinstance(d.value, griffe.Expr)
               and d.value.canonical_path == "scalelaw._validation.section"
               for d in cls.decorators)


class RstDocstrings(griffe.Extension):
    """Rewrite every docstring of the package once it is loaded (see the module notes)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.is_class and _is_section(obj):
            _section_init(obj)
        if obj.docstring is not None:
            obj.docstring.value = _roles(obj, _blocks(obj.docstring.value))
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)
