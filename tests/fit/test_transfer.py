"""LR transfer across width: per-width optima, the drift exponent, intervals, recommend()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ConfigError
from scalelaw.fit.result import load_fit
from scalelaw.fit.transfer import fit_lr_transfer, lr_optima, predict_lr
from scalelaw.recommend import recommend

LRS = 2.0 ** np.arange(-12, -3)
WIDTHS = (32, 64, 128, 256)


def runs(s: float, *, noise: float = 0.0, seed: int = 0, widths=WIDTHS, lrs=LRS,
         curvature: float = 0.04, name: str = "mup") -> pd.DataFrame:
    """A bowl in log2 lr per width, optimum 6e-3 * (w/32)^s, loss falling with width."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in widths:
        opt = 6e-3 * (w / 32) ** s
        for lr in lrs:
            loss = 3.0 - 0.1 * np.log2(w) + curvature * np.log2(lr / opt) ** 2
            rows.append((name, w, lr, loss + noise * rng.standard_normal(), "done"))
    return pd.DataFrame(rows, columns=["parametrization", "width", "lr", "final_eval_loss",
                                       "status"])


@pytest.mark.parametrize("s", [0.0, -0.5, -1.0])
def test_exact_bowls_give_exact_exponent_and_optima(s):
    fit = fit_lr_transfer(runs(s), drift="fit")
    assert fit.kind == "transfer" and fit.params["reference_width"] == 32
    assert fit.params["width_exponent"] == pytest.approx(s, abs=1e-9)
    opt = pd.DataFrame(fit.metadata["optima"])
    np.testing.assert_allclose(opt["lr_opt"], 6e-3 * (opt["width"] / 32) ** s, rtol=1e-9)
    assert not opt["edge"].any()
    lr, (lo, hi) = predict_lr(fit, [512.0, 4096.0])
    np.testing.assert_allclose(lr, 6e-3 * (np.array([512, 4096]) / 32) ** s, rtol=1e-9)
    np.testing.assert_allclose([lo, hi], [lr, lr], rtol=1e-6)  # no residual, no spread


def test_no_drift_model_for_mup_by_default():
    """muP/CompleteP: predict the geometric mean of the optima (s = 0); report the fit."""
    data = runs(-0.2, noise=0.003, seed=7)
    auto, none, fitted = (fit_lr_transfer(data, drift=d) for d in ("auto", "none", "fit"))
    assert auto.params == none.params and auto.metadata["drift"] == "none"
    opt = np.log(pd.DataFrame(none.metadata["optima"])["lr_opt"])
    assert none.params["width_exponent"] == 0.0
    assert none.params["log_lr_ref"] == pytest.approx(opt.mean())
    assert none.metadata["fitted"]["width_exponent"] == pytest.approx(
        fitted.params["width_exponent"]) == pytest.approx(-0.2, abs=0.1)
    lr, (lo, hi) = predict_lr(none, [64.0, 1e5])
    np.testing.assert_allclose(lr, np.exp(opt.mean()))
    from scipy import stats
    half = stats.t.ppf(0.975, 3) * opt.std(ddof=1) * np.sqrt(1 + 1 / 4)
    np.testing.assert_allclose(np.log(hi) - np.log(lr), half)  # same width everywhere
    assert fit_lr_transfer(data.assign(parametrization="sp")).metadata["drift"] == "fit"
    assert fit_lr_transfer(data.drop(columns="parametrization")).metadata["drift"] == "fit"


def test_optimum_between_grid_points_beats_the_grid():
    """The vertex finds an optimum a third of a grid step off, the grid cannot."""
    data = runs(0.0, lrs=LRS * 2 ** (1 / 3))
    opt = lr_optima(data)
    np.testing.assert_allclose(opt["lr_opt"], 6e-3, rtol=1e-9)
    assert not np.allclose(opt["lr_grid_best"], 6e-3, rtol=0.1)


def test_prediction_interval_covers_a_new_width_at_the_nominal_rate():
    """The 50% and 90% prediction intervals at width 2048 cover the optimum estimated from
    a fresh sweep at that width in 50% and 90% of 120 seeded repetitions (binomial 99.8%
    ranges); an interval twice as wide (76% at level 0.5) or half as wide (28%) fails.

    s = -1 moves the optimum one grid step per doubling, so every width's vertex has the
    same error law, the OLS model's assumption. A prediction interval is for a new width's
    estimated optimum; it covers the noiseless line more often (about 58% and 94%).
    """
    from scipy.stats import binom

    lrs = 2.0 ** np.arange(-16, -3)
    trials, hits = 120, {0.5: 0, 0.9: 0}
    for seed in range(trials):
        fit = fit_lr_transfer(runs(-1.0, noise=0.004, seed=seed, lrs=lrs, name="sp",
                                   widths=(32, 64, 128, 256, 512)))
        new = runs(-1.0, noise=0.004, seed=10_000 + seed, lrs=lrs, widths=(2048,), name="sp")
        observed = float(lr_optima(new)["lr_opt"].iloc[0])
        for level in hits:
            _, (lo, hi) = predict_lr(fit, 2048.0, level=level)
            hits[level] += bool(lo <= observed <= hi)
    for level, h in hits.items():
        lo, hi = binom.interval(0.998, trials, level)
        assert lo <= h <= hi, (level, h, (lo, hi))


