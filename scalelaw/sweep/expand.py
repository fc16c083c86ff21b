"""Sweep axes and overrides: parsing the ``sweep:`` and ``overrides:`` blocks, and expansion.

An *axis* is a list of points; each point assigns a value to one field path (or to
several, for a ``zip`` group). Trials are the Cartesian product of the axes, in the
order the axes are written (the first axis varies slowest), after which every override
whose ``when`` matches is applied in order.

Axis values (each checked against the field's kind when the spec is loaded)::

    model.width: [32, 64, 128]                          # explicit list
    optimizer.lr: {values: [1.0e-3, 3.0e-3]}            # same, as a mapping
    optimizer.lr: {log2_range: [-12, -4], num: 9}       # 2**linspace(-12, -4, 9)
    optimizer.lr: {log10_range: [-4, -2], num: 5}       # 10**linspace(-4, -2, 5)
    train.tokens_per_param: {linear_range: [10, 40], num: 4}
    optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1], num: 16, seed: 0}   # random samples
    optimizer.b2: {uniform: [0.9, 0.999], num: 8, seed: 0}
    zip:                         # advanced together (equal lengths), not multiplied
      model.width: [64, 128, 256]
      train.batch_size: [32, 16, 8]

``zip`` may also be a list of such mappings (several zip groups). A zip of random
axes gives a joint random search. Generated numbers are rounded to 12 significant
digits so that trial ids do not depend on the platform's last-bit rounding; random
draws come from ``np.random.default_rng([seed, crc32(path)])``, so two axes with the
same seed still differ.

Overrides set fields in the trials they match (``when`` values may be lists: any of)::

    overrides:
      - {when: {model.width: [512, 1024]}, set: {train.batch_size: 8}}

Setting one of ``train.tokens`` / ``train.tokens_per_param`` (by an axis or an
override) clears the other.
"""

from __future__ import annotations

import copy
import itertools
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalelaw.corpus import DataConfig
from scalelaw.errors import FieldError
from scalelaw.models.config import MLPConfig, TransformerConfig
from scalelaw.mup.rules import Parametrization
from scalelaw.sweep._fields import check_path, check_value, config_error
from scalelaw.train.config import OptimizerConfig, TrainConfig

__all__ = ["Axis", "Override", "Point", "default_value", "expand", "parse_overrides",
           "parse_sweep"]

GENERATORS = ("values", "log2_range", "log10_range", "linear_range", "log_uniform", "uniform")
_EXCLUSIVE = {"train.tokens": "train.tokens_per_param", "train.tokens_per_param": "train.tokens"}


@dataclass(frozen=True)
class Axis:
    """One axis of the product: ``points[i]`` assigns ``{path: value}``.

    ``where[i][path]`` is the spec location of that value, for error messages.
    """

    paths: tuple[str, ...]
    points: tuple[dict[str, Any], ...]
    where: tuple[dict[str, str], ...]

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class Override:
    """Set ``assign`` in every trial whose fields match all of ``when`` (value sets)."""

    index: int
    when: dict[str, tuple[Any, ...]]
    assign: dict[str, Any]


@dataclass(frozen=True)
class Point:
    """One expanded trial before validation: raw sections, swept paths and origins."""

    raw: dict[str, dict[str, Any]]
    swept: tuple[str, ...]
    origin: dict[str, str]


# ----------------------------------------------------------------------------- axes
def parse_sweep(sweep: Any) -> list[Axis]:
    """Parse the ``sweep:`` mapping into axes (raises ConfigError naming the location)."""
    if sweep is None:
        return []
    if not isinstance(sweep, Mapping):
        raise config_error("sweep", f"must be a mapping of field paths to values, got "
                                    f"{type(sweep).__name__}")
    axes: list[Axis] = []
    for key, spec in sweep.items():
        if key == "zip":
            if isinstance(spec, list):
                if not spec:
                    raise config_error("sweep.zip", "empty list (give at least one zip group)")
                axes += [_zip_axis(group, f"sweep.zip[{i}]") for i, group in enumerate(spec)]
            else:
                axes.append(_zip_axis(spec, "sweep.zip"))
        else:
            where = f"sweep[{key!r}]"
            _path(key, where)
            values = axis_values(key, spec, where)
            axes.append(Axis((key,), tuple({key: v} for v in values),
                             tuple({key: f"{where}[{i}]"} for i in range(len(values)))))
    seen: set[str] = set()
    for axis in axes:
        for path in axis.paths:
            if path in seen:
                raise config_error(f"sweep[{path!r}]", "swept twice (remove one of the axes)")
            seen.add(path)
    return axes


