"""Sweep directories and token files on object storage, against real servers on localhost.

S3: moto's server mode (``moto[server]``) on a free port, reached through ``s3fs`` with the
usual AWS variables (``AWS_ENDPOINT_URL`` ...). GCS: ``gcp-storage-emulator`` through
``gcsfs`` (``STORAGE_EMULATOR_HOST``). Each test skips cleanly where a package is missing.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "sweep"))
from _fake import TINY, FakeTrainer, write_spec  # noqa: E402

from scalelaw.cli import main  # noqa: E402
from scalelaw.errors import ConfigError  # noqa: E402
from scalelaw.storage import COMMIT_MARKER, Location, committed_steps  # noqa: E402
from scalelaw.sweep.results import collect  # noqa: E402
from scalelaw.sweep.store import LOCK, SweepStore  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_env():
    """A moto S3 server on localhost for this module; yields the AWS variables for it."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    server.stop()


@pytest.fixture
def s3(s3_env, monkeypatch) -> str:
    """A fresh bucket on the moto server: ``s3://<bucket>``."""
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    import fsspec

    bucket = f"b-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(bucket)
    return f"s3://{bucket}"


@pytest.fixture(scope="module")
def gcs_env():
    """A GCS emulator on localhost; yields the variables gcsfs reads to reach it."""
    # gcsfs reads this on import: its zonal-bucket probe needs gRPC, which no emulator has
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    pytest.importorskip("gcsfs")
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    port = _free_port()
    server = emulator.create_server("127.0.0.1", port, in_memory=True)
    server.start()
    yield {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    server.stop()


@pytest.fixture
def gs(gcs_env, monkeypatch) -> str:
    """A fresh bucket on the GCS emulator: ``gs://<bucket>``."""
    import fsspec

    for key, value in gcs_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(fsspec.config.conf, "gcs", {"token": "anon"})
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("gcs", skip_instance_cache=True).mkdir(bucket)
    return f"gs://{bucket}"


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


# ----------------------------------------------------------------------------- Location
def test_local_location_keeps_todays_behaviour(tmp_path):
    root = Location(tmp_path / "d")
    assert root.local == tmp_path / "d" and os.fspath(root) == str(tmp_path / "d")
    root.mkdir()
    (root / "m.jsonl").append_text("a\n")
    (root / "m.jsonl").append_text("b\n")
    assert (tmp_path / "d" / "m.jsonl").read_text() == "a\nb\n"
    assert (root / "lock").create("x") and not (root / "lock").create("y")
    assert (root / "lock").read_text() == "x"
    (root / "ckpt" / "8").mkdir()
    (root / "ckpt" / "8.orbax-checkpoint-tmp-1").mkdir()
    assert committed_steps(root / "ckpt") == [8]
    (root / "ckpt").remove()
    assert [p.name for p in root.iterdir()] == ["lock", "m.jsonl"]


def test_a_url_never_becomes_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^root: nosuch://b/x: .*nosuch"):
        Location("nosuch://b/x")
    with pytest.raises(TypeError, match="is a URL"):
        Path(Location("memory://b/x"))
    assert list(tmp_path.iterdir()) == []


def test_s3_location_operations(s3):
    root = Location(f"{s3}/sweeps/a")
    root.check()
    (root / "x.json").write_text("1")
    (root / "m.jsonl").append_text("a\n")
    (root / "m.jsonl").append_text("b\n")
    assert (root / "m.jsonl").read_text() == "a\nb\n"
    assert (root / "run.lock").create("me") and not (root / "run.lock").create("you")
    assert (root / "run.lock").read_text() == "me"
    assert [p.name for p in root.iterdir()] == ["m.jsonl", "run.lock", "x.json"]
    with pytest.raises(ConfigError, match=r"^root: s3://no-such-bucket-zz/x: bucket"):
        Location("s3://no-such-bucket-zz/x").check()


def test_s3_folder_upload_commits_with_a_marker_last(s3, tmp_path):
    (tmp_path / "5" / "state").mkdir(parents=True)
    (tmp_path / "5" / "state" / "a.bin").write_bytes(b"\0" * 10)
    ckpt = Location(f"{s3}/t/ckpt")
    (ckpt / "5").upload(tmp_path / "5")
    (ckpt / "9" / "state" / "a.bin").write_bytes(b"half")  # an upload cut short: no marker
    assert (ckpt / "5" / COMMIT_MARKER).exists()
    assert committed_steps(ckpt) == [5]
    (ckpt / "5").download(tmp_path / "back")
    assert (tmp_path / "back" / "state" / "a.bin").read_bytes() == b"\0" * 10


# ----------------------------------------------------------------------------- the lock
def test_s3_lock_is_exclusive_and_a_stale_lease_is_taken_over(s3, monkeypatch):
    from scalelaw.sweep import load_spec

    store = SweepStore.prepare(f"{s3}/sw", load_spec(TINY))
    with store.locked():
        held = json.loads((store.root / LOCK).read_text())
        assert held["pid"] == os.getpid() and "heartbeat" in held
        with pytest.raises(ConfigError, match="already being run"), store.locked():
            pass
    assert not (store.root / LOCK).exists()
    # another host's lock whose heartbeat stopped longer ago than the lease: stale
    (store.root / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "t",
                                               "heartbeat": time.time() - 10_000}))
    assert store.lock_holder() is None
    with store.locked():
        assert json.loads((store.root / LOCK).read_text())["host"] == socket.gethostname()
    # a live one is not
    (store.root / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "t",
                                               "heartbeat": time.time()}))
    with pytest.raises(ConfigError, match="already being run by process 1 on elsewhere"), \
            store.locked():
        pass


