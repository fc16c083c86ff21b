"""score_laws and `scalelaw score-laws`: synthetic grids (always) and Step Law's released grids.

Step Law's Table 1 (Li et al. 2025, arXiv 2503.04715) reports, per mille, the loss excess of
each law's (lr, B) over the best run of an exhaustive grid at one held-out cell (1B
parameters, 100B tokens): Step Law 0.94, Porian 3.71, DeepSeek 9.26, Microsoft 9.25, OpenAI
9.51. Protocol differences from what is tested here:

- that cell is not released; we score the released cells nearest it (N = 1.07e9 at D =
  2e10 and 5.69e10), which the published laws may have been fitted on (Step Law held out
  only 1B / 100B), so Step Law's figure here is an in-sample one;
- the authors do not state how they evaluate L off the grid; we report both the nearest run
  (in log2 lr x log2 B) and the cell's fitted bowl, against the best run;
- Porian et al. and Bjorck et al. ('Microsoft') are not in the registry (their coefficients
  could not be verified); Kaplan's ('OpenAI') batch is the critical batch B_crit(L) at
  Kaplan's own L(N, D) and its LR the rule of thumb of their App. D.6: how Step Law turned
  those into a prediction is not stated, so our Kaplan figure is not theirs;
- DeepSeek's C = M·D uses M = 6N + 12·layers·hidden·seq_len (Step Law's own tool) in the
  flops-per-token test, 6N otherwise.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalelaw.cli import main
from scalelaw.errors import ConfigError
from scalelaw.fit.held_out import leave_one_cell_out
from scalelaw.fit.hparams import fit_hparams, load_runs
from scalelaw.fit.score import PAPER_TABLE1, Refit, score_laws

ANCHOR = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "steplaw"
TRUE = (lambda N, D: 2.0 * N**-0.7 * D**0.3, lambda N, D: 0.5 * D**0.57)


def _need(name: str) -> Path:
    path = ANCHOR / name
    if not path.exists():
        pytest.skip(f"anchor {path} not available")
    return path


def grid(cells=((1e8, 2e9), (1e8, 8e9), (2e8, 4e9), (4e8, 8e9), (4e8, 3.2e10)),
         shift: float = 0.0, model: str = "a") -> pd.DataFrame:
    """Bowls centred on TRUE (times 2**shift in lr), batch in tokens."""
    rows = []
    for N, D in cells:
        lr0, b0 = TRUE[0](N, D) * 2.0**shift, TRUE[1](N, D)
        for lr in lr0 * 2.0 ** np.arange(-3, 3.01, 0.5):
            for b in b0 * 2.0 ** np.arange(-3, 3.01, 0.5):
                u, v = np.log(lr / lr0), np.log(b / b0)
                loss = 3.0 * (1 + 0.004 * u**2 + 0.002 * u * v + 0.003 * v**2)
                rows.append((model, N, D, lr, b, loss))
    return pd.DataFrame(rows, columns=["model", "N", "D", "lr", "bs", "loss"])


def score(df, laws, **kw):
    return score_laws(df, laws, batch_unit="tokens", **kw)


# ------------------------------------------------------------------ synthetic grids
def test_the_true_law_scores_zero_and_a_wrong_one_does_not():
    s = score(grid(), {"true": TRUE, "2x lr": (lambda N, D: 2 * TRUE[0](N, D), TRUE[1])})
    t, summary = s.to_frame(), s.summary()
    assert len(t) == 10 and t["inside"].all()
    for m in ("bowl_vs_bowl", "nearest_vs_best", "bowl_vs_best"):
        assert abs(summary.loc["true", f"mean_{m}"]) < 1e-3  # per mille
    wrong = t[t["law"] == "2x lr"]  # 2x lr is a grid point: 0.004 * ln(2)^2 relative
    assert wrong["excess_nearest_vs_best"].to_numpy() == pytest.approx(
        0.004 * np.log(2) ** 2, rel=1e-9)
    assert (wrong["nearest_distance_log2"] < 1e-9).all()
    assert wrong["excess_bowl_vs_bowl"].to_numpy() == pytest.approx(  # the fitted bowl
        0.004 * np.log(2) ** 2, rel=0.15)
    assert summary.loc["2x lr", "worst_cell"].startswith("N=")


def test_a_prediction_beyond_the_grid_says_by_how_much():
    far = (lambda N, D: 64 * TRUE[0](N, D), TRUE[1])  # 6 octaves, grid reaches +3
    row = score(grid(), {"far": far}).to_frame().iloc[0]
    assert not row["inside"]
    assert row["lr_outside_log2"] == pytest.approx(3.0)
    assert row["batch_outside_log2"] == 0.0
    assert "extrapolated" in row["note"] and "decades" in row["note"]


def test_loco_shares_leave_one_cell_out_and_a_refit_matches_it():
    df = grid()
    s = score(df, {"loco": "loco", "loco-bowl": "loco-bowl", "refit": Refit(
        lambda train: fit_hparams(train.rename(columns={"batch_tokens": "bs"}),
                                  batch_unit="tokens"))})
    t = s.to_frame().set_index(["law", "N", "D"])
    ref = leave_one_cell_out(load_runs(df, batch_unit="tokens"))
    for _, r in ref.iterrows():
        assert t.loc[("loco", r["N"], r["D"]), "lr"] == pytest.approx(r["lr_band"], rel=1e-9)
        assert t.loc[("loco-bowl", r["N"], r["D"]), "batch_tokens"] == pytest.approx(
            r["batch_bowl"], rel=1e-9)
        assert t.loc[("refit", r["N"], r["D"]), "lr"] == pytest.approx(r["lr_band"], rel=1e-9)
    assert "left out" in s.laws["loco"]


def test_cell_keys_keep_two_models_with_the_same_n_apart():
    df = pd.concat([grid(model="top1"), grid(shift=1.0, model="top2")], ignore_index=True)
    with pytest.warns(UserWarning, match="same \\(lr, batch\\)"):
        merged = score(df, ["loco"])
    assert len(merged.cells) == 5 and any("cell_keys" in n for n in merged.notes)
    apart = score(df, {"true": TRUE}, cell_keys=("model", "N", "D"))
    assert len(apart.cells) == 10 and apart.cell_keys == ("model", "N", "D")
    t = apart.to_frame()
    top2 = t[t["cell_label"].str.contains("top2")]
    assert (top2["excess_bowl_vs_bowl"] > 1e-3).all()  # top2's optimum is 2x the law's
    assert (t[t["cell_label"].str.contains("top1")]["excess_bowl_vs_bowl"] < 1e-9).all()


def test_a_cell_that_mixes_values_of_a_law_column_is_refused():
    df = grid().assign(Na=lambda f: f["N"] / 4)
    df.loc[0, "Na"] = 1.0
    with pytest.raises(ConfigError, match="cell_keys: .*'Na'"):
        score(df, ["steplaw@Na"])


def test_active_parameters_are_read_per_law():
    df = grid().assign(Na=lambda f: f["N"] / 8)
    t = score(df, ["steplaw", "steplaw@Na"]).to_frame()
    total, active = (t[t["law"] == k]["lr"].to_numpy() for k in ("steplaw", "steplaw@Na"))
    assert active == pytest.approx(total * 8**0.713)
    assert t[t["law"] == "steplaw@Na"]["N"].to_numpy() == pytest.approx(
        t[t["law"] == "steplaw"]["N"].to_numpy() / 8)


def test_a_defaulted_loss_column_is_said_loudly():
    df = grid().assign(**{"smooth loss": lambda f: f["loss"] * 0.99})
    with pytest.warns(UserWarning, match="smooth loss"):
        s = score(df, {"true": TRUE})
    assert s.loss_column == "loss" and "smooth loss" in s.notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert score(df, {"true": TRUE}, loss="smooth loss").notes == ()
    with pytest.warns(UserWarning, match="smooth loss"):
        fit = fit_hparams(df, batch_unit="tokens")
    assert "smooth loss" in fit.metadata["loss_note"]


def test_flops_per_token_moves_deepseek_and_is_described():
    df = grid().assign(M=lambda f: 8 * f["N"])
    plain, with_m = (score(df, ["deepseek"], **kw) for kw in ({}, {"flops_per_token": "M"}))
    ratio = with_m.to_frame()["lr"] / plain.to_frame()["lr"]
    assert ratio.to_numpy() == pytest.approx((8 / 6) ** -0.125)
    assert "M = 6N" in plain.laws["deepseek"] and "column 'M'" in with_m.laws["deepseek"]


def test_laws_as_fits_saved_fits_and_bad_laws(tmp_path):
    df = grid()
    fit = fit_hparams(df, batch_unit="tokens")
    fit.save(tmp_path / "fit.json")
    s = score(df, {"fit": fit, "saved": str(tmp_path / "fit.json")})
    t = s.to_frame()
    assert np.allclose(t[t["law"] == "fit"]["lr"], t[t["law"] == "saved"]["lr"])
    assert "not held out" in s.laws["fit"]
    with pytest.raises(ConfigError, match="^laws: .*porian.*not in the registry"):
        score(df, ["porian"])
    with pytest.raises(ConfigError, match="^laws: nope: no such file"):
        score(df, ["nope"])
    with pytest.raises(ConfigError, match="^column 'x'"):
        score(df, ["steplaw@x"])


def test_undetermined_exponent_is_reported_not_determined():
    df = grid(cells=((1e8, 2e9), (1.001e8, 8e9), (1.002e8, 3.2e10)))
    fit = fit_hparams(df, batch_unit="tokens", bootstrap=50)
    assert "lr_coefN" in fit.metadata["not_determined"]
    assert "bs_coefD" not in fit.metadata["not_determined"]


def test_outputs_repr_html_json_and_plot(tmp_path):
    s = score(grid(), {"true": TRUE, "steplaw": "steplaw"})
    assert "steplaw" in repr(s) and "per mille" in repr(s)
    assert "<table" in s._repr_html_()
    from scalelaw.fit.result import json_safe

    json.dumps(json_safe(s.to_dict()), allow_nan=False)
    fig = s.plot(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 5_000 and len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close("all")


# ------------------------------------------------------------------ CLI
def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_json_and_table(tmp_path, capsys):
    path = tmp_path / "g.csv"
    grid().assign(**{"smooth loss": lambda f: f["loss"]}).to_csv(path, index=False)
    code, out, err = run(["score-laws", str(path), "--batch-unit", "tokens", "--json",
                          "--laws", "steplaw,loco"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert [r["law"] for r in doc["summary_permille"]] == ["steplaw", "loco"]
    assert len(doc["table"]) == 10 and doc["loss_column"] == "loss"
    assert "warning: loss column 'loss' used" in err  # loud on stderr
    code, out, err = run(["score-laws", str(path), "--batch-unit", "tokens", "--loss",
                          "smooth loss", "--cell-keys", "model,N,D"], capsys)
    assert code == 0 and err == "" and "per mille" in out and "steplaw" in out


@pytest.mark.parametrize(("flags", "flag"), [
    (["--cell-keys", "nope,D"], "--cell-keys"),
    (["--laws", "bogus"], "--laws"),
    (["--batch-unit", "bytes"], "--batch-unit"),
    (["--loss", "missing"], "column 'missing'"),
    (["--plot", "x.txt"], "--plot"),
])
def test_cli_bad_flags_one_line_exit_2(tmp_path, capsys, flags, flag):
    path = tmp_path / "g.csv"
    grid().to_csv(path, index=False)
    code, out, err = run(["score-laws", str(path), *flags], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and flag in err, err


# ------------------------------------------------------------------ Step Law's released grids
def test_dense_cells_nearest_table1_each_law_next_to_the_paper():
    df = pd.read_csv(_need("dense_lr_bs_loss.csv"))
    df["M"] = 6 * df["N"] + 12 * df["numl"] * df["h"] * 2048  # Step Law's fit_tool.py
    s = score_laws(df, {"steplaw": "steplaw", "deepseek": "deepseek", "kaplan": "kaplan",
                        "loco": "loco"}, loss="smooth loss", flops_per_token="M")
    t = s.to_frame()
    near = t[t["N"] == t["N"].max()]  # N = 1.07e9, D = 2e10 and 5.69e10
    assert sorted(near["D"].unique()) == [2e10, 5.69e10]
    means = 1000 * near.groupby("law")[["excess_nearest_vs_best", "excess_bowl_vs_best"]].mean()
    for law in ("steplaw", "deepseek", "kaplan"):  # reported next to the paper's figure
        print(f"{law}: nearest {means.loc[law].iloc[0]:.2f}, bowl {means.loc[law].iloc[1]:.2f}"
              f" per mille (Table 1: {PAPER_TABLE1[law]})")
    for col in means.columns:
        assert means[col].drop("loco").idxmin() == "steplaw"
    assert means.loc["steplaw"].max() < 2.0  # paper 0.94 at 1B / 100B
    assert 4.0 < means.loc["deepseek", "excess_nearest_vs_best"] < 12.0  # paper 9.26
    assert near["inside"][near["law"] != "kaplan"].all()
    summary = s.summary()
    assert summary["mean_bowl_vs_best"].drop("loco").idxmin() == "steplaw"


def test_moe_same_n_models_stay_apart_and_both_n_conventions_run():
    path = _need("moe_lr_bs_loss.csv")
    df = pd.read_csv(path)
    with pytest.warns(UserWarning, match="merged"):
        merged = score_laws(df, ["steplaw"], loss="smooth loss")
    assert len(merged.cells) == 12
    keys = ("moe_name", "D")
    s = score_laws(df, ["steplaw", "steplaw@Na", "deepseek", "loco", "loco@Na"],
                   loss="smooth loss", cell_keys=keys, flops_per_token="M")
    assert len(s.cells) == 16
    assert {"moe_name=1in89, D=2e+09", "moe_name=2in88, D=2e+09"} <= set(s.cells["cell_label"])
    assert s.to_frame()["excess_bowl_vs_best"].notna().all()
    total = fit_hparams(path, n="N", loss="smooth loss", cell_keys=keys, bootstrap=200)
    active = fit_hparams(path, n="Na", loss="smooth loss", cell_keys=keys, bootstrap=200)
    assert total.metadata["n_cells"] == active.metadata["n_cells"] == 16
    assert "not determined" in total.metadata["not_determined"]["lr_coefN"]
    assert active.metadata["not_determined"] == {}
    lo, hi = active.interval("lr_coefN")
    assert math.isfinite(lo) and math.isfinite(hi) and hi - lo < 1.0
    lo, hi = total.interval("lr_coefN")  # reported, and wide
    assert hi - lo > 10
    both = score_laws(df, {"fit total N": total, "fit active N": {"law": active, "n": "Na"}},
                      loss="smooth loss", cell_keys=keys)
    assert both.to_frame()["excess_bowl_vs_best"].notna().all()
