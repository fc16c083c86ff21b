"""The sweep runner with the real trainer: accounting, re-runs, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from _fake import TINY, write_spec

from scalelaw.sweep import load_spec
from scalelaw.sweep.executors import LocalExecutor
from scalelaw.sweep.results import collect, trial_summary
from scalelaw.sweep.store import SweepStore
from scalelaw.train.records import read_metrics

# Kill-and-resume spec: 3 members of 64 steps, a checkpoint every 8 (same model shape as
# TINY, so the compiled step is shared through JAX's persistent cache).
KILL = {**TINY, "name": "kill",
        "train": {**TINY["train"], "tokens": 64 * 128},
        "sweep": {"optimizer.lr": [2e-3, 5e-3, 1e-2]}}


def run_local(out: Path, spec, train_fn=None) -> SweepStore:  # noqa: ANN001
    store = SweepStore.prepare(out, spec)
    LocalExecutor(train_fn=train_fn).run(store.groups(), store)
    return store


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("tiny") / "out"
    run_local(out, load_spec(TINY))
    return out, collect(out)[1]


def test_token_and_flop_accounting_by_hand(tiny_run):
    _, table = tiny_run
    # width D=32, depth 1, context T=32, vocab V=256, MLP 4D, batch 4 sequences
    D, T, V, B = 32, 32, 256, 4
    n_nonembed = 1 * (4 * D * D + 2 * D * 4 * D)            # attention + MLP matrices
    flops_per_token = 6 * (n_nonembed + D * V) + 12 * 1 * T * D  # + readout, attention
    assert table["n_params_nonembed"].unique().tolist() == [n_nonembed]
    assert table["tokens_per_step"].unique().tolist() == [B * T]
    assert (table["tokens"] == table["step"] * B * T).all()
    assert (table["flops"] == table["tokens"] * flops_per_token).all()
    steps = TINY["train"]["tokens"] // (B * T)
    for _, rows in table.groupby("trial_id"):
        assert rows["step"].tolist() == list(range(4, steps + 1, 4))
        evaluated = rows.loc[rows["eval_loss"].notna(), "step"].tolist()
        assert evaluated == [16, 32, 40]
    summary = trial_summary(table)
    assert summary["flops"].tolist() == [steps * B * T * flops_per_token] * 2
    assert (summary["status"] == "done").all()


def test_rerun_skips_finished_trials(tiny_run):
    out, table = tiny_run
    store = SweepStore.open(out)
    files = sorted(p for p in (out / "trials").rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    calls = []
    run_local(out, load_spec(TINY), train_fn=lambda *a, **k: calls.append(a) or [])
    assert calls == []  # every member final: the trainer is not even called
    # the trainer itself also skips final members when asked directly
    from scalelaw.train.loop import train_group

    group = store.groups()[0]
    results = train_group(group.trials, [store.trial_dir(t.trial_id) for t in group.trials])
    assert [r.status for r in results] == ["done", "done"]
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    pd.testing.assert_frame_equal(collect(out)[1], table)


def _sweep_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scalelaw.cli", "sweep", *args]


def _mid_trial(out: Path) -> bool:
    """A trial has a checkpoint but no summary yet, and another one is finished."""
    folders = list((out / "trials").glob("*")) if (out / "trials").exists() else []
    finished = [f for f in folders if (f / "summary.json").exists()]
    started = [f for f in folders if not (f / "summary.json").exists()
               and any(p.name.isdigit() for p in (f / "ckpt").glob("*"))]
    return bool(finished) and bool(started)


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["wall_time"]).reset_index(drop=True)


@pytest.mark.slow
def test_kill_and_resume_matches_uninterrupted_run(tmp_path):
    spec_path = write_spec(tmp_path / "kill.yaml", KILL)
    reference = tmp_path / "reference"
    run_local(reference, load_spec(spec_path))
    expected = collect(reference)[1]

    out = tmp_path / "out"
    proc = subprocess.Popen(_sweep_cli("run", str(spec_path), "--out", str(out)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not _mid_trial(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()!r}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    states = SweepStore.open(out).states()
    assert "interrupted" in states.values() and "done" in states.values(), states

    resumed = subprocess.run(_sweep_cli("run", "--out", str(out)), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert set(SweepStore.open(out).states().values()) == {"done"}
    collected = subprocess.run(_sweep_cli("collect", str(out)), capture_output=True, text=True,
                               timeout=120)
    assert collected.returncode == 0, collected.stderr
    got = pd.read_parquet(out / "results.parquet")
    for folder in (out / "trials").iterdir():  # collect dedupes; the files must not need it
        steps = [row["step"] for row in read_metrics(folder)]
        assert steps == sorted(set(steps)), folder.name
    assert not got.duplicated(["trial_id", "step"]).any()
    assert len(got) == len(expected) == 3 * 16
    pd.testing.assert_frame_equal(_comparable(got), _comparable(expected), rtol=1e-6)
    final = trial_summary(got).set_index("trial_id")
    ref = trial_summary(expected).set_index("trial_id")
    assert final["final_train_loss"].to_dict() == pytest.approx(ref["final_train_loss"].to_dict())
    assert final["final_eval_loss"].to_dict() == pytest.approx(ref["final_eval_loss"].to_dict())
