"""Progress of long fits: shown only once the work has taken ``DELAY`` (2 s).

A fit's stages (the multi-start solve, bootstrap refits in blocks) report to a
:class:`Progress`. What it does with them depends on ``show``, the ``progress`` argument of
:func:`~scalelaw.fit.fit_law.fit_law`:

- ``True`` (default): after ``DELAY`` seconds of a stage (a timer thread, so a single
  long step such as the first compilation shows too), a transient rich progress bar on
  stderr in a terminal (spinner, steps, elapsed time), or a line updated in place in
  Jupyter (an IPython display handle, no widget library needed); nothing in a pipe or a
  log file, and nothing at all for work shorter than the delay.
- ``False``: nothing.
- a callable ``f(stage, done, total)``: called on every update (a UI of your own, or a
  test), nothing displayed.

Examples
--------
>>> seen = []
>>> with Progress("bootstrap", 3, lambda *a: seen.append(a)) as p:
...     p.advance(2)
...     p.advance(1)
>>> seen
[('bootstrap', 0, 3), ('bootstrap', 2, 3), ('bootstrap', 3, 3)]
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: Seconds a stage runs before a progress display appears.
DELAY = 2.0

ProgressArg = bool | Callable[[str, int, int], Any]


def check_progress(progress: object) -> ProgressArg:
    """``progress`` if it is a bool or a callable, else a ``ConfigError`` naming it."""
    from scalelaw.errors import ConfigError

    if isinstance(progress, bool) or callable(progress):
        return progress
    raise ConfigError(f"progress: True, False or a function f(stage, done, total), got "
                      f"{progress!r}")


class Progress:
    """One stage's progress, ``total`` steps, displayed per ``show`` (module docstring)."""

    def __init__(self, stage: str, total: int, show: ProgressArg = True, *,
                 delay: float | None = None) -> None:
        self.stage, self.total, self.done = stage, max(int(total), 1), 0
        self.show = show
        self.delay = DELAY if delay is None else delay
        self.shown = False  # whether a display was started
        self._view: Any = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._closed = False  # set by __exit__: a timer firing late shows nothing
        self._t0 = time.monotonic()

    def __enter__(self) -> Progress:
        self._t0 = time.monotonic()
        if callable(self.show) and not isinstance(self.show, bool):
            self.show(self.stage, 0, self.total)
        elif self.show and (_terminal() or _jupyter()):  # shown even during one long step
            self._timer = threading.Timer(self.delay, self._start)
            self._timer.daemon = True
            self._timer.start()
        return self

    def advance(self, n: int = 1) -> None:
        """``n`` more steps done."""
        self.done = min(self.total, self.done + int(n))
        if callable(self.show) and not isinstance(self.show, bool):
            self.show(self.stage, self.done, self.total)
            return
        if self.show and self._view is None and time.monotonic() - self._t0 >= self.delay:
            self._start()
        if self._view is not None:
            self._view.update(self.done, self.total)

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._view is not None:
                self._view.close(self.done if exc[0] is None else None, self.total,
                                 time.monotonic() - self._t0)
                self._view = None

    def _start(self) -> None:
        with self._lock:
            if self._view is None and not self._closed:
                self._view = make_view(self.stage)
                self.shown = self._view is not None
                if self._view is not None:
                    self._view.update(self.done, self.total)


def _terminal() -> bool:
    return sys.stderr.isatty()


def _jupyter() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def make_view(stage: str) -> Any:
    """The display for ``stage``: a rich bar in a terminal, an updated line in Jupyter,
    ``None`` elsewhere."""
    if _jupyter():
        return _JupyterLine(stage)
    if _terminal():
        return _RichBar(stage)
    return None


class _RichBar:
    def __init__(self, stage: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            SpinnerColumn(), TextColumn(f"[bold]{stage}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task(stage, total=None)
        self._bar.start()

    def update(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total if total > 1 else None)

    def close(self, done: int | None, total: int, elapsed: float) -> None:
        self._bar.stop()


class _JupyterLine:
    def __init__(self, stage: str) -> None:
        from IPython.display import display

        self.stage = stage
        self._t0 = time.monotonic() - DELAY
        self._handle = display({"text/plain": self._text("running")}, raw=True,
                               display_id=True)

    def _text(self, state: str) -> str:
        return f"{self.stage}: {state}, {time.monotonic() - self._t0:.0f} s"

    def update(self, done: int, total: int) -> None:
        if self._handle is not None:
            state = "running" if total <= 1 else f"{done}/{total}"
            self._handle.update({"text/plain": self._text(state)}, raw=True)

    def close(self, done: int | None, total: int, elapsed: float) -> None:
        if self._handle is not None:
            state = "stopped" if done is None else "done" if total <= 1 else f"{done}/{total}"
            self._handle.update({"text/plain": f"{self.stage}: {state} in {elapsed:.1f} s"},
                                raw=True)
