"""The Ray executor: each group of a sweep a Ray task, in its own worker process.

``pip install 'scalelaw[ray]'``; chosen by ``executor: {kind: ray, ...}`` in the spec
(:mod:`scalelaw.sweep.executor_config`) or ``scalelaw sweep run SPEC --executor ray``.
Ray is imported only when a run starts, so ``import scalelaw`` never imports it.

How a group runs (the seam of :mod:`scalelaw.sweep.executors`):

- One Ray task per group, ``max_calls=1``: a fresh worker process per group, which exits
  afterwards and so hands its accelerator memory back (JAX keeps what it allocated for
  the life of the process). The task calls :func:`scalelaw.train.loop.train_group` on
  the group's trial folders, which every worker must see (a shared filesystem).
- ``max_retries``: Ray re-runs a group whose worker process or node died. The retry calls
  the same idempotent trainer, which skips finished members and resumes the others from
  their newest checkpoint, so nothing is trained twice to completion and no row is
  duplicated. Exceptions *inside* training are not retried by Ray
  (``retry_exceptions=False``): the trainer records them as ``failed`` trials and the
  next ``sweep run`` retries those.
- Progress is read by the driver from the trial files (each member's ``summary.json``
  and the last row of its ``metrics.jsonl``) every ``poll_seconds`` and reported to the
  :class:`~scalelaw.sweep.executors.RunObserver` (``group_started`` when a group is
  submitted: it may wait in Ray's queue), which may raise ``KeyboardInterrupt``
  (the CLI's Ctrl-C): the running tasks are then cancelled, and finished trials and
  checkpoints stay for the next run.
- Memory: a task with a fraction of a GPU (``{GPU: 0.5}``: two groups per GPU) gets
  ``XLA_PYTHON_CLIENT_MEM_FRACTION`` set to that fraction of JAX's default 0.75, so the
  groups sharing a GPU fit (:func:`memory_env`); ``env_vars`` of the spec win.
- TPU hosts: ``{TPU: 4}`` reserves a host's four chips for one group (Ray exposes only
  the reserved chips to the worker).

Examples
--------
>>> options = task_options({"GPU": 0.5}, max_retries=3)
>>> options["num_gpus"], options["runtime_env"]["env_vars"]["XLA_PYTHON_CLIENT_MEM_FRACTION"]
(0.5, '0.375')
>>> task_options({"TPU": 4}, max_retries=1)["resources"]
{'TPU': 4}
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from scalelaw.errors import ConfigError
from scalelaw.storage import Location
from scalelaw.sweep.executor_config import ExecutorConfig
from scalelaw.sweep.executors import (
    FINAL,
    GroupResult,
    RunObserver,
    TrainFn,
    group_work,
    tracker_kwargs,
)
from scalelaw.sweep.store import SweepStore, read_json
from scalelaw.sweep.trial import Group
from scalelaw.train.config import MODES
from scalelaw.train.trackers import TrackerConfig

__all__ = ["RAY_MISSING", "RayExecutor", "memory_env", "require_ray", "task_options",
           "train_group_task"]

RAY_MISSING = "executor.kind: ray needs `pip install 'scalelaw[ray]'`"
"""The one-line error when the Ray executor is asked for and Ray is not installed."""
JAX_MEM_FRACTION = 0.75
"""JAX's default ``XLA_PYTHON_CLIENT_MEM_FRACTION`` (the share of a GPU it preallocates)."""
TASK_NAME = "train_group_task"
"""The task's name; a worker running it is titled ``ray::train_group_task``."""


def require_ray() -> ModuleType:
    """The ``ray`` module, or :class:`ConfigError` (:data:`RAY_MISSING`) if not installed."""
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(RAY_MISSING)
    import ray

    return ray


