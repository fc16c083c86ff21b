"""Multi-host sweeps (issue 9 §4) on one machine: two processes, 2 CPU devices each, one JAX
runtime (localhost coordinator, gloo collectives) train the same numbers as one process,
also after both are killed with SIGKILL mid-run and started again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from _fake import write_spec

from scalelaw.cli import main

STEPS = 128  # long enough to be killed between its first checkpoint and its end
SPEC = {
    "name": "mh",
    "model": {"family": "transformer", "width": 32, "depth": 1, "head_dim": 16, "context": 32},
    "parametrization": {"name": "mup", "base_width": 16},
    "optimizer": {"lr": 3e-3, "grad_clip": 1.0},
    "schedule": {"name": "wsd", "warmup_tokens": 512, "decay_fraction": 0.25},
    "train": {"tokens": STEPS * 4 * 32, "batch_size": 4, "eval_every": 32, "eval_tokens": 256,
              "log_every": 8, "checkpoint_every": 8},
    "sweep": {"optimizer.lr": [3e-3, 1e-2]},
}
CLI = [sys.executable, "-m", "scalelaw.cli", "sweep", "run"]


def _env(devices: int) -> dict[str, str]:
    return dict(os.environ, JAX_PLATFORMS="cpu",
                XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _start_pair(spec: Path, out: Path | str) -> list[subprocess.Popen]:
    port = _port()
    return [subprocess.Popen([*CLI, str(spec), "--out", str(out), "--coordinator",
                              f"localhost:{port}", "--num-processes", "2", "--process-id",
                              str(i)], env=_env(2), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for i in range(2)]


def _wait(procs: list[subprocess.Popen], timeout: float = 600) -> list[str]:
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        errs.append(err)
        assert p.returncode == 0, err[-3000:]
    return errs


def _until_a_checkpoint(procs: list[subprocess.Popen], out: Path) -> None:
    """Wait until a member's first checkpoint is on disk (or a process ended)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and all(p.poll() is None for p in procs) and not any(
            p.name.isdigit() for p in out.glob("trials/*/ckpt/*")):
        time.sleep(0.02)


def _losses(out: Path) -> dict[str, list[tuple]]:
    rows = {}
    for folder in sorted((out / "trials").iterdir()):
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        rows[folder.name] = [(r["step"], r["train_loss"], r["eval_loss"])
                             for r in map(json.loads, lines)]
        assert json.loads((folder / "summary.json").read_text())["status"] == "done"
    return rows


def _assert_equal(got: dict, want: dict, rel: float = 1e-5) -> None:
    assert got.keys() == want.keys() and len(want) == 2
    for tid, rows in want.items():
        assert [r[0] for r in got[tid]] == [r[0] for r in rows], tid
        for a, b in zip(got[tid], rows, strict=True):
            for x, y in zip(a[1:], b[1:], strict=True):
                assert (x is None) == (y is None)
                if y is not None:
                    assert x == pytest.approx(y, rel=rel), (tid, a, b)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "mh.yaml"
    path.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def single(spec: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("single") / "out"
    done = subprocess.run([*CLI, str(spec), "--out", str(out)], env=_env(1),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return _losses(out)


@pytest.mark.slow
def test_two_processes_train_the_single_process_numbers(spec, single, tmp_path) -> None:
    out = tmp_path / "out"
    errs = _wait(_start_pair(spec, out))
    _assert_equal(_losses(out), single)
    assert "2 processes (jax.distributed), 4 cpu devices in all" in errs[0]
    assert "done: 2 done of 2 trials" in errs[0]  # process 0 reports ...
    assert "done:" not in errs[1]                 # ... process 1 trains silently
    assert not (out / "run.lock").exists()


@pytest.mark.slow
def test_both_killed_mid_run_then_restarted_resume_to_the_same_numbers(spec, single,
                                                                      tmp_path) -> None:
    out = tmp_path / "out"
    procs = _start_pair(spec, out)
    _until_a_checkpoint(procs, out)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert [p.returncode for p in procs] == [-signal.SIGKILL] * 2
    # killed mid-run: a checkpoint, no member finished
    assert not list(out.glob("trials/*/summary.json")) and any(out.glob("trials/*/ckpt/*"))
    steps = [json.loads(ln)["step"] for f in out.glob("trials/*/metrics.jsonl")
             for ln in f.read_text().splitlines()]
    assert steps and max(steps) < STEPS
    _wait(_start_pair(spec, out))
    _assert_equal(_losses(out), single)


@pytest.mark.slow
def test_a_signal_on_one_host_stops_every_host_at_the_same_chunk(spec, single,
                                                                 tmp_path) -> None:
    """SIGTERM (a preemption notice) to process 1 alone: at the next chunk both processes
    agree to stop, exit 130 at once (not at JAX's heartbeat timeout) with process 0's resume
    line, and a restart finishes with the single-process numbers."""
    out = tmp_path / "out"
    procs = _start_pair(spec, out)
    _until_a_checkpoint(procs, out)
    procs[1].send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    errs = [p.communicate(timeout=300)[1] for p in procs]
    took = time.monotonic() - signalled
    assert [p.returncode for p in procs] == [130, 130], errs[1][-3000:]
    assert took < 60, took  # JAX's own heartbeat timeout would take minutes
    assert "interrupted: finished trials and checkpoints are saved" in errs[0]
    assert "Traceback" not in errs[0] + errs[1]
    assert len(list(out.glob("trials/*/summary.json"))) < 2  # stopped mid-run
    assert not (out / "run.lock").exists()
    _wait(_start_pair(spec, out))
    _assert_equal(_losses(out), single)


@pytest.fixture
def s3(monkeypatch):  # noqa: ANN201
    """A moto S3 server on localhost and a fresh bucket: ``(s3://bucket, env)``."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    port = _port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import fsspec

    fsspec.filesystem("s3", skip_instance_cache=True).mkdir("multihost")
    yield "s3://multihost"
    server.stop()


@pytest.mark.slow
def test_two_processes_on_s3_killed_and_restarted_equal_the_single_process(spec, single, s3,
                                                                           tmp_path) -> None:
    """Each host stages checkpoints in its own folder: process 0 uploads, each restores."""
    import fsspec

    from scalelaw.storage import COMMIT_MARKER

    url = f"{s3}/runs/mh"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    procs = _start_pair(spec, url)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        fs.invalidate_cache()
        if fs.glob(f"{url}/trials/*/ckpt/*/{COMMIT_MARKER}"):
            break
        time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert [p.returncode for p in procs] == [-signal.SIGKILL] * 2
    fs.invalidate_cache()
    assert not fs.glob(f"{url}/trials/*/summary.json")
    _wait(_start_pair(spec, url))
    local = tmp_path / "copy"
    fs.invalidate_cache()
    fs.get(f"{url}/trials", str(local / "trials"), recursive=True)
    _assert_equal(_losses(local), single)


def test_cli_names_the_flag_and_writes_nothing(tmp_path, capsys) -> None:
    spec = write_spec(tmp_path / "s.yaml")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "run", str(spec), "--out", str(tmp_path / "out"),
              "--coordinator", "localhost:1234", "--process-id", "0"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: --num-processes: required"), err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
