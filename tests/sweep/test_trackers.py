"""The spec's ``tracker:`` block: W&B (offline) and TensorBoard runs read back and compared
with ``metrics.jsonl``; a failing tracker warns and never changes training."""

from __future__ import annotations

import importlib.util
import json
import math
import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest
from _fake import TINY, FakeTrainer, write_spec

from scalelaw.errors import ConfigError
from scalelaw.sweep import load_spec
from scalelaw.sweep.ray_executor import train_group_task
from scalelaw.sweep.runner import make_executor, run_sweep
from scalelaw.sweep.spec import load_tracker
from scalelaw.sweep.store import SweepStore
from scalelaw.train import trackers
from scalelaw.train.records import read_metrics, read_summary
from scalelaw.train.trackers import TrackerConfig, TrackerWarning, make_tracker

LOGGED = ("train_loss", "eval_loss", "lr", "tokens", "grad_norm")


def _run(tmp_path: Path, tracker: dict[str, Any] | None, name: str = "out",
         spec: dict[str, Any] | None = None) -> tuple[Any, SweepStore]:
    """Train the tiny sweep (real trainer, members in sequence) with ``tracker``."""
    loaded = load_spec({**(spec or TINY), **({"tracker": tracker} if tracker else {})})
    store = SweepStore.prepare(tmp_path / name, loaded)
    summary = run_sweep(store, make_executor(loaded.executor, mode="sequential",
                                             tracker=loaded.tracker))
    assert summary.states == {"done": len(loaded)}
    return loaded, store


def _series(rows: list[dict[str, Any]], key: str) -> dict[int, float]:
    return {r["step"]: r[key] for r in rows if r.get(key) is not None}


# ----------------------------------------------------------------------------- the block
def test_tracker_block_is_parsed_and_leaves_trial_ids_alone(tmp_path):
    plain = load_spec(TINY)
    spec = load_spec({**TINY, "tracker": {"kind": "wandb", "project": "p", "mode": "offline",
                                          "tags": ["cpu"]}})
    assert spec.tracker == TrackerConfig(kind="wandb", project="p", mode="offline",
                                         tags=("cpu",))
    assert plain.tracker is None
    assert [t.trial_id for t in spec.trials()] == [t.trial_id for t in plain.trials()]
    assert [g.group_id for g in spec.groups()] == [g.group_id for g in plain.groups()]
    path = write_spec(tmp_path / "s.yaml", tracker={"kind": "tensorboard", "dir": "tb"})
    assert load_tracker(path) == TrackerConfig(kind="tensorboard", dir="tb")
    assert load_tracker(write_spec(tmp_path / "p.yaml")) is None
    # plain config: it travels to Ray workers
    assert pickle.loads(pickle.dumps(spec.tracker)) == spec.tracker


@pytest.mark.parametrize(("block", "message"), [
    ({"kind": "mlflow"}, "tracker.kind: must be one of wandb, tensorboard, got 'mlflow'"),
    ({"project": "p"}, "tracker.kind: required"),
    ({"kind": "tensorboard", "mode": "offline"},
     "tracker.mode: only for kind wandb (tensorboard takes kind, dir, tags)"),
    ({"kind": "wandb", "mode": "cloud"}, "tracker.mode: must be one of online, offline"),
    ({"kind": "wandb", "projet": "p"}, "tracker.projet: unknown key (allowed: kind, project,"),
    ("wandb", "tracker: must be a mapping of fields, got 'wandb'"),
])
def test_bad_tracker_blocks_name_the_field_on_one_line(block, message):
    with pytest.raises(ConfigError) as exc:
        load_spec({**TINY, "tracker": block})
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


@pytest.fixture
def no_wandb(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))


def test_missing_tracker_package_fails_at_run_start(no_wandb, tmp_path, capsys):
    from scalelaw.cli import main

    message = "tracker.kind: wandb needs the wandb package: pip install 'scalelaw[wandb]'"
    with pytest.raises(ConfigError, match=r"^" + message.replace("[", r"\[") + "$"):
        make_executor(tracker=TrackerConfig(kind="wandb"))
    make_executor(tracker=TrackerConfig(kind="tensorboard"))  # only the missing one
    spec = write_spec(tmp_path / "s.yaml", tracker={"kind": "wandb"})
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "run", str(spec), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "out").exists()  # nothing written
    # resuming a directory (no spec given) checks the tracker of its spec copy
    SweepStore.prepare(tmp_path / "resume", load_spec(spec), spec_text=spec.read_text())
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "run", "--out", str(tmp_path / "resume")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_the_tracker_reaches_the_trainer_local_and_in_a_ray_task(tmp_path):
    seen: list[Any] = []

    def train(trials, dirs, *, mode, progress=None, tracker=None):  # noqa: ANN001
        seen.append(tracker)
        return FakeTrainer()(trials, dirs, mode=mode, progress=progress)

    config = TrackerConfig(kind="tensorboard")
    spec = load_spec(TINY)
    store = SweepStore.prepare(tmp_path / "out", spec)
    executor = make_executor(mode="sequential", tracker=config)
    executor.train_fn = train  # type: ignore[union-attr]
    run_sweep(store, executor)
    group = spec.groups()[0]
    dirs = [tmp_path / "ray" / t.trial_id for t in group.trials]
    for folder in dirs:
        folder.mkdir(parents=True)
    train_group_task(group.trials, dirs, "sequential", None, train, config)
    assert seen == [config, config]