def memory_env(gpus: float) -> dict[str, str]:
    """JAX memory settings for a task holding ``gpus`` GPUs.

    A fraction of one GPU gets that fraction of JAX's default preallocation
    (:data:`JAX_MEM_FRACTION`), so ``1 / gpus`` groups fit on the device together; whole
    GPUs (and none) keep JAX's defaults. See JAX's "GPU memory allocation" notes.

    >>> memory_env(0.25), memory_env(1), memory_env(0)
    ({'XLA_PYTHON_CLIENT_MEM_FRACTION': '0.1875'}, {}, {})
    """
    if 0 < gpus < 1:
        return {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{JAX_MEM_FRACTION * gpus:.4g}"}
    return {}


def task_options(resources: Mapping[str, float], *, max_retries: int,
                 env_vars: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The options of one group's Ray task (``ray.remote(**these)``).

    ``CPU`` and ``GPU`` become ``num_cpus`` (default 1) and ``num_gpus``; other names
    (``TPU``, custom resources) go to ``resources``. The environment is
    :func:`memory_env`, ``JAX_COMPILATION_CACHE_DIR`` if the driver has one (each host
    keeps its own cache there), then ``env_vars``.
    """
    rest = dict(resources)
    gpus = rest.pop("GPU", 0.0)
    options: dict[str, Any] = {
        "name": TASK_NAME, "num_cpus": rest.pop("CPU", 1.0), "num_gpus": gpus,
        "max_calls": 1, "max_retries": max_retries, "retry_exceptions": False,
    }
    if rest:
        options["resources"] = rest
    env = memory_env(gpus)
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        env["JAX_COMPILATION_CACHE_DIR"] = os.environ["JAX_COMPILATION_CACHE_DIR"]
    env.update(env_vars or {})
    if env:
        options["runtime_env"] = {"env_vars": env}
    return options


def train_group_task(trials: Sequence[Any], trial_dirs: Sequence[Path], mode: str,
                     cwd: str | None = None, train_fn: TrainFn | None = None,
                     tracker: TrackerConfig | None = None, mesh: Any = None) -> list[Any]:
    """What a Ray worker runs for one group: the trainer on the group's folders.

    ``cwd`` is the driver's working directory, entered where it exists on the worker (so
    relative ``data`` paths resolve as they do locally, on a shared filesystem).
    ``tracker`` (the spec's block, plain config) opens its runs here, in the worker.
    """
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    from scalelaw.cache import enable_compilation_cache

    enable_compilation_cache()
    if train_fn is None:
        from scalelaw.train.loop import train_group

        train_fn = train_group
    extra = {} if mesh is None else {"mesh": mesh}  # the spec's mesh: block, if any
    return list(train_fn(list(trials), list(trial_dirs), mode=mode, **extra,
                         **tracker_kwargs(tracker)))


@dataclass
class RayExecutor:
    """Train each group as a Ray task with its own worker process (see the module notes).

    Parameters
    ----------
    address : str, optional
        The Ray cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:10001"``); None joins
        ``$RAY_ADDRESS`` or starts a local Ray instance. Ignored if Ray is already
        initialised in this process (e.g. by a notebook's ``ray.init()``).
    resources_per_group : mapping
        Ray resources each group's task reserves (``{"GPU": 1}``, ``{"TPU": 4}``).
    max_retries : int
        Re-runs of a group whose worker or node died.
    env_vars : mapping
        Extra environment of the worker processes.
    mode : {"auto", "vmap", "sequential"}
        Passed to the trainer.
    poll_seconds : float
        How often the driver reads the trial files for progress.
    train_fn : callable, optional
        A picklable ``train_fn(trials, trial_dirs, *, mode)``; default
        :func:`scalelaw.train.loop.train_group`.
    tracker : TrackerConfig, optional
        The spec's ``tracker:`` block, sent to each task (runs open in the workers).
    mesh : MeshConfig, optional
        The spec's ``mesh:`` block, applied to the devices of each group's worker
        (default: automatic).

    Raises
    ------
    ConfigError
        Ray is not installed (:data:`RAY_MISSING`), raised on construction.
    """

    address: str | None = None
    resources_per_group: Mapping[str, float] = field(default_factory=dict)
    max_retries: int = 3
    env_vars: Mapping[str, str] = field(default_factory=dict)
    mode: str = "auto"
    poll_seconds: float = 1.0
    train_fn: TrainFn | None = field(default=None, repr=False)
    cancel_grace_s: float = 10.0
    tracker: TrackerConfig | None = None
    mesh: Any = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}; got {self.mode!r}")
        checked = ExecutorConfig(kind="ray", address=self.address,  # the spec's checks
                                 resources_per_group=dict(self.resources_per_group),
                                 max_retries=self.max_retries, env_vars=dict(self.env_vars))
        self.resources_per_group = checked.resources_per_group
        require_ray()

    @classmethod
    def from_config(cls, config: ExecutorConfig, *, mode: str = "auto",
                    tracker: TrackerConfig | None = None, mesh: Any = None) -> RayExecutor:
        """From a spec's ``executor:`` block (and its ``tracker:`` and ``mesh:`` blocks)."""
        return cls(address=config.address, resources_per_group=config.resources_per_group,
                   max_retries=config.max_retries, env_vars=config.env_vars, mode=mode,
                   tracker=tracker, mesh=None if mesh is None or mesh.automatic else mesh)

    def connect(self) -> bool:
        """Initialise Ray unless it is already; True if this call did.

        Raises
        ------
        ConfigError
            Naming ``executor.address`` when the cluster cannot be reached.
        """
        ray = require_ray()
        if ray.is_initialized():
            return False
        try:
            ray.init(address=self.address, log_to_driver=False, logging_level="WARNING")
        except (ConnectionError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"executor.address: cannot connect to Ray at "
                              f"{self.address or 'a new local instance'!r} ({first})") from None
        return True

    def run(self, groups: Sequence[Group], store: SweepStore,
            observer: RunObserver | None = None) -> list[GroupResult]:
        """Submit every group with work left, wait for all, return one result per group."""
        ray = require_ray()
        owns = self.connect()
        try:
            return self._run(ray, groups, store, observer or RunObserver())
        finally:
            if owns:
                ray.shutdown()

    def _run(self, ray: ModuleType, groups: Sequence[Group], store: SweepStore,
             observer: RunObserver) -> list[GroupResult]:
        options = task_options(self.resources_per_group, max_retries=self.max_retries,
                               env_vars=self.env_vars)
        task = ray.remote(**options)(train_group_task)
        results: dict[str, GroupResult] = {}
        running: dict[Any, _Running] = {}
        try:
            for group in groups:
                total, completed, todo = group_work(group, store)
                observer.group_started(group, total, completed)
                if not todo:
                    results[group.group_id] = GroupResult(group.group_id, skipped=True)
                    observer.group_finished(results[group.group_id])
                    continue
                dirs = [_absolute(store.trial_dir(t.trial_id)) for t in group.trials]
                for folder in dirs:
                    folder.mkdir(parents=True, exist_ok=True)
                ref = task.remote(list(group.trials), dirs, self.mode, os.getcwd(),
                                  self.train_fn, self.tracker, self.mesh)
                running[ref] = _Running(group, dirs)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=self.poll_seconds)
                for ref in ready:
                    job = running.pop(ref)
                    result = self._result(ray, ref, job)
                    observer.advanced(job.group.group_id, job.poll())
                    results[job.group.group_id] = result
                    observer.group_finished(result)
                for job in running.values():  # also lets the observer stop the run
                    observer.advanced(job.group.group_id, job.poll())
        except BaseException:
            self._cancel(ray, list(running))
            raise
        return [results[g.group_id] for g in groups]

    def _result(self, ray: ModuleType, ref: Any, job: _Running) -> GroupResult:
        seconds = time.perf_counter() - job.started
        try:
            members = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # raised inside the task: not retried
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ValueError | OSError):  # bad config or data: as locally
                raise cause from None
            return self._failed(job, f"{type(cause or exc).__name__}: {cause or exc}", seconds)
        except ray.exceptions.RayError as exc:  # worker or node lost, retries used up
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return self._failed(job, f"{type(exc).__name__}: {first}", seconds)
        return GroupResult(job.group.group_id, tuple(members), seconds)

    def _failed(self, job: _Running, error: str, seconds: float) -> GroupResult:
        """A group whose task did not return: its unfinished members count as failed."""
        from scalelaw.train._member import MemberResult

        members = []
        for trial, folder in zip(job.group.trials, job.dirs, strict=True):
            summary = read_json(folder / "summary.json")
            if isinstance(summary, dict) and summary.get("status") in FINAL:
                continue
            members.append(MemberResult(trial.trial_id, "failed", None, 0, None, None))
        return GroupResult(job.group.group_id, tuple(members), seconds, error=error)

    def _cancel(self, ray: ModuleType, refs: list[Any]) -> None:
        """Cancel running tasks: a KeyboardInterrupt in each, then force after a grace."""
        if not refs:
            return
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        with contextlib.suppress(Exception):
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=self.cancel_grace_s)
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


