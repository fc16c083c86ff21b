"""The optimizer, schedule and train sections of a trial, and the trial protocol.

Each section is a typed, frozen config (:func:`scalelaw._validation.section`): fields
are canonicalised and checked on construction (``OptimizerConfig(lr=1).lr == 1.0``,
``TrainConfig(tokens=2e5).tokens == 200000``) and a problem raises a
:class:`~scalelaw.ConfigError` naming the field. Each schedule kind is its own section
(:class:`PowerSchedule`, :class:`WSDSchedule`, :class:`CosineSchedule`,
:class:`ConstantSchedule`), told apart by ``name`` (:data:`ScheduleConfig`; build one from
a mapping with :func:`schedule_config`), so a constant that a kind does not take is
refused. They live here, in the training layer, because training reads them; the sweep
layer (to the right) re-exports them.

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
scalelaw.errors.FieldError: lr: must be a number > 0, got -1.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BeforeValidator, Field, Strict, field_validator, model_validator

from scalelaw._validation import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    section,
    validate,
)
from scalelaw._validation import (
    as_tuple as _as_tuple,
)
from scalelaw.errors import FieldError

__all__ = ["DEFAULT_DIVERGENCE", "MODES", "SCHEDULES", "SCHEDULE_CLASSES", "SCHEDULE_DEFAULTS",
           "ConstantSchedule", "CosineSchedule", "DivergenceRule", "OptimizerConfig",
           "PowerSchedule", "ScheduleConfig", "TrainConfig", "TrialLike", "WSDSchedule",
           "schedule_config"]

MODES = ("auto", "vmap", "sequential")
"""How a group's members run: one vmapped program, one after another with the same compiled
step, or the backend's choice (sequential on CPU; :func:`scalelaw.train.loop.resolve_mode`)."""

NonPositiveFloat = Annotated[float, Strict(), Field(le=0)]


# ----------------------------------------------------------------------------- optimizer
@section
class OptimizerConfig:
    """AdamW hyperparameters at the base width (muP rescales them per layer).

    ``grad_clip`` is a global-norm clip threshold, or ``None`` for no clipping.

    Examples
    --------
    >>> OptimizerConfig(lr=1).lr
    1.0
    """

    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    b1: Fraction = 0.9
    b2: Fraction = 0.95
    eps: PositiveFloat = 1e-8
    grad_clip: PositiveFloat | None = None


# ----------------------------------------------------------------------------- schedules
class _Schedule:
    if TYPE_CHECKING:  # every schedule kind is a section, so a dataclass
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``scalelaw.schedules.<name>`` set by this config."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "name"}


@section
class PowerSchedule(_Schedule):
    """Shen et al. 2024's Power scheduler (:func:`scalelaw.schedules.power`): an absolute
    LR ``min(lr_max, batch * a * n^b)``, so ``optimizer.lr`` is not used."""

    name: Literal["power"] = "power"
    warmup_tokens: NonNegativeFloat = 0.0
    a: PositiveFloat = 4.0
    b: NonPositiveFloat = -0.51
    lr_max: PositiveFloat = 0.02
    decay_fraction: Fraction = 0.0
    decay: Literal["exponential", "linear"] = "exponential"
    final_fraction: Fraction = 0.0


@section
class WSDSchedule(_Schedule):
    """Warmup-stable-decay (:func:`scalelaw.schedules.wsd`), scaling ``optimizer.lr``."""

    name: Literal["wsd"] = "wsd"
    warmup_tokens: NonNegativeFloat = 0.0
    decay_fraction: Fraction = 0.1
    decay: Literal["linear", "cosine", "sqrt"] = "linear"
    final_fraction: Fraction = 0.0


@section
class CosineSchedule(_Schedule):
    """Warmup then cosine decay (:func:`scalelaw.schedules.cosine`), scaling ``optimizer.lr``.

    Examples
    --------
    >>> CosineSchedule().kwargs()
    {'warmup_tokens': 0.0, 'final_fraction': 0.1}
    """

    name: Literal["cosine"] = "cosine"
    warmup_tokens: NonNegativeFloat = 0.0
    final_fraction: Fraction = 0.1


@section
class ConstantSchedule(_Schedule):
    """Warmup then constant ``optimizer.lr`` (:func:`scalelaw.schedules.constant`)."""

    name: Literal["constant"] = "constant"
    warmup_tokens: NonNegativeFloat = 0.0


ScheduleConfig = Annotated[PowerSchedule | WSDSchedule | CosineSchedule | ConstantSchedule,
                           Field(discriminator="name")]
"""A schedule of any kind, told apart by ``name``."""

SCHEDULE_CLASSES: dict[str, type[_Schedule]] = {"power": PowerSchedule, "wsd": WSDSchedule,
                                     "cosine": CosineSchedule, "constant": ConstantSchedule}
SCHEDULES = tuple(SCHEDULE_CLASSES)
SCHEDULE_DEFAULTS: dict[str, dict[str, Any]] = {
    n: c().kwargs() for n, c in SCHEDULE_CLASSES.items()}
"""Each kind's constants and their defaults (equal to :mod:`scalelaw.schedules`' own,
which tests/sweep checks)."""


