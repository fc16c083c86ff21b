"""Field kinds of the sweep schema: one checker per field path, plus canonical hashing.

A *kind* is a function ``value -> value`` that returns the value in canonical form
(``2.0e5`` for an integer field becomes ``200000``, ``1`` for a float field becomes
``1.0``) or raises :class:`Invalid` with a short "must be ..." message. ``KINDS`` maps
every dotted field path (``"model.width"``) to its kind; the dataclasses of
:mod:`scalelaw.sweep.trial` and the YAML loader both use it, so a field is declared once.

Examples
--------
>>> KINDS["train.tokens"](2.0e5)
200000
>>> KINDS["model.width"](-3)
Traceback (most recent call last):
...
scalelaw.sweep._fields.Invalid: must be a positive integer, got -3
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from scalelaw.corpus import SOURCES, TOKEN_DTYPES
from scalelaw.errors import ConfigError
from scalelaw.models.config import FAMILIES, MLP_KINDS
from scalelaw.mup.rules import ATTN_SCALES, NAMES, WEIGHT_DECAY_RULES

Kind = Callable[[Any], Any]

SCHEDULES = ("power", "wsd", "cosine", "constant")
DECAYS = ("exponential", "linear", "cosine", "sqrt")


class Invalid(ValueError):
    """One field's value is not allowed; ``path`` is filled in once it is known."""

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


def config_error(where: str, problem: str) -> ConfigError:
    """``ConfigError("where: problem")`` on one line."""
    return ConfigError(f"{where}: {' '.join(str(problem).split())}")


# ----------------------------------------------------------------------------- kinds
def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(minimum: int) -> Kind:
    """Integers ``>= minimum``; integral floats (``2.0e5``) are accepted."""
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )

    def kind(value: Any) -> int:
        if _is_number(value) and math.isfinite(value) and value == int(value):
            if int(value) >= minimum:
                return int(value)
        raise Invalid(f"must be {what}, got {_show(value)}")

    return kind


def number(low: float, high: float = math.inf, *, open_low: bool = True,
           open_high: bool = True) -> Kind:
    """Finite floats in an interval, e.g. ``number(0, 1, open_low=False)`` is [0, 1)."""
    left = "(" if open_low else "["
    right = ")" if open_high else "]"
    if high == math.inf:
        what = {(0, True): "> 0", (0, False): ">= 0"}.get((low, open_low), f"in {left}{low}, inf)")
    elif low == -math.inf:
        what = f"{'<' if open_high else '<='} {high:g}"
    else:
        what = f"in {left}{low:g}, {high:g}{right}"

    def kind(value: Any) -> float:
        if _is_number(value) and math.isfinite(value):
            x = float(value)
            above = x > low if open_low else x >= low
            below = x < high if open_high else x <= high
            if above and below:
                return x
        raise Invalid(f"must be a number {what}, got {_show(value)}")

    return kind


def choice(*allowed: str) -> Kind:
    """One of the strings ``allowed``."""

    def kind(value: Any) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise Invalid(f"must be one of {', '.join(allowed)}; got {_show(value)}")

    return kind


def boolean(value: Any) -> bool:
    """``true`` or ``false`` (not 0/1 or strings)."""
    if isinstance(value, bool):
        return value
    raise Invalid(f"must be true or false, got {_show(value)}")


def string(value: Any) -> str:
    """A non-empty string."""
    if isinstance(value, str) and value:
        return value
    raise Invalid(f"must be a non-empty string, got {_show(value)}")


def string_list(value: Any) -> tuple[str, ...]:
    """A list of non-empty strings (kept as a tuple)."""
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise Invalid(f"must be a list of paths (strings), got {_show(value)}")


def optional(inner: Kind) -> Kind:
    """``null`` or whatever ``inner`` accepts."""

    def kind(value: Any) -> Any:
        if value is None:
            return None
        try:
            return inner(value)
        except Invalid as exc:
            raise Invalid(f"{exc.problem} (or null)") from None

    return kind


POSITIVE = number(0)
NON_NEGATIVE = number(0, open_low=False)
FRACTION = number(0, 1, open_low=False)  # [0, 1)
BETA = number(0, 1, open_low=False)

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
    # optimizer (AdamW)
    "optimizer.lr": POSITIVE,
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.b1": BETA,
    "optimizer.b2": BETA,
    "optimizer.eps": POSITIVE,
    "optimizer.grad_clip": optional(POSITIVE),
    # schedule (scalelaw.schedules; None = that schedule's default)
    "schedule.name": choice(*SCHEDULES),
    "schedule.warmup_tokens": optional(NON_NEGATIVE),
    "schedule.decay_fraction": optional(FRACTION),
    "schedule.decay": optional(choice(*DECAYS)),
    "schedule.final_fraction": optional(FRACTION),
    "schedule.a": optional(POSITIVE),
    "schedule.b": optional(number(-math.inf, 0, open_high=False)),
    "schedule.lr_max": optional(POSITIVE),
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
    "train.tokens": optional(integer(1)),
    "train.tokens_per_param": optional(POSITIVE),
    "train.batch_size": integer(1),
    "train.eval_every": integer(1),
    "train.eval_tokens": integer(1),
    "train.seed": integer(0),
    "train.checkpoint_every": optional(integer(1)),
    "train.log_every": integer(1),
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
        raise Invalid(f"must be a dotted field path such as 'model.width', got {_show(path)}")
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
        raise config_error(where, f"must be a mapping of fields, got {_show(data)}")
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
