"""Field paths of a sweep spec (``"model.width"``), read off the typed sections.

Nothing is declared here: a path's type and constraints are those of the section classes
(:data:`SECTION_CLASSES`), so :func:`check_value` checks a swept value exactly as the
section will. Also the ids' canonical hashing, and :func:`plain` (tuples to lists).

Examples
--------
>>> check_value("train.tokens", 2.0e5)
200000
>>> check_value("model.width", -3)
Traceback (most recent call last):
...
scalelaw.errors.FieldError: model.width: must be a positive integer, got -3
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from scalelaw._validation import check_field, show
from scalelaw.corpus import DataConfig
from scalelaw.errors import ConfigError, FieldError
from scalelaw.models.config import MODEL_CLASSES
from scalelaw.mup.rules import Parametrization
from scalelaw.train.config import SCHEDULE_CLASSES, OptimizerConfig, TrainConfig

SECTION_CLASSES: dict[str, tuple[type, ...]] = {
    "model": tuple(MODEL_CLASSES.values()),
    "parametrization": (Parametrization,),
    "optimizer": (OptimizerConfig,),
    "schedule": tuple(SCHEDULE_CLASSES.values()),
    "data": (DataConfig,),
    "train": (TrainConfig,),
}
"""The classes that declare each section's fields (several: model families, schedules)."""

SECTIONS = tuple(SECTION_CLASSES)

SCALAR_PATHS = frozenset({
    "optimizer.lr", "optimizer.weight_decay", "optimizer.b1", "optimizer.b2", "optimizer.eps",
    "train.seed", "train.branch_of", "parametrization.output_mult",
    "schedule.warmup_tokens", "schedule.decay_fraction", "schedule.final_fraction",
    "schedule.a", "schedule.b", "schedule.lr_max",
})
"""Fields that members of one group may differ in: they change neither array shapes,
the compiled program's structure, nor the data stream (see :meth:`SweepSpec.groups`)."""


def config_error(where: str, problem: str) -> ConfigError:
    """``FieldError("where: problem")`` on one line."""
    return FieldError(where, problem)


def section_fields(section: str) -> list[str]:
    """Field names of ``section`` (every family's or kind's), in declaration order."""
    names: dict[str, None] = {}
    for cls in SECTION_CLASSES[section]:
        names.update(dict.fromkeys(f.name for f in dataclasses.fields(cls)))
    return list(names)


def check_path(path: Any) -> tuple[str, str]:
    """Split a dotted path into (section, field), or raise :class:`FieldError`."""
    if not isinstance(path, str) or path.count(".") != 1:
        raise FieldError("", f"must be a dotted field path such as 'model.width', "
                             f"got {show(path)}")
    section, name = path.split(".")
    if section not in SECTION_CLASSES:
        raise FieldError("", f"unknown section {section!r} (allowed: {', '.join(SECTIONS)})")
    if name not in section_fields(section):
        allowed = ", ".join(section_fields(section))
        raise FieldError("", f"unknown field {name!r} of {section} (allowed: {allowed})")
    return section, name


def check_value(path: str, value: Any) -> Any:
    """Canonical form of ``value`` for field ``path`` (raises :class:`FieldError`).

    A field several families or schedule kinds declare takes what any of them takes;
    the section that is built checks it again.
    """
    section, name = path.split(".")
    try:
        return check_field(SECTION_CLASSES[section], name, value)
    except FieldError as exc:
        raise FieldError(path, exc.problem) from None


def check_section(section: str, data: Any, where: str | None = None) -> dict[str, Any]:
    """Check each field of a (partial) section mapping; errors name ``where.key``."""
    where = where or section
    if not isinstance(data, Mapping):
        raise config_error(where, f"must be a mapping of fields, got {show(data)}")
    out = {}
    for key, value in data.items():
        if key not in section_fields(section):
            allowed = ", ".join(section_fields(section))
            raise config_error(f"{where}.{key}", f"unknown key (allowed: {allowed})")
        try:
            out[key] = check_value(f"{section}.{key}", value)
        except FieldError as exc:
            raise config_error(f"{where}.{key}", exc.problem) from None
    return out


# ----------------------------------------------------------------------------- hashing
def canonical_json(obj: Any) -> str:
    """Sorted-key, compact JSON: the byte string that ids are hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def short_hash(obj: Any, length: int = 12) -> str:
    """First ``length`` hex digits of the SHA-256 of :func:`canonical_json` of ``obj``.

    Examples
    --------
    >>> short_hash({"b": 1, "a": 2.0}) == short_hash({"a": 2.0, "b": 1})
    True
    """
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def drop_none(obj: Any) -> Any:
    """Recursively drop ``None``-valued keys (so new optional fields keep old ids)."""
    if isinstance(obj, Mapping):
        return {k: drop_none(v) for k, v in obj.items() if v is not None}
    return obj


def plain(value: Any) -> Any:
    """Tuples to lists, recursively: the value as JSON and ``yaml.safe_dump`` see it.

    >>> plain({"widths": (64, 128), "zip": [("a", 1)]})
    {'widths': [64, 128], 'zip': [['a', 1]]}
    """
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
