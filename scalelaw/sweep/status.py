"""A sweep directory's status: trial states per group and the best-LR-per-width grid.

What ``scalelaw sweep status`` shows. Reads only ``index.json`` and each trial's
``summary.json`` (no metrics, no JAX).
"""

from __future__ import annotations

import math
import os
from typing import Any

from scalelaw.storage import Location
from scalelaw.sweep.store import STATES, SweepStore, read_json

__all__ = ["sweep_status"]

_GROUP_LEVEL = ("optimizer.lr", "train.seed", "model.width", "parametrization.name")


def sweep_status(sweep_dir: str | os.PathLike[str] | Location) -> dict[str, Any]:
    """Everything ``scalelaw sweep status`` prints, as plain data (its ``--json``).

    ``{"name", "dir", "lock", "trials", "totals": {state: n}, "groups": [...],
    "best_lr": {"keys", "lrs", "rows"} or None}`` (``None`` with a single LR).
    """
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
