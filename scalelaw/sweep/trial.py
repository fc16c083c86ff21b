"""Resolved trial configurations: one frozen, hashable, JSON-round-trippable object per run.

A :class:`TrialConfig` holds the model config, the :class:`Parametrization`, and the
optimizer, schedule, data and train sections, every default filled in. Its
``trial_id`` is the first 12 hex digits of the SHA-256 of the canonical JSON of those
six sections (``None`` fields omitted); the sweep name and the ``swept`` record are
*not* part of it, so the same run in two sweeps has the same id and its results can be
shared. ``group_id`` hashes the same sections without the scalar fields of
:data:`SCALAR_PATHS`, so trials with equal ``group_id`` can train as one vmapped program.

Examples
--------
>>> trial = TrialConfig.from_dict({"model": {"width": 64, "head_dim": 16, "context": 64},
...                                "train": {"tokens": 65536, "batch_size": 8}})
>>> trial.steps, trial.tokens_per_step, trial.n_params_nonembed
(128, 512, 98304)
>>> TrialConfig.from_json(trial.to_json()) == trial
True
>>> len(trial.trial_id)
12
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from scalelaw._validation import show, validate
from scalelaw.corpus import DataConfig
from scalelaw.errors import FieldError
from scalelaw.models.config import (
    MODEL_CLASSES,
    ModelConfig,
    TransformerConfig,
    flops_per_token,
    param_count,
)
from scalelaw.mup.rules import Parametrization
from scalelaw.sweep._fields import SCALAR_PATHS, SECTIONS, drop_none, plain, short_hash
from scalelaw.train.config import (
    SCHEDULE_CLASSES,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    schedule_config,
)

__all__ = ["Group", "TrialConfig", "build_trial"]


@dataclass(frozen=True)
class TrialConfig:
    """One fully resolved run. Build with :func:`build_trial` or :meth:`from_dict`.

    Attributes
    ----------
    model : TransformerConfig or MLPConfig
    parametrization : Parametrization
    optimizer : OptimizerConfig
    schedule : ScheduleConfig
    data : DataConfig
    train : TrainConfig
    sweep_name : str
        The sweep that produced it (not part of ``trial_id``).
    swept : dict
        ``{path: resolved value}`` for every field the sweep varied (not part of the id).
    """

    model: ModelConfig
    parametrization: Parametrization
    optimizer: OptimizerConfig
    schedule: ScheduleConfig
    data: DataConfig
    train: TrainConfig
    sweep_name: str = ""
    swept: Mapping[str, Any] = field(default_factory=dict, hash=False)

    _TYPES: ClassVar[dict[str, Any]] = {
        "model": tuple(MODEL_CLASSES.values()), "parametrization": Parametrization,
        "optimizer": OptimizerConfig, "schedule": tuple(SCHEDULE_CLASSES.values()),
        "data": DataConfig, "train": TrainConfig,
    }

    def __post_init__(self) -> None:
        """Cross-section rules; each raises a :class:`~scalelaw.errors.FieldError`."""
        for section, cls in self._TYPES.items():
            if not isinstance(getattr(self, section), cls):
                raise FieldError(section, f"expected {cls}, got {type(getattr(self, section))}")
        object.__setattr__(self, "swept", {k: plain(v) for k, v in dict(self.swept).items()})
        train, model = self.train, self.model
        if train.tokens is None:
            raise FieldError("train.tokens", "required (give train.tokens or "
                                             "train.tokens_per_param)")
        per_param = train.tokens_per_param
        if per_param is not None and train.tokens != self._derived_tokens(per_param):
            raise FieldError("train.tokens", f"must be {self._derived_tokens(per_param)} = "
                             f"tokens_per_param x n_params_nonembed when tokens_per_param is "
                             f"set, got {train.tokens}")
        if self.steps < 1:
            raise FieldError("train.tokens", f"must be >= tokens per step = batch_size x context "
                                             f"= {self.tokens_per_step}, got {train.tokens}")
        assert self.data.vocab is not None  # DataConfig fills it in
        if isinstance(model, TransformerConfig) and model.vocab < self.data.vocab:
            raise FieldError("model.vocab", f"must be >= data.vocab = {self.data.vocab}, "
                                            f"got {model.vocab}")
        tps = self.tokens_per_step
        for name, points in (("train.keep_checkpoints", train.keep_checkpoints or ()),
                             ("train.branch_at", (train.branch_at,) if train.branch_at else ())):
            for tokens in points:
                if tokens % tps or not tps <= tokens <= self.total_tokens:
                    raise FieldError(name, f"must be multiples of the tokens per step ({tps}) "
                                           f"up to {self.total_tokens}, got {tokens}")
        sched = self.schedule
        room = self.total_tokens * (1.0 - getattr(sched, "decay_fraction", 0.0))
        if sched.name != "constant" and sched.warmup_tokens > room:
            raise FieldError("schedule.warmup_tokens", f"must be <= {room:g} (the tokens before "
                             f"the decay phase), got {sched.warmup_tokens:g}")

    def _derived_tokens(self, tokens_per_param: float) -> int:
        return max(1, round(tokens_per_param * param_count(self.model)))

    # ------------------------------------------------------------------ accounting
    @property
    def family(self) -> str:
        """``"transformer"`` or ``"mlp"``."""
        return self.model.family

    @property
    def context(self) -> int:
        """Sequence length T (1 for the MLP family: one example = one token)."""
        return self.model.context if isinstance(self.model, TransformerConfig) else 1

    @property
    def tokens_per_step(self) -> int:
        """``batch_size * context``."""
        return self.train.batch_size * self.context

    @property
    def steps(self) -> int:
        """Optimizer steps: ``train.tokens // tokens_per_step``."""
        tokens = self.train.tokens
        assert tokens is not None  # refused on construction
        return tokens // self.tokens_per_step

    @property
    def total_tokens(self) -> int:
        """Tokens actually trained on, ``steps * tokens_per_step`` (<= ``train.tokens``)."""
        return self.steps * self.tokens_per_step

    @property
    def trained_tokens(self) -> int:
        """Tokens this trial trains itself: ``total_tokens``, less a cooldown branch's
        prefix (``train.branch_at``, trained by its stable-phase trial)."""
        return self.total_tokens - (self.train.branch_at or 0)

    @property
    def n_params(self) -> int:
        """All parameters, embeddings and readout included."""
        return param_count(self.model, embeddings=True)

    @property
    def n_params_nonembed(self) -> int:
        """Non-embedding parameters (the fitters' N; see :mod:`scalelaw.models.config`)."""
        return param_count(self.model)

    @property
    def flops_per_token(self) -> int:
        """Training FLOPs per token (forward + backward)."""
        return flops_per_token(self.model)

    @property
    def total_flops(self) -> int:
        """Training FLOPs of the whole run, ``flops_per_token * total_tokens`` (no eval)."""
        return self.flops_per_token * self.total_tokens

    @property
    def peak_lr(self) -> float:
        """The peak base-width LR the trial trains with (the ``lr`` column of results).

        ``optimizer.lr`` for ``wsd``, ``cosine`` and ``constant``. The ``power`` schedule
        sets its own LR (Shen et al. 2024, Eq. 7-8): its peak is ``lr_power(N_w) =
        min(lr_max, beta * a * N_w^b)`` at the end of warmup, or ``lr_max`` without one.
        """
        if self.schedule.name != "power":
            return self.optimizer.lr
        k = self.schedule.kwargs()
        if not k["warmup_tokens"]:
            return k["lr_max"]
        power = self.train.batch_size * k["a"] * k["warmup_tokens"] ** k["b"]
        return min(k["lr_max"], power)

    def schedule_kwargs(self, peak_lr: float | None = None) -> dict[str, Any]:
        """All keyword arguments of ``scalelaw.schedules.<schedule.name>`` for this trial.

        ``peak_lr`` defaults to ``optimizer.lr`` (pass 1.0 to get a multiplier and apply
        a traced LR outside); ``power`` gets ``batch_size`` (sequences) instead.
        """
        kwargs = self.schedule.kwargs()
        if self.schedule.name != "constant":
            kwargs["total_tokens"] = self.total_tokens
        if self.schedule.name == "power":
            kwargs["batch_size"] = self.train.batch_size
        else:
            kwargs["peak_lr"] = self.optimizer.lr if peak_lr is None else peak_lr
        return kwargs

    # ------------------------------------------------------------------ identity
    def get(self, path: str) -> Any:
        """Resolved value of a dotted field path, e.g. ``trial.get("model.width")``."""
        section, name = path.split(".", 1)
        if path == "model.family":
            return self.family
        return plain(getattr(getattr(self, section), name, None))  # None: not this kind's

    def flat(self) -> dict[str, Any]:
        """Every resolved field as ``{"section.field": value}`` (e.g. for a results table)."""
        return {f"{s}.{k}": v for s, d in self.config_dict().items() for k, v in d.items()}

    def scalars(self) -> dict[str, Any]:
        """Values of the member-level (group-invariant) fields, by path."""
        return {p: self.get(p) for p in sorted(SCALAR_PATHS)}

    def config_dict(self) -> dict[str, Any]:
        """The six resolved sections as plain JSON-ready dicts (what the id hashes)."""
        return {s: plain(dataclasses.asdict(getattr(self, s))) for s in SECTIONS}

    @functools.cached_property
    def trial_id(self) -> str:
        """12 hex digits identifying the resolved config (independent of the sweep)."""
        return short_hash(drop_none(self.config_dict()))

    @functools.cached_property
    def group_id(self) -> str:
        """12 hex digits shared by trials that differ only in :data:`SCALAR_PATHS`."""
        config = self.config_dict()
        for path in SCALAR_PATHS:
            section, name = path.split(".")
            config[section].pop(name, None)
        return short_hash(drop_none(config))

    def to_dict(self) -> dict[str, Any]:
        """``config_dict()`` plus ``sweep_name``, ``swept``, ``trial_id`` and ``group_id``."""
        return {**self.config_dict(), "sweep_name": self.sweep_name, "swept": dict(self.swept),
                "trial_id": self.trial_id, "group_id": self.group_id}

    def to_json(self, indent: int | None = None) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=indent is not None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialConfig:
        """Rebuild (and re-validate) from :meth:`to_dict` output or a partial mapping.

        ``trial_id`` and ``group_id``, if present, must match the recomputed ones.
        """
        data = dict(data)
        ids = {k: data.pop(k) for k in ("trial_id", "group_id") if k in data}
        trial = build_trial({k: v for k, v in data.items() if k not in ("sweep_name", "swept")},
                            sweep_name=data.get("sweep_name", ""), swept=data.get("swept"))
        for key, value in ids.items():
            if getattr(trial, key) != value:
                raise FieldError(key, f"stored {value!r} != recomputed {getattr(trial, key)!r}")
        return trial

    @classmethod
    def from_json(cls, text: str) -> TrialConfig:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class Group:
    """Trials that differ only in scalars and can train as one program.

    ``trials[0]`` is representative of everything shared (model, batch, steps, data).
    """

    group_id: str
    trials: tuple[TrialConfig, ...]

    @property
    def config(self) -> TrialConfig:
        return self.trials[0]

    def __len__(self) -> int:
        return len(self.trials)

    def varying(self) -> dict[str, list[Any]]:
        """``{path: [value per member]}`` for the scalar fields that differ in the group."""
        columns = {p: [t.get(p) for t in self.trials] for p in sorted(SCALAR_PATHS)}
        return {p: v for p, v in columns.items() if any(x != v[0] for x in v)}


