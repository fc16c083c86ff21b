"""`scalelaw sweep plan|run|status|collect`: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from _fake import TINY, FakeTrainer, MemberResult, write_spec

from scalelaw.cli import main
from scalelaw.sweep import load_spec
from scalelaw.sweep.store import INDEX, SweepStore


def run(argv: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def fake(monkeypatch) -> FakeTrainer:
    trainer = FakeTrainer()
    monkeypatch.setattr("scalelaw.sweep.executors._default_train_fn", lambda: trainer)
    return trainer


@pytest.fixture
def spec_path(tmp_path) -> Path:
    return write_spec(tmp_path / "tiny.yaml")


# ----------------------------------------------------------------------------- plan
def test_plan_json_and_table(tmp_path, spec_path, peak_cache, capsys):
    two_widths = write_spec(tmp_path / "w.yaml", sweep={"model.width": [32, 64],
                                                        "optimizer.lr": [2e-3, 1e-2, 3e-2]})
    code, out, err = run(["sweep", "plan", str(two_widths), "--json"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["trials"] == 6 and len(plan["groups"]) == 2 and plan["method"] == "model"
    assert plan["peak_flops"] == peak_cache
    g = plan["groups"][0]
    assert (g["members"], g["steps"], g["varying"]) == (3, 40, ["optimizer.lr"])
    per_token = 6 * (12 * 32**2 + 32 * 256) + 12 * 32 * 32   # width 32, depth 1, T 32
    train = 3 * 40 * 128 * per_token
    evals = 3 * (40 // 16 + 1) * 256 * per_token / 3         # eval_tokens 256, fwd only
    assert g["flops"] == pytest.approx(train + evals)
    assert g["seconds"] == pytest.approx((train + evals) / (peak_cache * 0.10) + 3.0)
    code, out, err = run(["sweep", "plan", str(spec_path)], capsys)
    assert code == 0 and "mup w32 d1 T32 B4" in out and "measured f32 matmul" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "tiny.yaml", "w.yaml"]


# ----------------------------------------------------------------------------- run & co
def test_run_status_collect_rerun(tmp_path, spec_path, fake, capsys):
    out = tmp_path / "out"
    code, _, err = run(["sweep", "run", str(spec_path), "--out", str(out)], capsys)
    assert code == 0, err
    assert "done: 2 done of 2 trials" in err and len(fake.trained) == 2
    code, text, err = run(["sweep", "status", str(out)], capsys)
    assert code == 0 and "best lr" in text and "tiny" in text
    code, text, _ = run(["sweep", "status", str(out), "--json"], capsys)
    data = json.loads(text)
    assert data["totals"]["done"] == 2 and data["totals"]["pending"] == 0
    grid = data["best_lr"]
    assert grid["lrs"] == [2e-3, 1e-2] and grid["rows"][0]["key"] == {"parametrization": "mup",
                                                                       "width": 32}
    code, text, err = run(["sweep", "collect", str(out)], capsys)
    assert code == 0 and "20 rows, 2 trials" in text and err == ""
    assert len(pd.read_parquet(out / "results.parquet")) == 20
    # re-running (with the spec, or from the directory alone) trains nothing
    code, _, err = run(["sweep", "run", str(spec_path), "--out", str(out)], capsys)
    assert code == 0 and "nothing to do" in err
    code, _, err = run(["sweep", "run", "--out", str(out)], capsys)
    assert code == 0 and "nothing to do" in err and len(fake.trained) == 2


def test_max_groups_and_resume_hint(tmp_path, fake, capsys):
    spec = write_spec(tmp_path / "w.yaml", sweep={"model.width": [32, 64],
                                                  "optimizer.lr": [2e-3, 1e-2]})
    out = tmp_path / "out"
    code, _, err = run(["sweep", "run", str(spec), "--out", str(out), "--max-groups", "1"],
                       capsys)
    assert code == 0 and "1 groups left" in err and len(fake.trained) == 2
    data = json.loads(run(["sweep", "status", str(out), "--json"], capsys)[1])
    assert [(g["width"], g["done"], g["pending"]) for g in data["groups"]] == [(32, 2, 0),
                                                                               (64, 0, 2)]
    code, text, err = run(["sweep", "collect", str(out)], capsys)
    assert code == 0 and "not finished" in err
    code, _, err = run(["sweep", "run", "--out", str(out)], capsys)
    assert code == 0 and len(fake.trained) == 4


def test_interrupted_trial_shows_in_status(tmp_path, spec_path, capsys):
    store = SweepStore.prepare(tmp_path / "out", load_spec(
        spec_path))
    folder = store.trial_dir(store.records[0]["trial_id"])
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"step": 4, "train_loss": 5.0}\n')
    code, text, _ = run(["sweep", "status", str(store.root)], capsys)
    assert code == 0 and "interrupted" in text and "resume with" in text


def test_failed_members_exit_1(tmp_path, spec_path, monkeypatch, capsys):
    def failing(trials, dirs, *, mode, progress):  # noqa: ANN001, ANN202
        return [MemberResult(t.trial_id, "failed", None, 0, None, None) for t in trials]

    monkeypatch.setattr("scalelaw.sweep.executors._default_train_fn", lambda: failing)
    code, _, err = run(["sweep", "run", str(spec_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "2 trial(s) failed" in err


def test_ctrl_c_stops_cleanly_with_exit_130(tmp_path, spec_path, monkeypatch, capsys):
    trainer = FakeTrainer()

    def interrupting(trials, dirs, *, mode, progress):  # noqa: ANN001, ANN202
        def report(k: int) -> None:
            if not trainer.trained[1:]:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during the first member
            progress(k)
        return trainer(trials, dirs, mode=mode, progress=report)

    monkeypatch.setattr("scalelaw.sweep.executors._default_train_fn", lambda: interrupting)
    out = tmp_path / "out"
    code, _, err = run(["sweep", "run", str(spec_path), "--out", str(out)], capsys)
    assert code == 130
    assert f"resume with `scalelaw sweep run --out {out}`" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not (out / "run.lock").exists()


# ----------------------------------------------------------------------------- errors
@pytest.fixture
def cases(tmp_path, spec_path) -> dict[str, tuple[list[str], str]]:
    bad = write_spec(tmp_path / "bad.yaml", model={**TINY["model"], "width": 33})
    other = write_spec(tmp_path / "other.yaml", sweep={"optimizer.lr": [1e-3]})
    meshed = write_spec(tmp_path / "meshed.yaml", mesh={"members": 1024})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    (tmp_path / "afile").write_text("")
    sweep = tmp_path / "sweep"
    SweepStore.prepare(sweep, load_spec(spec_path))
    s, o = str(spec_path), str(tmp_path / "new")
    return {
        "missing spec": (["sweep", "run", str(tmp_path / "nope.yaml"), "--out", o],
                         "no such spec file"),
        "malformed spec": (["sweep", "run", str(bad), "--out", o], "model.width"),
        "spec is a directory": (["sweep", "plan", str(tmp_path)], "is a directory"),
        "bad mode": (["sweep", "run", s, "--out", o, "--mode", "fast"], "--mode"),
        "out is a file": (["sweep", "run", s, "--out", str(tmp_path / "afile")], "is a file"),
        "out not a sweep": (["sweep", "run", s, "--out", str(tmp_path / "full")],
                            "not a sweep directory"),
        "different spec": (["sweep", "run", str(other), "--out", str(sweep)], "--extend"),
        "resume non-sweep": (["sweep", "run", "--out", o], "no such sweep directory"),
        "status non-sweep": (["sweep", "status", str(tmp_path / "full")], "not a sweep"),
        "collect non-sweep": (["sweep", "collect", str(tmp_path)], "not a sweep directory"),
        "collect bad out": (["sweep", "collect", str(sweep), "--out",
                             str(tmp_path / "no" / "r.parquet")], "does not exist"),
        "max-groups 0": (["sweep", "run", s, "--out", o, "--max-groups", "0"], "max-groups"),
        "mesh too big": (["sweep", "run", str(meshed), "--out", o], "mesh: members 1024"),
    }


CASES = ["missing spec", "malformed spec", "spec is a directory", "bad mode", "out is a file",
         "out not a sweep", "different spec", "resume non-sweep", "status non-sweep",
         "collect non-sweep", "collect bad out", "max-groups 0", "mesh too big"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, cases, tmp_path, fake, capsys):
    argv, needle = cases[case]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    index = (tmp_path / "sweep" / INDEX).read_text()
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "sweep" / INDEX).read_text() == index and fake.trained == []


def test_sigint_in_a_real_run_then_resume(tmp_path, spec_path):
    """Ctrl-C on a real subprocess: exit 130 after the current chunk, then resume."""
    spec = write_spec(tmp_path / "long.yaml", train={**TINY["train"], "tokens": 96 * 128})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scalelaw.cli", "sweep", "run"]
    proc = subprocess.Popen([*cmd, str(spec), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not any(
            p.name.isdigit() for p in out.glob("trials/*/ckpt/*")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume with" in err and not (out / "run.lock").exists()
    states = SweepStore.open(out).states()
    assert "interrupted" in states.values()
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert set(SweepStore.open(out).states().values()) == {"done"}


def test_run_refuses_an_untrainable_family_before_writing(tmp_path, capsys):
    mlp = write_spec(tmp_path / "mlp.yaml", model={"family": "mlp", "width": 32, "depth": 1,
                                                   "d_in": 8, "d_out": 2})
    out = tmp_path / "out"
    code, _, err = run(["sweep", "run", str(mlp), "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and "model.family" in err, err
    assert not out.exists()


# --------------------------------------------------------------------------- recommend
def bowl(lr: float, width: int, step: int) -> float:
    """Loss with its optimum at lr = 4e-3 for every width (muP-like transfer)."""
    return 3.0 - 0.1 * math.log2(width) + 0.05 * math.log2(lr / 4e-3) ** 2 + 1.0 / step


@pytest.fixture
def transfer_sweep(tmp_path, monkeypatch, capsys) -> Path:
    monkeypatch.setattr("scalelaw.sweep.executors._default_train_fn",
                        lambda: FakeTrainer(loss=bowl))
    spec = write_spec(tmp_path / "t.yaml", sweep={
        "model.width": [32, 64, 128], "optimizer.lr": {"log2_range": [-11, -5], "num": 7}})
    out = tmp_path / "sweep"
    code, _, err = run(["sweep", "run", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    return out


def test_recommend_from_a_sweep(transfer_sweep, tmp_path, capsys):
    from scalelaw.fit.result import load_fit
    from scalelaw.models.config import TransformerConfig, param_count

    save = tmp_path / "transfer.json"
    argv = ["sweep", "recommend", str(transfer_sweep), "--width", "1024", "--tokens", "1e9"]
    code, out, err = run([*argv, "--json", "--save", str(save)], capsys)
    assert code == 0, err
    data = json.loads(out)
    rec, fit = data["recommendation"], data["transfer"]
    assert fit["params"]["width_exponent"] == pytest.approx(0.0, abs=1e-9)
    assert rec["lr"] == pytest.approx(4e-3, rel=1e-9)
    n = param_count(TransformerConfig(width=1024, depth=1, head_dim=16, context=32))
    assert rec["n_params"] == n
    hidden = next(r for r in rec["per_role"] if r["role"].startswith("hidden"))
    assert hidden["lr"] == pytest.approx(4e-3 * 32 / 1024)  # the sweep's base width is 32
    assert load_fit(save).kind == "transfer"
    code, out, err = run(argv, capsys)
    assert code == 0 and "peak lr" in out
    assert re.search(r"lr\*\(width\) ~ width\^s: s = [+-]0\.000", out), out
    assert "prediction: no drift (the mup default)" in out


@pytest.mark.parametrize(("extra", "needle"), [
    (["--width", "1000"], "--width: "),
    (["--width", "1024", "--tokens", "-1"], "--tokens"),
    (["--width", "1024", "--parametrization", "sp"], "--parametrization: 'sp'"),
    (["--width", "1024", "--save", "/no/such/dir/t.json"], "--save"),
    (["--width", "1024", "--drift", "up"], "--drift"),
])
def test_recommend_bad_input(transfer_sweep, extra, needle, capsys):
    argv = ["sweep", "recommend", str(transfer_sweep), "--tokens", "1e9", *extra]
    code, out, err = run(argv, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err, err


def test_recommend_json_is_strict_and_top_level_recommend_reads_the_fit(transfer_sweep,
                                                                         tmp_path, capsys):
    save = tmp_path / "t.json"
    code, out, err = run(["sweep", "recommend", str(transfer_sweep), "--width", "1024",
                          "--tokens", "1e9", "--drift", "fit", "--json", "--save", str(save)],
                         capsys)
    assert code == 0, err
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    rec = data["recommendation"]
    assert rec["seq_len"] == 32  # the sweep's context
    assert any("tuned at batch 128 tokens" in n for n in rec["notes"])
    code, out, err = run(["recommend", "--params", "1e8", "--tokens", "1e9", "--laws",
                          str(save), "--width", "1024", "--json"], capsys)
    assert code == 0, err
    hidden = next(r for r in json.loads(out)["per_role"] if r["role"].startswith("hidden"))
    assert hidden["lr_mult"] == pytest.approx(32 / 1024)  # the sweep's muP, base width 32
    code, _, err = run(["recommend", "--params", "1e8", "--tokens", "1e9", "--laws", str(save),
                        "--width", "1024", "--parametrization", "mup", "--base-width", "64"],
                       capsys)
    assert code == 2 and "base width 32" in err


def test_recommend_refuses_a_sweep_varying_more_than_width_and_lr(tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setattr("scalelaw.sweep.executors._default_train_fn",
                        lambda: FakeTrainer(loss=bowl))
    spec = write_spec(tmp_path / "d.yaml", sweep={
        "model.width": [32, 64], "model.depth": [1, 2],
        "optimizer.lr": {"log2_range": [-11, -5], "num": 7}})
    out = tmp_path / "sweep"
    assert run(["sweep", "run", str(spec), "--out", str(out)], capsys)[0] == 0
    code, _, err = run(["sweep", "recommend", str(out), "--width", "1024", "--tokens", "1e9",
                        "--params", "1e8"], capsys)
    assert code == 2 and "the sweep also varies model.depth" in err and err.count("\n") == 1, err
