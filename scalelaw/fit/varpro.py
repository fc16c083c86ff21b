"""Chinchilla Approach 3 by variable projection: L = E + A·N^-α + B·D^-β in least squares.

For fixed exponents (α, β) the law is linear in (E, A, B), so those are solved exactly by
non-negative linear least squares and the fit is a search over (α, β) alone (variable
projection, Golub & Pereyra 1973, SIAM J. Numer. Anal. 10(2)): a grid over (α, β), every
point solved at once, then a Gauss-Newton polish of the projected residual from the best
grid point (:func:`scipy.optimize.least_squares`). It is the unbiased alternative to
Approach 2's parabolas that "Problems with Chinchilla Approach 2" recommends: on noise-free
data drawn from the law it returns the law's exponents to solver tolerance.

The objective is the sum of squared residuals of the *raw* loss, Σ (L − L̂)², not Hoffmann
et al.'s Huber on log residuals (:func:`scalelaw.fit.fit_law.fit_law`): with it the inner
problem is a linear least squares. E, A, B are kept >= 0: without the bound, a wrong (α, β)
can buy a lower error with a negative A or B (for small α, E + A·N^-α ≈ E + A − Aα log N
trades a huge E against a huge negative A), and the profile's minimum may be a law whose
loss does not fall with N or D. With three coefficients the non-negative solution is
exact by enumerating the active sets (the best feasible least-squares solution over the
subsets of columns). Plain numpy, float64 throughout (no JAX).

Examples
--------
>>> import numpy as np, pandas as pd
>>> N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5)))
>>> L = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
>>> res = fit_chinchilla_varpro(pd.DataFrame({"N": N, "D": D, "loss": L}))
>>> round(res.params["alpha"], 6), round(res.params["beta"], 6), round(res.params["E"], 6)
(0.34, 0.28, 1.69)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, check_bootstrap, read_table, validated_columns

DEFAULT_GRID = np.linspace(0.02, 2.0, 100)
SUBSETS = [list(s) for k in (1, 2, 3) for s in itertools.combinations(range(3), k)]


def _grid(values: Sequence[float] | None, name: str) -> np.ndarray:
    g = DEFAULT_GRID if values is None else np.asarray(values, dtype=float).ravel()
    if len(g) < 2 or not np.isfinite(g).all() or (g <= 0).any() or (np.diff(g) <= 0).any():
        raise ConfigError(f"{name}: must be >= 2 increasing finite exponents > 0")
    return g


def profile_grid(log_n: np.ndarray, log_d: np.ndarray, y: np.ndarray, alphas: np.ndarray,
                 betas: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Σ w (y − ŷ)² at every (α, β) of the grid, with (E, A, B) >= 0 solved exactly.

    Returns an array (len(alphas), len(betas)). The Gram matrices of [1, N^-α, D^-β] for
    all grid points come from two matrix products; each of the 7 active sets is then one
    batched 3x3 (or smaller) solve, and infeasible (negative) solutions are discarded.
    """
    w = np.ones_like(y) if w is None else w
    Pa = np.exp(-alphas[:, None] * log_n[None, :])  # (Ga, n)
    Pb = np.exp(-betas[:, None] * log_d[None, :])  # (Gb, n)
    Pa /= np.sqrt((w * Pa * Pa).sum(1, keepdims=True))  # unit columns: better conditioned
    Pb /= np.sqrt((w * Pb * Pb).sum(1, keepdims=True))
    ga, gb = len(alphas), len(betas)
    G = np.empty((ga, gb, 3, 3))
    G[..., 0, 0] = w.sum()
    G[..., 0, 1] = G[..., 1, 0] = (Pa @ w)[:, None]
    G[..., 0, 2] = G[..., 2, 0] = (Pb @ w)[None, :]
    G[..., 1, 1], G[..., 2, 2] = 1.0, 1.0
    G[..., 1, 2] = G[..., 2, 1] = (Pa * w) @ Pb.T
    r = np.empty((ga, gb, 3))
    r[..., 0] = w @ y
    r[..., 1] = (Pa @ (w * y))[:, None]
    r[..., 2] = (Pb @ (w * y))[None, :]
    yy = float(w @ (y * y))
    best = np.full((ga, gb), yy)  # the empty set: all coefficients 0
    for s in SUBSETS:
        Gs, rs = G[..., s, :][..., :, s], r[..., s]
        try:
            c = np.linalg.solve(Gs, rs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            c = (np.linalg.pinv(Gs) @ rs[..., None])[..., 0]
        rss = yy - (c * rs).sum(-1)
        best = np.where((c >= 0).all(-1) & (rss < best), rss, best)
    return np.maximum(best, 0.0)


def _coefficients(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, y: np.ndarray,
                  sw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E, A, B) >= 0 at exponents ``theta`` (scipy NNLS) and the weighted residuals."""
    from scipy.optimize import nnls

    X = np.column_stack([np.ones_like(y), np.exp(-theta[0] * log_n),
                         np.exp(-theta[1] * log_d)]) * sw[:, None]
    scale = np.linalg.norm(X, axis=0)
    c, _ = nnls(X / scale, y * sw)
    coef = c / scale
    return coef, y * sw - X @ coef


def _polish(theta0: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, y: np.ndarray,
            sw: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Gauss-Newton (trust region) on the projected residual, from ``theta0``."""
    from scipy.optimize import least_squares

    def residual(t: np.ndarray) -> np.ndarray:
        return _coefficients(t, log_n, log_d, y, sw)[1]

    sol = least_squares(residual, theta0, bounds=bounds,
                        x_scale=np.maximum(np.abs(theta0), 1e-3), xtol=1e-15, ftol=1e-15,
                        gtol=1e-15, max_nfev=400)
    better = np.sum(residual(sol.x) ** 2) <= np.sum(residual(theta0) ** 2)
    return np.asarray(sol.x) if better else theta0


def fit_chinchilla_varpro(table: TableLike, *, n: str = "N", d: str = "D", loss: str = "loss",
                          alpha_grid: Sequence[float] | None = None,
                          beta_grid: Sequence[float] | None = None, polish: bool = True,
                          bootstrap: int = 0, seed: int = 0) -> FitResult:
    """Fit L = E + A·N^-α + B·D^-β by least squares on the raw loss, by variable projection.

    Parameters
    ----------
    table : DataFrame or path (.csv, .parquet, .jsonl)
        One row per run: ``n`` parameters, ``d`` tokens, final ``loss`` (nats).
    alpha_grid, beta_grid : sequence of float, optional
        Exponents searched (default 100 values from 0.02 to 2 each); every pair is solved.
    polish : bool
        Refine the best grid point by Gauss-Newton on the projected residual (within the
        grid's bounds).
    bootstrap : int
        Row resamples (0: none), each refit by the polish from the fit (Epoch AI's
        protocol); draws of all five parameters land in ``samples``.
    seed : int
        Seed of the resampling.

    Returns
    -------
    FitResult
        ``law="chinchilla"`` (the same result type and parameter names as
        :func:`scalelaw.fit.fit_law.fit_law`, so :func:`scalelaw.compute_optimal` takes it);
        ``objective`` = Σ (L − L̂)²; ``metadata`` with the exponents ``a = β/(α+β)``,
        ``b = α/(α+β)`` under ``derived`` and the grid, the polish and the coefficients
        held at 0 (``at_zero``).

    Raises
    ------
    ConfigError
        Missing or invalid columns, fewer than 5 rows or 2 distinct N or D, a bad grid.
    """
    check_bootstrap(bootstrap)
    alphas, betas = _grid(alpha_grid, "alpha_grid"), _grid(beta_grid, "beta_grid")
    cols = validated_columns(read_table(table), {"N": n, "D": d, "loss": loss}, min_rows=5)
    for role, name in (("N", n), ("D", d)):
        if len(np.unique(cols[role])) < 2:
            raise ConfigError(f"column {name!r}: needs at least 2 distinct values of {role}")
    log_n, log_d, y = np.log(cols["N"]), np.log(cols["D"]), cols["loss"]
    grid = profile_grid(log_n, log_d, y, alphas, betas)
    i, j = np.unravel_index(int(np.argmin(grid)), grid.shape)
    theta = np.array([alphas[i], betas[j]])
    bounds = (np.array([alphas[0], betas[0]]), np.array([alphas[-1], betas[-1]]))
    ones = np.ones_like(y)
    if polish:
        theta = _polish(theta, log_n, log_d, y, ones, bounds)
    coef, res = _coefficients(theta, log_n, log_d, y, ones)
    params = _natural(coef, theta)
    samples: dict[str, list[float]] | None = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(bootstrap):
            sw = np.sqrt(np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)) * 1.0)
            t = _polish(theta, log_n, log_d, y, sw, bounds)
            draws.append(_natural(_coefficients(t, log_n, log_d, y, sw)[0], t))
        samples = {k: [b[k] for b in draws] for k in params}
    at_zero = [k for k, v in zip("EAB", coef, strict=True) if v == 0.0]
    edge = [f"{k}={v:g}" for k, v, lo, hi in zip(("alpha", "beta"), theta, *bounds, strict=True)
            if math.isclose(v, lo) or math.isclose(v, hi)]
    return FitResult(
        law="chinchilla", params=params, kind="loss",
        conventions={"N": "total parameters", "D": "tokens", "loss": "nats"},
        objective=float(res @ res), n_points=int(len(y)), samples=samples,
        metadata={"derived": _derived(params),
                  "objective": "sum of squared residuals of the raw loss (E, A, B >= 0)",
                  "solver": {"method": "variable projection: (E, A, B) by exact non-negative "
                             "least squares; (alpha, beta) by grid then least_squares polish",
                             "grid": [len(alphas), len(betas)], "polish": polish,
                             "grid_best": [float(alphas[i]), float(betas[j])]},
                  "at_zero": at_zero, "exponent_at_grid_edge": edge,
                  **({"bootstrap": {"n": bootstrap, "seed": seed}} if bootstrap else {}),
                  "source": "Hoffmann et al. 2022 Approach 3; Golub & Pereyra 1973 "
                            "(variable projection)"})


def _natural(coef: np.ndarray, theta: np.ndarray) -> dict[str, Any]:
    return {"E": float(coef[0]), "A": float(coef[1]), "B": float(coef[2]),
            "alpha": float(theta[0]), "beta": float(theta[1])}


def _derived(p: dict[str, Any]) -> dict[str, float]:
    s = p["alpha"] + p["beta"]
    return {"a": p["beta"] / s, "b": p["alpha"] / s}
