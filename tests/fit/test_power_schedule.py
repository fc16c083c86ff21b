"""fit_power_schedule: Shen et al.'s eta* = beta * a * T^b from (batch, tokens) cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ConfigError
from scalelaw.fit.power_schedule import fit_power_schedule
from scalelaw.recommend import recommend

GRID = 2.0 ** np.arange(-16, 3)


def grid(a: float = 4.6, b: float = -0.51, noise: float = 0.0, seed: int = 0,
         budgets=(1e6, 4e6, 1.6e7), batches=(8, 16, 32)) -> pd.DataFrame:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    rows = [(beta, t, lr, 3.0 + 0.04 * np.log2(lr / (beta * a * t**b)) ** 2
             + noise * rng.normal())
            for beta in batches for t in budgets for lr in GRID]
    return pd.DataFrame(rows, columns=["batch_size", "tokens", "lr", "loss"])


@pytest.mark.parametrize(("a", "b"), [(4.6, -0.51), (1.5, -0.3)])
def test_recovers_the_constants_of_noise_free_bowls(a: float, b: float) -> None:
    fit = fit_power_schedule(grid(a, b))
    assert fit.kind == "schedule" and fit.n_points == 9
    assert fit.params["a"] == pytest.approx(a, rel=1e-6)
    assert fit.params["b"] == pytest.approx(b, abs=1e-7)
    assert fit.metadata["paper"]["a"] == 4.6


def test_bootstrap_intervals_cover_the_truth_and_recommend_uses_the_fit() -> None:
    covered = 0
    for seed in range(10):  # seeded: 95% intervals of b cover the truth most of the time
        fit = fit_power_schedule(grid(noise=0.002, seed=seed,
                                      budgets=(1e6, 2e6, 4e6, 8e6, 1.6e7)),
                                 bootstrap=200, seed=seed)
        lo, hi = fit.interval("b")
        covered += lo < -0.51 < hi
        assert 0 < hi - lo < 0.1
    assert covered >= 6
    rec = recommend(1e8, 4e6, laws=fit, seq_len=1024)
    beta = rec.batch_sequences
    assert rec.lr == pytest.approx(beta * fit.params["a"] * 4e6 ** fit.params["b"], rel=1e-9)
    assert rec.schedule["name"] == "power" and rec.schedule["a"] == fit.params["a"]
    assert rec.schedule["b"] == fit.params["b"] and rec.intervals["lr"][0] < rec.lr
    assert "fitted Power schedule" in rec.source


def test_edge_optima_are_left_out_and_one_budget_is_refused() -> None:
    runs = grid()
    top = runs[runs["lr"] <= 2.0**-4]  # the largest optima (0.06-0.13) fall off the grid
    fit = fit_power_schedule(top)
    cells = pd.DataFrame(fit.metadata["cells"])
    assert (~cells["used"]).sum() >= 1 and fit.n_points == cells["used"].sum()
    assert cells.loc[~cells["used"], "edge"].all()
    assert fit.params["b"] == pytest.approx(-0.51, abs=1e-6)  # the interior cells suffice
    with pytest.raises(ConfigError, match="at least 2 are needed"):
        fit_power_schedule(grid(budgets=(1e6,)))
    with pytest.raises(ConfigError, match="column 'bs'"):
        fit_power_schedule(grid(), batch="bs")
    with pytest.raises(ConfigError, match="bootstrap: must be 0 or >= 2"):
        fit_power_schedule(grid(), bootstrap=1)


def test_the_batch_exponent_can_be_fitted_instead_of_assumed() -> None:
    """Optima that scale as beta^0.5 (Adam's square-root rule), not linearly: the free
    exponent recovers c, a and b; the paper's linear form cannot, and predict uses c."""
    rows = [(beta, T, lr, 3.0 + 0.04 * np.log2(lr / (0.02 * beta**0.5 * T**-0.2)) ** 2)
            for beta in (2, 4, 8, 16) for T in (1e6, 4e6, 1.6e7)
            for lr in 2.0 ** np.arange(-14, -2, 0.5)]
    table = pd.DataFrame(rows, columns=["batch_size", "tokens", "lr", "loss"])
    free = fit_power_schedule(table, batch_exponent=None, bootstrap=50)
    assert free.params["batch_exponent"] == pytest.approx(0.5, abs=0.01)
    assert free.params["a"] == pytest.approx(0.02, rel=0.05)
    assert free.params["b"] == pytest.approx(-0.2, abs=0.01)
    lo, hi = free.interval("batch_exponent")
    assert lo < 0.5 < hi + 1e-9 and hi - lo < 0.05
    assert float(free.predict(batch=9, tokens=4e6)) == pytest.approx(
        0.02 * 3 * 4e6**-0.2, rel=0.05)
    linear = fit_power_schedule(table)
    assert linear.params["batch_exponent"] == 1.0
    assert linear.objective > 100 * free.objective  # the linear form misfits these optima
    with pytest.raises(ConfigError, match="^batch_exponent: None fits it"):
        fit_power_schedule(table[table["batch_size"] == 4], batch_exponent=None)
