"""``scalelaw sweep status``: trial states per group and the best-LR-per-width view.

Reads only ``index.json`` and each trial's ``summary.json`` (no metrics, no JAX).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from scalelaw.sweep.store import STATES, SweepStore, read_json

__all__ = ["print_status", "status_data"]

_GROUP_LEVEL = ("optimizer.lr", "train.seed", "model.width", "parametrization.name")


def status_data(sweep_dir: Path) -> dict[str, Any]:
    """Everything ``status`` prints, as plain data (the ``--json`` output)."""
    store = SweepStore.open(sweep_dir)
    states = store.states()
    groups: dict[str, dict[str, Any]] = {}
    for record in store.records:
        model = record["config"]["model"]
        entry = groups.setdefault(record["group_id"], {
            "group_id": record["group_id"], "parametrization": record["parametrization"],
            "width": record["width"], "depth": record["depth"],
            "context": model.get("context"), "batch_size": record["batch_size"],
            "steps": record["steps"], "members": 0, **{s: 0 for s in STATES}})
        entry["members"] += 1
        entry[states[record["trial_id"]]] += 1
    totals = {s: sum(g[s] for g in groups.values()) for s in STATES}
    return {"name": store.name, "dir": str(store.root), "lock": store.lock_holder(),
            "trials": len(states), "totals": totals, "groups": list(groups.values()),
            "best_lr": _best_lr(store, states)}


def _best_lr(store: SweepStore, states: dict[str, str]) -> dict[str, Any] | None:
    """The final-eval-loss grid (rows x LRs) and best LR per row, or None if one LR."""
    import pandas as pd

    from scalelaw.sweep.results import lr_grid

    rows = []
    for record in store.records:
        summary = read_json(store.trial_dir(record["trial_id"]) / "summary.json") or {}
        loss = summary.get("final_eval_loss")
        rows.append({"parametrization": record["parametrization"], "width": record["width"],
                     "depth": record["depth"], "batch_size": record["batch_size"],
                     **{p: v for p, v in record["swept"].items() if p not in _GROUP_LEVEL},
                     "lr": record["lr"], "status": states[record["trial_id"]],
                     "final_eval_loss": math.nan if loss is None else float(loss)})
    frame = pd.DataFrame(rows)
    if frame["lr"].nunique() < 2:
        return None
    keys = ["parametrization", "width"] + [
        c for c in frame.columns
        if c not in ("parametrization", "width", "lr", "status", "final_eval_loss")
        and frame[c].astype(str).nunique() > 1]
    frame = frame.assign(**{k: frame[k].astype(str) for k in keys if frame[k].dtype == object})
    grid = lr_grid(frame, rows=keys)
    lrs = [c for c in grid.columns if c != "best_lr"]
    out_rows = []
    for index, row in grid.iterrows():
        index = index if isinstance(index, tuple) else (index,)
        out_rows.append({"key": dict(zip(keys, [_plain(i) for i in index], strict=True)),
                         "loss": [_cell(row[lr]) for lr in lrs],
                         "best_lr": None if pd.isna(row["best_lr"]) else float(row["best_lr"])})
    return {"keys": keys, "lrs": [float(lr) for lr in lrs], "rows": out_rows}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _cell(value: float) -> float | str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return "diverged" if math.isinf(value) else float(value)


def print_status(data: dict[str, Any]) -> None:
    """Render :func:`status_data` with rich."""
    from rich.table import Table

    from scalelaw._cli._common import console as make_console

    console = make_console()
    shown = [s for s in STATES if data["totals"][s] or s in ("done", "pending")]
    table = Table(title=f"sweep {data['name']} ({data['dir']}): {data['trials']} trials")
    for name in ("group", "parametrization", "width", "depth", "T", "B", "steps", *shown):
        table.add_column(name, justify="left" if name in ("group", "parametrization") else "right")
    for g in data["groups"]:
        table.add_row(g["group_id"], g["parametrization"], str(g["width"]), str(g["depth"]),
                      str(g["context"] or "-"), str(g["batch_size"]), str(g["steps"]),
                      *[_count(g[s], s) for s in shown])
    table.add_section()
    table.add_row("total", "", "", "", "", "", "", *[_count(data["totals"][s], s) for s in shown])
    console.print(table)
    lock = data["lock"]
    if lock:
        console.print(f"a run is active: process {lock['pid']} on {lock['host']} since "
                      f"{lock['started']}")
    elif data["totals"]["interrupted"] or data["totals"]["pending"]:
        console.print(f"not finished; resume with `scalelaw sweep run --out {data['dir']}`")
    grid = data["best_lr"]
    if grid is None:
        console.print("(one learning rate: no best-LR view)")
        return
    _print_grid(console, grid)


def _count(n: int, state: str) -> str:
    colour = {"diverged": "yellow", "failed": "red", "running": "cyan",
              "interrupted": "magenta"}.get(state)
    return f"[{colour}]{n}[/{colour}]" if colour and n else str(n)


def _print_grid(console: Any, grid: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="final eval loss by learning rate (best in bold green; muP: the best "
                        "LR should not move with width)")
    for key in grid["keys"]:
        table.add_column(key)
    for lr in grid["lrs"]:
        table.add_column(f"{lr:.3g}", justify="right")
    table.add_column("best lr", justify="right")
    for row in grid["rows"]:
        cells = []
        for lr, loss in zip(grid["lrs"], row["loss"], strict=True):
            if loss is None:
                cells.append("·")
            elif loss == "diverged":
                cells.append("[yellow]div[/yellow]")
            else:
                text = f"{loss:.4f}"
                cells.append(f"[bold green]{text}[/bold green]" if lr == row["best_lr"] else text)
        best = "-" if row["best_lr"] is None else f"{row['best_lr']:.3g}"
        table.add_row(*[str(v) for v in row["key"].values()], *cells, best)
    console.print(table)