def test_edge_optimum_is_flagged_not_extrapolated():
    opt = lr_optima(runs(0.0, lrs=LRS[LRS < 3e-3]))  # every LR below the optimum
    assert opt["edge"].all()
    np.testing.assert_allclose(opt["lr_opt"], LRS[LRS < 3e-3].max())


def test_edge_widths_are_left_out_of_the_drift_fit():
    data = runs(0.0)
    wide = data["width"] == 256
    data = data[~wide | (data["lr"] < 3e-3)]  # the widest width never reaches its optimum
    fit = fit_lr_transfer(data, drift="fit")
    opt = pd.DataFrame(fit.metadata["optima"])
    assert opt["used"].tolist() == [True, True, True, False]
    assert fit.params["width_exponent"] == pytest.approx(0.0, abs=1e-9)
    assert fit.metadata["dof"] == 1


def test_diverged_runs_and_seeds():
    data = pd.concat([runs(0.0, seed=0, noise=0.001), runs(0.0, seed=1, noise=0.001)])
    high = data["lr"] == LRS.max()
    data.loc[high, "final_eval_loss"] = np.inf
    data.loc[data["lr"] == LRS[-2], "status"] = "diverged"
    data.loc[data["lr"] == LRS[4], ["status", "final_eval_loss"]] = ("running", 0.0)  # partial
    opt = lr_optima(data)
    assert (opt["n_points"] == 3).all() and (opt["lr_grid_best"] < LRS[-2]).all()
    assert (opt["loss_grid_best"] > 0.5).all() and not np.isin(opt["lr_grid_best"], LRS[4]).any()


def test_two_widths_have_no_interval_and_save_round_trip(tmp_path):
    fit = fit_lr_transfer(runs(0.0, widths=(32, 64)), drift="fit")
    assert fit.metadata["dof"] == 0
    assert np.isnan(predict_lr(fit, 128.0)[1]).all()
    fit.save(tmp_path / "t.json")
    back = load_fit(tmp_path / "t.json")
    assert back.kind == "transfer" and back.params == fit.params
    assert float(predict_lr(back, 128.0)[0]) == pytest.approx(6e-3)


@pytest.mark.parametrize(
    ("data", "kwargs", "match"),
    [
        (pd.concat([runs(0.0), runs(-1.0, name="sp")]), {}, "parametrization: .*mup, sp"),
        (runs(0.0), {"parametrization": "completep"}, "parametrization: 'completep'"),
        (runs(0.0, lrs=LRS[:2]), {}, "no width has 3 finished learning rates .*32: 2"),
        (runs(0.0, widths=(64,)), {}, "column 'width': one width"),
        (runs(0.0).drop(columns="lr"), {}, "column 'lr'"),
        (runs(0.0).assign(lr=0.0), {}, "column 'lr': learning rates must be > 0"),
        (runs(0.0), {"drift": "linear"}, "drift: must be"),
    ],
)
def test_bad_tables_name_the_problem(data, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        fit_lr_transfer(data, **kwargs)


def test_recommend_with_a_transfer_fit(tmp_path):
    from scalelaw.mup.rules import Parametrization

    fit = fit_lr_transfer(runs(-0.5, noise=0.003, seed=3), drift="fit")
    path = tmp_path / "transfer.json"
    fit.save(path)
    rec = recommend(3e8, 6e9, laws=path, width=1024)
    lr, (lo, hi) = predict_lr(fit, 1024.0)
    assert rec.lr == pytest.approx(float(lr)) and rec.intervals["lr"] == pytest.approx((lo, hi))
    assert rec.batch_tokens == pytest.approx(0.58 * 6e9**0.571)  # Step Law's B(D)
    assert "user sweep" in rec.source and any("batch from the published" in n
                                              for n in rec.notes)
    with pytest.raises(ValueError, match="width: required with a learning-rate transfer"):
        recommend(3e8, 6e9, laws=fit)
    roles = recommend(3e8, 6e9, laws=fit, width=1024,
                      parametrization=Parametrization("mup", base_width=64)).per_role
    hidden = next(r for r in roles if r["role"].startswith("hidden"))
    assert hidden["lr"] == pytest.approx(float(lr) / 16)


def test_fewer_than_two_interior_optima_is_refused():
    data = runs(0.0, lrs=LRS[LRS < 3e-3])  # every width's best LR is the grid's largest
    with pytest.raises(ConfigError, match="grid's edge at widths 32, 64, 128, 256"):
        fit_lr_transfer(data)


def test_a_diverged_seed_removes_its_learning_rate():
    a, b = runs(0.0, seed=0), runs(0.0, seed=1)
    best = a["lr"] == LRS[np.argmin(np.abs(np.log(LRS / 6e-3)))]
    b.loc[best, ["status", "final_eval_loss"]] = ("diverged", np.nan)
    opt = lr_optima(pd.concat([a, b]))
    assert not np.isin(opt["lr_grid_best"], a.loc[best, "lr"]).any()


def test_an_unfinished_width_is_left_out_and_listed():
    data = runs(0.0)
    data.loc[(data["width"] == 256) & (data["lr"] > 5e-4), "status"] = "running"
    fit = fit_lr_transfer(data)
    assert fit.metadata["skipped_widths"] == {"256": 2}
    assert pd.DataFrame(fit.metadata["optima"])["width"].tolist() == [32, 64, 128]
    with pytest.raises(ConfigError, match=r"one width; .*left out .*: 64, 128, 256"):
        fit_lr_transfer(data[data["width"] == 32].pipe(
            lambda d: pd.concat([d, runs(0.0, widths=(64, 128, 256)).assign(status="running")])))


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="reference_width"):
        fit_lr_transfer(runs(0.0), reference_width=-1.0)
    with pytest.raises(ConfigError, match="neighbours"):
        lr_optima(runs(0.0), neighbours=0)
    with pytest.raises(ValueError, match="level"):
        predict_lr(fit_lr_transfer(runs(0.0)), 64.0, level=1.5)


