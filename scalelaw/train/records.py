"""Per-trial files: ``config.json``, ``metrics.jsonl`` (append-only) and ``summary.json``.

A trial directory holds:

``config.json``
    ``trial.to_json()``, written atomically when training starts.
``metrics.jsonl``
    One JSON object per logging row, appended and fsync'd after every chunk of steps:
    ``step`` (optimizer steps completed, 1-based), ``tokens`` (``step *
    tokens_per_step``, tokens seen after the step), ``flops`` (``tokens *
    flops_per_token``, training FLOPs, no eval), ``lr`` (the base LR of that step: the
    schedule at the tokens seen *before* it), ``train_loss`` (mean of the per-step
    losses since the previous row, each measured before its update), ``eval_loss``
    (mean loss on the fixed held-out set after the step, ``None`` when not evaluated),
    ``grad_norm`` (global gradient norm of the row's step, before clipping),
    ``wall_time`` (seconds of training of this trial so far, across resumes) and, when
    requested, ``top_sv`` (top singular value per weight matrix, at eval rows).
    Non-finite numbers are written as ``null``. Rows are ordered by step and never
    duplicated: a resumed trial first drops the rows after its checkpoint.
``summary.json``
    Written atomically at the end (and when a trial diverges or fails): ``trial_id``,
    ``group_id``, ``status`` (``"done"``, ``"diverged"`` or ``"failed"``),
    ``diverged_step``, ``steps`` (completed), ``final_train_loss``,
    ``final_eval_loss``, ``best_eval_loss``, ``tokens``, ``flops``, ``wall_time`` and,
    for failures, ``error``.

The trial directory may be a local folder or a URL (:class:`scalelaw.storage.Location`):
on an object store every write replaces a whole object (one PUT), so ``metrics.jsonl``
never has a torn line there and an append rewrites it.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> append_rows(d, [{"step": 1, "train_loss": float("nan")}, {"step": 2, "train_loss": 1.5}])
>>> read_metrics(d)
[{'step': 1, 'train_loss': None}, {'step': 2, 'train_loss': 1.5}]
>>> truncate_metrics(d, max_step=1); [r["step"] for r in read_metrics(d)]
[1]
>>> read_summary(d) is None
True
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import Any

from scalelaw.storage import Location, as_location

__all__ = ["CONFIG", "METRICS", "SUMMARY", "append_rows", "read_metrics", "read_summary",
           "truncate_metrics", "write_json_atomic"]

CONFIG, METRICS, SUMMARY = "config.json", "metrics.jsonl", "summary.json"


def _clean(value: Any) -> Any:
    """Non-finite floats to ``None``, numpy scalars to Python, recursively."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(_clean(obj), allow_nan=False, indent=indent)


Where = str | os.PathLike[str] | Location


def write_text_atomic(path: Where, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :meth:`scalelaw.storage.Location.write_bytes`)."""
    as_location(path).write_text(text)


def write_json_atomic(path: Where, obj: Any) -> None:
    """Atomically write ``obj`` as JSON (non-finite floats become ``null``)."""
    write_text_atomic(path, _dumps(obj, indent=1) + "\n")


def append_rows(trial_dir: Where, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows to ``metrics.jsonl``, then flush and fsync."""
    lines = "".join(_dumps(r) + "\n" for r in rows)
    if not lines:
        return
    (as_location(trial_dir) / METRICS).append_text(lines)


def read_metrics(trial_dir: Where) -> list[dict[str, Any]]:
    """The rows of ``trial_dir/metrics.jsonl`` (``[]`` if absent).

    A torn last line (a process killed mid-write) is ignored; it is removed when the
    trial resumes.
    """
    try:
        text = (as_location(trial_dir) / METRICS).read_text()
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_metrics(trial_dir: Where, max_step: int) -> None:
    """Keep only rows with ``step <= max_step`` (atomic rewrite; no-op if nothing to drop)."""
    path = as_location(trial_dir) / METRICS
    try:
        text = path.read_text()
    except FileNotFoundError:
        return
    rows = read_metrics(trial_dir)
    kept = [r for r in rows if r.get("step", 0) <= max_step]
    if len(kept) == len(rows) and len(rows) == len(text.splitlines()):
        return
    write_text_atomic(path, "".join(_dumps(r) + "\n" for r in kept))


def read_summary(trial_dir: Where) -> dict[str, Any] | None:
    """``trial_dir/summary.json`` as a dict, or ``None`` if absent or unreadable."""
    path = as_location(trial_dir) / SUMMARY
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
