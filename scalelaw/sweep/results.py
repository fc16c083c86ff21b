"""The results tables: one long table of every logged step, and one row per trial.

:func:`results_table` reads a sweep directory (the index and each trial's
``metrics.jsonl`` / ``summary.json``) into a long :class:`pandas.DataFrame`;
:func:`collect` writes it atomically to ``results.parquet``. :func:`trial_summary` turns
any such table (e.g. read back with ``pandas.read_parquet``) into one row per trial, and
:func:`lr_grid` into the muP transfer view (final eval loss per width x LR).

Columns of the long table (:data:`COLUMNS`, then every swept field by its dotted path):

=================  ========  ==============================================================
sweep              string    sweep name
trial_id, group_id string    config hashes (:class:`scalelaw.sweep.TrialConfig`)
member             int64     position in its group
parametrization    string    ``sp``, ``mup`` or ``completep``
width, depth       int64     model shape
n_params           int64     all parameters (embeddings included)
n_params_nonembed  int64     the fitters' N
batch_size         int64     sequences per step
tokens_per_step    int64     ``batch_size * context``
lr, weight_decay   float64   peak LR at the base width (``TrialConfig.peak_lr``:
                             ``optimizer.lr``, or the power schedule's own peak) and
                             ``optimizer.weight_decay``
seed               int64     ``train.seed`` (initialisation)
step               int64     optimizer steps completed
tokens             int64     ``step * tokens_per_step``
flops              float64   training FLOPs so far (float: large runs exceed int64)
train_loss         float64   nats per token
eval_loss          float64   NaN where not evaluated
diverged_step      Int64     nullable: step at which the trial diverged
status             string    done, diverged, failed, running, interrupted
scheduled_lr       float64   the schedule's LR at that step (base width)
grad_norm          float64   global gradient norm
wall_time          float64   seconds (not reproducible; drop it to compare runs)
=================  ========  ==============================================================

Examples
--------
>>> empty = build_table([], [])
>>> list(empty.columns[:4]), str(empty["diverged_step"].dtype)
(['sweep', 'trial_id', 'group_id', 'member'], 'Int64')
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scalelaw.storage import Location, as_location
from scalelaw.sweep.store import SweepStore, read_json

__all__ = ["COLUMNS", "build_table", "collect", "collect_summary", "loss_points", "lr_grid",
           "results_table", "trial_summary"]

COLUMNS: dict[str, str] = {
    "sweep": "string", "trial_id": "string", "group_id": "string", "member": "int64",
    "parametrization": "string", "width": "int64", "depth": "int64", "n_params": "int64",
    "n_params_nonembed": "int64", "batch_size": "int64", "tokens_per_step": "int64",
    "lr": "float64", "weight_decay": "float64", "seed": "int64", "step": "int64",
    "tokens": "int64", "flops": "float64", "train_loss": "float64", "eval_loss": "float64",
    "diverged_step": "Int64", "status": "string", "scheduled_lr": "float64",
    "grad_norm": "float64", "wall_time": "float64",
    "decay_fraction": "float64", "branch_of": "string",
}
"""The fixed columns of ``results.parquet`` and their pandas dtypes (every swept field
follows, by its dotted path). ``decay_fraction``: the schedule's (NaN for schedules without
one; 0 for a cooldown sweep's stable-phase trials, whose last losses are not cooled);
``branch_of``: the stable-phase trial a cooldown branch starts from (null otherwise)."""
_TRIAL_KEYS = ("sweep", "trial_id", "group_id", "member", "parametrization", "width", "depth",
               "n_params", "n_params_nonembed", "batch_size", "tokens_per_step", "lr",
               "weight_decay", "seed")
_METRIC_KEYS = {"step": "step", "tokens": "tokens", "flops": "flops", "train_loss": "train_loss",
                "eval_loss": "eval_loss", "scheduled_lr": "lr", "grad_norm": "grad_norm",
                "wall_time": "wall_time"}


def results_table(sweep_dir: str | os.PathLike[str] | Location) -> pd.DataFrame:
    """The long results table of a sweep directory, one row per (trial, logged step).

    Pending trials (nothing written) have no rows; unfinished ones carry their rows so
    far with status ``running`` or ``interrupted``. See :func:`build_table`.
    """
    from scalelaw.train.records import read_metrics  # the trainer's file format

    store = SweepStore.open(sweep_dir)
    states = store.states()
    records, metrics = [], []
    for record in store.records:
        state = states[record["trial_id"]]
        if state == "pending":
            continue
        folder = store.trial_dir(record["trial_id"])
        summary = read_json(folder / "summary.json") or {}
        records.append({**record, "status": state, "diverged_step": summary.get("diverged_step")})
        metrics.append(read_metrics(folder))
    return build_table(records, metrics, store.swept_paths)


def build_table(records: Sequence[dict[str, Any]], metrics: Sequence[Sequence[dict[str, Any]]],
                swept_paths: Sequence[str] = ()) -> pd.DataFrame:
    """Assemble the long table from index records (plus status) and metric lines.

    Parameters
    ----------
    records : list of dict
        :func:`scalelaw.sweep.store.trial_record` entries with ``status`` and
        ``diverged_step`` added.
    metrics : list of list of dict
        Each trial's metric lines (``step``, ``tokens``, ``flops``, ``lr``, ``train_loss``,
        ``eval_loss``, ``grad_norm``, ``wall_time``). Missing ``tokens`` / ``flops`` are
        computed from the step; a step logged twice keeps its last line.
    swept_paths : list of str
        Extra columns, valued from each record's ``swept`` (or its config).

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS` with their dtypes, then one column per swept path. Rows in
        record order, then by step.
    """
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    swept: dict[str, list[Any]] = {path: [] for path in swept_paths}
    for record, lines in zip(records, metrics, strict=True):
        lines = sorted({int(m["step"]): m for m in lines}.values(), key=lambda m: int(m["step"]))
        flat = _flatten(record["config"])
        for line in lines:
            tokens = line.get("tokens")
            tokens = int(line["step"]) * record["tokens_per_step"] if tokens is None else tokens
            flops = line.get("flops")
            line = {**line, "tokens": tokens,
                    "flops": tokens * record["flops_per_token"] if flops is None else flops}
            for key in _TRIAL_KEYS:
                columns[key].append(record[key])
            for column, key in _METRIC_KEYS.items():
                columns[column].append(line.get(key))
            columns["diverged_step"].append(record.get("diverged_step"))
            columns["status"].append(record["status"])
            columns["decay_fraction"].append(flat.get("schedule.decay_fraction"))
            columns["branch_of"].append(flat.get("train.branch_of"))
            for path in swept_paths:
                swept[path].append(record["swept"].get(path, flat.get(path)))
    frame = pd.DataFrame({name: _typed(values, COLUMNS[name]) for name, values in columns.items()})
    for path, values in swept.items():
        frame[path] = _inferred(values)
    return frame


def collect(sweep_dir: str | os.PathLike[str] | Location,
            out: str | os.PathLike[str] | Location | None = None,
            ) -> tuple[Path | Location, pd.DataFrame]:
    """Write :func:`results_table` of ``sweep_dir`` to parquet, atomically.

    Parameters
    ----------
    sweep_dir : path, URL or Location
        A sweep directory (see :mod:`scalelaw.sweep.store`).
    out : path, URL or Location, optional
        Defaults to ``sweep_dir / "results.parquet"``.

    Returns
    -------
    (Path or Location, DataFrame)
        Where it was written (a ``Path`` for a local file, a
        :class:`~scalelaw.storage.Location` for a URL: ``pandas.read_parquet`` reads
        either, through fsspec), and the table.
    """
    table = results_table(sweep_dir)
    path = (as_location(out, "out") if out is not None
            else as_location(sweep_dir) / "results.parquet")
    if path.is_local and path.is_dir():
        raise ValueError(f"out: {path} is a directory; give a .parquet file name")
    if path.is_local and not path.parent.is_dir():
        raise FileNotFoundError(f"out: directory {path.parent} does not exist")
    if not path.is_local:
        path.check()
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    path.write_bytes(buffer.getvalue())
    return (path.local if path.is_local else path), table



def collect_summary(sweep_dir: str | os.PathLike[str] | Location,
                    out: str | os.PathLike[str] | Location | None = None) -> dict[str, Any]:
    """:func:`collect`, and what it wrote: ``{"path", "rows", "trials_with_rows",
    "states": {state: trials}, "finished"}`` (``finished``: no trial pending, running or
    interrupted). What ``scalelaw sweep collect`` reports."""
    from scalelaw.sweep.store import SweepStore

    counts: dict[str, int] = {}
    for state in SweepStore.open(sweep_dir).states().values():
        counts[state] = counts.get(state, 0) + 1
    path, table = collect(sweep_dir, out)
    unfinished = any(counts.get(s) for s in ("pending", "interrupted", "running"))
    return {"path": str(path), "rows": len(table),
            "trials_with_rows": int(table["trial_id"].nunique()), "states": counts,
            "finished": not unfinished}

def loss_points(results: pd.DataFrame, *, points: str = "final") -> pd.DataFrame:
    """(N, D, loss) rows to fit a loss law on, from a long results table.

    Parameters
    ----------
    results : DataFrame
        :func:`results_table` of a sweep (e.g. a cooldown-branch sweep).
    points : {"final", "logged"}
        ``"final"``: one row per finished (``done``) trial, its last evaluated loss at
        its final token count; a cooldown branch gives its own budget's point, and its
        stable-phase trial a point at the end of the stable phase. ``"logged"``: every
        evaluated (step, loss) of every finished trial.

    Returns
    -------
    DataFrame
        ``N`` (non-embedding parameters), ``D`` (tokens seen), ``loss`` (eval loss, nats),
        ``cooled``, then ``trial_id, width, lr, seed, batch_size`` (sequences) and
        ``tokens_per_step`` (for LR x batch fits). ``cooled`` is True only for the
        final point of a trial whose LR decayed to its end (``decay_fraction > 0``):
        points taken before or without the decay (stable-phase trials, intermediate
        checkpoints) sit above the loss a run of that length would reach, so a law fitted
        on them is biased upward (Hagele et al. 2024); fit on ``points[points.cooled]``
        unless that bias is what you want.
    """
    if points not in ("final", "logged"):
        raise ValueError(f"points: must be 'final' or 'logged', got {points!r}")
    done = results[(results["status"] == "done") & results["eval_loss"].notna()]
    done = done.sort_values(["trial_id", "step"], kind="stable")
    last = done.groupby("trial_id")["step"].transform("max") == done["step"]
    rows = done[last] if points == "final" else done
    decayed = rows["decay_fraction"].fillna(0.0) > 0 if "decay_fraction" in rows else False
    out = pd.DataFrame({"N": rows["n_params_nonembed"].astype("float64"),
                        "D": rows["tokens"].astype("float64"),
                        "loss": rows["eval_loss"].astype("float64"),
                        "cooled": (last[rows.index] & decayed).astype(bool)})
    for column in ("trial_id", "width", "lr", "seed", "batch_size", "tokens_per_step"):
        if column in rows:
            out[column] = rows[column].to_numpy()
    return out.reset_index(drop=True)


def trial_summary(results: pd.DataFrame) -> pd.DataFrame:
    """One row per trial of a long results table: final and best losses.

    Columns: every column that is constant within a trial (ids, shape, hyperparameters,
    swept fields, ``status``, ``diverged_step``), then ``steps``, ``tokens``, ``flops``
    (at the last logged step), ``final_train_loss``, ``final_eval_loss`` (last
    evaluated), ``best_eval_loss``. Works on any table with ``trial_id``, ``step``,
    ``train_loss`` and ``eval_loss`` columns.

    Examples
    --------
    >>> t = pd.DataFrame({"trial_id": ["a", "a", "b"], "width": [32, 32, 64],
    ...                   "step": [1, 2, 1], "train_loss": [3.0, 2.0, 4.0],
    ...                   "eval_loss": [float("nan"), 2.5, 4.1]})
    >>> trial_summary(t)[["trial_id", "width", "final_train_loss", "best_eval_loss"]]
      trial_id  width  final_train_loss  best_eval_loss
    0        a     32               2.0             2.5
    1        b     64               4.0             4.1
    """
    per_step = {"step", "tokens", "flops", "train_loss", "eval_loss", "scheduled_lr",
                "grad_norm", "wall_time"}
    ordered = results.sort_values(["trial_id", "step"], kind="stable")
    grouped = ordered.groupby("trial_id", sort=False)
    last = grouped.tail(1).set_index("trial_id")
    keep = [c for c in results.columns if c not in per_step and c != "trial_id"]
    out = last[keep].copy()
    out["steps"] = last["step"]
    for column in ("tokens", "flops"):
        if column in last:
            out[column] = last[column]
    out["final_train_loss"] = last["train_loss"].astype("float64")
    evals = ordered.dropna(subset=["eval_loss"]).groupby("trial_id")["eval_loss"]
    out["final_eval_loss"] = evals.last().reindex(out.index).astype("float64")
    out["best_eval_loss"] = evals.min().reindex(out.index).astype("float64")
    order = results["trial_id"].drop_duplicates()
    return out.loc[order].reset_index()


def lr_grid(summary: pd.DataFrame, rows: Sequence[str] = ("parametrization", "width"),
            loss: str = "final_eval_loss") -> pd.DataFrame:
    """Pivot a :func:`trial_summary` into ``rows`` x ``lr`` (mean over other fields).

    Diverged or failed trials count as ``inf``; a row's ``best_lr`` is the LR with the
    lowest mean loss (NaN if none is finite). This is the muP transfer view: under muP
    the best LR should stay put as the width grows.

    Examples
    --------
    >>> s = pd.DataFrame({"width": [32, 32, 64, 64], "lr": [1e-3, 1e-2] * 2,
    ...                   "final_eval_loss": [3.0, 2.5, 2.9, 2.4]})
    >>> lr_grid(s, rows=["width"])["best_lr"].tolist()
    [0.01, 0.01]
    """
    data = summary.copy()
    if "status" in data:
        data.loc[data["status"].isin(["diverged", "failed"]), loss] = math.inf
    grid = data.pivot_table(index=list(rows), columns="lr", values=loss, aggfunc="mean",
                            dropna=False)
    finite = grid.where(grid.abs() != math.inf)
    # pandas-stubs take no list of index labels (Hashable) as a column's values
    grid["best_lr"] = [row.idxmin() if row.notna().any() else math.nan  # type: ignore[assignment]
                       for _, row in finite.iterrows()]
    return grid


# ----------------------------------------------------------------------------- dtypes
def _typed(values: list[Any], dtype: str) -> pd.Series:
    if dtype == "float64":
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if dtype == "Int64":
        return pd.Series(pd.array([None if v is None else int(v) for v in values], dtype="Int64"))
    return pd.Series(values, dtype=dtype)


def _inferred(values: list[Any]) -> pd.Series:
    """Column dtype for a swept field: bool, int64, Int64, float64 or string."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="boolean" if len(present) < len(values) else "bool")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return _typed(values, "Int64" if len(present) < len(values) else "int64")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return _typed(values, "float64")
    return pd.Series([None if v is None else str(v) for v in values], dtype="string")


def _flatten(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, d in config.items() for k, v in d.items()}
