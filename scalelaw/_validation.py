"""Typed config sections: one pydantic declaration per field, and the errors it gives.

Every config section (each model family, the parametrization, the optimizer, each
schedule kind, data, train) is a frozen pydantic dataclass made with :func:`section`:

- unknown fields are refused, booleans are strict (``1`` is not ``true``), numbers must
  be finite, and an integral float (``2.0e5``) is accepted where an integer is meant;
- constraints are declared on the field with the aliases below (``PositiveInt``,
  ``Fraction``, ``Literal[...]``), cross-field rules as validators that raise
  :class:`FieldError` naming the field.

Every problem becomes one line, built here and only here from pydantic's error
locations: ``<field>: must be <what the field takes>, got <value>`` (the type and bounds
are read back from the declaration), ``<field>: unknown key (allowed: ...)`` or the
validator's own sentence. :func:`validate` returns the section or raises
:class:`FieldError` s joined in a :class:`~scalelaw.errors.ConfigError`; constructing a
section directly (``TrainConfig(batch_size=0)``) raises the same messages.

Examples
--------
>>> @section
... class Demo:
...     width: PositiveInt = 64
...     lr: PositiveFloat = 1e-3
>>> Demo(width=2.0e5).width
200000
>>> Demo(width=0)
Traceback (most recent call last):
...
scalelaw.errors.FieldError: width: must be a positive integer, got 0
>>> validate(Demo, {"lr": "fast", "depth": 2}, prefix="model")
Traceback (most recent call last):
...
scalelaw.errors.ConfigError: model.lr: must be a number > 0, got 'fast'
model.depth: unknown key (allowed: width, lr)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from collections.abc import Callable, Mapping
from typing import (
    Annotated,
    Any,
    Literal,
    TypeVar,
    Union,
    cast,
    dataclass_transform,
    get_args,
    get_origin,
)

import annotated_types as at
from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo

from scalelaw.errors import ConfigError, FieldError

__all__ = ["CONFIG", "FieldError", "Flag", "Fraction", "NonNegativeFloat", "NonNegativeInt",
           "PositiveFloat", "PositiveInt", "Paths", "describe", "field_names", "messages",
           "section", "show", "validate"]

T = TypeVar("T")

CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
"""The pydantic settings every section shares (strictness is declared per type below)."""


def _integral(value: Any) -> Any:
    """``2.0e5`` -> ``200000`` (YAML writes big integers as floats); other values as given."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def as_tuple(value: Any) -> Any:
    """A list as a tuple (YAML lists, for hashable sections); other values as given."""
    return tuple(value) if isinstance(value, list) else value


PositiveInt = Annotated[int, BeforeValidator(_integral), Strict(), Field(ge=1)]
NonNegativeInt = Annotated[int, BeforeValidator(_integral), Strict(), Field(ge=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0)]
Fraction = Annotated[float, Strict(), Field(ge=0, lt=1)]
"""A number in [0, 1)."""
Flag = Annotated[bool, Strict()]
"""``true`` or ``false`` (not ``1`` or ``"yes"``)."""
NonEmptyStr = Annotated[str, Strict(), Field(min_length=1)]
Paths = Annotated[tuple[NonEmptyStr, ...], BeforeValidator(as_tuple)]
"""A list of non-empty strings (kept as a tuple, so the section stays hashable)."""


def show(value: Any) -> str:
    """``repr`` cut to 60 characters, for "got ..." in messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- sections
@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, Field))
def section(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen pydantic dataclass whose constructor raises ConfigError.

    ``dataclasses.replace``, ``asdict`` and ``fields`` work as on any dataclass, and
    the constructor (so also ``replace``) reports problems as :func:`validate` does.
    """
    dc = pydantic_dataclass(frozen=True, config=CONFIG)(cls)
    init = dc.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except ValidationError as exc:
            raise _joined([FieldError(n, m) for n, m in messages(exc, dc)]) from None

    dc.__init__ = __init__  # type: ignore[method-assign]
    return cast("type[T]", dc)  # the same class, now a pydantic dataclass