@dataclass
class _Running:
    """A submitted group: its folders, start time and the member-steps reported so far."""

    group: Group
    dirs: list[Path | Location]
    started: float = field(default_factory=time.perf_counter)
    reported: int = 0

    def poll(self) -> int:
        """Member-steps newly on disk since the last poll (never negative)."""
        done = sum(_steps_on_disk(folder, trial.steps)
                   for trial, folder in zip(self.group.trials, self.dirs, strict=True))
        delta = max(0, done - self.reported)
        self.reported += delta
        return delta


def _steps_on_disk(folder: Path | Location, steps: int) -> int:
    """A member's steps as its files show them: all if final, else its last logged step."""
    summary = read_json(folder / "summary.json")
    if isinstance(summary, dict) and summary.get("status") in FINAL:
        return steps
    return min(steps, _last_step(folder / "metrics.jsonl"))


def _last_step(path: Path | Location, tail: int = 65536) -> int:
    """The ``step`` of the last complete row of a ``metrics.jsonl`` (0 if none)."""
    try:
        if isinstance(path, Location) and not path.is_local:
            lines = path.read_bytes()[-tail:].splitlines()
        else:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - tail))
                lines = fh.read().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def _absolute(where: Location) -> Path | Location:
    """A local folder as an absolute path (workers do not share the driver's working
    directory); a URL as it is (every worker reaches it through its own backend)."""
    return where.local.absolute() if where.is_local else where
