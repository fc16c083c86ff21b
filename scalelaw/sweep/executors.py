"""Executors: who trains the groups of a sweep, and where.

The seam, for every executor (the local one here, Ray in ``ray_executor.py``; a multi-host
slice runs the local one on every host, :mod:`scalelaw.distributed`):

- **A group is the unit of work.** :func:`scalelaw.train.loop.train_group` trains one
  group (members vmapped or in sequence) and is idempotent: it skips members whose
  ``summary.json`` is final and resumes the others from their checkpoint. So an executor
  may retry a group, or run it again after a crash, without any bookkeeping of its own.
- **Results live on the filesystem**, in ``OUT/trials/<trial_id>/``; an executor returns
  only small :class:`GroupResult` s. A Ray executor ships ``(group.trials, trial dirs)``
  to a task with resources and retries; ``OUT`` must then be on a filesystem every
  worker sees. ``collect`` reads the files, never the returned values.
- **One writer per trial.** On a multi-host slice every host runs the same command
  after ``jax.distributed.initialize()`` and trains the group together; process 0 writes
  (the trainer's job), and the sweep layer writes the index and lock on process 0 only.
- **Progress** is reported to a :class:`RunObserver` (``group_started``, ``advanced``,
  ``group_finished``); it runs in the driver and may raise to stop the run cleanly
  (the CLI does so on Ctrl-C: the trainer calls ``advanced`` between chunks of steps,
  after their metrics are written).

Examples
--------
>>> ex = LocalExecutor(mode="sequential")
>>> ex.mode
'sequential'
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from scalelaw.errors import ConfigError
from scalelaw.storage import Location, as_location, committed_steps
from scalelaw.sweep.store import SweepStore
from scalelaw.sweep.trial import Group
from scalelaw.train.config import MODES
from scalelaw.train.mesh_config import MeshConfig
from scalelaw.train.trackers import TrackerConfig

__all__ = ["Executor", "GroupResult", "LocalExecutor", "RunObserver", "group_work"]

FINAL = ("done", "diverged")  # states the trainer skips ("failed" is retried)

TrainFn = Callable[..., Sequence[Any]]


@dataclass(frozen=True)
class GroupResult:
    """What an executor returns for one group (the numbers are in the trial files).

    ``members`` are the trainer's ``MemberResult`` s (empty if the group was skipped
    because every member was already final). ``error`` says why an executor got no
    results from the trainer (e.g. a Ray worker lost more often than retried); its
    unfinished members are then counted ``"failed"``.
    """

    group_id: str
    members: tuple[Any, ...] = ()
    seconds: float = 0.0
    skipped: bool = False
    error: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        """``{status: number of members}``."""
        out: dict[str, int] = {}
        for member in self.members:
            out[member.status] = out.get(member.status, 0) + 1
        return out


class RunObserver:
    """Progress callbacks of a run; subclass and override. Any of them may raise to stop.

    ``total`` and ``completed`` count member-steps (members x steps), ``completed``
    being what earlier runs already did (final members, checkpoints). The trainer's
    reports of one group sum to ``total``, *including* the steps of members it skips
    or resumes (reported when it starts them), so an observer showing ``completed``
    up front should display ``max(completed, sum of reports)``.
    """

    def run_started(self, n_groups: int, of_groups: int, *, trials: int, total: int,
                    completed: int) -> None:
        """A run starts ``n_groups`` of the sweep's ``of_groups`` groups (``trials``
        unfinished trials; ``total`` and ``completed`` member-steps over them)."""

    def group_started(self, group: Group, total: int, completed: int) -> None:
        """A group is about to train."""

    def advanced(self, group_id: str, steps: int) -> None:
        """``steps`` member-steps of the group were just completed."""

    def group_finished(self, result: GroupResult) -> None:
        """A group finished (or was skipped)."""


class Executor(Protocol):
    """Runs groups of a sweep whose directory is ``store.root``; see the module notes."""

    def run(self, groups: Sequence[Group], store: SweepStore,
            observer: RunObserver | None = None) -> list[GroupResult]:
        """Train ``groups`` (each resumable) and return one result per group, in order."""
        ...


@dataclass
class LocalExecutor:
    """Train groups one after another in this process (the default).

    Parameters
    ----------
    mode : {"auto", "vmap", "sequential"}
        Passed to the trainer: members as one vmapped program, one after another, or
        the backend's choice (sequential on CPU).
    train_fn : callable, optional
        ``train_fn(trials, trial_dirs, *, mode, progress)`` (and ``mesh=`` when a mesh is
        given); defaults to :func:`scalelaw.train.loop.train_group` (imported when first
        needed).
    tracker : TrackerConfig, optional
        The spec's ``tracker:`` block, passed to the trainer as ``tracker=`` (when set).
    mesh : MeshConfig, optional
        The spec's ``mesh:`` block: devices for each group (default: automatic).
    """

    mode: str = "auto"
    train_fn: TrainFn | None = field(default=None, repr=False)
    tracker: TrackerConfig | None = field(default=None, repr=False)
    mesh: MeshConfig | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}; got {self.mode!r}")

    def run(self, groups: Sequence[Group], store: SweepStore,
            observer: RunObserver | None = None) -> list[GroupResult]:
        """Train each group in turn; a group whose members are all final is skipped."""
        observer = observer or RunObserver()
        train = self.train_fn or _default_train_fn()
        results = []
        for group in groups:
            total, completed, todo = group_work(group, store)
            observer.group_started(group, total, completed)
            if not todo:
                result = GroupResult(group.group_id, skipped=True)
            else:
                dirs = [store.trial_dir(t.trial_id) for t in group.trials]
                for folder in dirs:
                    folder.mkdir()
                start = time.perf_counter()
                extra = {} if self.mesh is None else {"mesh": self.mesh}
                members = train(list(group.trials), dirs, mode=self.mode,
                                progress=lambda k, g=group.group_id: observer.advanced(g, k),
                                **extra, **tracker_kwargs(self.tracker))
                result = GroupResult(group.group_id, tuple(members), time.perf_counter() - start)
            observer.group_finished(result)
            results.append(result)
        return results


def group_work(group: Group, store: SweepStore) -> tuple[int, int, int]:
    """``(total, completed, members to train)`` of a group, in member-steps and members.

    Final members count fully; an unfinished one counts its latest checkpoint's step.

    Examples
    --------
    >>> import tempfile
    >>> from scalelaw.sweep import load_spec
    >>> spec = load_spec({"name": "t", "train": {"tokens": 4096, "batch_size": 4},
    ...                   "model": {"width": 32, "head_dim": 16, "context": 32}})
    >>> store = SweepStore.prepare(tempfile.mkdtemp(), spec)
    >>> group_work(spec.groups()[0], store)
    (32, 0, 1)
    """
    total = completed = todo = 0
    live = False  # the caller is the run; "running" vs "interrupted" does not matter here
    for trial in group.trials:
        total += trial.steps
        if store.trial_state(trial.trial_id, live) in FINAL:
            completed += trial.steps
        else:
            todo += 1
            completed += min(trial.steps, checkpoint_step(store.trial_dir(trial.trial_id)))
    return total, completed, todo


def checkpoint_step(trial_dir: str | os.PathLike[str] | Location) -> int:
    """The newest complete checkpoint's step in ``trial_dir/ckpt`` (orbax step folders;
    on a URL those with their commit marker), or 0."""
    return max(committed_steps(as_location(trial_dir) / "ckpt"), default=0)


def tracker_kwargs(tracker: TrackerConfig | None) -> dict[str, Any]:
    """``{"tracker": tracker}``, or nothing without one (trainers need not take it)."""
    return {} if tracker is None else {"tracker": tracker}


def _default_train_fn() -> TrainFn:
    from scalelaw.train.loop import train_group

    return train_group


def check_trainable(trials: Sequence[Any]) -> None:
    """Refuse, before anything is written, trials the training loop cannot run.

    Raises
    ------
    ConfigError
        ``model.family`` other than ``transformer`` (the MLP serves coordinate checks).
    """
    for trial in trials:
        if trial.family != "transformer":
            raise ConfigError(f"model.family: sweeps train the transformer family only, got "
                              f"{trial.family!r} (the MLP is for coordinate checks)")
