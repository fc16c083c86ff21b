"""Iso-FLOP analysis: Chinchilla Approach 2 (Hoffmann et al. 2022, §3.2; Porian et al. 2024).

Per compute budget C, locate the optimum N*(C) of the loss against log N with one of the
estimators of :mod:`scalelaw.fit.isoflop_budget` (``method=``: a parabola through every run,
today's default; a parabola through a window around the best run; an Akima interpolant in
log-log space with a seed-noise bootstrap of its argmin, as Porian et al. 2024, arXiv
2406.19146), or take the optima a user already has (``method="given"``). Budgets whose
optimum lies outside their sampled N range, or whose curve has no interior minimum, are
flagged and left out. Then fit log N* = log k + a·log C by weighted least squares with
weights 1/σ²(log N*) (Porian et al. 2024, §2), with intervals for k and a from refitting
bootstrap draws. D*(C) = C / (6 N*) gives the matching token exponent b = 1 − a.

A parabola in log N is biased even on noise-free data when the curves are asymmetric
around their minimum and sampled unevenly ("Problems with Chinchilla Approach 2"); fitting
L(N, D) directly (Approach 3, :func:`scalelaw.fit.varpro.fit_chinchilla_varpro`) avoids it.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rows = []
>>> for C in [1e18, 1e19, 1e20]:
...     for N in np.geomspace(0.2, 5, 7) * 0.1 * C**0.5:
...         D = C / (6 * N)
...         rows.append((N, C, 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28))
>>> res = isoflop_fit(pd.DataFrame(rows, columns=["N", "C", "loss"]), bootstrap=0)
>>> round(res.params["a"], 2)
0.45
>>> res = isoflop_fit(pd.DataFrame(rows, columns=["N", "C", "loss"]), method="akima")
>>> round(res.params["a"], 2), res.metadata["flagged"]
(0.45, [])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.errors import ConfigError
from scalelaw.fit.isoflop_budget import METHODS, BudgetEstimate, budget_optimum, estimate_noise
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, check_bootstrap, read_table, validated_columns

SOURCES = {
    "parabola": "Hoffmann et al. 2022 Approach 2 (parabola through every run)",
    "window": "Approach 2 on a window around each budget's best run",
    "akima": "Porian et al. 2024 (Akima interpolation in log-log space, median of "
             "seed-noise bootstrap argmins)",
    "given": "per-budget optima given by the user",
}
BUDGET_COLUMNS = ("C", "n_sizes", "N_min", "N_max", "N_opt", "log_N_opt_se", "N_opt_lo",
                  "N_opt_hi", "used", "flag")


def parabola_minimum(log_n: np.ndarray, loss: np.ndarray) -> tuple[float, np.ndarray]:
    """Vertex log N* of the least-squares parabola loss ≈ c₂x² + c₁x + c₀ (NaN if not convex)."""
    coef = np.polyfit(log_n, loss, 2)
    if coef[0] <= 0:
        return float("nan"), coef
    return float(-coef[1] / (2 * coef[0])), coef


def wls_power_law(log_c: np.ndarray, log_n: np.ndarray, var: np.ndarray | None = None,
                  ) -> tuple[float, float]:
    """(log k, a) of log N* = log k + a log C, weighted by 1/var (plain OLS if var is None)."""
    w = np.ones_like(log_c) if var is None else 1.0 / np.maximum(var, 1e-300)
    X = np.column_stack([np.ones_like(log_c), log_c]) * np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(X, log_n * np.sqrt(w), rcond=None)[0]
    return float(coef[0]), float(coef[1])


def _check_options(method: str, window: object, band: float | None, noise: float | None,
                   bootstrap: object, flops_per_param_token: float) -> None:
    if method not in (*METHODS, "given"):
        raise ConfigError(f"method: must be one of {', '.join((*METHODS, 'given'))}, "
                          f"got {method!r}")
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 3:
        raise ConfigError(f"window: must be an integer >= 3 (model sizes around each "
                          f"budget's best), got {window!r}")
    for name, value in (("band", band), ("noise", noise)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name}: must be a finite number > 0, got {value!r}")
    check_bootstrap(bootstrap)
    if not (math.isfinite(flops_per_param_token) and flops_per_param_token > 0):
        raise ConfigError(f"flops_per_param_token: must be > 0, got {flops_per_param_token!r}")


def _runs_optima(df: pd.DataFrame, *, n: str, c: str, loss: str, method: str, window: int,
                 band: float | None, noise: float | None, bootstrap: int, seed: int,
                 ) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Per-budget optima of a runs table: the budgets table, draws (B, budgets), notes."""
    cols = validated_columns(df, {"N": n, "C": c, "loss": loss}, min_rows=3)
    budgets = np.unique(cols["C"])
    if len(budgets) < 2:
        raise ConfigError(f"column {c!r}: need >= 2 compute budgets, got {len(budgets)}")
    groups = [(np.log(cols["N"][cols["C"] == b]), cols["loss"][cols["C"] == b])
              for b in budgets]
    notes: dict[str, Any] = {}
    sigma = float("nan")
    if method in ("window", "akima") and bootstrap:
        sigma, how = (noise, "given") if noise is not None else estimate_noise(groups)
        if not math.isfinite(sigma) or sigma <= 0:
            raise ConfigError(f"noise: cannot be estimated from this table ({how}); pass the "
                              "seed-to-seed standard deviation of log loss")
        notes["noise"] = {"sigma_log_loss": sigma, "source": how}
    rng = np.random.default_rng(seed)
    ests: list[BudgetEstimate] = [
        budget_optimum(x, y, method, bootstrap=bootstrap, rng=rng, window=window, band=band,
                       noise=sigma) for x, y in groups]
    draws = np.full((bootstrap, len(budgets)), np.nan)
    rows = []
    for j, ((x, _), est) in enumerate(zip(groups, ests, strict=True)):
        if len(est.draws):
            draws[:, j] = est.draws
        rows.append({"C": budgets[j], "n_sizes": len(np.unique(x)), "N_min": np.exp(x.min()),
                     "N_max": np.exp(x.max()), "N_opt": np.exp(est.log_n), "flag": est.flag})
    table = pd.DataFrame(rows)
    _add_spread(table, draws, bootstrap)
    return table, draws, notes


