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
