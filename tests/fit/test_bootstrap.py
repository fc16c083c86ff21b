"""Tests for scalelaw.fit.bootstrap: resampling, coverage of the truth, predictions, hold-out."""

import numpy as np
import pandas as pd
import pytest

from scalelaw.fit.bootstrap import prediction_interval, resample_counts
from scalelaw.fit.fit_law import fit_law

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


def test_compact_resamples_lists_every_drawn_row_once():
    from scalelaw.fit.bootstrap import compact_resamples

    c = resample_counts(50, 300, seed=5)
    idx, w = compact_resamples(c)
    assert idx.shape == w.shape and idx.shape[1] % 8 == 0
    assert (c > 0).sum(1).max() <= idx.shape[1] < 50
    back = np.zeros_like(c)
    np.add.at(back, (np.arange(len(c))[:, None], idx), w)
    np.testing.assert_array_equal(back, c)  # same weight per row: same weighted objective
    for row, r in zip(idx, c, strict=True):  # no drawn row listed twice
        assert len(set(row[r[row] > 0].tolist())) == (r > 0).sum()


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
    # the interval is the 2.5-97.5% quantiles of the draws' predictions, computed here
    draws = {k: np.array(v) for k, v in res.samples.items()}
    pred = draws["E"] + draws["A"] / 1e10 ** draws["alpha"] + draws["B"] / 1e12 ** draws["beta"]
    pred = pred[np.isfinite(pred)]  # unconverged refits are NaN draws, left out
    lo, hi = prediction_interval(res, N=1e10, D=1e12)
    np.testing.assert_allclose([lo, hi], np.quantile(pred, [0.025, 0.975]), rtol=1e-10)
    same = fit_law(noisy(0), init_grid=GRID, bootstrap=200, seed=1)
    assert same.samples == res.samples  # seeded


def _log_grad(p, N, D):
    """d log L / d (a, b, e, alpha, beta) of L = E + A/N^alpha + B/D^beta, and L."""
    t1, t2 = p["A"] * N ** -p["alpha"], p["B"] * D ** -p["beta"]
    s = t1 + t2 + p["E"]
    return np.stack([t1 / s, t2 / s, p["E"] / s, -t1 * np.log(N) / s, -t2 * np.log(D) / s],
                    axis=-1), s


def test_prediction_interval_matches_the_delta_method():
    """The bootstrap 95% interval of L(N, D) has the delta-method width, two-sided.

    Least squares on log L: the row (pairs) bootstrap estimates the sandwich covariance
    (J'J)^-1 J' diag(r^2) J (J'J)^-1 of the fit-space parameters, so the interval's log width
    matches 2 z se(log L) to the Monte Carlo error of 200 draws; twice or half as wide fails.
    """
    from scipy.stats import norm

    df = noisy(0)
    res = fit_law(df, init_grid=GRID, delta=None, bootstrap=200, seed=0)
    J, s = _log_grad(res.params, df["N"].to_numpy(), df["D"].to_numpy())
    r = np.log(s) - np.log(df["loss"].to_numpy())
    bread = np.linalg.inv(J.T @ J)
    cov = bread @ (J.T * r**2) @ J @ bread
    z = norm.ppf(0.975)
    for N, D in [(1e9, 2e10), (1e10, 1e12)]:  # inside the grid, and extrapolated
        g, L = _log_grad(res.params, np.array(N), np.array(D))
        se = float(np.sqrt(g @ cov @ g))
        lo, hi = prediction_interval(res, N=N, D=D)
        assert 0.8 < np.log(hi / lo) / (2 * z * se) < 1.4, (N, D)
        assert abs(np.log(np.sqrt(lo * hi) / L)) < 0.5 * se, (N, D)
    assert res.stderr("alpha") == pytest.approx(np.sqrt(cov[3, 3]), rel=0.3)


def test_holdout_error_grows_with_extrapolation_noise():
    clean = fit_law(noisy(0, noise=0.0), init_grid=GRID, holdout_above=5e8)
    dirty = fit_law(noisy(0, noise=0.02), init_grid=GRID, holdout_above=5e8)
    assert clean.metadata["holdout"]["mean_rel_error"] < 1e-6
    assert dirty.metadata["holdout"]["mean_rel_error"] > 1e-3
    assert clean.metadata["holdout"]["n"] == 12


def test_epoch_bootstrap_matches_paper():
    from test_fit_law import epoch_table

    res = fit_law(epoch_table(), drop_top=5, bootstrap=1000, seed=42)
    # Epoch AI (cell 25): SE alpha 0.0154, beta 0.0206, E 0.0257; a = 0.513 +- 0.020
    assert res.stderr("alpha") == pytest.approx(0.0154, rel=0.2)
    assert res.stderr("beta") == pytest.approx(0.0206, rel=0.2)
    assert res.stderr("E") == pytest.approx(0.0257, rel=0.2)
    assert res.stderr("a") == pytest.approx(0.020, rel=0.25)


