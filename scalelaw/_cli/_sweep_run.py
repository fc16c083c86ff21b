"""``scalelaw sweep run``: progress bars, Ctrl-C handling and the final summary.

Ctrl-C (or SIGTERM, e.g. a preemption notice) asks the run to stop at the next safe
point: the trainer reports progress between chunks of steps, after their metrics are
written, and the observer raises there. A second Ctrl-C interrupts at once (checkpoints
and ``metrics.jsonl`` stay consistent on disk either way; the trainer resumes from the
latest complete checkpoint). Exit status 130, with the command that resumes.

On a multi-host slice every process installs the same handler, and at each safe point the
processes agree (a collective) whether any of them was asked to stop, so a signal that
reaches one host (SIGTERM on preemption, Ctrl-C in one terminal) stops all of them at the
same chunk instead of leaving the others to JAX's heartbeat timeout.
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
from scalelaw._cli._common import print_json
from scalelaw.sweep.executors import Executor, GroupResult, LocalExecutor, RunObserver
from scalelaw.sweep.plan import shape_label
from scalelaw.sweep.store import SweepStore
from scalelaw.sweep.trial import Group

__all__ = ["StopRequested", "run_sweep"]


class StopRequested(KeyboardInterrupt):
    """Raised from a progress callback after Ctrl-C (a KeyboardInterrupt for the trainer)."""


class _Flag:
    def __init__(self) -> None:
        self.requested = False

    def stop(self) -> bool:
        """Whether to stop now: this process's flag, or any process's on a slice."""
        from scalelaw.distributed import any_process

        return any_process(self.requested)


class StopObserver(RunObserver):
    """Only the stop checks (at the same points as :class:`CliObserver`'s): the observer of
    a slice's other processes, which show no progress."""

    def __init__(self, flag: _Flag) -> None:
        self.flag = flag

    def group_started(self, group: Group, total: int, completed: int) -> None:
        if self.flag.stop():
            raise StopRequested

    def advanced(self, group_id: str, steps: int) -> None:
        if self.flag.stop():
            raise StopRequested


class CliObserver(RunObserver):
    """Rich progress: one bar for the sweep, one per group (member-steps, with ETA).

    With ``group_bars=False`` (executors that run many groups at once, such as Ray's)
    only the sweep's bar is shown, and a line as each group finishes.
    """

    def __init__(self, progress: Progress, flag: _Flag, store: SweepStore,
                 group_bars: bool = True) -> None:
        self.progress, self.flag, self.store = progress, flag, store
        self.group_bars = group_bars
        self.n_groups = 0
        self.tasks: dict[str, Any] = {}
        self.shapes: dict[str, str] = {}
        self.shown: dict[str, int] = {}     # member-steps on the group's bar
        self.reported: dict[str, int] = {}  # member-steps the trainer reported

    def run_started(self, n_groups: int, of_groups: int, *, trials: int, total: int,
                    completed: int) -> None:
        self.n_groups = n_groups
        self.progress.console.print(
            f"sweep {self.store.name!r}: training {n_groups} of {of_groups} groups "
            f"({trials} unfinished trials) into {self.store.root}")
        self.overall = self.progress.add_task("sweep", total=total, completed=completed)

    def _check(self) -> None:
        if self.flag.stop():
            raise StopRequested

    def group_started(self, group: Group, total: int, completed: int) -> None:
        self._check()
        label = f"group {len(self.tasks) + 1}/{self.n_groups} {shape_label(group.config)}"
        self.tasks[group.group_id] = self.progress.add_task(label, total=total,
                                                            completed=completed,
                                                            visible=self.group_bars)
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
        if result.error:
            self.progress.console.print(f"[red]  {result.error}[/red]")


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


def run_sweep(store: SweepStore, executor: Executor, *, max_groups: int | None = None,
              json_out: bool = False) -> int:
    """:func:`scalelaw.sweep.runner.run_sweep` with progress bars, Ctrl-C handling and the
    summary (on stderr, or one JSON object on stdout); returns the exit status."""
    from scalelaw.distributed import is_writer, process_count
    from scalelaw.sweep.runner import run_sweep as run

    console = make_console(stderr=True)
    flag = _Flag()
    if not is_writer():  # another host's process: process 0 shows progress and the summary
        with _graceful_stop(flag, console):
            return run(store, executor, max_groups=max_groups,
                       observer=StopObserver(flag)).exit_code
    if process_count() > 1:
        import jax

        console.print(f"{jax.process_count()} processes (jax.distributed), "
                      f"{jax.device_count()} {jax.default_backend()} devices in all")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("member-steps"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with _graceful_stop(flag, console), Progress(*columns, console=console) as progress:
        observer = CliObserver(progress, flag, store,
                               group_bars=isinstance(executor, LocalExecutor))
        summary = run(store, executor, max_groups=max_groups, observer=observer)
    if json_out:
        print_json(summary.to_dict())
        return summary.exit_code
    if summary.trained_groups == 0:
        console.print(f"nothing to do: all {sum(summary.states.values())} trials of sweep "
                      f"{summary.name!r} in {summary.root} are finished")
        return 0
    if summary.interrupted:
        console.print(f"interrupted: finished trials and checkpoints are saved; resume "
                      f"with `{summary.resume}`")
        sys.stderr.flush()
        return summary.exit_code
    console.print("done: " + ", ".join(f"{n} {s}" for s, n in summary.states.items())
                  + f" of {sum(summary.states.values())} trials")
    if summary.groups_left:
        console.print(f"{summary.groups_left} groups left; continue with `{summary.resume}`")
    if summary.failed:
        console.print(f"[red]{summary.failed} trial(s) failed[/red] (see their summary.json); "
                      f"re-running retries them")
    return summary.exit_code
