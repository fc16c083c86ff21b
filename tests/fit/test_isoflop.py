"""Tests for scalelaw.fit.isoflop: Approach 2 on a surface with a known optimum."""

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ConfigError
from scalelaw.fit.chinchilla import chinchilla_optimal
from scalelaw.fit.isoflop import isoflop_fit, parabola_minimum, wls_power_law

HOFF = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}


def table(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for C in np.geomspace(1e18, 1e21, 5):
        n0 = chinchilla_optimal(HOFF, C)[0]
        for N in n0 * np.geomspace(0.4, 2.5, 9):
            D = C / (6 * N)
            L = HOFF["E"] + HOFF["A"] / N ** HOFF["alpha"] + HOFF["B"] / D ** HOFF["beta"]
            rows.append((N, C, L * np.exp(noise * rng.standard_normal())))
    return pd.DataFrame(rows, columns=["N", "C", "loss"])


def test_parabola_and_wls():
    x = np.linspace(-2, 2, 9)
    assert parabola_minimum(x, (x - 0.3) ** 2 + 1)[0] == pytest.approx(0.3)
    assert np.isnan(parabola_minimum(x, -(x**2))[0])
    lc = np.log(np.geomspace(1e18, 1e22, 5))
    assert wls_power_law(lc, 0.5 * lc - 3, np.ones(5)) == pytest.approx((-3.0, 0.5))


def test_recovers_exponent_noiseless():
    """Both exponents match Hoffmann et al.'s closed form a = β/(α+β), b = α/(α+β).

    Along an iso-FLOP line the loss, as a function of log(N / N_opt), is the same curve at
    every budget up to a scale and the offset E, so each parabola's vertex is off N_opt by
    the same factor: the exponents come out exact, the prefactors within that factor.
    """
    al, be, A, B = (HOFF[k] for k in ("alpha", "beta", "A", "B"))
    G = (al * A / (be * B)) ** (1 / (al + be))  # N_opt = G (C/6)^a, D_opt = (C/6)^b / G
    res = isoflop_fit(table(), bootstrap=0)
    assert res.params["a"] == pytest.approx(be / (al + be), abs=1e-9)
    assert res.params["b"] == pytest.approx(al / (al + be), abs=1e-9)
    assert res.params["k"] == pytest.approx(G * 6 ** -(be / (al + be)), rel=0.02)
    assert res.params["k_D"] == pytest.approx(6 ** -(al / (al + be)) / G, rel=0.02)


def test_bootstrap_interval_covers_truth():
    res = isoflop_fit(table(noise=0.002), bootstrap=300, seed=0)
    lo, hi = res.interval("a")
    assert lo < 0.28 / 0.62 < hi
    assert hi - lo < 0.2
    assert len(res.metadata["budgets"]["C"]) == 5


def test_bad_input():
    with pytest.raises(ConfigError, match="compute budgets"):
        isoflop_fit(table().query("C == C.min()"), bootstrap=0)
    with pytest.raises(ConfigError, match="column 'flops'"):
        isoflop_fit(table(), c="flops")


# ------------------------------------------------------------------ per-budget estimators
SIZES = np.geomspace(1e7, 1e10, 16)  # one grid of model sizes: three decades of N


def asymmetric_table(seeds=1, noise=0.0, seed=0):
    """Five budgets C = 1e17..1e21 with optima N0 = 10^(7.5 + 0.5 i), so a = 0.5 exactly.

    Each curve is steep on the large-N side and flattens on the small-N side (a Morse-type
    well, loss = 2 + 0.3 (1 - (N/N0)^0.3)^2): the parabola through all 16 sizes is pulled
    far from N0 and, for the largest budget, lands above the largest model.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(5):
        n0 = 10 ** (7.5 + 0.5 * i)
        for N in SIZES:
            L = 2 + 0.3 * (1 - (N / n0) ** 0.3) ** 2 - 0.01 * i
            rows += [(N, 1e17 * 10**i, L * np.exp(noise * rng.standard_normal()))
                     for _ in range(seeds)]
    return pd.DataFrame(rows, columns=["N", "C", "loss"])


def true_optima():
    return 10 ** (7.5 + 0.5 * np.arange(5))


def test_all_points_parabola_vertex_outside_range_is_flagged():
    res = isoflop_fit(asymmetric_table())
    b = pd.DataFrame(res.metadata["budgets"])
    assert b["N_opt"].iloc[-1] > b["N_max"].iloc[-1]  # the vertex lies above the largest model
    assert b["flag"].iloc[-1].startswith("optimum N*=1.23e+10 outside the sampled N range")
    assert b["used"].tolist() == [True] * 4 + [False]
    assert res.metadata["flagged"] == [{"C": 1e21, "reason": b["flag"].iloc[-1]}]
    assert res.metadata["used_budgets"] == 4
    # and the four it keeps are biased: the exponent is 0.22, not 0.5
    assert 0.15 < res.params["a"] < 0.3


@pytest.mark.parametrize(("kw", "tol"), [({"method": "window"}, 0.12),
                                         ({"method": "window", "window": 3}, 0.04),
                                         ({"method": "window", "band": 0.01}, 0.08),
                                         ({"method": "akima"}, 0.05)])
def test_window_and_akima_find_the_optima(kw, tol):
    res = isoflop_fit(asymmetric_table(), **kw)
    ratio = np.array(res.metadata["budgets"]["N_opt"]) / true_optima()
    assert np.all(np.abs(ratio - 1) < tol), ratio
    assert res.metadata["flagged"] == []
    assert res.params["a"] == pytest.approx(0.5, abs=0.002)


def test_akima_bootstrap_over_seed_noise():
    """Three seeds per size: σ is estimated from the repeats, the optimum is the median of
    the bootstrap argmins and every interval covers the true optimum."""
    res = isoflop_fit(asymmetric_table(seeds=3, noise=0.003), method="akima", bootstrap=200,
                      seed=1)
    assert res.metadata["noise"]["source"] == "pooled seed repeats"
    assert res.metadata["noise"]["sigma_log_loss"] == pytest.approx(0.003, rel=0.2)
    b = pd.DataFrame(res.metadata["budgets"])
    assert (b["N_opt_lo"] < true_optima()).all() and (true_optima() < b["N_opt_hi"]).all()
    assert b["log_N_opt_se"].between(0.02, 0.5).all()
    lo, hi = res.interval("a")
    assert lo < 0.5 < hi and hi - lo < 0.2
    given = isoflop_fit(asymmetric_table(seeds=3, noise=0.003), method="akima",
                        bootstrap=200, seed=1, noise=0.03)  # 10x the noise: wider
    assert (np.array(given.metadata["budgets"]["log_N_opt_se"]) > 2 * b["log_N_opt_se"]).all()
    assert given.metadata["noise"] == {"sigma_log_loss": 0.03, "source": "given"}


def test_no_interior_minimum_is_flagged():
    t = table()
    small = t["C"] == t["C"].min()
    t.loc[small, "loss"] = 3.0 - 0.01 * np.arange(small.sum())  # falls all the way: monotone
    res = isoflop_fit(t, method="window")
    assert res.metadata["flagged"][0]["reason"].startswith(
        "no interior minimum: the lowest loss is at the largest model")
    assert res.metadata["used_budgets"] == 4


def numpy_wls(log_c, log_n, se):
    X = np.column_stack([np.ones_like(log_c), log_c])
    W = np.diag(1 / se**2)
    return np.linalg.solve(X.T @ W @ X, X.T @ W @ log_n)


def test_given_optima_weighted_by_their_errors():
    C = np.geomspace(1e18, 1e22, 5)
    log_n = np.log(0.1 * C**0.5) + np.array([0.1, -0.2, 0.05, 0.3, -0.1])
    se = np.array([0.05, 0.4, 0.1, 0.8, 0.2])
    opt = pd.DataFrame({"flops": C, "N_opt": np.exp(log_n), "log_N_opt_se": se})
    res = isoflop_fit(opt, method="given", c="flops")
    log_k, a = numpy_wls(np.log(C), log_n, se)
    assert res.params["a"] == pytest.approx(a, rel=1e-10)
    assert res.params["k"] == pytest.approx(np.exp(log_k), rel=1e-10)
    assert res.metadata["frontier"].startswith("WLS")
    ols = isoflop_fit(opt.drop(columns="log_N_opt_se"), method="given", c="flops")
    assert ols.params["a"] == pytest.approx(np.polyfit(np.log(C), log_n, 1)[0], rel=1e-10)
    assert abs(ols.params["a"] - res.params["a"]) > 0.01  # the weights matter here
    boot = isoflop_fit(opt, method="given", c="flops", bootstrap=400, seed=0)
    assert boot.stderr("a") == pytest.approx(np.sqrt(np.linalg.inv(
        np.column_stack([np.ones(5), np.log(C)]).T @ np.diag(1 / se**2)
        @ np.column_stack([np.ones(5), np.log(C)]))[1, 1]), rel=0.15)


def test_a_fits_budgets_table_feeds_method_given():
    res = isoflop_fit(table(noise=0.002), bootstrap=100, seed=0)
    again = isoflop_fit(pd.DataFrame(res.metadata["budgets"]), method="given")
    assert again.params["a"] == pytest.approx(res.params["a"], rel=1e-12)


@pytest.mark.parametrize(("kw", "match"), [
    ({"method": "spline"}, "method: must be one of parabola, window, akima, given, got 'spline'"),
    ({"method": "window", "window": 2}, "window: must be an integer >= 3"),
    ({"window": True}, "window: must be an integer >= 3"),
    ({"method": "window", "band": -0.1}, "band: must be a finite number > 0"),
    ({"method": "akima", "noise": 0.0}, "noise: must be a finite number > 0"),
    ({"bootstrap": 1}, "bootstrap: must be 0 or >= 2"),
    ({"method": "given"}, "column 'N_opt': not in table"),
])
def test_bad_options_are_one_line(kw, match):
    with pytest.raises(ConfigError, match=match) as exc:
        isoflop_fit(table(), **kw)
    assert "\n" not in str(exc.value)


def test_bad_given_optima_and_too_few_budgets():
    opt = pd.DataFrame({"C": [1e18, 1e18, 1e19], "N_opt": [1e8, 2e8, 3e8]})
    with pytest.raises(ConfigError, match="column 'C': budget 1e\\+18 appears 2 times"):
        isoflop_fit(opt, method="given")
    with pytest.raises(ConfigError, match="bootstrap: method 'given' draws from"):
        isoflop_fit(opt.iloc[1:], method="given", bootstrap=10)
    with pytest.raises(ConfigError, match="column 'err': not in table"):
        isoflop_fit(opt.iloc[1:], method="given", se="err")
    t = asymmetric_table().query("C >= 1e20")  # one budget usable, one flagged
    with pytest.raises(ConfigError, match=r"^isoflop: 1 of 2 budgets have a usable optimum, "
                       r"need >= 2 \(C=1e\+21: optimum N\*=1.23e\+10 outside") as exc:
        isoflop_fit(t)
    assert "\n" not in str(exc.value)


def test_akima_optimum_is_the_median_and_seeds_average_the_noise():
    from scalelaw.fit.isoflop_budget import budget_optimum

    x = np.log(SIZES)
    y = 2 + 0.3 * (1 - (SIZES / 3e8) ** 0.3) ** 2
    rng = np.random.default_rng(0)
    est = budget_optimum(x, y, "akima", bootstrap=101, rng=rng, noise=0.01)
    point = budget_optimum(x, y, "akima", bootstrap=0, rng=rng)
    assert est.log_n == np.median(est.draws) != point.log_n
    xs, ys = np.repeat(x, 4), np.repeat(y, 4) * (1 + 1e-9 * np.arange(4 * len(x)))
    four = budget_optimum(xs, ys, "akima", bootstrap=400, rng=rng, noise=0.01)
    one = budget_optimum(x, y, "akima", bootstrap=400, rng=rng, noise=0.01)
    assert np.std(one.draws) / np.std(four.draws) == pytest.approx(2.0, rel=0.3)  # sqrt(4)
