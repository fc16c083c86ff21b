"""Tests for scalelaw.fit.bootstrap: resampling, coverage of the truth, predictions, hold-out."""

import numpy as np
import pandas as pd
import pytest

from scalelaw.fit.bootstrap import prediction_interval, resample_counts
from scalelaw.fit.robust import fit_law

TRUE = {"A": 400.0, "B": 2000.0, "E": 1.8, "alpha": 0.34, "beta": 0.37}
GRID = {"a": [6.0], "b": [7.5], "e": [0.5], "alpha": [0.4], "beta": [0.4]}


def noisy(seed, noise=0.01):
    rng = np.random.default_rng(seed)
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 3e9, 6), np.geomspace(2e8, 2e11, 6)))
    L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    return pd.DataFrame({"N": N, "D": D, "loss": L * np.exp(noise * rng.standard_normal(N.size))})


def test_resample_counts():
    c = resample_counts(7, 500, seed=3)
    assert c.shape == (500, 7) and np.all(c.sum(1) == 7)
    assert abs(c.mean() - 1.0) < 0.05
    assert not np.array_equal(c, resample_counts(7, 500, seed=4))


def test_intervals_cover_truth_at_nominal_rate():
    """80% percentile intervals of alpha and E cover the truth in ~80% of 40 noisy datasets."""
    hits = {"alpha": 0, "E": 0}
    reps = 40
    for seed in range(reps):
        res = fit_law(noisy(seed), init_grid=GRID, delta=None, bootstrap=200, seed=seed)
        for k in hits:
            lo, hi = res.interval(k, level=0.8)
            hits[k] += lo <= TRUE[k] <= hi
    for k, h in hits.items():
        # binomial(40, 0.8): 2.5-97.5% range is about 26..37
        assert 24 <= h <= 38, (k, h)


def test_bootstrap_draws_and_derived():
    res = fit_law(noisy(0), init_grid=GRID, bootstrap=200, seed=1)
    assert set(res.samples) == {"A", "B", "E", "alpha", "beta", "a", "b"}
    assert all(len(v) == 200 for v in res.samples.values())
    assert 0 < res.stderr("alpha") < 0.1
    a = np.array(res.samples["a"])
    expected = np.array(res.samples["beta"]) / (np.array(res.samples["alpha"])
                                                + np.array(res.samples["beta"]))
    np.testing.assert_allclose(a, expected)
    lo, hi = prediction_interval(res, N=1e10, D=1e12)
    assert lo < fit_law(noisy(0), init_grid=GRID).params["E"] + 1 and lo < hi
    same = fit_law(noisy(0), init_grid=GRID, bootstrap=200, seed=1)
    assert same.samples == res.samples  # seeded


def test_holdout_error_grows_with_extrapolation_noise():
    clean = fit_law(noisy(0, noise=0.0), init_grid=GRID, holdout_above=5e8)
    dirty = fit_law(noisy(0, noise=0.02), init_grid=GRID, holdout_above=5e8)
    assert clean.metadata["holdout"]["mean_rel_error"] < 1e-6
    assert dirty.metadata["holdout"]["mean_rel_error"] > 1e-3
    assert clean.metadata["holdout"]["n"] == 12


def test_epoch_bootstrap_matches_paper():
    from test_robust import epoch_table

    res = fit_law(epoch_table(), drop_top=5, bootstrap=1000, seed=42)
    # Epoch AI (cell 25): SE alpha 0.0154, beta 0.0206, E 0.0257; a = 0.513 +- 0.020
    assert res.stderr("alpha") == pytest.approx(0.0154, rel=0.2)
    assert res.stderr("beta") == pytest.approx(0.0206, rel=0.2)
    assert res.stderr("E") == pytest.approx(0.0257, rel=0.2)
    assert res.stderr("a") == pytest.approx(0.020, rel=0.25)
