"""``scalelaw sweep run``: progress bars, Ctrl-C handling and the final summary.

Ctrl-C (or SIGTERM, e.g. a preemption notice) asks the run to stop at the next safe
point: the trainer reports progress between chunks of steps, after their metrics are
written, and the observer raises there. A second Ctrl-C interrupts at once (checkpoints
and ``metrics.jsonl`` stay consistent on disk either way; the trainer resumes from the
latest complete checkpoint). Exit status 130, with the command that resumes.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from scalelaw._cli._common import console as make_console
from scalelaw.sweep.executors import Executor, GroupResult, RunObserver, group_work
from scalelaw.sweep.plan import shape_label
from scalelaw.sweep.store import SweepStore
from scalelaw.sweep.trial import Group

__all__ = ["StopRequested", "run_sweep"]


class StopRequested(KeyboardInterrupt):
    """Raised from a progress callback after Ctrl-C (a KeyboardInterrupt for the trainer)."""


class _Flag:
    def __init__(self) -> None:
        self.requested = False


class CliObserver(RunObserver):
    """Rich progress: one bar for the sweep, one per group (member-steps, with ETA)."""

    def __init__(self, progress: Progress, flag: _Flag, total: int, completed: int,
                 n_groups: int) -> None:
        self.progress, self.flag, self.n_groups = progress, flag, n_groups
        self.overall = progress.add_task("sweep", total=total, completed=completed)
        self.tasks: dict[str, Any] = {}
        self.shapes: dict[str, str] = {}
        self.shown: dict[str, int] = {}     # member-steps on the group's bar
        self.reported: dict[str, int] = {}  # member-steps the trainer reported

    def _check(self) -> None:
        if self.flag.requested:
            raise StopRequested

    def group_started(self, group: Group, total: int, completed: int) -> None:
        self._check()
        label = f"group {len(self.tasks) + 1}/{self.n_groups} {shape_label(group.config)}"
        self.tasks[group.group_id] = self.progress.add_task(label, total=total,
                                                            completed=completed)
        self.shapes[group.group_id] = label
        self.shown[group.group_id], self.reported[group.group_id] = completed, 0

    def advanced(self, group_id: str, steps: int) -> None:
        # The trainer also reports steps done by earlier runs when a member is skipped or
        # resumed; those are already on the bar (``completed``), so show the maximum.
        self.reported[group_id] += steps
        delta = max(0, self.reported[group_id] - self.shown[group_id])
        if delta:
            self.shown[group_id] += delta
            self.progress.advance(self.tasks[group_id], delta)
            self.progress.advance(self.overall, delta)
        self._check()

    def group_finished(self, result: GroupResult) -> None:
        task = self.tasks[result.group_id]
        left = self.progress.tasks[task].remaining or 0
        self.progress.update(task, completed=self.progress.tasks[task].total)
        self.progress.advance(self.overall, left)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
        when = f" in {result.seconds:.1f} s" if not result.skipped else " (already finished)"
        self.progress.console.print(f"{self.shapes[result.group_id]}: {counts or 'skipped'}{when}")


@contextlib.contextmanager
def _graceful_stop(flag: _Flag, console: Any) -> Iterator[None]:
    """First SIGINT/SIGTERM sets ``flag``; a second SIGINT raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        if flag.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.requested = True
        console.print("[yellow]stopping after the current chunk of steps "
                      "(Ctrl-C again to stop now)[/yellow]")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_sweep(store: SweepStore, executor: Executor, *, max_groups: int | None = None) -> int:
    """Train the unfinished groups of ``store``; returns the exit status (0, 1 or 130)."""
    console = make_console(stderr=True)
    groups = store.groups()
    work = [(g, group_work(g, store)) for g in groups]
    todo = [(g, w) for g, w in work if w[2]]
    if not todo:
        console.print(f"nothing to do: all {len(store.records)} trials of sweep "
                      f"{store.name!r} in {store.root} are finished")
        return 0
    chosen = todo[:max_groups] if max_groups else todo
    trials_left = sum(w[2] for _, w in chosen)
    console.print(f"sweep {store.name!r}: training {len(chosen)} of {len(groups)} groups "
                  f"({trials_left} unfinished trials) into {store.root}")
    flag = _Flag()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("member-steps"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    total = sum(w[0] for _, w in chosen)
    completed = sum(w[1] for _, w in chosen)
    resume = f"scalelaw sweep run --out {store.root}"
    with store.locked(), _graceful_stop(flag, console), \
            Progress(*columns, console=console) as progress:
        observer = CliObserver(progress, flag, total, completed, len(chosen))
        try:
            results = executor.run([g for g, _ in chosen], store, observer)
        except KeyboardInterrupt:
            progress.stop()
            console.print(f"interrupted: finished trials and checkpoints are saved; resume "
                          f"with `{resume}`")
            sys.stderr.flush()
            return 130
    failed = sum(r.counts.get("failed", 0) for r in results)
    states = store.states()
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    console.print("done: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                  + f" of {len(states)} trials")
    if len(chosen) < len(todo):
        console.print(f"{len(todo) - len(chosen)} groups left; continue with `{resume}`")
    if failed:
        console.print(f"[red]{failed} trial(s) failed[/red] (see their summary.json); "
                      f"re-running retries them")
    return 1 if failed else 0