def _add_spread(table: pd.DataFrame, draws: np.ndarray, bootstrap: int) -> None:
    """Standard errors and 95% intervals of log N* from the draws; flag unusable spreads."""
    ok = np.isfinite(draws).sum(axis=0) >= 2
    se, lo, hi = (np.full(draws.shape[1], np.nan) for _ in range(3))
    for j in np.flatnonzero(ok):
        d = draws[np.isfinite(draws[:, j]), j]
        se[j] = np.std(d, ddof=1)
        lo[j], hi[j] = np.quantile(d, [0.025, 0.975])
    table["log_N_opt_se"], table["N_opt_lo"], table["N_opt_hi"] = se, np.exp(lo), np.exp(hi)
    if bootstrap:
        for j in np.flatnonzero((table["flag"] == "").to_numpy()):
            if not ok[j]:
                table.loc[j, "flag"] = "bootstrap: fewer than 2 resamples found a minimum"
            elif se[j] <= 0:
                table.loc[j, "flag"] = "bootstrap: zero spread of log N* (cannot weight it)"


def _given_optima(df: pd.DataFrame, *, c: str, n_opt: str, se: str | None, bootstrap: int,
                  seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A user's optima, one row per budget, with their standard errors if given."""
    se_col = se if se is not None else ("log_N_opt_se" if "log_N_opt_se" in df.columns
                                        else None)
    roles = {"C": c, "N_opt": n_opt, **({"se": se_col} if se_col else {})}
    cols = validated_columns(df, roles, min_rows=2)
    uniq, counts = np.unique(cols["C"], return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"column {c!r}: budget {uniq[counts > 1][0]:g} appears "
                          f"{counts.max()} times; give one optimum per budget")
    if bootstrap and se_col is None:
        raise ConfigError("bootstrap: method 'given' draws from the optima's standard "
                          "errors, and the table has no 'log_N_opt_se' column (see se=)")
    nan = np.full(len(uniq), np.nan)
    s = cols.get("se", nan)
    table = pd.DataFrame({"C": cols["C"], "n_sizes": nan, "N_min": nan, "N_max": nan,
                          "N_opt": cols["N_opt"], "log_N_opt_se": s,
                          "N_opt_lo": cols["N_opt"] * np.exp(-1.96 * s),
                          "N_opt_hi": cols["N_opt"] * np.exp(1.96 * s), "flag": ""})
    rng = np.random.default_rng(seed)
    draws = np.log(cols["N_opt"]) + s * rng.standard_normal((bootstrap, len(s)))
    return table.sort_values("C", ignore_index=True), draws[:, np.argsort(cols["C"])]


def isoflop_fit(table: TableLike, *, n: str = "N", c: str = "C", loss: str = "loss",
                method: str = "parabola", window: int = 5, band: float | None = None,
                noise: float | None = None, n_opt: str = "N_opt", se: str | None = None,
                bootstrap: int = 0, seed: int = 0, flops_per_param_token: float = 6.0,
                ) -> FitResult:
    """Compute-optimal N*(C) = k·C^a from per-budget optima (Chinchilla Approach 2).

    Parameters
    ----------
    table : DataFrame or path
        One row per run: parameters ``n``, compute budget ``c`` (runs of one budget share
        the exact value; seeds may repeat a size) and final ``loss``. With
        ``method="given"``: one row per budget, ``c`` and its optimum ``n_opt``.
    method : {"parabola", "window", "akima", "given"}
        Per-budget estimator (:mod:`scalelaw.fit.isoflop_budget`): the parabola in log N
        through every run (the default, Hoffmann et al.); through the ``window`` sizes
        nearest the best run, or the sizes within ``band`` of the best loss; the argmin of
        an Akima interpolant of log loss in log N (Porian et al.); or the user's optima.
    window : int
        Model sizes in the window parabola (>= 3; a budget with fewer uses all of them).
    band : float, optional
        Window by loss instead: the sizes with loss <= (1 + band) x the budget's best.
    noise : float, optional
        Seed noise (standard deviation of log loss) for the window and Akima bootstraps;
        default: estimated from the table (:func:`~scalelaw.fit.isoflop_budget.estimate_noise`).
    n_opt, se : str
        ``method="given"``: the optimum's column and the column of its log standard error
        (default ``"log_N_opt_se"`` when the table has it); with it the frontier is weighted
        by 1/se² and ``bootstrap`` draws optima from normal errors in log N*.
    bootstrap : int
        Resamples per budget (0: no per-budget errors, an unweighted frontier, no
        intervals): the runs resampled for ``"parabola"``, seed noise for the others.
    seed : int
        Seed of the resampling.
    flops_per_param_token : float
        k in C = k·N·D, for D*(C).

    Returns
    -------
    FitResult
        ``law="isoflop"``, ``params = {"k", "a", "k_D", "b"}`` with D*(C) = k_D·C^b;
        ``samples`` hold bootstrap draws of all four; ``metadata["budgets"]`` one entry per
        budget (columns ``C, n_sizes, N_min, N_max, N_opt, log_N_opt_se, N_opt_lo,
        N_opt_hi, used, flag``), ``metadata["flagged"]`` the left-out budgets and why.

    Raises
    ------
    ConfigError
        Bad options or columns, fewer than 2 budgets, or fewer than 2 usable optima.
    """
    _check_options(method, window, band, noise, bootstrap, flops_per_param_token)
    df = read_table(table)
    notes: dict[str, Any] = {}
    if method == "given":
        budgets, draws = _given_optima(df, c=c, n_opt=n_opt, se=se, bootstrap=bootstrap,
                                       seed=seed)
    else:
        budgets, draws, notes = _runs_optima(df, n=n, c=c, loss=loss, method=method,
                                             window=window, band=band, noise=noise,
                                             bootstrap=bootstrap, seed=seed)
    used = (budgets["flag"] == "").to_numpy()
    budgets["used"] = used
    flagged = [{"C": float(C), "reason": str(f)}
               for C, f in zip(budgets["C"], budgets["flag"], strict=True) if f]
    if used.sum() < 2:
        why = "; ".join(f"C={f['C']:.3g}: {f['reason']}" for f in flagged)
        raise ConfigError(f"isoflop: {int(used.sum())} of {len(budgets)} budgets have a usable "
                          f"optimum, need >= 2 ({why})")
    log_c, log_n = np.log(budgets["C"].to_numpy()), np.log(budgets["N_opt"].to_numpy())
    se_all = budgets["log_N_opt_se"].to_numpy(float)
    var = se_all[used] ** 2 if np.isfinite(se_all[used]).all() else None
    params = _with_tokens(*wls_power_law(log_c[used], log_n[used], var), flops_per_param_token)
    samples: dict[str, list[float]] | None = None
    if bootstrap:
        boot = [_with_tokens(*wls_power_law(log_c[used], row[used], var), flops_per_param_token)
                for row in draws if np.all(np.isfinite(row[used]))]
        samples = {k: [b[k] for b in boot] for k in params}
    return FitResult(
        law="isoflop", params=params, kind="loss",
        conventions={"N": "parameters", "C": f"FLOPs = {flops_per_param_token:g}·N·D"},
        n_points=int(len(df)), samples=samples,
        metadata={"budgets": budgets[list(BUDGET_COLUMNS)].to_dict(orient="list"),
                  "flagged": flagged, "method": method, "bootstrap": bootstrap, "seed": seed,
                  **({"window": window if band is None else None, "band": band}
                     if method == "window" else {}),
                  **notes, "used_budgets": int(used.sum()),
                  "frontier": "WLS of log N* on log C, weights 1/se^2" if var is not None
                  else "OLS of log N* on log C (no standard errors)",
                  "source": SOURCES[method]})


def _with_tokens(log_k: float, a: float, k6: float) -> dict[str, Any]:
    # D* = C / (k6 N*) = (1 / (k6 k)) C^(1 - a)
    return {"k": float(np.exp(log_k)), "a": a, "k_D": float(np.exp(-log_k) / k6), "b": 1.0 - a}
