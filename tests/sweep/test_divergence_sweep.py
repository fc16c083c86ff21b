"""A really diverged trial through the sweep runner, ``collect`` and the LR optimum per width.

One tiny real sweep (width 32, depth 1, context 16, batch 4, 32 steps, the real trainer):
an LR grid whose largest LR diverges during the warm-up, after two evaluations.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from scalelaw.fit.transfer import lr_optima
from scalelaw.sweep import load_spec
from scalelaw.sweep.executors import LocalExecutor
from scalelaw.sweep.results import collect, lr_grid, trial_summary
from scalelaw.sweep.store import SweepStore

STEPS, B, T = 32, 4, 16
LRS = [1e-3, 3e-3, 1e-2]  # finish; losses fall with the LR over so few steps
BAD = 2.5  # diverges during the 16-step warm-up, after the evaluations at steps 4 and 8
SPEC = {
    "name": "diverge",
    "model": {"family": "transformer", "width": 32, "depth": 1, "head_dim": 16, "context": T},
    "parametrization": {"name": "mup", "base_width": 32},
    "optimizer": {"lr": 1e-3, "grad_clip": 1.0},
    "schedule": {"name": "wsd", "warmup_tokens": 16 * B * T, "decay_fraction": 0.25},
    "data": {"source": "stdlib"},
    "train": {"tokens": STEPS * B * T, "batch_size": B, "eval_every": 4, "eval_tokens": 256,
              "log_every": 4},
    "sweep": {"optimizer.lr": [*LRS, BAD]},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("sweep") / "out"
    store = SweepStore.prepare(out, load_spec(SPEC))
    [group] = LocalExecutor(mode="sequential").run(store.groups(), store)
    assert group.counts == {"done": 3, "diverged": 1}
    path, _ = collect(out)
    table = pd.read_parquet(path)
    return table, trial_summary(table)


def test_collect_marks_the_diverged_trial_and_stops_its_rows(results) -> None:
    """results.parquet: the diverged trial has status ``diverged`` and its diverged_step,
    no rows after that step, the others ran to the end."""
    table, _ = results
    bad = table[table["lr"] == BAD]
    done = table[table["lr"] != BAD]
    assert bad["status"].unique().tolist() == ["diverged"]
    [d] = bad["diverged_step"].unique().tolist()
    assert 8 < d < 16, f"retune BAD: diverged at {d}, wanted after the eval at 8, in warm-up"
    assert bad["step"].tolist() == [4, 8, d]  # nothing logged after the divergence
    assert math.isnan(bad["eval_loss"].iloc[-1])  # the diverged step is not evaluated
    assert bad["eval_loss"].iloc[:2].notna().all()  # evaluated before it diverged
    assert (done["status"] == "done").all() and done["diverged_step"].isna().all()
    for _, rows in done.groupby("trial_id"):
        assert rows["step"].tolist() == list(range(4, STEPS + 1, 4))
        assert rows["train_loss"].notna().all()
    assert not table.duplicated(["trial_id", "step"]).any()
    summary = trial_summary(table).set_index("lr")
    assert summary.loc[BAD, "status"] == "diverged" and summary.loc[BAD, "diverged_step"] == d


def test_lr_optimum_ignores_the_diverged_lr(results) -> None:
    """lr_optima and lr_grid skip the diverged LR although its last eval loss (before it
    diverged) is finite: it is not chosen and the width keeps its 3 finished LRs."""
    _, summary = results
    bad = summary[summary["lr"] == BAD].iloc[0]
    assert bad["status"] == "diverged" and math.isfinite(bad["final_eval_loss"])
    finished = summary[summary["lr"] != BAD]
    best = float(finished.loc[finished["final_eval_loss"].idxmin(), "lr"])

    optima = lr_optima(summary)
    assert optima.attrs["skipped"] == {}  # the width is not voided
    [row] = optima.to_dict(orient="records")
    assert row["width"] == 32 and row["lr_grid_best"] == pytest.approx(best)
    assert row["lr_opt"] != pytest.approx(BAD) and row["loss_grid_best"] < bad["final_eval_loss"]
    # exactly as if the diverged trial had never run ...
    pd.testing.assert_frame_equal(optima, lr_optima(finished))
    # ... which matters: read as a finished run, its partial loss would change the optimum
    unmarked = lr_optima(summary.drop(columns="status"))
    assert not unmarked.equals(optima)

    grid = lr_grid(summary)
    assert grid.loc[("mup", 32), BAD] == math.inf
    assert grid.loc[("mup", 32), "best_lr"] == pytest.approx(best)
    assert all(math.isfinite(grid.loc[("mup", 32), lr]) for lr in LRS)
