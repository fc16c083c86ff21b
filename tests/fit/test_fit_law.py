"""Tests for scalelaw.fit.fit_law and its solver: Epoch AI reproduction, recovery, user laws,
validation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ConfigError
from scalelaw.fit.fit_law import fit_law
from scalelaw.fit.laws import Law, logsumexp3

ANCHOR = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "epoch_chinchilla"
TRUE = {"A": 400.0, "B": 2000.0, "E": 1.8, "alpha": 0.34, "beta": 0.37}
SMALL_GRID = {"a": [5.0, 10.0], "b": [5.0, 10.0], "e": [0.0, 0.5], "alpha": [0.5],
              "beta": [0.5]}


def epoch_table() -> pd.DataFrame:
    path = ANCHOR / "svg_extracted_data.csv"
    if not path.exists():
        pytest.skip(f"anchor data absent: {path}")
    df = pd.read_csv(path)
    df["N"] = df["Model Size"]
    df["D"] = df["Training FLOP"] / (6 * df["Model Size"])  # Epoch's D = C / (6N)
    return df


def synthetic(noise=0.0, seed=0, n=6):
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 3e9, n), np.geomspace(2e8, 2e11, n)))
    L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    L = L * np.exp(noise * np.random.default_rng(seed).standard_normal(L.shape))
    return pd.DataFrame({"N": N, "D": D, "loss": L})


def test_epoch_reproduction():
    res = fit_law(epoch_table(), "chinchilla", drop_top=5)  # the full 4,500-start grid
    assert res.n_points == 240
    assert res.metadata["solver"]["starts"] == 4500
    # reference printed to 7 significant digits: 1.018274e-3 +- 5e-10
    assert abs(res.objective - 1.018274e-3) <= 5e-10
    p = res.params
    assert p["E"] == pytest.approx(1.8172, abs=0.002)
    assert p["alpha"] == pytest.approx(0.34731, abs=0.002)
    assert p["beta"] == pytest.approx(0.36718, abs=0.002)
    assert p["A"] == pytest.approx(477.84, rel=0.03)
    assert p["B"] == pytest.approx(2143.86, rel=0.03)
    assert res.metadata["derived"]["a"] == pytest.approx(0.513, abs=0.002)


def test_epoch_objective_matches_scipy_polish():
    """Independent check to 1e-8: scipy L-BFGS-B with an analytic gradient from our optimum."""
    from scipy.optimize import minimize

    df = epoch_table()
    res = fit_law(df, drop_top=5)
    keep = df["loss"] < np.sort(df["loss"])[-5]
    lN, lD, lL = (np.log(df.loc[keep, c].to_numpy()) for c in ("N", "D", "loss"))

    def f(t):
        a, b, e, al, be = t
        x = np.stack([a - al * lN, b - be * lD, np.full_like(lN, e)])
        m = x.max(0)
        s = np.exp(x - m)
        r = m + np.log(s.sum(0)) - lL
        w = s / s.sum(0)
        h = np.clip(r, -1e-3, 1e-3)
        hub = np.where(np.abs(r) <= 1e-3, 0.5 * r**2, 1e-3 * (np.abs(r) - 5e-4))
        g = np.array([(h * w[0]).sum(), (h * w[1]).sum(), (h * w[2]).sum(),
                      -(h * w[0] * lN).sum(), -(h * w[1] * lD).sum()])
        return hub.sum(), g

    theta = np.array(list(res.metadata["fit_params"].values()))
    ref = minimize(f, theta, jac=True, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-13})
    assert ref.fun <= res.objective * (1 + 1e-8)
    assert res.objective == pytest.approx(ref.fun, rel=1e-8)


def test_recovers_truth_without_noise():
    res = fit_law(synthetic(), init_grid=SMALL_GRID)
    for k, v in TRUE.items():
        assert res.params[k] == pytest.approx(v, rel=1e-4), k
    assert res.objective < 1e-12


def test_keep_none_equals_screened():
    df = synthetic(noise=0.01)
    a = fit_law(df, init_grid=SMALL_GRID)
    b = fit_law(df, init_grid=SMALL_GRID, keep=None)
    assert a.objective == pytest.approx(b.objective, rel=1e-8)


def test_user_defined_law_and_columns():
    def tpp(p, x):  # over-training law in N and tokens per parameter
        import jax.numpy as jnp
        return logsumexp3(p["a"] - p["alpha"] * jnp.log(x["N"]),
                          p["b"] - p["beta"] * jnp.log(x["D"] / x["N"]), p["e"])

    law = Law("tpp_test", ("a", "b", "e", "alpha", "beta"), tpp, ("N", "D"), SMALL_GRID,
              log_params={"a": "A", "b": "B", "e": "E"})
    df = synthetic().rename(columns={"N": "params", "D": "tokens", "loss": "eval_loss"})
    N, D = df["params"], df["tokens"]
    df["eval_loss"] = 1.7 + 300 / N**0.3 + 5 / (D / N) ** 0.4
    res = fit_law(df, law, n="params", d="tokens", loss="eval_loss")
    assert res.law == "tpp_test"
    assert res.params["alpha"] == pytest.approx(0.3, rel=1e-3)
    assert res.params["B"] == pytest.approx(5.0, rel=1e-2)


def test_hparam_power_law_is_ols():
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e10, 12)
    D = 20 * N * rng.uniform(0.5, 2, N.size)
    lr = 1.79 * N**-0.713 * D**0.307 * np.exp(0.05 * rng.standard_normal(N.size))
    res = fit_law(pd.DataFrame({"N": N, "D": D, "lr": lr}), "lr_nd", loss="lr")
    X = np.column_stack([np.ones_like(N), np.log(N), np.log(D)])
    coef = np.linalg.lstsq(X, np.log(lr), rcond=None)[0]
    assert res.kind == "hparams"
    assert [np.log(res.params["c"]), res.params["p"], res.params["q"]] == pytest.approx(
        coef, abs=1e-6)


def test_holdout_metadata():
    res = fit_law(synthetic(noise=0.003), init_grid=SMALL_GRID, holdout_above=5e8)
    h = res.metadata["holdout"]
    assert h["n"] > 0 and 0 < h["mean_rel_error"] < 0.05
    assert res.n_points < 36


@pytest.mark.parametrize("mutate, message", [
    (lambda df: df.drop(columns="D"), "column 'D'"),
    (lambda df: df.assign(loss=np.r_[np.nan, df.loss[1:]]), "NaN"),
    (lambda df: df.assign(N=-df.N), "must be > 0"),
    (lambda df: df.head(3), "need at least 5"),
    (lambda df: pd.concat([df, df.head(1)]), "duplicates"),
])
def test_bad_input(mutate, message):
    with pytest.raises(ConfigError, match=message):
        fit_law(mutate(synthetic()), init_grid=SMALL_GRID)


def test_unknown_law():
    with pytest.raises(ConfigError, match="unknown law"):
        fit_law(synthetic(), "no_such_law")


def test_whitening_gives_unit_hessian():
    import jax
    import jax.numpy as jnp

    from scalelaw.fit.laws import get_law
    from scalelaw.fit.objective import objective
    from scalelaw.fit.solver import whitening

    df = synthetic(noise=0.01)
    law = get_law("chinchilla")
    res = fit_law(df, init_grid=SMALL_GRID)
    theta = np.array(list(res.metadata["fit_params"].values()))
    with jax.enable_x64(True):
        args = ({"N": jnp.asarray(df["N"].to_numpy()), "D": jnp.asarray(df["D"].to_numpy())},
                jnp.log(jnp.asarray(df["loss"].to_numpy())), jnp.ones(len(df)))
        precond, scale = whitening(law, 1e-3, jnp.asarray(theta), args)
        hz = jax.hessian(lambda z: objective(law, jnp.asarray(theta) + precond @ z, args, 1e-3)
                         / scale)(jnp.zeros(5))
    assert float(scale) == pytest.approx(res.objective, rel=1e-12)
    np.testing.assert_allclose(np.asarray(hz), np.eye(5), atol=1e-6)


def test_solver_reports_convergence():
    res = fit_law(synthetic(noise=0.01), init_grid=SMALL_GRID)
    solver = res.metadata["solver"]
    assert solver["converged"] is True and 0 < solver["steps"] < 2000
