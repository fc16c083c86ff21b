"""The Ray executor on a real local Ray cluster (2 CPUs, started once for the module).

Each test compares with the local executor's results of the same spec: the same
``results.parquet`` (1e-5 relative on every loss), also after a worker is killed with
SIGKILL mid-group (Ray retries the group, which resumes from its checkpoints) and after
a run is stopped as Ctrl-C stops it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from _fake import TINY, write_spec

from scalelaw.sweep import load_spec
from scalelaw.sweep.executors import LocalExecutor, RunObserver
from scalelaw.sweep.ray_executor import TASK_NAME, RayExecutor
from scalelaw.sweep.results import collect
from scalelaw.sweep.runner import run_sweep
from scalelaw.sweep.store import SweepStore
from scalelaw.train.records import read_metrics

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow

# Two groups (depth 1 and 2) of two members, 40 steps each; checkpoints every 8 steps.
TWO = {**TINY, "name": "two", "sweep": {"optimizer.lr": [2e-3, 1e-2], "model.depth": [1, 2]}}
# One group of three members, 64 steps each (as tests/sweep/test_runner.py's kill test).
KILL = {**TINY, "name": "kill", "train": {**TINY["train"], "tokens": 64 * 128},
        "sweep": {"optimizer.lr": [2e-3, 5e-3, 1e-2]}}
# The same group, 512 steps a member (about 3 s each here), for the Ctrl-C tests: long
# enough that a loaded CI machine cannot finish the group between the interrupt and the
# tasks' cancellation (with KILL's 64 steps it once did, and the test saw all 3 done).
LONG = {**KILL, "name": "long", "train": {**KILL["train"], "tokens": 512 * 128}}


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for the module (its workers inherit this environment)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``{name: results table}`` of the local executor, computed when first asked for."""
    tables: dict[str, pd.DataFrame] = {}

    def table(spec: dict) -> pd.DataFrame:
        if spec["name"] not in tables:
            out = tmp_path_factory.mktemp("local") / spec["name"]
            store = SweepStore.prepare(out, load_spec(spec))
            LocalExecutor(mode="sequential").run(store.groups(), store)
            tables[spec["name"]] = collect(out)[1]
        return tables[spec["name"]]

    return table


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    return (table.drop(columns=["wall_time"]).sort_values(["trial_id", "step"])
            .reset_index(drop=True))


def assert_same_results(out: Path, expected: pd.DataFrame) -> None:
    """Every trial done, no step logged twice, and the table equal to ``expected``."""
    assert set(SweepStore.open(out).states().values()) == {"done"}
    for folder in (out / "trials").iterdir():  # collect dedupes; the files must not need it
        steps = [row["step"] for row in read_metrics(folder)]
        assert steps == sorted(set(steps)), folder.name
    got = pd.read_parquet(collect(out)[0])
    assert not got.duplicated(["trial_id", "step"]).any()
    assert len(got) == len(expected)
    pd.testing.assert_frame_equal(_comparable(got), _comparable(expected), rtol=1e-5)


def _workers() -> list[psutil.Process]:
    """This test process's Ray workers that are running a group (titled by Ray)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.cmdline()[:1] == [f"ray::{TASK_NAME}"]:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


class Recorder(RunObserver):
    """Records what the executor reported, per group."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.reported: dict[str, int] = {}
        self.finished: list = []

    def group_started(self, group, total, completed):  # noqa: ANN001
        self.totals[group.group_id], self.reported[group.group_id] = total, 0

    def advanced(self, group_id, steps):  # noqa: ANN001
        self.reported[group_id] += steps

    def group_finished(self, result):  # noqa: ANN001
        self.finished.append(result)


