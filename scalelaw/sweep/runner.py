"""Run a sweep directory: choose the groups with work left, lock, train, summarise.

:func:`run_sweep` is what ``scalelaw sweep run`` calls (the CLI adds progress bars and
Ctrl-C handling through a :class:`~scalelaw.sweep.executors.RunObserver`); a notebook
can call it as it is.

Examples
--------
>>> import tempfile
>>> from scalelaw.sweep import load_spec
>>> from scalelaw.sweep.store import SweepStore
>>> spec = load_spec({"name": "t", "train": {"tokens": 2048, "batch_size": 4,
...                   "eval_every": 8, "eval_tokens": 256},
...                   "model": {"width": 32, "depth": 1, "head_dim": 16, "context": 32}})
>>> store = SweepStore.prepare(tempfile.mkdtemp(), spec)
>>> summary = run_sweep(store, LocalExecutor(mode="sequential"))
>>> summary.states, summary.trained_groups, summary.exit_code
({'done': 1}, 1, 0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scalelaw.distributed import agree, process_count
from scalelaw.sweep.executor_config import ExecutorConfig
from scalelaw.sweep.executors import Executor, LocalExecutor, RunObserver, group_work
from scalelaw.sweep.store import SweepStore
from scalelaw.train.mesh_config import MeshConfig
from scalelaw.train.trackers import TrackerConfig, check_tracker

__all__ = ["LocalExecutor", "RunSummary", "make_executor", "run_sweep"]


def make_executor(config: ExecutorConfig | None = None, *, mode: str = "auto",
                  tracker: TrackerConfig | None = None,
                  mesh: MeshConfig | None = None) -> Executor:
    """The executor a spec's ``executor:`` block names (default: local), for ``mode``
    and the spec's ``mesh:`` block (``None``: automatic).

    The Ray executor's module (and Ray) is imported only for ``kind: ray``; a missing Ray
    raises :class:`~scalelaw.ConfigError` ("executor.kind: ray needs ..."). ``tracker``
    (the spec's ``tracker:`` block) is handed to the trainer; its package missing here
    raises ``ConfigError`` ("tracker.kind: wandb needs ...").

    >>> make_executor(mode="sequential")
    LocalExecutor(mode='sequential', mesh=None)
    """
    config = config or ExecutorConfig()
    check_tracker(tracker)
    if config.kind == "ray":
        from scalelaw.sweep.ray_executor import RayExecutor

        return RayExecutor.from_config(config, mode=mode, tracker=tracker, mesh=mesh)
    return LocalExecutor(mode=mode, tracker=tracker,
                         mesh=None if mesh is None or mesh.automatic else mesh)


@dataclass(frozen=True)
class RunSummary:
    """How a run of a sweep directory ended.

    Attributes
    ----------
    name, root : str
        The sweep and its directory.
    groups : int
        Groups in the sweep.
    trained_groups : int
        Groups this run trained (those with work left, at most ``max_groups``).
    groups_left : int
        Groups with work left that this run did not start (``max_groups``).
    states : dict
        ``{state: trials}`` after the run (``done``, ``diverged``, ``failed``, ...).
    failed : int
        Trials of this run that raised (re-running retries them).
    interrupted : bool
        The run was stopped (Ctrl-C, an observer that raised ``KeyboardInterrupt``);
        finished trials and checkpoints are saved.
    """

    name: str
    root: str
    groups: int
    trained_groups: int
    groups_left: int
    states: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """0 done, 1 some trial failed, 130 interrupted (the CLI's exit status)."""
        return 130 if self.interrupted else 1 if self.failed else 0

    @property
    def resume(self) -> str:
        """The command that continues this sweep."""
        return f"scalelaw sweep run --out {self.root}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"exit_code": self.exit_code}


def run_sweep(store: SweepStore, executor: Executor | None = None, *,
              max_groups: int | None = None,
              observer: RunObserver | None = None) -> RunSummary:
    """Train the groups of ``store`` that have work left, holding the sweep's lock.

    Parameters
    ----------
    store : SweepStore
        From :meth:`SweepStore.prepare` (a spec) or :meth:`SweepStore.open` (resume).
    executor : Executor, optional
        Default: ``LocalExecutor()`` (in-process, the backend decides vmap vs sequence).
    max_groups : int, optional
        Train at most this many of the groups with work left.
    observer : RunObserver, optional
        Told ``run_started`` (with the totals) and each group's progress; raising
        ``KeyboardInterrupt`` from it stops the run cleanly.
    """
    if max_groups is not None and (isinstance(max_groups, bool) or max_groups < 1):
        raise ValueError(f"max_groups: must be a positive integer, got {max_groups!r}")
    executor = executor or LocalExecutor()
    observer = observer or RunObserver()
    groups = store.groups()
    work = [(g, group_work(g, store)) for g in groups]
    if process_count() > 1:  # every process trains what process 0 found left to do
        agreed = agree(np.array([w for _, w in work], np.int64).reshape(len(work), 3))
        work = [(g, (int(a), int(b), int(c))) for g, (a, b, c) in zip(groups, agreed,
                                                                       strict=True)]
    todo = [(g, w) for g, w in work if w[2]]
    chosen = todo[:max_groups] if max_groups else todo
    interrupted, failed = False, 0
    if chosen:
        observer.run_started(len(chosen), len(groups), trials=sum(w[2] for _, w in chosen),
                             total=sum(w[0] for _, w in chosen),
                             completed=sum(w[1] for _, w in chosen))
        with store.locked():
            try:
                results = executor.run([g for g, _ in chosen], store, observer)
                failed = sum(r.counts.get("failed", 0) for r in results)
            except KeyboardInterrupt:
                interrupted = True
    states: dict[str, int] = {}
    for state in store.states().values():
        states[state] = states.get(state, 0) + 1
    return RunSummary(store.name, str(store.root), len(groups), len(chosen),
                      len(todo) - len(chosen), states, failed, interrupted)
