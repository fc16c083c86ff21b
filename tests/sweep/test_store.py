"""Sweep directory, trial states, lock, and the results tables (no training: a fake trainer)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
from _fake import TINY, FakeTrainer, write_spec

from scalelaw.errors import ConfigError
from scalelaw.sweep import load_spec
from scalelaw.sweep.executors import LocalExecutor, group_work
from scalelaw.sweep.results import COLUMNS, build_table, collect, lr_grid, trial_summary
from scalelaw.sweep.store import INDEX, LOCK, SPEC, SweepStore


@pytest.fixture
def spec_path(tmp_path):
    return write_spec(tmp_path / "tiny.yaml")


def _run_fake(out, spec_path, trainer=None, **kw):
    store = SweepStore.prepare(out, load_spec(spec_path), **kw)
    trainer = trainer or FakeTrainer()
    LocalExecutor(train_fn=trainer).run(store.groups(), store)
    return store, trainer


# ----------------------------------------------------------------------------- layout
def test_prepare_copies_spec_and_indexes_trials(tmp_path, spec_path):
    out = tmp_path / "out"
    spec = load_spec(spec_path)
    store = SweepStore.prepare(out, spec)
    assert (out / SPEC).read_text() == spec_path.read_text()
    index = json.loads((out / INDEX).read_text())
    assert [r["trial_id"] for r in index["trials"]] == [t.trial_id for t in spec.trials()]
    assert [r["member"] for r in store.records] == [0, 1]
    assert set(store.states().values()) == {"pending"}
    assert store.swept_paths == ["optimizer.lr"]
    assert [t.trial_id for t in store.load_trials()] == [t.trial_id for t in spec.trials()]
    # same spec again (even re-serialised): accepted, nothing rewritten
    before = (out / INDEX).stat().st_mtime_ns
    again = SweepStore.prepare(out, load_spec(write_spec(tmp_path / "copy.yaml")))
    assert again.records == store.records and (out / INDEX).stat().st_mtime_ns == before


def test_spec_is_parsed_once_per_run(tmp_path, spec_path, monkeypatch):
    """prepare() keeps the parsed spec: groups() does not re-parse the copied YAML."""
    import scalelaw.sweep.store as store_module

    spec = load_spec(spec_path)
    calls = []
    monkeypatch.setattr(store_module, "load_spec", lambda *a: calls.append(a) or load_spec(*a))
    for _ in range(2):  # a new directory, then a resume with the same spec
        store = SweepStore.prepare(tmp_path / "out", spec)
        assert [t for g in store.groups() for t in g.trials] == spec.trials()
    assert calls == []
    resumed = SweepStore.open(tmp_path / "out")  # resume from the directory alone: parsed
    assert [t.trial_id for t in resumed.load_trials()] == [t.trial_id for t in spec.trials()]
    assert len(calls) == 1


def test_different_spec_is_refused_and_extend_adds_trials(tmp_path, spec_path):
    out = tmp_path / "out"
    SweepStore.prepare(out, load_spec(spec_path))
    wider = write_spec(tmp_path / "more.yaml", sweep={"optimizer.lr": [2e-3, 1e-2, 5e-2]})
    with pytest.raises(ConfigError, match=r"different trials \(1 new in this spec, 0 not in it\)"
                                          r".*--extend"):
        SweepStore.prepare(out, load_spec(wider))
    renamed = write_spec(tmp_path / "renamed.yaml", name="other")
    with pytest.raises(ConfigError, match="this spec is named 'other'"):
        SweepStore.prepare(out, load_spec(renamed))
    assert len(SweepStore.open(out).records) == 2  # nothing half-written
    store = SweepStore.prepare(out, load_spec(wider), extend=True)
    assert [r["member"] for r in store.records] == [0, 1, 2]
    assert (out / "sweep.2.yaml").exists() and len(store.specs) == 2
    assert len(SweepStore.open(out).load_trials()) == 3
    # either spec is now accepted without --extend
    SweepStore.prepare(out, load_spec(spec_path))
    SweepStore.prepare(out, load_spec(wider))


def test_open_and_prepare_reject_non_sweep_directories(tmp_path, spec_path):
    with pytest.raises(ConfigError, match="no such sweep directory"):
        SweepStore.open(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a sweep directory"):
        SweepStore.open(tmp_path / "junk")
    with pytest.raises(ConfigError, match="file.txt: a file, not a sweep directory"):
        SweepStore.open(tmp_path / "junk" / "file.txt")
    with pytest.raises(ConfigError, match="exists and is not a sweep directory"):
        SweepStore.prepare(tmp_path / "junk", load_spec(spec_path))
    with pytest.raises(ConfigError, match="is a file"):
        SweepStore.prepare(tmp_path / "junk" / "file.txt", load_spec(spec_path))
    assert sorted(p.name for p in (tmp_path / "junk").iterdir()) == ["file.txt"]


def test_in_memory_spec_round_trips_through_the_copy(tmp_path):
    data = {"source": "text", "paths": ["/nonexistent/*.txt"]}
    axes = {"optimizer.lr": {"log2_range": [-9, -6], "num": 4}, "model.width": [32, 64]}
    spec = load_spec({**TINY, "data": data, "sweep": axes})
    store = SweepStore.prepare(tmp_path / "out", spec)
    assert {t.trial_id for t in store.load_trials()} == {t.trial_id for t in spec.trials()}
    # the index is grouped: each width's LRs together, members numbered within the group
    assert [(r["width"], r["member"]) for r in store.records] == [
        (32, 0), (32, 1), (32, 2), (32, 3), (64, 0), (64, 1), (64, 2), (64, 3)]


# ----------------------------------------------------------------------------- states, lock
def test_states_and_lock(tmp_path, spec_path):
    store = SweepStore.prepare(tmp_path / "out", load_spec(spec_path))
    first, second = (r["trial_id"] for r in store.records)
    store.trial_dir(first).mkdir(parents=True)
    (store.trial_dir(first) / "metrics.jsonl").write_text('{"step": 4}\n')
    assert store.states() == {first: "interrupted", second: "pending"}
    with store.locked():
        assert store.lock_holder()["pid"] == os.getpid()
        assert store.states()[first] == "running"
    assert not (store.root / LOCK).exists()
    # a lock held by a live process refuses a second run; a dead one's lock is stale
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock = {"pid": child.pid, "host": os.uname().nodename, "started": "now"}
        (store.root / LOCK).write_text(json.dumps(lock))
        with pytest.raises(ConfigError, match=f"already being run by process {child.pid}"):
            with store.locked():
                pass
    finally:
        child.kill()
        child.wait()
    assert store.lock_holder() is None
    with store.locked():
        pass


def test_group_work_counts_final_members_and_checkpoints(tmp_path, spec_path):
    store = SweepStore.prepare(tmp_path / "out", load_spec(spec_path))
    group = store.groups()[0]
    steps = group.config.steps
    assert group_work(group, store) == (2 * steps, 0, 2)
    (store.trial_dir(group.trials[1].trial_id) / "ckpt" / "16").mkdir(parents=True)
    (store.trial_dir(group.trials[1].trial_id) / "ckpt" / "24.orbax-checkpoint-tmp-1").mkdir()
    assert group_work(group, store) == (2 * steps, 16, 2)


# ----------------------------------------------------------------------------- tables
def test_collect_schema_dtypes_and_values(tmp_path, spec_path):
    out = tmp_path / "out"
    store, _ = _run_fake(out, spec_path, FakeTrainer(diverge={1e-2: 12}))
    path, table = collect(out)
    assert path == out / "results.parquet" and not list(out.glob(".*tmp*"))
    back = pd.read_parquet(path)
    assert list(back.columns) == [*COLUMNS, "optimizer.lr"]
    for name, dtype in COLUMNS.items():
        assert str(back[name].dtype) == dtype, name
    assert str(back["optimizer.lr"].dtype) == "float64"
    pd.testing.assert_frame_equal(back, table)
    trial = store.load_trials()[0]
    done = back[back["lr"] == 2e-3]
    assert done["step"].tolist() == list(range(4, trial.steps + 1, 4))
    assert (done["tokens"] == done["step"] * 128).all()
    assert done["eval_loss"].isna().tolist() == [s % 16 != 0 and s != 40 for s in done["step"]]
    diverged = back[back["lr"] == 1e-2]
    assert diverged["status"].unique().tolist() == ["diverged"]
    assert diverged["diverged_step"].unique().tolist() == [12]
    assert done["diverged_step"].isna().all() and diverged["train_loss"].isna().iloc[-1]
    assert done[["width", "depth", "batch_size", "tokens_per_step", "seed"]].iloc[0].tolist() == [
        32, 1, 4, 128, 0]
    assert done["n_params_nonembed"].iloc[0] == trial.n_params_nonembed == 1 * 12 * 32**2


def test_collect_of_pending_sweep_is_empty_but_typed(tmp_path, spec_path):
    SweepStore.prepare(tmp_path / "out", load_spec(spec_path))
    _, table = collect(tmp_path / "out", tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert len(back) == 0 and str(back["diverged_step"].dtype) == "Int64"
    assert str(back["step"].dtype) == "int64"


def test_build_table_dedupes_steps_and_fills_accounting():
    spec = load_spec(TINY)
    from scalelaw.sweep.store import trial_record

    record = {**trial_record(spec.trials()[0], 0), "status": "done", "diverged_step": None}
    lines = [{"step": 8, "train_loss": 3.0}, {"step": 4, "train_loss": 4.0},
             {"step": 8, "train_loss": 2.5, "eval_loss": 2.7}]
    table = build_table([record], [lines], ["optimizer.lr", "model.mlp"])
    assert table["step"].tolist() == [4, 8] and table["train_loss"].tolist() == [4.0, 2.5]
    assert table["flops"].tolist() == [s * 128 * record["flops_per_token"] for s in (4, 8)]
    assert str(table["model.mlp"].dtype) == "string" and table["model.mlp"][0] == "gelu"


def test_trial_summary_and_lr_grid(tmp_path, spec_path):
    out = tmp_path / "out"
    _run_fake(out, spec_path, FakeTrainer(diverge={1e-2: 12}))
    table = pd.read_parquet(collect(out)[0])
    summary = trial_summary(table)
    assert len(summary) == 2 and summary["steps"].tolist() == [40, 12]
    done = summary.iloc[0]
    rows = table[table["trial_id"] == done["trial_id"]]
    assert done["final_eval_loss"] == rows["eval_loss"].dropna().iloc[-1]
    assert done["best_eval_loss"] == rows["eval_loss"].min()
    assert done["flops"] == rows["flops"].iloc[-1] and done["status"] == "done"
    assert math.isnan(summary.iloc[1]["final_eval_loss"])
    grid = lr_grid(summary)
    assert grid.loc[("mup", 32), 1e-2] == math.inf and grid.loc[("mup", 32), "best_lr"] == 2e-3


def test_rerun_skips_finished_trials(tmp_path, spec_path):
    out = tmp_path / "out"
    store, first = _run_fake(out, spec_path)
    assert len(first.trained) == 2
    rows = len(collect(out)[1])
    _, second = _run_fake(out, spec_path)
    assert second.trained == []
    assert len(collect(out)[1]) == rows


def test_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path, spec_path) -> None:
    import socket

    store = SweepStore.prepare(tmp_path / "s", load_spec(spec_path))
    lock = store.root / LOCK
    # a live holder (this test's parent process) is refused, and its lock is left alone
    held = json.dumps({"pid": os.getppid(), "host": socket.gethostname()})
    lock.write_text(held)
    with pytest.raises(ConfigError, match="already being run"), store.locked():
        pass
    assert lock.read_text() == held
    # a dead holder is stale: taken over, and released afterwards
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    with store.locked():
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_power_schedule_lr_column_is_its_own_peak(tmp_path) -> None:
    power = {"name": "power", "warmup_tokens": 1024.0, "a": 4.0, "b": -0.51, "lr_max": 0.02}
    spec = load_spec({**TINY, "schedule": power, "sweep": {"schedule.a": [1.0, 4.0]}})
    peaks = [t.peak_lr for t in spec.trials()]
    assert peaks == pytest.approx([min(0.02, 4 * a * 1024.0**-0.51) for a in (1.0, 4.0)])
    store = SweepStore.prepare(tmp_path / "p", spec)
    assert [r["lr"] for r in store.records] == pytest.approx(peaks)
    with pytest.raises(ConfigError, match=r"^sweep\['optimizer.lr'\]\[0\]: not used by schedule"):
        load_spec({**TINY, "schedule": power})
