"""Farseer's differential piecewise fitting (Li et al. 2025, arXiv 2506.10972, App. C, Alg. 2).

The Farseer law (Eq. 3; N non-embedding parameters, D tokens):

    L(N, D) = exp(a3·N^γ + b3) + exp(a2·N^β + b2) · D^(−exp(a1·N^α + b1))
            =        G(N)      +        B(N)      · D^(−A(N))

is fitted in three linear-algebra stages instead of one nonlinear least squares (which
App. H reports to be ~10× worse):

1. Per N, differences on a geometric D grid remove G:
   R_N(D) = L(N, D) − L(N, λD) = B_N (1 − λ^(−A_N)) D^(−A_N), λ = √2.
   OLS of log R on log D gives A_N and B̂_N; B_N = B̂_N / (1 − λ^(−A_N)).
2. log A_N = a1·N^α + b1 and log B_N = a2·N^β + b2: for each candidate exponent (a, b)
   come from linear regression, the exponent from a grid search refined by a bounded 1-D
   minimisation; α and β are then refined alternately (``rounds``) to minimise
   Σ (R − R̃)² over all differences.
3. O(N, D) = L − B(N)·D^(−A(N)); G(N) = mean over D of O; log G = a3·N^γ + b3 with γ by
   grid search (and refinement).

Farseer's extrapolation metric is the mean relative error on held-out larger models
(Farseer 0.50%, Chinchilla 2.68% in the paper); ``holdout_above`` reports it.

Examples
--------
>>> import numpy as np, pandas as pd
>>> N, D = np.meshgrid(5e7 * np.sqrt(2) ** np.arange(8), 2e9 * np.sqrt(2) ** np.arange(8))
>>> L = farseer_loss(PUBLISHED, N, D)
>>> fit = fit_farseer(pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": L.ravel()}))
>>> round(fit.params["alpha"], 3), round(fit.params["beta"], 3), round(fit.params["gamma"], 3)
(0.123, -0.1, 0.169)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from scalelaw.errors import ConfigError
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, read_table, validated_columns

PARAMS = ("a1", "b1", "alpha", "a2", "b2", "beta", "a3", "b3", "gamma")
# Eq. 15 of the paper (L in bits per character, N non-embedding).
PUBLISHED = {"a1": -0.124, "b1": 0.424, "alpha": 0.123, "a2": 88.01, "b2": -6.287,
             "beta": -0.1, "a3": -0.021, "b3": -0.091, "gamma": 0.169}
DEFAULT_GRID = np.round(np.linspace(-1.0, 1.0, 401), 6)  # step 0.005, then refined
LAMBDA = math.sqrt(2.0)
RTOL = 0.01  # D' pairs with λD within 1%: whole-step budgets are up to ~0.2% off a √2 grid


def farseer_loss(params: dict[str, float], N: ArrayLike, D: ArrayLike) -> np.ndarray:
    """Evaluate the Farseer law (Eq. 3) at (N, D)."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    p = params
    A = np.exp(p["a1"] * N ** p["alpha"] + p["b1"])
    B = np.exp(p["a2"] * N ** p["beta"] + p["b2"])
    G = np.exp(p["a3"] * N ** p["gamma"] + p["b3"])
    return G + B * D ** (-A)


# ------------------------------------------------------------------------- stage 1
def differences(N: np.ndarray, D: np.ndarray, L: np.ndarray, lam: float = LAMBDA,
                rtol: float = RTOL) -> pd.DataFrame:
    """All pairs (N, D, D') with D' within ``rtol`` of λD, R = L(N, D) − L(N, D').

    ``ratio`` is each pair's own D'/D: budgets rounded to whole steps (or printed rounded)
    are never exactly λ apart, and the later stages use the pair's ratio, so the rounding
    biases nothing; on an exact grid ``ratio`` is λ.

    Examples
    --------
    >>> d = np.array([98304, 139264, 196608])  # sqrt(2) apart, rounded to 2048-token steps
    >>> differences(np.full(3, 1e6), d, np.array([3.0, 2.9, 2.82]))[["D", "ratio"]].round(4)
            D   ratio
    0   98304  1.4167
    1  139264  1.4118
    """
    rows = []
    df = pd.DataFrame({"N": N, "D": D, "L": L})
    for n_val, g in df.groupby("N"):
        d, loss = g["D"].to_numpy(), g["L"].to_numpy()
        for i in range(len(d)):
            off = np.abs(d / (lam * d[i]) - 1.0)
            j = int(np.argmin(off))
            if off[j] < rtol:
                rows.append((n_val, d[i], loss[i] - loss[j], d[j] / d[i]))
    return pd.DataFrame(rows, columns=["N", "D", "R", "ratio"])