def _refit_inputs(n_resamples=64, seed=0):
    from scalelaw.fit.laws import get_law

    df = noisy(seed)
    law = get_law("chinchilla")
    res = fit_law(df, init_grid=GRID)
    theta = np.array(list(res.metadata["fit_params"].values()))
    x = {"N": df["N"].to_numpy(), "D": df["D"].to_numpy()}
    return law, x, df["loss"].to_numpy(), theta, resample_counts(len(df), n_resamples, seed=1)


def test_refits_match_tight_scipy():
    """Each whitened BFGS refit's objective is the weighted Huber sum at its parameters and
    equals scipy's tightly converged minimum of that sum to 1e-8 (both ways)."""
    from scipy.optimize import minimize

    from scalelaw.fit.bootstrap import refit_weighted

    law, x, y, theta, counts = _refit_inputs(16)
    fits = refit_weighted(law, x, y, theta, counts, objective=1e-3)
    assert fits.converged.all()
    lN, lD, lL = np.log(x["N"]), np.log(x["D"]), np.log(y)

    def f(t, w):  # sum Huber of log residuals and its analytic gradient
        a, b, e, al, be = t
        p1, p2 = np.exp(a - al * lN), np.exp(b - be * lD)
        s = p1 + p2 + np.exp(e)
        r = np.log(s) - lL
        h = w * np.clip(r, -1e-3, 1e-3) / s
        val = np.sum(w * np.where(np.abs(r) <= 1e-3, 0.5 * r * r, 1e-3 * (np.abs(r) - 5e-4)))
        grad = [(h * p1).sum(), (h * p2).sum(), (h * np.exp(e)).sum(),
                -(h * p1 * lN).sum(), -(h * p2 * lD).sum()]
        return val, np.array(grad)

    for w, t, v in zip(counts, fits.theta, fits.objective, strict=True):
        ref = minimize(f, t, args=(w,), jac=True, method="L-BFGS-B",
                       options={"ftol": 1e-15, "gtol": 1e-14, "maxiter": 5000})
        assert v == pytest.approx(f(t, w)[0], rel=1e-10)  # the weighted sum, not a mean
        assert v == pytest.approx(ref.fun, rel=1e-8)  # and its minimum


def test_stragglers_refit_separately_and_unconverged_are_reported():
    from scalelaw.fit.bootstrap import refit_weighted

    law, x, y, theta, counts = _refit_inputs(64)
    full = refit_weighted(law, x, y, theta, counts, objective=1e-3, max_steps=500)
    assert full.converged.all()
    # a tiny first-pass cap: most refits become stragglers, finished in the second pass
    split = refit_weighted(law, x, y, theta, counts, objective=1e-3, max_steps=2)
    assert split.converged.all() and (split.steps > 2).sum() > 32
    np.testing.assert_allclose(split.objective, full.objective, rtol=1e-8)
    # no second pass: the unconverged refits are flagged and counted, not passed off
    capped = refit_weighted(law, x, y, theta, counts, objective=1e-3, max_steps=2,
                            straggler_steps=0)
    summary = capped.summary()
    assert summary["not_converged"] == (~capped.converged).sum() > 32
    assert summary["converged"] + summary["not_converged"] == 64
    assert summary["not_converged_index"] == np.flatnonzero(~capped.converged).tolist()


def test_unconverged_refits_left_out_of_draws(monkeypatch):
    from scalelaw.fit import bootstrap as bs

    real = bs.refit_weighted

    def capped(*args, **kwargs):
        return real(*args, **{**kwargs, "max_steps": 2, "straggler_steps": 0})

    monkeypatch.setattr(bs, "refit_weighted", capped)
    res = fit_law(noisy(0), init_grid=GRID, bootstrap=50, seed=1)
    meta = res.metadata["bootstrap"]
    assert meta["not_converged"] > 0 and meta["converged"] + meta["not_converged"] == 50
    alpha = np.array(res.samples["alpha"])
    assert np.isnan(alpha).sum() == meta["not_converged"]
    assert np.flatnonzero(np.isnan(alpha)).tolist() == meta["not_converged_index"]


def test_bootstrap_metadata_reports_convergence():
    res = fit_law(noisy(0), init_grid=GRID, bootstrap=100, seed=2)
    meta = res.metadata["bootstrap"]
    assert meta["resamples"] == 100 and meta["converged"] == 100
    assert meta["not_converged"] == 0 and meta["not_converged_index"] == []
    assert np.isfinite(res.samples["alpha"]).all()


def test_refits_do_not_depend_on_the_chunk_size():
    from scalelaw.fit.bootstrap import refit_weighted

    law, x, y, theta, counts = _refit_inputs(40)
    a = refit_weighted(law, x, y, theta, counts, objective=1e-3)
    b = refit_weighted(law, x, y, theta, counts, objective=1e-3, chunk=7)  # 5 chunks + a rest
    assert a.converged.all() and b.converged.all()
    np.testing.assert_allclose(b.objective, a.objective, rtol=1e-12)
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-6)  # flat optimum: theta to ~1e-8
