"""The spec's ``executor:`` block, ``--executor``/``--ray-address``, and the Ray executor's
parts that need no cluster (task options, progress read from trial files, missing Ray)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from _fake import TINY, FakeTrainer, write_spec

from scalelaw.cli import main
from scalelaw.errors import ConfigError
from scalelaw.sweep import load_spec
from scalelaw.sweep.executor_config import ExecutorConfig, parse_executor, resolve_executor
from scalelaw.sweep.ray_executor import (
    RAY_MISSING,
    _last_step,
    _Running,
    memory_env,
    task_options,
)
from scalelaw.sweep.runner import make_executor
from scalelaw.sweep.spec import load_executor
from scalelaw.sweep.store import SweepStore

RAY_BLOCK = {"kind": "ray", "address": "auto", "resources_per_group": {"GPU": 1},
             "max_retries": 3}


def run(argv: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


# ----------------------------------------------------------------------------- spec block
def test_executor_block_is_parsed_and_leaves_trial_ids_alone(tmp_path):
    plain = load_spec(TINY)
    spec = load_spec({**TINY, "executor": RAY_BLOCK})
    assert spec.executor == ExecutorConfig(kind="ray", address="auto",
                                           resources_per_group={"GPU": 1.0}, max_retries=3)
    assert plain.executor.kind == "local"
    assert [t.trial_id for t in spec.trials()] == [t.trial_id for t in plain.trials()]
    assert [g.group_id for g in spec.groups()] == [g.group_id for g in plain.groups()]
    # read back from a spec file alone (how `sweep run --out DIR` resumes)
    path = write_spec(tmp_path / "s.yaml", executor=RAY_BLOCK)
    assert load_executor(path) == spec.executor
    assert load_executor(write_spec(tmp_path / "p.yaml")).kind == "local"


@pytest.mark.parametrize(("block", "message"), [
    ({"kind": "slurm"}, "executor.kind: must be one of local, ray, got 'slurm'"),
    ({"kind": "ray", "resources_per_group": {"GPU": 0}},
     "executor.resources_per_group.GPU: must be a number > 0, got 0"),
    ({"kind": "ray", "resources_per_group": {"GPU": 1.5}},
     "executor.resources_per_group.GPU: amounts above 1 must be whole (Ray), got 1.5"),
    ({"kind": "ray", "resources_per_group": [1]},
     "executor.resources_per_group: must be a mapping of Ray resource names"),
    ({"max_retries": -1}, "executor.max_retries: must be a non-negative integer, got -1"),
    ({"env_vars": {"XLA_FLAGS": 3}}, "executor.env_vars.XLA_FLAGS: must be a string"),
    ({"adress": "auto"}, "executor.adress: unknown key (allowed: kind, address,"),
    ("ray", "executor: must be a mapping of fields, got 'ray'"),
])
def test_bad_executor_blocks_name_the_field_on_one_line(block, message):
    with pytest.raises(ConfigError) as exc:
        load_spec({**TINY, "executor": block})
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_command_line_choices_win_over_the_spec():
    spec = parse_executor(RAY_BLOCK)
    assert resolve_executor(spec) is spec
    assert resolve_executor(spec, executor="local").kind == "local"
    local = ExecutorConfig()
    moved = resolve_executor(local, ray_address="10.0.0.1:6379")
    assert (moved.kind, moved.address) == ("ray", "10.0.0.1:6379")
    assert resolve_executor(local, executor="ray").address is None
    with pytest.raises(ValueError, match=r"^executor: must be one of local, ray, got 'k8s'$"):
        resolve_executor(local, executor="k8s")
    with pytest.raises(ValueError, match=r"^ray_address: only for the ray executor"):
        resolve_executor(spec, executor="local", ray_address="auto")


# ----------------------------------------------------------------------------- task options
def test_task_options_reserve_resources_and_fit_groups_on_a_gpu(monkeypatch):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    whole = task_options({"GPU": 1.0}, max_retries=3)
    assert whole == {"name": "train_group_task", "num_cpus": 1.0, "num_gpus": 1.0,
                     "max_calls": 1, "max_retries": 3, "retry_exceptions": False}
    half = task_options({"GPU": 0.5, "CPU": 2.0}, max_retries=0)
    assert (half["num_gpus"], half["num_cpus"], half["max_retries"]) == (0.5, 2.0, 0)
    # two groups on one GPU: each preallocates half of JAX's default 75 %
    assert half["runtime_env"] == {"env_vars": {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.375"}}
    assert memory_env(1 / 3) == {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.25"}
    tpu = task_options({"TPU": 4.0}, max_retries=1)
    assert tpu["resources"] == {"TPU": 4.0} and tpu["num_gpus"] == 0.0
    assert "runtime_env" not in tpu
    # the spec's env_vars win over the derived settings; the compile cache is forwarded
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/cache/jax")
    mine = task_options({"GPU": 0.5}, max_retries=1,
                        env_vars={"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.2"})
    assert mine["runtime_env"]["env_vars"] == {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.2",
                                               "JAX_COMPILATION_CACHE_DIR": "/cache/jax"}


# ----------------------------------------------------------------------------- progress
def test_progress_is_read_from_the_trial_files(tmp_path):
    spec = load_spec({**TINY, "train": {**TINY["train"], "tokens": 64 * 128}})
    group = spec.groups()[0]
    dirs = [tmp_path / t.trial_id for t in group.trials]
    for folder in dirs:
        folder.mkdir()
    job = _Running(group, dirs)
    assert job.poll() == 0
    # a member part-way: its last logged step counts, a torn last line is skipped
    (dirs[0] / "metrics.jsonl").write_text(
        json.dumps({"step": 4}) + "\n" + json.dumps({"step": 8}) + "\n" + '{"step": 1')
    assert _last_step(dirs[0] / "metrics.jsonl") == 8
    assert job.poll() == 8
    assert job.poll() == 0  # nothing new
    FakeTrainer()(group.trials, dirs)  # every member final: all steps count
    assert job.poll() == sum(t.steps for t in group.trials) - 8
    (dirs[1] / "summary.json").unlink()  # a retry rewrites files: never reported backwards
    assert job.poll() == 0 and job.reported == sum(t.steps for t in group.trials)


# ----------------------------------------------------------------------------- no ray
@pytest.fixture
def no_ray(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))


def test_a_missing_ray_is_one_line(no_ray):
    with pytest.raises(ConfigError, match=r"^executor.kind: ray needs `pip install "
                                          r"'scalelaw\[ray\]'`$"):
        make_executor(parse_executor({"kind": "ray"}))
    assert make_executor().mode == "auto"  # the local executor needs nothing


def test_cli_without_ray_exits_2_and_writes_nothing(no_ray, tmp_path, capsys):
    spec = write_spec(tmp_path / "tiny.yaml", executor=RAY_BLOCK)
    out = tmp_path / "out"
    for argv in (["sweep", "run", str(spec), "--out", str(out)],
                 ["sweep", "run", str(write_spec(tmp_path / "plain.yaml")), "--out", str(out),
                  "--executor", "ray"]):
        code, _, err = run(argv, capsys)
        assert (code, err) == (2, f"error: {RAY_MISSING}\n")
        assert not out.exists()


def test_resuming_a_directory_uses_its_spec_copys_executor(no_ray, tmp_path, capsys,
                                                          monkeypatch):
    spec = write_spec(tmp_path / "tiny.yaml", executor=RAY_BLOCK)
    out = tmp_path / "out"
    SweepStore.prepare(out, load_spec(spec))
    code, _, err = run(["sweep", "run", "--out", str(out)], capsys)
    assert (code, err) == (2, f"error: {RAY_MISSING}\n")
    assert set(SweepStore.open(out).states().values()) == {"pending"}
    trainer = FakeTrainer()  # --executor local wins over the copy's block
    monkeypatch.setattr("scalelaw.sweep.executors._default_train_fn", lambda: trainer)
    code, _, _ = run(["sweep", "run", "--out", str(out), "--executor", "local"], capsys)
    assert code == 0 and len(trainer.trained) == 2


def test_cli_bad_executor_flags_exit_2(tmp_path, capsys):
    spec, out = write_spec(tmp_path / "tiny.yaml"), tmp_path / "out"
    code, _, err = run(["sweep", "run", str(spec), "--out", str(out), "--executor", "k8s"],
                       capsys)
    assert (code, err) == (2, "error: --executor: must be one of local, ray, got 'k8s'\n")
    code, _, err = run(["sweep", "run", str(spec), "--out", str(out), "--executor", "local",
                        "--ray-address", "auto"], capsys)
    assert code == 2 and err.startswith("error: --ray-address: only for the ray executor")
    assert not out.exists()


def test_importing_scalelaw_does_not_import_ray():
    code = ("import sys, scalelaw, scalelaw.cli, scalelaw.sweep.runner, "
            "scalelaw.sweep.ray_executor; print('ray' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ----------------------------------------------------------------------------- plan
def test_plan_reports_the_executor(tmp_path, peak_cache, capsys):
    code, out, _ = run(["sweep", "plan", str(write_spec(tmp_path / "a.yaml"))], capsys)
    assert code == 0
    assert [ln for ln in out.splitlines() if ln.startswith("executor:")] == [
        "executor: local (groups one after another in this process)"]
    ray_spec = write_spec(tmp_path / "b.yaml", executor=RAY_BLOCK)
    code, out, _ = run(["sweep", "plan", str(ray_spec)], capsys)
    assert "executor: ray (address auto; per group GPU 1; max_retries 3)" in out.splitlines()
    code, out, _ = run(["sweep", "plan", str(ray_spec), "--json"], capsys)
    assert json.loads(out)["executor"] == {**RAY_BLOCK, "resources_per_group": {"GPU": 1.0},
                                           "env_vars": {}}