def per_n_terms(diffs: pd.DataFrame, lam: float = LAMBDA) -> pd.DataFrame:
    """Stage 1: per N, OLS log R = log B̂ − A log D; B = B̂ / (1 − λ^−A).

    Non-positive differences (noise) are dropped; an N with fewer than two positive
    differences is skipped. Pairs whose ratio ρ = D'/D is not exactly λ (``ratio``
    column of :func:`differences`) have R = B (1 − ρ^−A) D^−A: their log R is moved to
    λ's by log((1 − λ^−A) / (1 − ρ^−A)) at the current A and the OLS repeated until A
    settles (a few rounds; none on an exact grid).
    """
    rows = []
    for n_val, g in diffs[diffs["R"] > 0].groupby("N"):
        if len(g) < 2:
            continue
        logd, logr = np.log(g["D"].to_numpy()), np.log(g["R"].to_numpy())
        rho = g["ratio"].to_numpy() if "ratio" in g else np.full(len(g), lam)
        slope, intercept = np.polyfit(logd, logr, 1)
        for _ in range(20 if np.any(rho != lam) else 0):
            A = -slope
            if A <= 0:
                break
            shift = np.log((1.0 - lam**-A) / (1.0 - rho**-A))
            previous, (slope, intercept) = slope, np.polyfit(logd, logr + shift, 1)
            if abs(slope - previous) < 1e-12:
                break
        A = -slope
        if A <= 0:
            continue
        rows.append((n_val, A, math.exp(intercept) / (1.0 - lam**-A)))
    return pd.DataFrame(rows, columns=["N", "A", "B"])


# ------------------------------------------------------------------------- stage 2, 3
def _linear_in_power(N: np.ndarray, y: np.ndarray, e: float) -> tuple[float, float, float]:
    """(a, b, SSE) of y ≈ a·N^e + b by ordinary least squares."""
    x = N**e
    X = np.column_stack([x, np.ones_like(x)])
    (a, b), *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ np.array([a, b])
    return float(a), float(b), float(r @ r)


def _search(objective: Callable[[float], float], grid: np.ndarray) -> float:
    """Grid search over exponents (0 excluded), refined by bounded Brent around the best."""
    grid = grid[np.abs(grid) > 1e-9]
    vals = np.array([objective(e) for e in grid])
    k = int(np.nanargmin(vals))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = minimize_scalar(objective, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-7})
    return float(res.x) if res.fun <= vals[k] else float(grid[k])


def fit_power_exponent(N: np.ndarray, logy: np.ndarray,
                       grid: np.ndarray = DEFAULT_GRID) -> tuple[float, float, float]:
    """log y = a·N^e + b: e by grid search (+ refinement), (a, b) by linear regression."""
    e = _search(lambda e: _linear_in_power(N, logy, e)[2], grid)
    a, b, _ = _linear_in_power(N, logy, e)
    return a, b, e


def _r_sse(diffs: pd.DataFrame, p: dict[str, float], lam: float) -> float:
    N, D = diffs["N"].to_numpy(), diffs["D"].to_numpy()
    A = np.exp(p["a1"] * N ** p["alpha"] + p["b1"])
    B = np.exp(p["a2"] * N ** p["beta"] + p["b2"])
    rho = diffs["ratio"].to_numpy() if "ratio" in diffs else lam
    r = diffs["R"].to_numpy() - B * (1.0 - rho**-A) * D**-A
    out = float(r @ r)
    return out if math.isfinite(out) else math.inf


def _refine(p: dict[str, float], key: str, names: tuple[str, str], tn: np.ndarray,
            logy: np.ndarray, diffs: pd.DataFrame, grid: np.ndarray,
            lam: float) -> dict[str, float]:
    """Re-pick exponent ``key`` (with its regression (a, b)) to minimise Σ (R − R̃)²."""
    def obj(e: float) -> float:
        a, b, _ = _linear_in_power(tn, logy, e)
        return _r_sse(diffs, p | {key: e, names[0]: a, names[1]: b}, lam)

    e = _search(obj, grid)
    a, b, _ = _linear_in_power(tn, logy, e)
    return p | {key: e, names[0]: a, names[1]: b}


