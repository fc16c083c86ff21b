"""`scalelaw fit-hparams` and `scalelaw recommend`: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalelaw.cli import main
from scalelaw.fit.result import load_fit

DENSE = (Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "steplaw"
         / "dense_lr_bs_loss.csv")


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def table(tmp_path) -> Path:
    rows = []
    for N, D in [(1e8, 2e9), (1e8, 8e9), (2e8, 4e9), (4e8, 8e9), (4e8, 3.2e10)]:
        lr0, b0 = 2.0 * N**-0.7 * D**0.3, 0.5 * D**0.57 / 1024
        for lr in lr0 * 2.0 ** np.arange(-3, 3.01, 0.5):
            for b in b0 * 2.0 ** np.arange(-3, 3.01, 0.5):
                u, v = np.log(lr / lr0), np.log(b / b0)
                rows.append((N, D, lr, b, 3.0 * (1 + 0.004 * u**2 + 0.003 * v**2)))
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows, columns=["params", "tokens", "peak_lr", "seqs", "final"]).to_csv(path)
    return path


def _cols(table: Path) -> list[str]:
    return [str(table), "--n", "params", "--d", "tokens", "--lr", "peak_lr", "--batch", "seqs",
            "--loss", "final", "--seq-len", "1024"]


def test_fit_hparams_json_save_and_recommend_round_trip(table, tmp_path, capsys):
    save = tmp_path / "out" / "law.json"
    code, out, err = run(["fit-hparams", *_cols(table), "--bootstrap", "50", "--json",
                          "--save", str(save)], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["params"]["lr_coefN"] == pytest.approx(-0.7, abs=0.05)
    assert load_fit(save).params == pytest.approx(data["params"])
    code, out, err = run(["recommend", "--params", "3e8", "--tokens", "1e10", "--laws",
                          str(save), "--seq-len", "1024", "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    p = data["params"]
    lr = math.exp(p["lr_intercept"] + p["lr_coefN"] * math.log(3e8)
                  + p["lr_coefD"] * math.log(1e10))
    assert rec["lr"] == pytest.approx(lr, rel=1e-9)
    assert rec["intervals"]["lr"][0] < rec["lr"] < rec["intervals"]["lr"][1]


def test_fit_hparams_bowl_table_and_plot(table, tmp_path, capsys):
    plot = tmp_path / "bowls.png"
    code, out, err = run(["fit-hparams", *_cols(table), "--method", "bowl", "--bootstrap", "20",
                          "--plot", str(plot)], capsys)
    assert code == 0, err
    assert "lr*" in out and "bowl" in out
    assert plot.stat().st_size > 10_000


def test_recommend_default_table_and_json(capsys):
    code, out, _ = run(["recommend", "--params", "1e9", "--tokens", "1e11"], capsys)
    assert code == 0 and "Step Law" in out
    code, out, _ = run(["recommend", "--params", "1e9", "--tokens", "1e11", "--json",
                        "--parametrization", "mup", "--width", "1024", "--base-width", "256"],
                       capsys)
    rec = json.loads(out)
    assert rec["lr"] == pytest.approx(1.79 * 1e9**-0.713 * 1e11**0.307, rel=1e-12)
    hidden = [r for r in rec["per_role"] if r["role"].startswith("hidden")][0]
    assert hidden["lr"] == pytest.approx(rec["lr"] / 4)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["recommend", "--params", "-5", "--tokens", "1e9"], "--params"),
        (["recommend", "--params", "1e9", "--tokens", "0"], "--tokens"),
        (["recommend", "--params", "1e9", "--tokens", "1e9", "--source", "x"], "source"),
        (["recommend", "--params", "1e9", "--tokens", "1e9", "--laws", "/nonexistent.json"],
         "--laws: /nonexistent.json"),
        (["recommend", "--params", "1e300", "--tokens", "1e300"], "--params: 1e+300 is outside"),
        (["recommend", "--params", "3e10", "--tokens", "1e10", "--source", "kaplan"],
         "--params, --tokens: outside"),
        (["recommend", "--params", "1e9", "--tokens", "1e9", "--seq-len", "0"], "--seq-len"),
        (["recommend", "--params", "1e9", "--tokens", "1e9", "--parametrization", "mup",
          "--width", "512"], "--base-width"),
        (["recommend", "--params", "1e9", "--tokens", "1e9", "--parametrization", "xp",
          "--width", "512", "--base-width", "64"], "--parametrization: must be one of"),
        (["fit-hparams", "/nonexistent.csv"], "nonexistent"),
        (["recommend", "--params", "abc", "--tokens", "1e9"], "params"),
    ],
)
def test_bad_input_one_line_exit_2(argv, match, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("error:") and err.count("\n") == 1 and match in err
    assert "Traceback" not in err and out == ""


def test_fit_hparams_bad_column_writes_nothing(table, tmp_path, capsys):
    save, plot = tmp_path / "law.json", tmp_path / "p.png"
    code, _, err = run(["fit-hparams", *_cols(table), "--loss", "nope", "--save", str(save),
                        "--plot", str(plot)], capsys)
    assert code == 2 and "column 'nope'" in err and err.count("\n") == 1
    assert not save.exists() and not plot.exists()


def test_fit_hparams_bad_method(table, capsys):
    code, _, err = run(["fit-hparams", *_cols(table), "--method", "grid"], capsys)
    assert code == 2 and "method" in err


def test_fit_hparams_steplaw_anchor(capsys):
    if not DENSE.exists():
        pytest.skip("Step Law anchor not available")
    code, out, err = run(["fit-hparams", str(DENSE), "--loss", "smooth loss", "--bootstrap",
                          "0", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["n_points"] == 129
    assert data["params"]["lr_prefactor"] == pytest.approx(77.69, rel=0.02)