def test_s3_heartbeat_renews_the_lease(s3, monkeypatch):
    from scalelaw.sweep import load_spec

    monkeypatch.setattr("scalelaw.sweep.run_lock.HEARTBEAT_SECONDS", 0.2)
    store = SweepStore.prepare(f"{s3}/sw", load_spec(TINY))
    with store.locked():
        first = json.loads((store.root / LOCK).read_text())["heartbeat"]
        time.sleep(1.0)
        assert json.loads((store.root / LOCK).read_text())["heartbeat"] > first


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("url", "needle"), [
    ("nosuch://bucket/sweep", "--out: nosuch://bucket/sweep: "),
    ("s3://no-such-bucket-zz/sweep", "--out: s3://no-such-bucket-zz/sweep: bucket"),
])
def test_cli_bad_url_exits_2_with_one_line_and_writes_nothing(url, needle, s3, tmp_path,
                                                             monkeypatch, capsys):
    spec = write_spec(tmp_path / "tiny.yaml")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["sweep", "run", str(spec), "--out", url], capsys)
    assert code == 2 and err.startswith("error: " + needle) and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_a_missing_backend_names_the_package(monkeypatch):
    import fsspec.registry

    def missing(*args, **kwargs):  # noqa: ANN002, ANN003
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing)
    with pytest.raises(ConfigError, match=r"^root: s3://b/x: Install s3fs to access S3$"):
        Location("s3://b/x")


# ----------------------------------------------------------------------------- sweeps
def _same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert not a.duplicated(["trial_id", "step"]).any()
    pd.testing.assert_frame_equal(a.drop(columns="wall_time"), b.drop(columns="wall_time"))


