"""Tests for scalelaw.fit.laws: formulas against the published closed forms, registry."""

import math

import numpy as np
import pytest

from scalelaw.errors import ConfigError
from scalelaw.fit.laws import Law, get_law, list_laws, logsumexp3, register_law


def test_chinchilla_matches_closed_form():
    p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
    N, D = np.array([1e8, 7e10]), np.array([1e9, 1.4e12])
    expected = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
    np.testing.assert_allclose(get_law("chinchilla").predict(p, N=N, D=D), expected, rtol=1e-12)


def test_kaplan_matches_closed_form():
    p = {"alpha_N": 0.076, "alpha_D": 0.103, "N_c": 6.4e13, "D_c": 1.8e13}
    N, D = 1e9, 2e10
    expected = ((6.4e13 / N) ** (0.076 / 0.103) + 1.8e13 / D) ** 0.103
    assert get_law("kaplan").predict(p, N=N, D=D) == pytest.approx(expected, rel=1e-12)


def test_farseer_matches_eq15():
    p = {"a1": -0.124, "b1": 0.424, "alpha": 0.123, "a2": 88.01, "b2": -6.287, "beta": -0.1,
         "a3": -0.021, "b3": -0.091, "gamma": 0.169}
    N, D = 1e9, 1e11
    expected = (math.exp(-0.021 * N**0.169 - 0.091)
                + math.exp(88.01 * N**-0.1 - 6.287) * D ** -math.exp(-0.124 * N**0.123 + 0.424))
    assert get_law("farseer").predict(p, N=N, D=D) == pytest.approx(expected, rel=1e-10)


def test_data_constrained_reduces_to_chinchilla_without_repeats():
    nat = {"A": 520.82, "B": 1487.72, "E": 1.8691, "alpha": 0.3527, "beta": 0.3527,
           "R_D_star": 15.39, "R_N_star": 5.31}
    law = get_law("data_constrained")
    N, D = 1e8, 2e9  # U >= D: single epoch, and N below the compute-optimal size for U
    one_epoch = law.predict(nat, N=N, D=D, U=1e12)
    chin = 1.8691 + 520.82 / N**0.3527 + 1487.72 / D**0.3527
    assert one_epoch == pytest.approx(chin, rel=1e-12)
    # 4 epochs over U: worse than 4U fresh tokens, better than U once (Muennighoff Fig. 3)
    repeated = law.predict(nat, N=N, D=4 * D, U=D)
    assert law.predict(nat, N=N, D=4 * D, U=4 * D) < repeated < one_epoch


def test_power_law_hparams():
    law = get_law("lr_nd")
    assert law.predict({"c": 1.79, "p": -0.713, "q": 0.307}, N=1e9, D=1e11) == pytest.approx(
        1.79 * 1e9**-0.713 * 1e11**0.307, rel=1e-12)
    assert law.kind == "hparams" and law.huber_delta is None
    assert get_law("batch_c").predict({"d": 0.292, "r": 0.3271}, C=1e21) == pytest.approx(
        0.292 * 1e21**0.3271, rel=1e-12)


def test_natural_roundtrip_and_grid():
    law = get_law("chinchilla")
    theta = np.array([6.0, 7.0, 0.5, 0.3, 0.4])
    np.testing.assert_allclose(law.from_natural(law.to_natural(theta)), theta, rtol=1e-15)
    assert law.grid().shape == (4500, 5)
    assert law.grid({"a": [1.0], "b": [2.0]}).shape == (125, 5)
    assert law.derived_values({"alpha": 0.34, "beta": 0.28})["a"] == pytest.approx(0.28 / 0.62)


def test_logsumexp3_stable():
    assert float(logsumexp3(1000.0, 1000.0, -1000.0)) == pytest.approx(1000 + math.log(2))


def test_registry_and_user_law():
    assert {"chinchilla", "kaplan", "farseer", "data_constrained", "lr_nd", "batch_d",
            "lr_c", "batch_c"} <= set(list_laws())
    with pytest.raises(ConfigError, match="unknown law 'nope'"):
        get_law("nope")
    with pytest.raises(ConfigError, match="init_grid lacks"):
        Law("bad", ("x",), lambda p, x: p["x"], ("N",), {})
    law = Law("const_test", ("c",), lambda p, x: p["c"] + 0 * x["N"], ("N",), {"c": [0.0]})
    register_law(law)
    assert get_law("const_test") is law
    with pytest.raises(ConfigError, match="already registered"):
        register_law(Law("const_test", ("c",), lambda p, x: p["c"], ("N",), {"c": [1.0]}))
