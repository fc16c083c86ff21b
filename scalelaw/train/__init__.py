"""Training: one *group* of members (trials that differ only in scalars) per call.

- :func:`train_group` (``loop.py``) trains a group -- vmapped or member by member with
  the same compiled step -- writing per-trial ``config.json``, ``metrics.jsonl``,
  ``summary.json`` and ``ckpt/``, and resuming from the latest checkpoint;
- :func:`read_metrics`, :func:`read_summary` (``records.py``) read those files back;
- ``step.py`` holds the jitted chunk of steps with divergence masking;
- ``config.py`` the optimizer, schedule and train sections and :class:`TrialLike`.

Names are imported lazily (:mod:`scalelaw._lazy`; the ``TYPE_CHECKING`` block lists
them for type checkers), so ``import scalelaw.train`` (and the sweep layer, which
re-exports the sections) does not import JAX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelaw._lazy import lazy_exports

# public name -> module that defines it (mirrored by the TYPE_CHECKING imports below)
_EXPORTS: dict[str, str] = {
    "OptimizerConfig": "scalelaw.train.config",
    "ScheduleConfig": "scalelaw.train.config",
    "TrainConfig": "scalelaw.train.config",
    "TrialLike": "scalelaw.train.config",
    "MemberResult": "scalelaw.train._member",
    "train_group": "scalelaw.train.loop",
    "read_metrics": "scalelaw.train.records",
    "read_summary": "scalelaw.train.records",
}

if TYPE_CHECKING:
    from scalelaw.train._member import MemberResult
    from scalelaw.train.config import OptimizerConfig, ScheduleConfig, TrainConfig, TrialLike
    from scalelaw.train.loop import train_group
    from scalelaw.train.records import read_metrics, read_summary

__all__ = [
    "MemberResult", "OptimizerConfig", "ScheduleConfig", "TrainConfig", "TrialLike",
    "read_metrics", "read_summary", "train_group",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
