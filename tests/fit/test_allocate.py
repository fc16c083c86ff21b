"""Tests for scalelaw.fit.allocate: closed form vs numeric optimum, C = 6ND."""

import numpy as np
import pytest

from scalelaw.fit.allocate import compute_optimal, numeric_optimal
from scalelaw.fit.chinchilla import chinchilla_optimal
from scalelaw.fit.laws import get_law
from scalelaw.fit.result import FitResult

HOFF = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}


def test_closed_form_matches_numeric_optimum():
    C = np.geomspace(1e18, 1e25, 8)
    n_c, d_c = chinchilla_optimal(HOFF, C)
    n_n, d_n = numeric_optimal(get_law("chinchilla"), HOFF, C)
    np.testing.assert_allclose(n_c, n_n, rtol=1e-5)
    np.testing.assert_allclose(6 * n_c * d_c, C, rtol=1e-12)
    # the optimum beats its neighbours on the iso-FLOP line
    law = get_law("chinchilla")
    for f in (0.9, 1.1):
        assert np.all(law.predict(HOFF, N=n_c, D=d_c) < law.predict(HOFF, N=f * n_c, D=d_c / f))


def test_exponents_and_tokens_per_param():
    out = compute_optimal(FitResult("chinchilla", HOFF), [1e20, 1e22])
    slope = np.diff(np.log(out["N_opt"])) / np.diff(np.log(out["C"]))
    assert slope[0] == pytest.approx(0.28 / 0.62, rel=1e-10)
    np.testing.assert_allclose(out["tokens_per_param"], out["D_opt"] / out["N_opt"])


def test_numeric_for_other_law():
    p = {"alpha_N": 0.076, "alpha_D": 0.103, "N_c": 6.4e13, "D_c": 1.8e13}
    out = compute_optimal(p, 1e21, law="kaplan")
    law = get_law("kaplan")
    n = out["N_opt"][0]
    for f in (0.8, 1.25):
        assert law.predict(p, N=n, D=1e21 / (6 * n)) < law.predict(p, N=f * n, D=1e21 / (6 * f * n))


@pytest.mark.parametrize("bad", [0.0, -1e20, float("nan"), float("inf"), [1e20, float("nan")]])
def test_compute_optimal_refuses_a_budget_that_is_not_positive_and_finite(bad) -> None:
    p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
    with pytest.raises(ValueError, match="^compute: must be finite and > 0"):
        compute_optimal(p, bad)
