"""Farseer differential piecewise fitting on data generated from the published law (Eq. 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ConfigError
from scalelaw.fit.farseer import (
    PUBLISHED,
    differences,
    farseer_loss,
    fit_farseer,
    per_n_terms,
    relative_error,
)
from scalelaw.fit.result import load_fit

HOLDOUT = 1.2e9  # fit N <= 1.13e9; hold out 1.6e9 and 2.26e9


def grid(noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """√2-spaced N (5e7 … 2.3e9) × √2-spaced D (2e9 … 3.2e10), loss from Eq. 15."""
    N, D = np.meshgrid(5e7 * np.sqrt(2) ** np.arange(12), 2e9 * np.sqrt(2) ** np.arange(9))
    L = farseer_loss(PUBLISHED, N, D)
    L = L * (1 + noise * np.random.default_rng(seed).standard_normal(L.shape))
    return pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": L.ravel()})


def test_published_law_value_by_hand():
    n, d = 1e8, 1e10
    expected = (np.exp(-0.021 * n**0.169 - 0.091)
                + np.exp(88.01 * n**-0.1 - 6.287) * d ** -np.exp(-0.124 * n**0.123 + 0.424))
    assert farseer_loss(PUBLISHED, n, d) == pytest.approx(expected, rel=1e-12)


def test_stage1_exact_on_noise_free_data():
    df = grid()
    terms = per_n_terms(differences(df["N"].to_numpy(), df["D"].to_numpy(), df["loss"].to_numpy()))
    n = terms["N"].to_numpy()
    A = np.exp(PUBLISHED["a1"] * n ** PUBLISHED["alpha"] + PUBLISHED["b1"])
    B = np.exp(PUBLISHED["a2"] * n ** PUBLISHED["beta"] + PUBLISHED["b2"])
    np.testing.assert_allclose(terms["A"], A, rtol=1e-9)
    np.testing.assert_allclose(terms["B"], B, rtol=1e-7)


def rounded_grid() -> pd.DataFrame:
    """The √2 grid with each D rounded to whole steps as a sweep makes them (48 * √2^k steps
    of a fixed size, rounded): pairs up to 0.18% off λ."""
    steps = np.round(48 * np.sqrt(2) ** np.arange(9))
    N, D = np.meshgrid(5e7 * np.sqrt(2) ** np.arange(12), steps * (2e9 / 48))
    L = farseer_loss(PUBLISHED, N, D)
    return pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": L.ravel()})


def test_budgets_rounded_to_whole_steps_pair_and_use_their_own_ratio():
    df = rounded_grid()
    diffs = differences(df["N"].to_numpy(), df["D"].to_numpy(), df["loss"].to_numpy())
    assert len(diffs) == 12 * 8  # every consecutive pair, although none is exactly √2 apart
    off = np.abs(diffs["ratio"] / np.sqrt(2) - 1)
    assert 1e-3 < off.max() < 2e-3
    terms = per_n_terms(diffs)
    n = terms["N"].to_numpy()
    A = np.exp(PUBLISHED["a1"] * n ** PUBLISHED["alpha"] + PUBLISHED["b1"])
    B = np.exp(PUBLISHED["a2"] * n ** PUBLISHED["beta"] + PUBLISHED["b2"])
    np.testing.assert_allclose(terms["A"], A, rtol=1e-8)
    np.testing.assert_allclose(terms["B"], B, rtol=1e-6)
    as_if_exact = per_n_terms(diffs.assign(ratio=np.sqrt(2)))  # what ignoring the ratio gives
    assert np.abs(as_if_exact["A"] / A - 1).max() > 1e-4
    fit = fit_farseer(df, holdout_above=HOLDOUT)
    assert fit.metadata["holdout"]["mean_rel_error"] < 1e-6


def test_noise_free_recovers_constants_tightly():
    fit = fit_farseer(grid(), holdout_above=HOLDOUT)
    for k, v in PUBLISHED.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    hold = fit.metadata["holdout"]  # the same record fit_law writes, so the CLI shows it
    assert set(hold) == {"mean_rel_error", "max_rel_error", "n", "per_N", "fit_N_max"}
    assert hold["mean_rel_error"] < 1e-6 and hold["fit_N_max"] == HOLDOUT
    assert hold["n"] == len(grid()) - 10 * 9 == sum(1 for _ in hold["per_N"]) * 9
    assert fit.n_points == 10 * 9


def test_small_noise_recovers_constants_and_extrapolates():
    fit = fit_farseer(grid(noise=1e-4, seed=1), holdout_above=HOLDOUT)
    p = fit.params
    for k in ("alpha", "beta", "gamma"):
        assert p[k] == pytest.approx(PUBLISHED[k], abs=0.01), k
    assert p["a2"] == pytest.approx(PUBLISHED["a2"], rel=0.1)
    assert p["a3"] == pytest.approx(PUBLISHED["a3"], rel=0.1)
    truth = grid()
    big = truth["N"] > HOLDOUT
    err = relative_error(fit, truth["N"][big], truth["D"][big], truth["loss"][big])
    assert err < 5e-4  # paper's Farseer extrapolation error is 0.50%
    assert fit.metadata["holdout"]["mean_rel_error"] < 5e-4


def test_larger_noise_still_extrapolates():
    fit = fit_farseer(grid(noise=1e-3, seed=2), holdout_above=HOLDOUT)
    truth = grid()
    big = truth["N"] > HOLDOUT
    assert relative_error(fit, truth["N"][big], truth["D"][big], truth["loss"][big]) < 5e-3


def test_save_load_round_trip(tmp_path):
    fit = fit_farseer(grid(), holdout_above=HOLDOUT)
    fit.save(tmp_path / "f.json")
    back = load_fit(tmp_path / "f.json")
    assert back.law == "farseer" and back.params == fit.params


def test_differences_that_do_not_fall_with_d_are_named():
    # loss linear in log D (no power-law decay yet): every difference is the same
    N, D = np.meshgrid([1e6, 4e6, 1.6e7, 6.4e7], 1e5 * np.sqrt(2) ** np.arange(6))
    L = 12.0 - 0.1 * np.log(N) - 0.35 * np.log(D)
    df = pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": L.ravel() - 1e-9 * D.ravel()})
    with pytest.raises(ConfigError, match=r"got 0 \(4 more .* do not fall with D \(A <= 0\)"):
        fit_farseer(df)


def test_too_few_sizes_is_an_error():
    df = grid()
    with pytest.raises(ConfigError, match="at least 3 N"):
        fit_farseer(df[df["N"] < 8e7])


def test_holdout_above_every_row_is_an_error():
    with pytest.raises(ConfigError, match="holdout_above: no rows with N > 1e\\+12"):
        fit_farseer(grid(), holdout_above=1e12)


def test_missing_column_is_an_error():
    with pytest.raises(ConfigError, match="column 'L'"):
        fit_farseer(grid(), loss="L")
