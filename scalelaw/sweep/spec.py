"""YAML sweep specs: load, validate, expand into trials and group them.

A spec is a base configuration (the six sections of a :class:`TrialConfig`) plus the
axes that vary it::

    name: quickstart                       # required: [A-Za-z0-9_.-], used in paths
    description: optional free text
    model: {family: transformer, width: 64, depth: 2, head_dim: 16, context: 128}
    parametrization: {name: mup, base_width: 64}
    optimizer: {lr: 3.0e-3, weight_decay: 0.0, b1: 0.9, b2: 0.95, eps: 1.0e-8}
    schedule: {name: wsd, warmup_tokens: 1.0e4, decay_fraction: 0.2}
    data: {source: stdlib, seed: 0}
    train: {tokens: 2.0e5, batch_size: 16, eval_every: 50, eval_tokens: 2.0e4}
    sweep:                                 # see scalelaw.sweep.expand for all axis forms
      model.width: [32, 64, 128]
      optimizer.lr: {log2_range: [-12, -4], num: 9}
    overrides:
      - {when: {model.width: 128}, set: {train.batch_size: 8}}
    branches: {tokens: [1.0e5, 2.0e5], decay_fraction: 0.2}   # optional, see branches.py
    executor: {kind: ray, resources_per_group: {GPU: 1}}     # optional, executor_config.py
    tracker: {kind: wandb, project: my-project}              # optional, train/trackers.py
    mesh: {members: 4, data: 2}            # optional, scalelaw.train.mesh (default: auto)

Every section and field is optional (defaults of the dataclasses), except that the
token budget must be given as ``train.tokens`` or ``train.tokens_per_param``. The YAML
loader reads ``1e-3`` and ``2e5`` as numbers (plain PyYAML reads them as strings) and
rejects duplicate keys. Loading expands and validates every trial, so a spec that loads
runs. Every problem raises :class:`scalelaw.ConfigError` with one line naming the field
path (``model.head_dim``, ``sweep['model.width'][2]``, ``overrides[0].set[...]``).

Paths in ``data`` are kept as written (relative paths are resolved against the working
directory when the data is loaded, and are not checked at spec load).

Examples
--------
>>> spec = load_spec({"name": "demo", "train": {"tokens": 65536},
...                   "model": {"width": 64, "head_dim": 16, "context": 64},
...                   "sweep": {"optimizer.lr": [1e-3, 3e-3], "model.width": [32, 64]}})
>>> len(spec.trials()), len(spec.groups())
(4, 2)
>>> spec.trials()[0].swept
{'optimizer.lr': 0.001, 'model.width': 32}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scalelaw.errors import ConfigError
from scalelaw.storage import Location, as_location
from scalelaw.sweep._fields import SECTIONS, check_section, config_error
from scalelaw.sweep.branches import parse_branches, with_branches
from scalelaw.sweep.executor_config import ExecutorConfig, parse_executor
from scalelaw.sweep.expand import Axis, Override, expand, parse_overrides, parse_sweep
from scalelaw.sweep.trial import Group, TrialConfig, build_trial
from scalelaw.train.mesh_config import MeshConfig, parse_mesh
from scalelaw.train.trackers import TrackerConfig, parse_tracker

__all__ = ["SweepSpec", "load_executor", "load_mesh", "load_spec", "load_tracker"]

TOP_LEVEL = ("name", "description", *SECTIONS, "sweep", "overrides", "branches", "executor",
             "tracker", "mesh")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base sections, axes and overrides, with the trials expanded.

    Build with :func:`load_spec`. ``trials()`` and ``groups()`` return new lists on each
    call (the trials themselves are immutable). ``executor``, ``tracker`` and ``mesh`` are
    the spec's ``executor:``, ``tracker:`` and ``mesh:`` blocks (not part of any trial, so
    they never change trial ids).
    """

    name: str
    description: str
    base: Mapping[str, Mapping[str, Any]]
    axes: tuple[Axis, ...]
    overrides: tuple[Override, ...]
    source: str | None = None
    _trials: tuple[TrialConfig, ...] = field(default=(), repr=False)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    tracker: TrackerConfig | None = None
    mesh: MeshConfig = field(default_factory=MeshConfig)

    @property
    def swept_paths(self) -> list[str]:
        """Field paths varied by the axes, in axis order."""
        return [p for axis in self.axes for p in axis.paths]

    def trials(self) -> list[TrialConfig]:
        """Every distinct trial, in product order (first axis slowest).

        Trials that come out identical (e.g. an override sets a swept field) are kept
        once, at their first position.
        """
        return list(self._trials)

    def groups(self) -> list[Group]:
        """Trials partitioned by ``group_id``, in order of first appearance.

        Members of a group differ only in the scalar fields of
        :data:`scalelaw.sweep.SCALAR_PATHS`: ``optimizer.lr``, ``weight_decay``, ``b1``,
        ``b2``, ``eps``, ``train.seed``, ``parametrization.output_mult`` and the schedule
        constants (``warmup_tokens``, ``decay_fraction``, ``final_fraction``, ``a``,
        ``b``, ``lr_max``). Everything else (model shape, batch size, context, tokens,
        data, parametrization name and other rules, schedule name/decay shape,
        ``grad_clip``, evaluation and logging cadence) makes separate groups.
        """
        groups: dict[str, list[TrialConfig]] = {}
        for trial in self._trials:
            groups.setdefault(trial.group_id, []).append(trial)
        return [Group(gid, tuple(members)) for gid, members in groups.items()]

    def __len__(self) -> int:
        return len(self._trials)

    def summary(self) -> dict[str, Any]:
        """Counts and totals for planning: trials, groups, steps, tokens, FLOPs."""
        trials = self._trials
        return {
            "name": self.name,
            "trials": len(trials),
            "groups": len(self.groups()),
            "steps": sum(t.steps for t in trials),
            "tokens": sum(t.total_tokens for t in trials),
            "flops": sum(t.total_flops for t in trials),
        }