def field_names(cls: type) -> list[str]:
    """The fields of a section, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def validate(cls: type[T], data: Any, prefix: str = "", *,
             origin: Callable[[str], str] | None = None, context: str = "") -> T:
    """Build section ``cls`` from a mapping, or raise one line per problem.

    Parameters
    ----------
    cls : a :func:`section` class
    data : mapping of field names to values
    prefix : str
        Prepended to field names in messages (``"train"`` gives ``train.batch_size``).
    origin : callable, optional
        Maps a dotted path to where the user wrote it (``sweep['model.width'][1]``).
    context : str
        Appended to every message (e.g. which trial of a sweep).
    """
    where = origin or (lambda p: p)
    if not isinstance(data, Mapping):
        raise FieldError(where(prefix), f"must be a mapping of fields, got {show(data)}")
    try:
        # mypy does not count type[T] as Hashable (every class is): python/mypy#20409
        return _adapter(cls).validate_python(dict(data))  # type: ignore[arg-type]
    except ValidationError as exc:
        errors = []
        for name, problem in messages(exc, cls):
            path = f"{prefix}.{name}" if prefix and name else prefix or name
            errors.append(FieldError(where(path), problem + context))
        raise _joined(errors) from None


def _joined(errors: list[FieldError]) -> ConfigError:
    """The one problem, or all of them as one ConfigError, one line each."""
    return errors[0] if len(errors) == 1 else ConfigError("\n".join(map(str, errors)))


@functools.cache
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


def check_field(classes: tuple[type, ...], name: str, value: Any) -> Any:
    """``value`` checked against field ``name`` of any of ``classes`` (first that takes it).

    Raises :class:`FieldError` (with ``path = name``) describing the first declaration.
    """
    declared = [c for c in classes if name in _fields(c)]
    for cls in declared:
        try:
            return _field_adapter(cls, name).validate_python(value)
        except ValidationError:
            continue
    wanted = list(dict.fromkeys(describe(_fields(c)[name]) for c in declared))
    if len(wanted) > 1 and all(w.startswith("one of ") for w in wanted):
        wanted = ["one of " + ", ".join(w.removeprefix("one of ") for w in wanted)]
    raise FieldError(name, f"must be {' or '.join(wanted)}, got {show(value)}")


@functools.cache
def _field_adapter(cls: type, name: str) -> TypeAdapter:
    info = _fields(cls)[name]
    tp: Any = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    return TypeAdapter(tp, config=_FIELD_CONFIG)


_FIELD_CONFIG = ConfigDict(allow_inf_nan=False)


def _fields(cls: type) -> dict[str, FieldInfo]:
    return cls.__pydantic_fields__  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- messages
def messages(exc: ValidationError, cls: type) -> list[tuple[str, str]]:
    """``(field, problem)`` for each of pydantic's errors, in the user's terms.

    The field is the dotted location inside ``cls`` (``""`` for the section itself;
    ``divergence.patience`` for a field of a nested section).
    """
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        owner, path, loc = cls, [], list(err["loc"])
        if loc and isinstance(loc[0], int) and loc[0] < len(_fields(cls)):
            loc[0] = list(_fields(cls))[loc[0]]  # a positional argument: its field
        while len(loc) > 1 and loc[0] in _fields(owner):  # into a nested section
            inner = _section_of(_fields(owner)[loc[0]].annotation)
            if inner is None:
                break
            path.append(str(loc.pop(0)))
            if loc and loc[0] == inner.__name__:  # pydantic's tag for a union member
                loc.pop(0)
            owner = inner
        fields = _fields(owner)
        kind, cause = err["type"], (err.get("ctx") or {}).get("error")
        name = str(loc[0]) if loc else ""
        if isinstance(cause, FieldError):  # a cross-field rule names its own field
            name, problem = cause.path, cause.problem
        elif kind in ("extra_forbidden", "unexpected_keyword_argument"):
            problem = f"unknown key (allowed: {', '.join(fields)})"
        elif kind in ("missing", "missing_argument"):
            problem = "required"
        elif name in fields:
            problem = f"must be {describe(fields[name])}, got {show(err['input'])}"
        else:
            name = ".".join(map(str, loc))
            problem = " ".join(str(cause or err["msg"]).split())
        out.append((".".join([*path, name] if name else path), problem))
    return out


def _section_of(tp: Any) -> type | None:
    """The section class a field holds (``Rule`` or ``Rule | None``), else None."""
    for t in (tp, *get_args(tp)):
        if isinstance(t, type) and hasattr(t, "__pydantic_fields__"):
            return t
    return None


def describe(tp: Any) -> str:
    """What a declared field takes, in words: ``"a positive integer"``, ``"one of a, b"``.

    Examples
    --------
    >>> describe(Fraction), describe(PositiveInt | None), describe(Literal["a", "b"])
    ('a number in [0, 1)', 'a positive integer (or null)', 'one of a, b')
    """
    if isinstance(tp, FieldInfo):
        return _describe(tp.annotation, tuple(tp.metadata))
    return _describe(tp, ())


def _describe(tp: Any, meta: tuple[Any, ...]) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *more = get_args(tp)
        return _describe(base, (*meta, *more))
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        text = " or ".join(_describe(a, meta) for a in args if a is not type(None))
        return text + (" (or null)" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(str(v) for v in get_args(tp))
    if origin is tuple:
        return "a list of " + _describe(get_args(tp)[0], ()).replace("a ", "", 1) + "s"
    bounds = _bounds(meta)
    if tp is bool:
        return "true or false"
    if tp is int:
        low = bounds.get("ge")
        if low is None:
            return "an integer"
        return {1: "a positive integer", 0: "a non-negative integer"}.get(
            low, f"an integer >= {low}")
    if tp is float:
        return "a number" + _interval(bounds)
    if tp is str:
        return "a non-empty string" if bounds.get("min_length") else "a string"
    if hasattr(tp, "__pydantic_fields__"):
        return f"a mapping with keys among {', '.join(tp.__pydantic_fields__)}"
    return getattr(tp, "__name__", str(tp))


def _bounds(meta: tuple[Any, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in meta:
        if isinstance(m, FieldInfo):
            out |= _bounds(tuple(m.metadata))
        for key, cls in (("gt", at.Gt), ("ge", at.Ge), ("lt", at.Lt), ("le", at.Le),
                         ("min_length", at.MinLen)):
            if isinstance(m, cls):
                out[key] = getattr(m, key)
    return out


def _interval(b: dict[str, Any]) -> str:
    low = ("(", b["gt"]) if "gt" in b else ("[", b["ge"]) if "ge" in b else None
    high = (")", b["lt"]) if "lt" in b else ("]", b["le"]) if "le" in b else None
    if low and high:
        return f" in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return f" {'>' if low[0] == '(' else '>='} {low[1]:g}"
    if high:
        return f" {'<' if high[0] == ')' else '<='} {high[1]:g}"
    return ""