def test_recommend_flags_a_drift_that_muP_should_not_have():
    fit = fit_lr_transfer(runs(-0.6, noise=0.002, seed=1))  # "mup" rows that drift
    assert fit.metadata["drift"] == "none"
    notes = " ".join(recommend(3e8, 6e9, laws=fit, width=1024).notes)
    assert "differs from 0 at the 5% level" in notes
    clean = " ".join(recommend(3e8, 6e9, laws=fit_lr_transfer(runs(0.0, noise=0.002)),
                               width=1024).notes)
    assert "differs from 0" not in clean


# ----------------------------------------------------------------------------- held-out check
GRID = 2.0 ** np.arange(-12, -3)


def _bowls(widths, s):  # noqa: ANN001, ANN202
    """Exact parabolas in log2 lr: optimum 8e-3 (w/32)^s, curvature 0.05, floor 2.5."""
    rows = [(w, lr, 2.5 + 0.05 * np.log2(lr / (8e-3 * (w / 32) ** s)) ** 2)
            for w in widths for lr in GRID]
    return pd.DataFrame(rows, columns=["width", "lr", "final_eval_loss"])


def test_holdout_check_passes_when_the_transfer_holds() -> None:
    fit = fit_lr_transfer(_bowls((32, 64, 128, 256), 0.0), drift="none")
    check = fit.metadata["holdout"]
    assert check["checked"] and check["passed"] and check["width"] == 256
    assert check["log2_error"] == pytest.approx(0.0, abs=1e-9)
    assert check["regret"] == pytest.approx(0.0, abs=1e-12)
    assert "within the tolerance" in check["verdict"]


def test_holdout_check_fails_in_words_when_it_does_not() -> None:
    """SP-like drift (s = -1) fitted as if it were muP: the largest width is off by 3 log2
    units (mean of log2 optima at 32, 64, 128 is 1 below width 32's; 256 is 3 below)."""
    fit = fit_lr_transfer(_bowls((32, 64, 128, 256), -1.0), drift="none")
    check = fit.metadata["holdout"]
    assert check["checked"] and not check["passed"]
    assert check["log2_error"] == pytest.approx(2.0, abs=1e-9)  # -1 vs -3: +2 in log2
    assert check["regret"] == pytest.approx(0.05 * 2.0**2 / 2.5, rel=1e-9)
    assert "FAILED" in check["verdict"]
    from scalelaw.recommend import recommend

    rec = recommend(1e9, 1e10, laws=fit, width=1024)
    assert any("held-out check FAILED" in n for n in rec.notes)
    fitted = fit_lr_transfer(_bowls((32, 64, 128, 256), -1.0), drift="fit")
    assert fitted.metadata["holdout"]["passed"]  # the right model transfers
    assert fitted.metadata["holdout"]["log2_error"] == pytest.approx(0.0, abs=1e-9)


def test_holdout_check_needs_three_widths() -> None:
    check = fit_lr_transfer(_bowls((32, 64), 0.0), drift="none").metadata["holdout"]
    assert check == {"checked": False, "reason": "2 widths with an interior optimum; the "
                     "check needs 3 (2 to fit, 1 held out)"}