@pytest.mark.parametrize("store_name", ["s3", "gs"])
def test_fake_sweep_on_a_url_collects_the_local_table(store_name, request, tmp_path,
                                                      monkeypatch, capsys):
    url = request.getfixturevalue(store_name) + "/sweeps/tiny"
    trainer = FakeTrainer()
    monkeypatch.setattr("scalelaw.sweep.executors._default_train_fn", lambda: trainer)
    spec = write_spec(tmp_path / "tiny.yaml")
    for out in (str(tmp_path / "local"), url):
        code, _, err = run_cli(["sweep", "run", str(spec), "--out", out], capsys)
        assert code == 0, err
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "gs:").exists()
    code, out, err = run_cli(["sweep", "status", url, "--json"], capsys)
    assert code == 0 and json.loads(out)["totals"]["done"] == 2, err
    code, out, err = run_cli(["sweep", "collect", url, "--json"], capsys)
    assert code == 0 and json.loads(out)["path"] == f"{url}/results.parquet", err
    remote = pd.read_parquet(io.BytesIO(Location(f"{url}/results.parquet").read_bytes()))
    _same_table(remote, collect(tmp_path / "local")[1])
    code, _, err = run_cli(["sweep", "run", str(spec), "--out", url], capsys)
    assert code == 0 and "nothing to do" in err and len(trainer.trained) == 4


def test_checkpoints_round_trip_through_s3(s3):
    import jax.numpy as jnp

    from scalelaw.train.checkpoint import Checkpointer

    state = {"params": {"w": jnp.arange(3.0)}, "opt_state": (jnp.zeros(3),),
             "step": jnp.int32(5), "diverged_step": jnp.int32(-1)}
    ckpt = Checkpointer(f"{s3}/t/ckpt")
    for step in (5, 10, 15):
        ckpt.save(step, {**state, "step": jnp.int32(step)}, {"loss_sum": float(step)})
    ckpt.close()
    again = Checkpointer(f"{s3}/t/ckpt")  # a new process: nothing staged locally
    assert again.all_steps() == [10, 15] and again.latest_step() == 15
    restored, meta = again.restore(15, state)
    again.close()
    assert int(restored["step"]) == 15 and meta["loss_sum"] == 15.0
    np.testing.assert_array_equal(restored["params"]["w"], np.arange(3.0))


def test_token_files_at_a_url_are_cached_once(s3, tmp_path, monkeypatch):
    from scalelaw.corpus import load_corpus

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tokens = (np.arange(5000) % 300).astype(np.uint16)
    Location(f"{s3}/data/train.bin").write_bytes(tokens.tobytes())
    corpus = load_corpus({"source": "tokens", "path": f"{s3}/data/train.bin", "vocab": 300,
                          "val_fraction": 0.1})
    assert len(corpus.train) + len(corpus.val) == 5000
    np.testing.assert_array_equal(np.asarray(corpus.train[:10]), tokens[:10])
    assert any((tmp_path / "cache" / "scalelaw" / "tokens").iterdir())
    with pytest.raises(ConfigError, match=r"^data.path: no such file: s3://"):
        load_corpus({"source": "tokens", "path": f"{s3}/data/missing.bin", "vocab": 300})


@pytest.mark.slow
def test_real_sweep_on_s3_killed_resumed_and_collected_equals_local(s3, s3_env, tmp_path,
                                                                  capsys):
    """SIGKILL a real `scalelaw sweep run --out s3://...` after its first committed
    checkpoint; the re-run takes over the stale lock and resumes, and the collected table
    equals the same sweep's on a local disk (no row lost or duplicated)."""
    import fsspec

    spec = write_spec(tmp_path / "long.yaml", train={**TINY["train"], "tokens": 64 * 128})
    url = f"{s3}/sweeps/long"
    cmd = [sys.executable, "-m", "scalelaw.cli", "sweep", "run", str(spec), "--out", url]
    env = {**os.environ, **s3_env}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    fs = fsspec.filesystem("s3")
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        fs.invalidate_cache()
        if fs.glob(f"{url}/trials/*/ckpt/*/{COMMIT_MARKER}"):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    store = SweepStore.open(url)
    assert (store.root / LOCK).exists() and "interrupted" in store.states().values()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert set(SweepStore.open(url).states().values()) == {"done"}
    code, _, err = run_cli(["sweep", "run", str(spec), "--out", str(tmp_path / "local")], capsys)
    assert code == 0, err
    _same_table(collect(url)[1], collect(tmp_path / "local")[1])
