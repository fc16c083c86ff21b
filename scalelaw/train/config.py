"""The optimizer, schedule and train sections of a trial, and the trial protocol.

The three frozen dataclasses canonicalise their fields on construction
(``OptimizerConfig(lr=1).lr == 1.0``, ``TrainConfig(tokens=2e5).tokens == 200000``) and
raise ``ValueError("<field>: <problem>")``; :func:`scalelaw.sweep.build_trial` turns that
into a :class:`~scalelaw.ConfigError` naming ``<section>.<field>``. They live here, in
the training layer, because training reads them; the sweep layer (to the right)
re-exports them and validates YAML against the same table (:data:`SECTION_KINDS`).

:class:`TrialLike` is what :func:`scalelaw.train.train_group` needs from a trial:
``scalelaw.sweep.TrialConfig`` satisfies it, and so does any object with these
attributes (training never imports the sweep layer).

Examples
--------
>>> TrainConfig(tokens=2.0e5, batch_size=8).tokens
200000
>>> OptimizerConfig(lr=1).lr
1.0
>>> OptimizerConfig(lr=-1.0)
Traceback (most recent call last):
...
ValueError: lr: must be a number > 0, got -1.0
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from scalelaw._kinds import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    Kind,
    choice,
    integer,
    number,
    optional,
)

__all__ = ["SCHEDULES", "SCHEDULE_DECAYS", "SCHEDULE_DEFAULTS", "SECTION_KINDS", "OptimizerConfig",
           "ScheduleConfig", "TrainConfig", "TrialLike"]

SCHEDULES = ("power", "wsd", "cosine", "constant")

# Defaults of scalelaw.schedules (checked against its signatures by tests/sweep).
SCHEDULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "power": {"warmup_tokens": 0.0, "a": 4.0, "b": -0.51, "lr_max": 0.02,
              "decay_fraction": 0.0, "decay": "exponential", "final_fraction": 0.0},
    "wsd": {"warmup_tokens": 0.0, "decay_fraction": 0.1, "decay": "linear",
            "final_fraction": 0.0},
    "cosine": {"warmup_tokens": 0.0, "final_fraction": 0.1},
    "constant": {"warmup_tokens": 0.0},
}
SCHEDULE_DECAYS = {"power": ("exponential", "linear"), "wsd": ("linear", "cosine", "sqrt")}


# ----------------------------------------------------------------------------- fields
SECTION_KINDS: dict[str, dict[str, Kind]] = {
    "optimizer": {"lr": POSITIVE, "weight_decay": NON_NEGATIVE, "b1": FRACTION,
                  "b2": FRACTION, "eps": POSITIVE, "grad_clip": optional(POSITIVE)},
    "schedule": {"name": choice(*SCHEDULES), "warmup_tokens": optional(NON_NEGATIVE),
                 "decay_fraction": optional(FRACTION),
                 "decay": optional(choice("exponential", "linear", "cosine", "sqrt")),
                 "final_fraction": optional(FRACTION), "a": optional(POSITIVE),
                 "b": optional(number(-math.inf, 0, open_high=False)),
                 "lr_max": optional(POSITIVE)},
    "train": {"tokens": optional(integer(1)), "tokens_per_param": optional(POSITIVE),
              "batch_size": integer(1), "eval_every": integer(1), "eval_tokens": integer(1),
              "seed": integer(0), "checkpoint_every": optional(integer(1)),
              "log_every": integer(1)},
}
"""Every field of the three sections and its kind; the sweep schema uses the same table."""


def _check_fields(obj: Any, section: str) -> None:
    """Canonicalise every field of a section dataclass; ``ValueError("field: ...")``."""
    for f in dataclasses.fields(obj):
        try:
            value = SECTION_KINDS[section][f.name](getattr(obj, f.name))
        except ValueError as exc:
            raise ValueError(f"{f.name}: {exc}") from None
        object.__setattr__(obj, f.name, value)


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW hyperparameters at the base width (muP rescales them per layer).

    ``grad_clip`` is a global-norm clip threshold, or ``None`` for no clipping.

    Examples
    --------
    >>> OptimizerConfig(lr=1).lr
    1.0
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "optimizer")


@dataclass(frozen=True)
class ScheduleConfig:
    """A schedule of :mod:`scalelaw.schedules` by name, with its constants.

    Fields a schedule does not use must stay ``None``; the ones it uses default to the
    schedule function's defaults (filled in here, so they take part in the trial id).
    ``power`` returns an absolute LR (``optimizer.lr`` is not used); ``wsd``, ``cosine``
    and ``constant`` scale ``optimizer.lr``.

    Examples
    --------
    >>> ScheduleConfig("cosine").kwargs()
    {'warmup_tokens': 0.0, 'final_fraction': 0.1}
    >>> ScheduleConfig("constant", a=2.0)
    Traceback (most recent call last):
    ...
    ValueError: a: only used by schedule 'power', not 'constant'
    """

    name: str = "wsd"
    warmup_tokens: float | None = None
    decay_fraction: float | None = None
    decay: str | None = None
    final_fraction: float | None = None
    a: float | None = None
    b: float | None = None
    lr_max: float | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "schedule")
        defaults = SCHEDULE_DEFAULTS[self.name]
        for f in dataclasses.fields(self)[1:]:
            value = getattr(self, f.name)
            if f.name not in defaults:
                if value is not None:
                    users = " or ".join(repr(n) for n, d in SCHEDULE_DEFAULTS.items()
                                        if f.name in d)
                    raise ValueError(f"{f.name}: only used by schedule {users}, not {self.name!r}")
            elif value is None:
                object.__setattr__(self, f.name, defaults[f.name])
        decays = SCHEDULE_DECAYS.get(self.name)
        if decays and self.decay not in decays:
            raise ValueError(f"decay: schedule {self.name!r} allows {', '.join(decays)}; "
                             f"got {self.decay!r}")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``scalelaw.schedules.<name>`` set by this config."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "name" and v is not None}


@dataclass(frozen=True)
class TrainConfig:
    """Token budget, batch size, evaluation, logging and the per-member init seed.

    ``tokens`` is the budget (training runs ``tokens // (batch_size * context)`` steps);
    with ``tokens_per_param`` set, :func:`scalelaw.sweep.build_trial` derives it as
    ``round(tokens_per_param * n_params_nonembed)`` (Chinchilla-style grids).
    ``eval_every``, ``log_every`` and ``checkpoint_every`` count steps
    (``checkpoint_every=None``: only at the end). ``seed`` seeds the initialisation; the
    data order is ``data.seed``.
    """

    tokens: int | None = None
    tokens_per_param: float | None = None
    batch_size: int = 16
    eval_every: int = 100
    eval_tokens: int = 16384
    seed: int = 0
    checkpoint_every: int | None = None
    log_every: int = 10

    def __post_init__(self) -> None:
        _check_fields(self, "train")


# ----------------------------------------------------------------------------- protocol
@runtime_checkable
class TrialLike(Protocol):
    """What training reads from a trial (``scalelaw.sweep.TrialConfig`` has all of it).

    ``model`` is a :class:`~scalelaw.models.config.TransformerConfig`,
    ``parametrization`` a :class:`~scalelaw.mup.rules.Parametrization`, ``data`` a
    :class:`~scalelaw.corpus.DataConfig`; ``steps`` optimizer steps of
    ``tokens_per_step`` tokens; ``schedule_kwargs(peak_lr)`` the keyword arguments of
    ``scalelaw.schedules.<schedule.name>``; ``to_json()`` is written to ``config.json``.
    """

    @property
    def model(self) -> Any: ...

    @property
    def parametrization(self) -> Any: ...

    @property
    def optimizer(self) -> OptimizerConfig: ...

    @property
    def schedule(self) -> ScheduleConfig: ...

    @property
    def data(self) -> Any: ...

    @property
    def train(self) -> TrainConfig: ...

    @property
    def trial_id(self) -> str: ...

    @property
    def group_id(self) -> str: ...

    @property
    def steps(self) -> int: ...

    @property
    def tokens_per_step(self) -> int: ...

    @property
    def flops_per_token(self) -> int: ...

    def schedule_kwargs(self, peak_lr: float | None = None) -> dict[str, Any]: ...

    def to_json(self, indent: int | None = None) -> str: ...
