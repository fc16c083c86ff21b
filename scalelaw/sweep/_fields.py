"""Field kinds of the sweep schema: one checker per field path, plus canonical hashing.

``KINDS`` maps every dotted field path (``"model.width"``) to its kind (see
:mod:`scalelaw._kinds`); the optimizer, schedule and train entries are
:data:`scalelaw.train.config.SECTION_KINDS`, so each field is declared once, and the
dataclasses of :mod:`scalelaw.sweep.trial` and the YAML loader both use the table.

Examples
--------
>>> KINDS["train.tokens"](2.0e5)
200000
>>> KINDS["model.width"](-3)
Traceback (most recent call last):
...
scalelaw._kinds.Invalid: must be a positive integer, got -3
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from scalelaw._kinds import (
    POSITIVE,
    Invalid,
    Kind,
    boolean,
    choice,
    integer,
    number,
    optional,
    show,
    string,
    string_list,
)
from scalelaw.corpus import SOURCES, TOKEN_DTYPES
from scalelaw.errors import ConfigError
from scalelaw.models.config import FAMILIES, MLP_KINDS
from scalelaw.mup.rules import ATTN_SCALES, NAMES, WEIGHT_DECAY_RULES
from scalelaw.train.config import SECTION_KINDS


def config_error(where: str, problem: str) -> ConfigError:
    """``ConfigError("where: problem")`` on one line."""
    return ConfigError(f"{where}: {' '.join(str(problem).split())}")


KINDS: dict[str, Kind] = {
    # model (both families; family-specific fields are checked when a trial is built)
    "model.family": choice(*FAMILIES),
    "model.width": integer(1),
    "model.depth": integer(0),
    "model.head_dim": integer(1),
    "model.mlp_ratio": POSITIVE,
    "model.context": integer(1),
    "model.vocab": optional(integer(1)),
    "model.mlp": choice(*MLP_KINDS),
    "model.tied_embeddings": boolean,
    "model.d_in": integer(1),
    "model.d_out": integer(1),
    # parametrization (scalelaw.mup.rules.Parametrization)
    "parametrization.name": choice(*NAMES),
    "parametrization.base_width": integer(1),
    "parametrization.base_depth": optional(integer(1)),
    "parametrization.weight_decay_rule": choice(*WEIGHT_DECAY_RULES),
    "parametrization.scale_adam_eps": boolean,
    "parametrization.output_mult": POSITIVE,
    "parametrization.attn_scale": optional(choice(*ATTN_SCALES)),
    "parametrization.zero_init_readout": boolean,
    "parametrization.zero_init_query": boolean,
    "parametrization.completep_alpha": number(0, 1, open_high=False),
    "parametrization.base_head_dim": optional(integer(1)),
    # optimizer (AdamW), schedule (scalelaw.schedules; None = that schedule's default)
    **{f"{section}.{name}": kind for section in ("optimizer", "schedule")
       for name, kind in SECTION_KINDS[section].items()},
    # data (scalelaw.corpus.DataConfig)
    "data.source": choice(*SOURCES),
    "data.seed": integer(0),
    "data.paths": string_list,
    "data.path": optional(string),
    "data.vocab": optional(integer(1)),
    "data.dtype": optional(choice(*TOKEN_DTYPES)),
    "data.val_path": optional(string),
    "data.val_fraction": optional(number(0, 1)),
    "data.include_tests": boolean,
    # train
    **{f"train.{name}": kind for name, kind in SECTION_KINDS["train"].items()},
}

SECTIONS = ("model", "parametrization", "optimizer", "schedule", "data", "train")

SCALAR_PATHS = frozenset({
    "optimizer.lr", "optimizer.weight_decay", "optimizer.b1", "optimizer.b2", "optimizer.eps",
    "train.seed", "parametrization.output_mult",
    "schedule.warmup_tokens", "schedule.decay_fraction", "schedule.final_fraction",
    "schedule.a", "schedule.b", "schedule.lr_max",
})
"""Fields that members of one group may differ in: they change neither array shapes,
the compiled program's structure, nor the data stream (see :meth:`SweepSpec.groups`)."""


def section_fields(section: str) -> list[str]:
    """Field names of ``section`` in schema order."""
    return [p.split(".", 1)[1] for p in KINDS if p.split(".", 1)[0] == section]


def check_path(path: Any) -> tuple[str, str]:
    """Split a dotted path into (section, field), or raise :class:`Invalid`."""
    if not isinstance(path, str) or path.count(".") != 1:
        raise Invalid(f"must be a dotted field path such as 'model.width', got {show(path)}")
    section, name = path.split(".")
    if section not in SECTIONS:
        raise Invalid(f"unknown section {section!r} (allowed: {', '.join(SECTIONS)})")
    if path not in KINDS:
        allowed = ", ".join(section_fields(section))
        raise Invalid(f"unknown field {name!r} of {section} (allowed: {allowed})")
    return section, name


def check_value(path: str, value: Any) -> Any:
    """Canonical form of ``value`` for field ``path`` (raises :class:`Invalid`)."""
    return KINDS[path](value)


def check_section(section: str, data: Any, where: str | None = None) -> dict[str, Any]:
    """Validate one section mapping; errors are ConfigErrors located at ``where.key``."""
    where = where or section
    if not isinstance(data, Mapping):
        raise config_error(where, f"must be a mapping of fields, got {show(data)}")
    out = {}
    for key, value in data.items():
        path = f"{section}.{key}"
        if path not in KINDS:
            allowed = ", ".join(section_fields(section))
            raise config_error(f"{where}.{key}", f"unknown key (allowed: {allowed})")
        try:
            out[key] = check_value(path, value)
        except Invalid as exc:
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
