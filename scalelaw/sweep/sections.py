"""Moved: the section dataclasses live in :mod:`scalelaw.train.config` (the training layer
reads them; the sweep layer, to its right, re-exports them). Kept for old imports."""

from scalelaw.train.config import (
    SCHEDULE_DECAYS,
    SCHEDULE_DEFAULTS,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
)

__all__ = ["SCHEDULE_DECAYS", "SCHEDULE_DEFAULTS", "OptimizerConfig", "ScheduleConfig",
           "TrainConfig"]