# ----------------------------------------------------------------------------- building
def build_trial(
    raw: Mapping[str, Any],
    *,
    sweep_name: str = "",
    swept: Mapping[str, Any] | None = None,
    origin: Mapping[str, str] | None = None,
) -> TrialConfig:
    """Validate a nested ``{section: {field: value}}`` mapping into a :class:`TrialConfig`.

    Missing sections and fields take their defaults; ``model.vocab`` defaults to the
    data's vocabulary; ``train.tokens_per_param`` (if set) determines ``train.tokens``.

    Parameters
    ----------
    raw : mapping
        Sections ``model``, ``parametrization``, ``optimizer``, ``schedule``, ``data``,
        ``train`` (``model.family`` picks :class:`TransformerConfig` or
        :class:`~scalelaw.models.config.MLPConfig`).
    sweep_name : str
    swept : mapping, optional
        Recorded on the trial (see :class:`TrialConfig`).
    origin : mapping, optional
        ``{path: location}`` of fields set by the sweep (``"sweep['model.width'][2]"``),
        used to name the location in error messages.

    Raises
    ------
    ConfigError
        One line naming the field path (or its ``origin``) and what is allowed.
    """
    origin = origin or {}
    swept = swept or {}
    context = [", ".join(f"{k}={v!r}" for k, v in swept.items())]
    context += sorted({o for o in origin.values() if o.startswith("overrides")})
    context_text = "; ".join(c for c in context if c)
    suffix = f" (in the trial with {context_text})" if context_text else ""

    def where(path: str) -> str:
        return origin.get(path, path)

    how: dict[str, Any] = {"origin": where, "context": suffix}
    if not isinstance(raw, Mapping):
        raise FieldError("config", f"must be a mapping of sections, got {type(raw).__name__}")
    for key in raw:
        if key not in SECTIONS:
            raise FieldError(str(key), f"unknown section (allowed: {', '.join(SECTIONS)})")
    sections = {s: raw.get(s) or {} for s in SECTIONS}
    data = validate(DataConfig, sections["data"], "data", **how)
    assert data.vocab is not None  # DataConfig fills it in
    model = _model(sections["model"], data.vocab, how)
    train = validate(TrainConfig, sections["train"], "train", **how)
    if train.tokens_per_param is not None:
        tokens = max(1, round(train.tokens_per_param * param_count(model)))
        train = dataclasses.replace(train, tokens=tokens)
    parametrization = validate(Parametrization, sections["parametrization"], "parametrization",
                               **how)
    optimizer = validate(OptimizerConfig, sections["optimizer"], "optimizer", **how)
    schedule = schedule_config(sections["schedule"], "schedule", **how)
    if schedule.name == "power" and "optimizer.lr" in swept:
        raise FieldError(where("optimizer.lr"), "not used by schedule 'power', which sets its "
                         "own LR (sweep schedule.a or schedule.lr_max instead)" + suffix)
    try:
        return TrialConfig(model=model, parametrization=parametrization, optimizer=optimizer,
                           schedule=schedule, data=data, train=train, sweep_name=sweep_name,
                           swept=swept)
    except FieldError as exc:
        raise FieldError(where(exc.path), exc.problem + suffix) from None


def _model(fields: Any, data_vocab: int, how: dict[str, Any]) -> ModelConfig:
    if not isinstance(fields, Mapping):
        raise FieldError("model", f"must be a mapping of fields, got {show(fields)}")
    fields = dict(fields)
    family = fields.setdefault("family", "transformer")
    cls = MODEL_CLASSES.get(family) if isinstance(family, str) else None
    if cls is None:
        raise FieldError(how["origin"]("model.family"), f"must be one of "
                         f"{', '.join(MODEL_CLASSES)}, got {show(family)}" + how["context"])
    if cls is TransformerConfig and fields.get("vocab") is None:
        fields["vocab"] = data_vocab
    return validate(cls, fields, "model", **how)