def test_a_package_missing_where_the_trainer_runs_is_a_warning(tmp_path, monkeypatch):
    """E.g. a Ray worker without the extra: the run already started, so training goes on."""
    import sys

    from scalelaw.storage import Location

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import raises ImportError
    monkeypatch.setattr(trackers, "_WARNED", set())
    (trial,) = load_spec({**TINY, "sweep": {"optimizer.lr": [1e-2]}}).trials()
    tracker = make_tracker(TrackerConfig(kind="tensorboard"))
    with pytest.warns(TrackerWarning, match=r"tracker tensorboard failed in start\(\) for "
                                            rf"trial {trial.trial_id} \(ConfigError: tracker.kind: "
                                            r"tensorboard needs the tensorboardX package"):
        tracker.start(trial, Location(tmp_path), 0)
    tracker.log([{"step": 4, "train_loss": 1.0}])  # switched off: nothing, no error
    tracker.finish({"status": "done"})
    assert not (tmp_path / "tensorboard").exists()


def test_only_process_zero_tracks(monkeypatch):
    import jax

    config = TrackerConfig(kind="tensorboard")
    assert make_tracker(config).tracker is not None
    assert make_tracker(None).tracker is None
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    assert make_tracker(config).tracker is None


# ----------------------------------------------------------------------------- TensorBoard
def _assert_events_match(event_accumulator: Any, folder: Path) -> Any:
    """The trial's TensorBoard scalars equal its metrics rows; returns the accumulator."""
    rows = read_metrics(folder)
    acc = event_accumulator.EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    for key in LOGGED:
        got = {e.step: e.value for e in acc.Scalars(key)}
        want = _series(rows, key)
        assert got.keys() == want.keys() and want, key
        for step, value in want.items():  # TensorBoard keeps float32
            assert math.isclose(got[step], value, rel_tol=1e-6), (key, step)
    return acc


def test_tensorboard_events_hold_the_metrics_rows(tmp_path):
    pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    spec, store = _run(tmp_path, {"kind": "tensorboard"})
    for trial in spec.trials():
        folder = store.trial_dir(trial.trial_id).local
        acc = _assert_events_match(event_accumulator, folder)
        config = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
        assert json.loads(config.strip("`\n")) == json.loads(trial.to_json())
        summary = acc.Tensors("summary/text_summary")[0].tensor_proto.string_val[0].decode()
        assert json.loads(summary.strip("`\n")) == read_summary(folder)