def _zip_axis(group: Any, where: str) -> Axis:
    if not isinstance(group, Mapping) or not group:
        raise config_error(where, "must be a non-empty mapping of field paths to values")
    columns = {}
    for key, spec in group.items():
        _path(key, f"{where}[{key!r}]")
        columns[key] = axis_values(key, spec, f"{where}[{key!r}]")
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise config_error(where, f"zipped axes must have equal lengths, got {shown}")
    n = next(iter(lengths.values()))
    points = tuple({k: v[i] for k, v in columns.items()} for i in range(n))
    wheres = tuple({k: f"{where}[{k!r}][{i}]" for k in columns} for i in range(n))
    _no_duplicates(points, where)
    return Axis(tuple(columns), points, wheres)


def _path(key: Any, where: str) -> None:
    try:
        check_path(key)
    except FieldError as exc:
        raise config_error(where, exc.problem) from None


def axis_values(path: str, spec: Any, where: str) -> list[Any]:
    """The checked values of one axis given as a list or a generator mapping.

    Examples
    --------
    >>> axis_values("optimizer.lr", {"log2_range": [-4, -2], "num": 3}, "sweep")
    [0.0625, 0.125, 0.25]
    """
    if isinstance(spec, list):
        raw = spec
    elif isinstance(spec, Mapping):
        raw = _generate(path, spec, where)
    else:
        raise config_error(where, f"must be a list of values or a mapping with one of "
                                  f"{', '.join(GENERATORS)}; got {spec!r}")
    if not raw:
        raise config_error(where, "empty axis (give at least one value)")
    values = []
    for i, value in enumerate(raw):
        try:
            values.append(check_value(path, value))
        except FieldError as exc:
            raise config_error(f"{where}[{i}]", exc.problem) from None
    _no_duplicates([{path: v} for v in values], where)
    return values


def _no_duplicates(points: Sequence[dict[str, Any]], where: str) -> None:
    seen = []
    for i, point in enumerate(points):
        if point in seen:
            shown = next(iter(point.values())) if len(point) == 1 else point
            raise config_error(f"{where}[{i}]", f"duplicate value {shown!r} (values must differ)")
        seen.append(point)


def _generate(path: str, spec: Mapping[str, Any], where: str) -> list[Any]:
    kinds = [k for k in spec if k in GENERATORS]
    if len(kinds) != 1:
        raise config_error(where, f"must have exactly one of {', '.join(GENERATORS)}; got "
                                  f"keys {', '.join(map(str, spec)) or 'none'}")
    kind = kinds[0]
    allowed = {"values": ()}.get(kind, ("num", "seed") if "uniform" in kind else ("num",))
    for key in spec:
        if key != kind and key not in allowed:
            raise config_error(f"{where}.{key}", f"unknown key for {kind} (allowed: "
                                                 f"{', '.join((kind, *allowed))})")
    if kind == "values":
        if not isinstance(spec[kind], list):
            raise config_error(f"{where}.values", f"must be a list, got {spec[kind]!r}")
        return list(spec[kind])
    lo, hi = _bounds(spec[kind], f"{where}.{kind}", positive=kind == "log_uniform")
    num = _count(spec.get("num"), f"{where}.num")
    if kind.endswith("_range"):
        grid = np.linspace(lo, hi, num)
        grid = {"log2_range": 2.0**grid, "log10_range": 10.0**grid}.get(kind, grid)
    else:
        seed = _count(spec.get("seed", 0), f"{where}.seed", minimum=0)
        rng = np.random.default_rng([seed, zlib.crc32(path.encode())])
        u = rng.uniform(0.0, 1.0, size=num)
        log = kind == "log_uniform"
        grid = np.exp(np.log(lo) + u * np.log(hi / lo)) if log else lo + u * (hi - lo)
    return [_round(float(x)) for x in grid]