def schedule_config(data: Mapping[str, Any], prefix: str = "schedule", **how: Any) -> Any:
    """The schedule section a mapping describes (``name`` defaults to ``"wsd"``).

    A constant given as ``None`` means the kind's default (stored trials of earlier
    versions wrote every kind's constants, ``None`` where unused). ``how`` is passed on to
    :func:`scalelaw._validation.validate` (``origin``, ``context``).

    Examples
    --------
    >>> schedule_config({"name": "constant", "a": 2.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    scalelaw.errors.FieldError: schedule.a: not used by schedule 'constant' (a is a ...
    """
    fields = {k: v for k, v in dict(data).items() if v is not None}
    name = fields.get("name", "wsd")
    cls = SCHEDULE_CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        validate(PowerSchedule, {"name": name}, prefix, **how)  # names the allowed kinds
        raise AssertionError(f"unreachable: {name!r} passed as a schedule name")
    takes = [f.name for f in dataclasses.fields(cls)]
    for key in fields:
        users = [n for n, c in SCHEDULE_CLASSES.items()
                 if key in (f.name for f in dataclasses.fields(c))]
        if key not in takes and users:
            origin = how.get("origin") or (lambda p: p)
            raise FieldError(origin(f"{prefix}.{key}"),
                             f"not used by schedule {name!r} ({key} is a constant of "
                             f"{' or '.join(repr(u) for u in users)})"
                             + how.get("context", ""))
    return validate(cls, fields, prefix, **how)


# ----------------------------------------------------------------------------- train
@section
class DivergenceRule:
    """When a member counts as diverged (it is then frozen and recorded as such).

    A member diverges at the first step whose loss, gradient norm or update norm is not
    finite, or whose training loss is above ``max_loss``, or whose training loss has been
    above ``max_factor`` times its first step's loss for ``patience`` steps in a row (a
    run that blows up to a finite plateau: with muP, Adam and RMSNorm, too large an LR
    gives large finite losses more often than NaN). The step that trips the rule is not
    applied. The training loss is the batch's mean loss before the step's update, one
    per optimizer step.

    Parameters
    ----------
    max_loss : float or None
        Absolute cap in nats; ``None``: ``3 ln(vocab)`` (three times a uniform guess).
    max_factor : float or None
        Factor over the member's first loss; ``None`` turns that test off. The default
        1.5 catches a loss that climbs to twice its start and stays there.
    patience : int
        Consecutive steps above ``max_factor`` times the first loss that count as
        diverged (a single spike does not).

    Examples
    --------
    >>> round(DivergenceRule().loss_cap(vocab=256), 3)  # 3 ln 256
    16.636
    >>> DivergenceRule(max_factor=0.5)
    Traceback (most recent call last):
    ...
    scalelaw.errors.FieldError: max_factor: must be a number > 1 (or null), got 0.5
    """

    max_loss: PositiveFloat | None = None
    max_factor: Annotated[float, Strict(), Field(gt=1)] | None = 1.5
    patience: PositiveInt = 10

    def loss_cap(self, vocab: int) -> float:
        """The absolute cap in force: ``max_loss``, or ``3 ln(vocab)``."""
        return self.max_loss if self.max_loss is not None else 3.0 * math.log(vocab)


DEFAULT_DIVERGENCE = DivergenceRule()


@section
class TrainConfig:
    """Token budget, batch size, evaluation, logging and the per-member init seed.

    ``tokens`` is the budget (training runs ``tokens // (batch_size * context)`` steps);
    with ``tokens_per_param`` set, :func:`scalelaw.sweep.build_trial` derives it as
    ``round(tokens_per_param * n_params_nonembed)`` (Chinchilla-style grids).
    ``eval_every``, ``log_every`` and ``checkpoint_every`` count steps
    (``checkpoint_every=None``: only at the end). ``seed`` seeds the initialisation; the
    data order is ``data.seed``. ``divergence`` is the :class:`DivergenceRule`
    (``None``, or a rule equal to the default, is stored as ``None``, so configs that
    leave it out keep their trial ids; :attr:`divergence_rule` is the rule in force).

    Cooldown branches (Hagele et al. 2024; :mod:`scalelaw.sweep.branches` writes these):
    ``keep_checkpoints`` lists token counts at which a stable-phase run writes
    checkpoints that are kept; a branch trial starts from trial ``branch_of``'s kept
    checkpoint at ``branch_at`` tokens instead of from its own initialisation.
    """

    tokens: PositiveInt | None = None
    tokens_per_param: PositiveFloat | None = None
    batch_size: PositiveInt = 16
    eval_every: PositiveInt = 100
    eval_tokens: PositiveInt = 16384
    seed: NonNegativeInt = 0
    checkpoint_every: PositiveInt | None = None
    log_every: PositiveInt = 10
    divergence: DivergenceRule | None = None
    keep_checkpoints: Annotated[tuple[PositiveInt, ...], BeforeValidator(_as_tuple)] | None = None
    branch_of: Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{12}$")] | None = None
    branch_at: PositiveInt | None = None

    @model_validator(mode="after")
    def _branch_fields(self) -> TrainConfig:
        if (self.branch_of is None) != (self.branch_at is None):
            raise FieldError("branch_at", "give branch_of and branch_at together")
        if self.keep_checkpoints is not None and list(self.keep_checkpoints) != sorted(
                set(self.keep_checkpoints)):
            raise FieldError("keep_checkpoints", "must be increasing token counts, got "
                                                 f"{list(self.keep_checkpoints)}")
        return self

    @field_validator("divergence")
    @classmethod
    def _default_is_none(cls, rule: DivergenceRule | None) -> DivergenceRule | None:
        return None if rule == DEFAULT_DIVERGENCE else rule

    @property
    def divergence_rule(self) -> DivergenceRule:
        """The divergence rule in force (the default where none is given)."""
        return self.divergence or DEFAULT_DIVERGENCE


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
    def schedule(self) -> Any: ...

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
