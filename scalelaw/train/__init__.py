"""Training: one *group* of members (trials that differ only in scalars) per call.

- :func:`train_group` (``loop.py``) trains a group -- vmapped or member by member with
  the same compiled step -- writing per-trial ``config.json``, ``metrics.jsonl``,
  ``summary.json`` and ``ckpt/``, and resuming from the latest checkpoint;
- :func:`read_metrics`, :func:`read_summary` (``records.py``) read those files back;
- ``step.py`` holds the jitted chunk of steps with divergence masking;
- ``config.py`` the optimizer, schedule and train sections and :class:`TrialLike`.

Names are imported lazily, so ``import scalelaw.train`` (and the sweep layer, which
re-exports the sections) does not import JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OptimizerConfig": "scalelaw.train.config",
    "ScheduleConfig": "scalelaw.train.config",
    "TrainConfig": "scalelaw.train.config",
    "TrialLike": "scalelaw.train.config",
    "MemberResult": "scalelaw.train.loop",
    "train_group": "scalelaw.train.loop",
    "read_metrics": "scalelaw.train.records",
    "read_summary": "scalelaw.train.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scalelaw.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