def _bounds(value: Any, where: str, positive: bool) -> tuple[float, float]:
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                  for v in value))
    if not ok or value[0] > value[1] or (positive and value[0] <= 0):
        need = "0 < lo <= hi" if positive else "lo <= hi"
        raise config_error(where, f"must be [lo, hi], two finite numbers with {need}; "
                                  f"got {value!r}")
    return float(value[0]), float(value[1])


def _count(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise config_error(where, f"must be {what}, got {value!r}")
    return value


def _round(x: float) -> float | int:
    rounded = float(f"{x:.12g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


# ----------------------------------------------------------------------------- overrides
def parse_overrides(overrides: Any) -> list[Override]:
    """Parse the ``overrides:`` list (raises ConfigError naming ``overrides[i]...``)."""
    if overrides is None:
        return []
    if not isinstance(overrides, list):
        raise config_error("overrides", "must be a list of {when: {...}, set: {...}}")
    out = []
    for i, item in enumerate(overrides):
        where = f"overrides[{i}]"
        if not isinstance(item, Mapping):
            raise config_error(where, "must be a mapping {when: {...}, set: {...}}")
        for key in item:
            if key not in ("when", "set"):
                raise config_error(f"{where}.{key}", "unknown key (allowed: when, set)")
        parts = {}
        for key in ("when", "set"):
            part = item.get(key)
            if not isinstance(part, Mapping) or not part:
                raise config_error(f"{where}.{key}", "must be a non-empty mapping of field "
                                                     "paths to values")
            parts[key] = part
        when = {}
        for path, value in parts["when"].items():
            loc = f"{where}.when[{path!r}]"
            _path(path, loc)
            options = value if isinstance(value, list) and path != "data.paths" else [value]
            when[path] = tuple(_checked(path, v, loc) for v in options)
        assign = {}
        for path, value in parts["set"].items():
            loc = f"{where}.set[{path!r}]"
            _path(path, loc)
            assign[path] = _checked(path, value, loc)
        out.append(Override(i, when, assign))
    return out


def _checked(path: str, value: Any, where: str) -> Any:
    try:
        return check_value(path, value)
    except FieldError as exc:
        raise config_error(where, exc.problem) from None


# ----------------------------------------------------------------------------- expansion
_DEFAULTS = {"optimizer": OptimizerConfig(), "train": TrainConfig(tokens=1),
             "data": DataConfig()}


def default_value(raw: Mapping[str, Mapping[str, Any]], path: str) -> Any:
    """The value ``path`` has in ``raw`` once defaults are filled in (for ``when``)."""
    section, name = path.split(".")
    fields = raw.get(section, {})
    if name in fields:
        return fields[name]
    if section == "train" and name == "tokens":
        return None
    if section in _DEFAULTS:
        return getattr(_DEFAULTS[section], name, None)
    if section == "model":
        cls = MLPConfig if fields.get("family") == "mlp" else TransformerConfig
        defaults = {"family": "transformer", "vocab": None}
        return defaults[name] if name in defaults else getattr(cls(), name, None)
    if section == "parametrization":
        return getattr(Parametrization(), name)
    return None  # schedule constants: None = the schedule's default


def assign(raw: dict[str, dict[str, Any]], path: str, value: Any) -> None:
    """Set ``path`` in ``raw``; setting tokens / tokens_per_param clears the other."""
    section, name = path.split(".")
    raw.setdefault(section, {})[name] = value
    other = _EXCLUSIVE.get(path)
    if other:
        raw[section].pop(other.split(".")[1], None)


def expand(base: Mapping[str, Mapping[str, Any]], axes: list[Axis],
           overrides: list[Override]) -> Iterator[Point]:
    """Yield one :class:`Point` per element of the product of ``axes``, overrides applied."""
    for combo in itertools.product(*(range(len(a)) for a in axes)):
        raw = copy.deepcopy({k: dict(v) for k, v in base.items()})
        origin: dict[str, str] = {}
        swept: list[str] = []
        for axis, i in zip(axes, combo, strict=True):
            for path, value in axis.points[i].items():
                assign(raw, path, value)
                origin[path] = axis.where[i][path]
                swept.append(path)
        for ov in overrides:
            if all(default_value(raw, p) in vals for p, vals in ov.when.items()):
                for path, value in ov.assign.items():
                    assign(raw, path, value)
                    origin[path] = f"overrides[{ov.index}].set[{path!r}]"
        yield Point(raw, tuple(swept), origin)
