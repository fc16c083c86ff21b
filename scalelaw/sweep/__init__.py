"""Sweeps: YAML specs, validated on load and expanded into trials and vmappable groups.

- :func:`load_spec` (``spec.py``) reads a YAML file or mapping into a :class:`SweepSpec`;
  ``spec.trials()`` lists :class:`TrialConfig` objects, ``spec.groups()`` partitions them
  into :class:`Group` s of trials that differ only in :data:`SCALAR_PATHS`.
- :class:`TrialConfig` (``trial.py``) is one frozen, fully resolved run with a stable
  ``trial_id`` / ``group_id``, JSON round trip and token/FLOP accounting.
- ``expand.py`` documents every axis form (lists, ranges, random samples, ``zip``) and
  ``overrides``.

Examples
--------
>>> from scalelaw.sweep import load_spec
>>> spec = load_spec({"name": "tiny", "train": {"tokens": 4096, "batch_size": 4},
...                   "model": {"width": 32, "head_dim": 16, "context": 32},
...                   "sweep": {"optimizer.lr": {"log2_range": [-10, -8], "num": 3}}})
>>> [t.optimizer.lr for t in spec.trials()]
[0.0009765625, 0.001953125, 0.00390625]
>>> len(spec.groups())
1
"""

from scalelaw.sweep._fields import SCALAR_PATHS
from scalelaw.sweep.spec import SweepSpec, load_spec
from scalelaw.sweep.trial import Group, TrialConfig, build_trial
from scalelaw.train.config import OptimizerConfig, ScheduleConfig, TrainConfig

__all__ = [
    "SCALAR_PATHS",
    "Group",
    "OptimizerConfig",
    "ScheduleConfig",
    "SweepSpec",
    "TrainConfig",
    "TrialConfig",
    "build_trial",
    "load_spec",
]