def test_same_results_as_the_local_executor(cluster, reference, tmp_path):
    spec = load_spec(TWO)
    store = SweepStore.prepare(tmp_path / "out", spec)
    recorder = Recorder()
    summary = run_sweep(store, RayExecutor(mode="sequential", poll_seconds=0.2),
                        observer=recorder)
    assert (summary.exit_code, summary.trained_groups, summary.states) == (0, 2, {"done": 4})
    assert_same_results(tmp_path / "out", reference(TWO))
    # progress came from the trial files: each group's reports sum to its member-steps
    assert recorder.reported == recorder.totals == {g.group_id: 80 for g in spec.groups()}
    assert sorted(r.counts["done"] for r in recorder.finished) == [2, 2]
    assert not any(r.error for r in recorder.finished)
    assert _workers() == []  # max_calls=1: each group's worker exited with it


def test_a_worker_killed_mid_group_is_retried_and_resumes(cluster, reference, tmp_path):
    out = tmp_path / "out"
    store = SweepStore.prepare(out, load_spec(KILL))
    killed: dict[str, object] = {}

    def kill_after_first_checkpoint() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "pid" not in killed:
            checkpointed = [f for f in (out / "trials").glob("*/ckpt/*") if f.name.isdigit()]
            workers = _workers()
            if checkpointed and workers:
                killed["unfinished"] = [f.name for f in (out / "trials").iterdir()
                                        if not (f / "summary.json").exists()]
                os.kill(workers[0].pid, signal.SIGKILL)
                killed["pid"] = workers[0].pid
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    watcher.start()
    summary = run_sweep(store, RayExecutor(mode="sequential", max_retries=2, poll_seconds=0.2))
    watcher.join(timeout=5)
    assert "pid" in killed, "the group finished before its worker could be killed"
    assert len(killed["unfinished"]) >= 2  # killed mid-group, not after it
    assert summary.exit_code == 0, summary
    assert_same_results(out, reference(KILL))


class StopAfterProgress(RunObserver):
    """Raises KeyboardInterrupt (as the CLI's Ctrl-C handler does) once steps are done."""

    def advanced(self, group_id, steps):  # noqa: ANN001
        if steps:
            raise KeyboardInterrupt


def test_ctrl_c_cancels_the_tasks_and_keeps_finished_work(cluster, tmp_path):
    out = tmp_path / "out"
    store = SweepStore.prepare(out, load_spec(LONG))
    summary = run_sweep(store, RayExecutor(mode="sequential", poll_seconds=0.1,
                                           cancel_grace_s=5), observer=StopAfterProgress())
    assert summary.interrupted and summary.exit_code == 130
    assert summary.states.get("done", 0) < 3
    deadline = time.monotonic() + 30
    while _workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _workers() == []  # the group's worker is gone
    assert SweepStore.open(out).lock_holder() is None
    logged = sum(len(read_metrics(f)) for f in (out / "trials").iterdir())
    time.sleep(1.0)
    assert sum(len(read_metrics(f)) for f in (out / "trials").iterdir()) == logged


def test_cli_runs_on_the_cluster(cluster, reference, tmp_path):
    spec = write_spec(tmp_path / "two.yaml", TWO, executor={"kind": "ray"})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scalelaw.cli", "sweep", "run", str(spec), "--out", str(out),
           "--mode", "sequential", "--ray-address", cluster, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["trained_groups"], summary["states"]) == (2, {"done": 4})
    assert_same_results(out, reference(TWO))


def test_cli_ctrl_c_cancels_the_run(cluster, tmp_path):
    spec = write_spec(tmp_path / "long.yaml", LONG)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scalelaw.cli", "sweep", "run", str(spec), "--out", str(out),
           "--mode", "sequential", "--executor", "ray", "--ray-address", cluster]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline and not any(
            (f / "metrics.jsonl").exists() for f in out.glob("trials/*")):
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted: finished trials and checkpoints are saved" in err
    assert "Traceback" not in err
    deadline = time.monotonic() + 30
    while _workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _workers() == []
    assert set(SweepStore.open(out).states().values()) != {"done"}