def load_spec(spec: str | os.PathLike[str] | Mapping[str, Any]) -> SweepSpec:
    """Load and validate a sweep spec from a YAML file or an already-parsed mapping.

    Parameters
    ----------
    spec : path or mapping
        A ``.yaml`` file, or the equivalent dict.

    Returns
    -------
    SweepSpec
        With every trial expanded and validated.

    Raises
    ------
    ConfigError
        On a missing file, a YAML syntax error, or any invalid field (one line, naming
        the field path and what is allowed).
    """
    source = None
    if isinstance(spec, str | os.PathLike):
        source = str(spec)
        spec = _read_yaml(Path(spec))
    if not isinstance(spec, Mapping):
        raise config_error(source or "spec", f"must be a mapping with keys "
                                             f"{', '.join(TOP_LEVEL)}; got {type(spec).__name__}")
    for key in spec:
        if key not in TOP_LEVEL:
            raise config_error(str(key), f"unknown top-level key (allowed: {', '.join(TOP_LEVEL)})")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise config_error("name", f"required: letters, digits, '_', '.', '-' (starting with a "
                                   f"letter or digit); got {name!r}")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise config_error("description", f"must be a string, got {description!r}")
    base = {s: check_section(s, spec[s]) for s in SECTIONS if spec.get(s) is not None}
    train = base.get("train", {})
    if train.get("tokens") is not None and train.get("tokens_per_param") is not None:
        raise config_error("train.tokens_per_param", "give train.tokens or "
                                                     "train.tokens_per_param, not both")
    axes = tuple(parse_sweep(spec.get("sweep")))
    overrides = tuple(parse_overrides(spec.get("overrides")))
    branches = parse_branches(spec.get("branches"))
    executor = parse_executor(spec.get("executor"))
    tracker = parse_tracker(spec.get("tracker"))
    mesh = parse_mesh(spec.get("mesh"))
    trials: dict[str, TrialConfig] = {}
    for point in expand(base, list(axes), list(overrides)):
        swept = {p: point.raw[p.split(".")[0]].get(p.split(".")[1]) for p in point.swept}
        trial = build_trial(point.raw, sweep_name=name, swept=swept, origin=point.origin)
        trial = _with_swept(trial, point.swept)
        for t in with_branches(trial, branches) if branches else [trial]:
            trials.setdefault(t.trial_id, t)
    return SweepSpec(name, description, base, axes, overrides, source, tuple(trials.values()),
                     executor, tracker, mesh)


def load_executor(path: str | os.PathLike[str] | Location) -> ExecutorConfig:
    """The ``executor:`` block of a spec file alone (its trials are not expanded).

    Used to resume a sweep directory with the executor its spec copy names; ``path`` may
    be a URL (the spec copy of a sweep directory on object storage).
    """
    data = _read_yaml(as_location(path, "spec"))
    block = data.get("executor") if isinstance(data, Mapping) else None
    return parse_executor(block)


def load_tracker(path: str | os.PathLike[str] | Location) -> TrackerConfig | None:
    """The ``tracker:`` block of a spec file alone (None if it has none); see load_executor."""
    data = _read_yaml(as_location(path, "spec"))
    return parse_tracker(data.get("tracker") if isinstance(data, Mapping) else None)


def load_mesh(path: str | os.PathLike[str] | Location) -> MeshConfig:
    """The ``mesh:`` block of a spec file alone (to resume a sweep directory with it)."""
    data = _read_yaml(as_location(path, "spec"))
    return parse_mesh(data.get("mesh") if isinstance(data, Mapping) else None)


def _with_swept(trial: TrialConfig, paths: tuple[str, ...]) -> TrialConfig:
    """Record the *resolved* value of each swept path (after overrides and defaults)."""
    swept = {p: trial.get(p) for p in paths}
    if swept == trial.swept:
        return trial
    return TrialConfig(trial.model, trial.parametrization, trial.optimizer, trial.schedule,
                       trial.data, trial.train, trial.sweep_name, swept)


# ----------------------------------------------------------------------------- YAML
class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float and rejects duplicate keys."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            line = key_node.start_mark.line + 1
            raise ConfigError(f"{key}: duplicate key at line {line}")
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path | Location) -> Any:
    if path.is_dir():
        raise config_error(str(path), "is a directory; give a sweep spec .yaml file")
    if not path.exists():
        raise config_error(str(path), "no such spec file")
    try:
        text = path.read_text()
    except OSError as exc:
        raise config_error(str(path), f"cannot read spec ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise config_error(str(path), f"invalid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise config_error(str(path), f"invalid YAML: {exc}") from None
