"""Cooldown branches: many token budgets from one stable-phase run (Hagele et al. 2024).

"Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations" (Hagele et
al. 2024, arXiv 2405.18392): a WSD run's loss at budget D is the loss of its stable phase
up to ``(1 - f) D`` followed by a short decay over the last fraction ``f``. So one stable
run, checkpointed at each branch point, and one short decay per budget give the final
losses at every D for about the cost of the longest run.

A spec's top-level ``branches:`` turns each WSD trial into

- a **stable** trial: the same config with ``schedule.decay_fraction: 0`` (warmup, then
  the peak LR), trained up to the last branch point, with ``train.keep_checkpoints`` at
  every branch point;
- one **branch** trial per budget ``D``: the same config as a from-scratch WSD run of
  ``D`` tokens (``decay_fraction: f``), plus ``train.branch_of`` (the stable trial's id)
  and ``train.branch_at``, the tokens of the last step before the decay. It starts from
  the stable trial's kept checkpoint there, so its losses are those of the from-scratch
  run (the prefix is the same computation, batches being a function of the step).

::

    branches: {tokens: [1.0e5, 2.0e5, 4.0e5, 8.0e5], decay_fraction: 0.2}

``decay_fraction`` defaults to the schedule's. Trials are listed stable first, so the
stable group trains before its branches.

Examples
--------
>>> from scalelaw.sweep import load_spec
>>> spec = load_spec({"name": "b", "model": {"width": 32, "depth": 1, "head_dim": 16,
...                   "context": 16}, "train": {"tokens": 4096, "batch_size": 4},
...                   "branches": {"tokens": [1024, 2048, 4096], "decay_fraction": 0.25}})
>>> [(t.train.tokens, t.train.branch_at, t.schedule.decay_fraction) for t in spec.trials()]
[(3072, None, 0.0), (1024, 768, 0.25), (2048, 1536, 0.25), (4096, 3072, 0.25)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from scalelaw._validation import check_field, show
from scalelaw.errors import FieldError
from scalelaw.sweep.trial import TrialConfig
from scalelaw.train.config import TrainConfig

__all__ = ["parse_branches", "with_branches"]


@dataclasses.dataclass(frozen=True)
class Branches:
    """The ``branches:`` block: budgets in tokens and the decay fraction (None: the
    schedule's)."""

    tokens: tuple[int, ...]
    decay_fraction: float | None = None


def parse_branches(block: Any) -> Branches | None:
    """Check a spec's ``branches:`` block (None: no branches)."""
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise FieldError("branches", f"must be a mapping {{tokens: [...], decay_fraction: f}}, "
                                     f"got {show(block)}")
    for key in block:
        if key not in ("tokens", "decay_fraction"):
            raise FieldError(f"branches.{key}", "unknown key (allowed: tokens, decay_fraction)")
    tokens = block.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        raise FieldError("branches.tokens", f"must be a non-empty list of token budgets, "
                                            f"got {show(tokens)}")
    values = []
    for i, value in enumerate(tokens):
        try:  # a budget is checked as train.tokens is (2.0e5 is 200000)
            checked = check_field((TrainConfig,), "tokens", value) if value is not None else None
        except FieldError:
            checked = None
        if checked is None:
            raise FieldError(f"branches.tokens[{i}]", f"must be a positive integer (tokens), "
                                                      f"got {show(value)}")
        values.append(checked)
    if values != sorted(set(values)):
        raise FieldError("branches.tokens", f"must be increasing, got {values}")
    fraction = block.get("decay_fraction")
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(
            fraction, int | float) or not 0 < fraction < 1):
        raise FieldError("branches.decay_fraction", f"must be a number in (0, 1), "
                                                    f"got {show(fraction)}")
    return Branches(tuple(values), None if fraction is None else float(fraction))


def with_branches(trial: TrialConfig, branches: Branches) -> list[TrialConfig]:
    """The stable trial and one branch trial per budget, for one WSD ``trial``."""
    if trial.schedule.name != "wsd":
        raise FieldError("branches", f"needs schedule wsd (a stable phase and a decay), got "
                                     f"schedule {trial.schedule.name!r}")
    f = trial.schedule.decay_fraction if branches.decay_fraction is None \
        else branches.decay_fraction
    if not 0 < f < 1:
        raise FieldError("branches.decay_fraction", f"must be in (0, 1) (the schedule's is "
                                                    f"{f:g}); give branches.decay_fraction")
    tps = trial.tokens_per_step
    points = []
    for i, budget in enumerate(branches.tokens):
        steps = budget // tps
        stable = int((1.0 - f) * steps)  # steps before the decay of a run of `budget`
        if stable < 1:
            raise FieldError(f"branches.tokens[{i}]", f"must be at least "
                             f"{-(-tps // (1 - f)):.0f} tokens (a step of {tps} tokens before "
                             f"the decay), got {budget}")
        points.append((steps * tps, stable * tps))
    keep = tuple(sorted({at for _, at in points}))
    train = dataclasses.replace(trial.train, tokens=keep[-1], tokens_per_param=None,
                                keep_checkpoints=keep)
    schedule = dataclasses.replace(trial.schedule, decay_fraction=0.0)
    parent = _replaced(trial, schedule, train, {"train.tokens": keep[-1]})
    out = [parent]
    for i, (budget, at) in enumerate(points):
        train = dataclasses.replace(trial.train, tokens=budget, tokens_per_param=None,
                                    branch_of=parent.trial_id, branch_at=at)
        schedule = dataclasses.replace(trial.schedule, decay_fraction=f)
        try:
            out.append(_replaced(trial, schedule, train, {"train.tokens": budget}))
        except FieldError as exc:
            raise FieldError(f"branches.tokens[{i}]", f"{exc.path}: {exc.problem}") from None
    return out


def _replaced(trial: TrialConfig, schedule: Any, train: Any,
              swept: dict[str, Any]) -> TrialConfig:
    return TrialConfig(trial.model, trial.parametrization, trial.optimizer, schedule,
                       trial.data, train, trial.sweep_name, {**trial.swept, **swept})