def fit_farseer(
    table: TableLike,
    *,
    n: str = "N",
    d: str = "D",
    loss: str = "loss",
    lam: float = LAMBDA,
    rtol: float = RTOL,
    rounds: int = 2,
    grid: np.ndarray | None = None,
    holdout_above: float | None = None,
) -> FitResult:
    """Fit the Farseer law by differential piecewise fitting (App. C, Alg. 2).

    Parameters
    ----------
    table : DataFrame or path
        One row per (N, D) run; D should lie on a geometric grid with ratio ``lam``.
    n, d, loss : str
        Column names (N non-embedding parameters, D tokens, final loss).
    lam : float
        Ratio between consecutive D values used for the differences (paper: √2).
    rtol : float
        How far (relative) a D' may be from λD and still pair with D (default 1%);
        each difference is then modelled with its own ratio D'/D (:func:`differences`).
    rounds : int
        Rounds of alternating refinement of α and β (paper: 1–2).
    grid : array, optional
        Candidate exponents (default −1…1 step 0.005, each best refined continuously).
    holdout_above : float, optional
        Fit on N <= holdout_above only; report the relative error |L̂ − L|/L on the rest
        in ``metadata["holdout"]`` (``mean_rel_error``, ``max_rel_error``, ``n``,
        ``per_N``, ``fit_N_max``: the same record as :func:`scalelaw.fit_law` writes),
        Farseer's extrapolation metric.

    Returns
    -------
    FitResult
        ``law="farseer"``, params ``a1, b1, alpha, a2, b2, beta, a3, b3, gamma``;
        ``objective`` = Σ (R − R̃)²; metadata holds the per-N stage-1 terms and the
        in-sample mean relative error.
    """
    grid = DEFAULT_GRID if grid is None else np.asarray(grid, dtype=float)
    df = read_table(table)
    cols = validated_columns(df, {"N": n, "D": d, "loss": loss}, min_rows=9)
    N, D, L = cols["N"], cols["D"], cols["loss"]
    train = np.ones_like(N, dtype=bool) if holdout_above is None else N <= holdout_above
    if holdout_above is not None and train.all():
        raise ConfigError(f"holdout_above: no rows with N > {holdout_above:g}")
    diffs = differences(N[train], D[train], L[train], lam, rtol)
    terms = per_n_terms(diffs, lam)
    if len(terms) < 3:
        paired = diffs[diffs["R"] > 0].groupby("N").size()
        falling = int((paired >= 2).sum())
        why = "" if falling == len(terms) else (
            f" ({falling - len(terms)} more have them but their differences do not fall with D"
            f" (A <= 0): the loss is not yet in its power-law decay in D)")
        raise ConfigError(
            f"table: need at least 3 N values with two or more (D, {lam:.4g}·D) pairs; "
            f"got {len(terms)}{why}"
        )
    tn = terms["N"].to_numpy()
    a1, b1, alpha = fit_power_exponent(tn, np.log(terms["A"].to_numpy()), grid)
    a2, b2, beta = fit_power_exponent(tn, np.log(terms["B"].to_numpy()), grid)
    p = {"a1": a1, "b1": b1, "alpha": alpha, "a2": a2, "b2": b2, "beta": beta}
    for _ in range(rounds):
        p = _refine(p, "alpha", ("a1", "b1"), tn, np.log(terms["A"].to_numpy()), diffs, grid, lam)
        p = _refine(p, "beta", ("a2", "b2"), tn, np.log(terms["B"].to_numpy()), diffs, grid, lam)
    # stage 3: the N-only term
    Ntr, Dtr, Ltr = N[train], D[train], L[train]
    A = np.exp(p["a1"] * Ntr ** p["alpha"] + p["b1"])
    B = np.exp(p["a2"] * Ntr ** p["beta"] + p["b2"])
    G = pd.Series(Ltr - B * Dtr**-A).groupby(Ntr).mean()
    if (G <= 0).any():
        raise ConfigError("table: residual term G(N) <= 0; the data do not follow Farseer")
    p["a3"], p["b3"], p["gamma"] = fit_power_exponent(G.index.to_numpy(), np.log(G.to_numpy()),
                                                      grid)
    pred = farseer_loss(p, N, D)
    rel = np.abs(pred / L - 1.0)
    meta = {
        "method": "differential piecewise fitting, Li et al. 2025 arXiv 2506.10972 App. C",
        "lambda": lam, "rounds": rounds, "train_mre": float(rel[train].mean()),
        "stage1": terms.to_dict(orient="list"),
    }
    if holdout_above is not None:
        from scalelaw.fit.bootstrap import holdout_record

        meta["holdout"] = holdout_record(rel[~train], N[~train], holdout_above)
    return FitResult(
        law="farseer", params={k: p[k] for k in PARAMS}, kind="loss",
        conventions={"N": "non-embedding params", "D": "tokens", "loss": "as given"},
        objective=_r_sse(diffs, p, lam), n_points=int(train.sum()), metadata=meta,
    )


def predict_farseer(fit: FitResult, N: ArrayLike, D: ArrayLike) -> np.ndarray:
    """Loss predicted by a fitted Farseer law at (N, D)."""
    if fit.law != "farseer":
        raise ValueError(f"fit: expected a 'farseer' fit, got {fit.law!r}")
    return farseer_loss(fit.params, N, D)


def relative_error(fit: FitResult, N: ArrayLike, D: ArrayLike, L: ArrayLike) -> float:
    """Mean relative error |L̂/L − 1| (Farseer's extrapolation metric)."""
    return float(np.mean(np.abs(predict_farseer(fit, N, D) / np.asarray(L, dtype=float) - 1)))