def test_a_failing_tracker_warns_once_and_training_is_unchanged(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    plain, plain_store = _run(tmp_path, None, "plain")

    def broken(self, rows):  # noqa: ANN001
        raise ConnectionError("tracker server unreachable")

    monkeypatch.setattr(trackers.TensorBoardTracker, "log", broken)
    monkeypatch.setattr(trackers, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec, store = _run(tmp_path, {"kind": "tensorboard"}, "tracked")
    mine = [w for w in caught if issubclass(w.category, TrackerWarning)]
    assert len(mine) == 1, [str(w.message) for w in caught]  # two trials, one warning
    assert "tracker tensorboard failed in log()" in str(mine[0].message)
    assert "ConnectionError: tracker server unreachable" in str(mine[0].message)
    for trial in spec.trials():
        mine_rows = read_metrics(store.trial_dir(trial.trial_id))
        theirs = read_metrics(plain_store.trial_dir(trial.trial_id))
        strip = [{k: v for k, v in r.items() if k != "wall_time"} for r in mine_rows]
        assert strip == [{k: v for k, v in r.items() if k != "wall_time"} for r in theirs]
        assert read_summary(store.trial_dir(trial.trial_id))["status"] == "done"


# ----------------------------------------------------------------------------- W&B
def _wandb_records(path: Path) -> list[Any]:
    """The protobuf records of an offline run's ``.wandb`` file.

    The file is W&B's transaction log: a 7-byte header (``:W&B``, magic, version), then
    LevelDB's log format: 32 KiB blocks of chunks, each ``crc32 (4) | length (2, little
    endian) | type (1: full, 2: first, 3: middle, 4: last)`` and its bytes.
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B transaction log"
    block, pos, pending, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
        elif kind == 0:  # zero padding at the end of the file
            break
    return out


def _key(item: Any) -> str:
    """An item's name: ``key``, or its ``nested_key`` parts joined by dots."""
    return item.key or ".".join(item.nested_key)


def _read_wandb_run(folder: Path) -> dict[str, Any]:
    (log,) = folder.glob("*.wandb")
    run: dict[str, Any] = {"history": [], "summary": {}}
    for record in _wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, group=r.run_group, name=r.display_name, tags=list(r.tags),
                       project=r.project,
                       config={i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "history":
            run["history"].append({_key(i): json.loads(i.value_json)
                                   for i in record.history.item})
        elif kind == "summary":
            run["summary"].update({_key(i): json.loads(i.value_json)
                                   for i in record.summary.update})
    return run


def test_wandb_offline_runs_hold_the_metrics_rows(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))  # the block's dir wins
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    spec, store = _run(tmp_path, {"kind": "wandb", "mode": "offline", "project": "tiny-p",
                                  "tags": ["cpu"], "dir": str(tmp_path / "wb")})
    folders = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    runs = {r["name"]: r for r in map(_read_wandb_run, folders)}
    assert sorted(runs) == sorted(t.trial_id for t in spec.trials())
    for trial in spec.trials():
        folder = store.trial_dir(trial.trial_id)
        run, rows = runs[trial.trial_id], read_metrics(folder)
        kept = json.loads((folder / "wandb.json").read_text())["run_id"]
        assert run["id"] == kept and kept.startswith(trial.trial_id)
        assert (run["group"], run["project"]) == ("tiny", "tiny-p")
        assert run["tags"] == ["width=32", f"lr={trial.optimizer.lr:g}", "batch=4", "cpu"]
        assert run["config"]["model"] == json.loads(trial.to_json())["model"]
        assert run["config"]["trial_id"] == trial.trial_id
        history = [h for h in run["history"] if "train_loss" in h]
        assert [h["_step"] for h in history] == [r["step"] for r in rows]
        for key in LOGGED:
            assert _series([{**h, "step": h["_step"]} for h in history], key) == \
                _series(rows, key), key  # the same doubles
        summary = read_summary(folder)
        assert summary is not None
        assert run["summary"]["final_eval_loss"] == summary["final_eval_loss"]
        assert run["summary"]["status"] == "done"


def test_a_resumed_trial_rewrites_its_tensorboard_steps_after_the_checkpoint(tmp_path):
    """Rows after the checkpoint are dropped from metrics.jsonl on resume; TensorBoard's
    events after it are purged the same way (no step twice, the values of the rerun)."""
    pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    from scalelaw.train.loop import train_group

    spec = load_spec({**TINY, "sweep": {"optimizer.lr": [1e-2]},
                      "train": {**TINY["train"], "checkpoint_every": 16}})
    (trial,) = spec.trials()
    folder = tmp_path / trial.trial_id
    config = TrackerConfig(kind="tensorboard")
    done = []

    def stop(steps: int) -> None:  # chunks end at 10, 16, 26: stop with rows 20, 24 unsaved
        done.append(steps)
        if sum(done) >= 26:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_group([trial], [folder], mode="sequential", progress=stop, tracker=config)
    assert [r["step"] for r in read_metrics(folder)][-1] == 24  # beyond the checkpoint at 16
    [result] = train_group([trial], [folder], mode="sequential", tracker=config)
    assert result.status == "done"
    rows = read_metrics(folder)
    acc = event_accumulator.EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    for key in ("train_loss", "lr", "tokens"):
        events = acc.Scalars(key)
        assert [e.step for e in events] == [r["step"] for r in rows], key
        for event, row in zip(events, rows, strict=True):
            assert math.isclose(event.value, row[key], rel_tol=1e-6), (key, row["step"])


@pytest.mark.slow
def test_ray_workers_open_the_tracker_runs(tmp_path):
    """On Ray the tracker is plain config sent with each group; the worker writes the runs."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    from scalelaw.sweep.executor_config import ExecutorConfig

    loaded = load_spec({**TINY, "tracker": {"kind": "tensorboard"}})
    store = SweepStore.prepare(tmp_path / "out", loaded)
    executor = make_executor(ExecutorConfig(kind="ray"), mode="sequential",
                             tracker=loaded.tracker)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_sweep(store, executor)
    finally:
        ray.shutdown()
    assert summary.states == {"done": 2}
    for trial in loaded.trials():
        _assert_events_match(event_accumulator, store.trial_dir(trial.trial_id).local)
