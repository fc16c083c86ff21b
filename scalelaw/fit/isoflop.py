"""Iso-FLOP analysis: Chinchilla Approach 2 (Hoffmann et al. 2022, §3.2; Porian et al. 2024).

Per compute budget C, fit a parabola to loss against log N and take its vertex N*(C); its
uncertainty comes from a bootstrap over the runs of that budget. Then fit
log N* = log k + a·log C by weighted least squares with weights 1/σ²(log N*) (Porian et al.
2024, arXiv 2406.19146, §2), and get intervals for k and a by refitting on bootstrap draws.
D*(C) = C / (6 N*) gives the matching token exponent b = 1 − a.

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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scalelaw.errors import ConfigError
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, read_table, validated_columns


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


def _budget_minima(groups: list[tuple[float, np.ndarray, np.ndarray]], bootstrap: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Point minima (B,) and bootstrap minima (bootstrap, B) of log N* per budget."""
    point = np.array([parabola_minimum(x, y)[0] for _, x, y in groups])
    draws = np.full((bootstrap, len(groups)), np.nan)
    for j, (_, x, y) in enumerate(groups):
        for b in range(bootstrap):
            idx = rng.integers(0, len(x), len(x))
            if len(np.unique(x[idx])) >= 3:
                draws[b, j] = parabola_minimum(x[idx], y[idx])[0]
    return point, draws


def isoflop_fit(table: TableLike, *, n: str = "N", c: str = "C", loss: str = "loss",
                bootstrap: int = 0, seed: int = 0, flops_per_param_token: float = 6.0,
                ) -> FitResult:
    """Chinchilla Approach 2: N*(C) = k·C^a from per-budget parabola minima.

    Parameters
    ----------
    table : DataFrame or path
        One row per run: parameters ``n``, compute budget ``c`` (runs of one budget share
        the exact value) and final ``loss``.
    bootstrap : int
        Bootstrap resamples of each budget's runs (0: unweighted fit, no intervals).

    Returns
    -------
    FitResult
        ``law="isoflop"``, ``params = {"k", "a", "k_D", "b"}`` with D*(C) = k_D·C^b;
        ``samples`` hold bootstrap draws of all four; ``metadata["budgets"]`` the per-budget
        minima and their standard errors (log N*).
    """
    df = read_table(table)
    cols = validated_columns(df, {"N": n, "C": c, "loss": loss}, min_rows=3)
    groups = []
    for budget in np.unique(cols["C"]):
        m = cols["C"] == budget
        if m.sum() >= 3:
            groups.append((float(budget), np.log(cols["N"][m]), cols["loss"][m]))
    if len(groups) < 2:
        raise ConfigError(f"column {c!r}: need >= 2 compute budgets with >= 3 runs each")
    rng = np.random.default_rng(seed)
    point, draws = _budget_minima(groups, bootstrap, rng)
    ok = np.isfinite(point)
    if ok.sum() < 2:
        raise ConfigError("isoflop: fewer than 2 budgets have a convex loss-vs-N profile")
    log_c = np.log([g[0] for g in groups])
    var = np.nanvar(draws, axis=0, ddof=1) if bootstrap > 1 else None
    if var is not None:
        ok &= np.isfinite(var) & (var > 0)
    log_k, a = wls_power_law(log_c[ok], point[ok], None if var is None else var[ok])
    params = _with_tokens(log_k, a, flops_per_param_token)
    samples: dict[str, list[float]] | None = None
    if var is not None:  # bootstrap > 1
        boot = [_with_tokens(*wls_power_law(log_c[ok], row[ok], var[ok]), flops_per_param_token)
                for row in draws if np.all(np.isfinite(row[ok]))]
        samples = {k: [b[k] for b in boot] for k in params}
    budgets = pd.DataFrame({"C": np.exp(log_c), "N_opt": np.exp(point),
                            "log_N_opt_se": np.sqrt(var) if var is not None else np.nan})
    return FitResult(law="isoflop", params=params, kind="loss",
                     conventions={"N": "parameters", "C": f"FLOPs = {flops_per_param_token:g}·N·D"},
                     n_points=int(len(cols["N"])), samples=samples,
                     metadata={"budgets": budgets.to_dict(orient="list"), "bootstrap": bootstrap,
                               "seed": seed, "used_budgets": int(ok.sum()),
                               "source": "Hoffmann et al. 2022 Approach 2; Porian et al. 2024"})


def _with_tokens(log_k: float, a: float, k6: float) -> dict[str, Any]:
    # D* = C / (k6 N*) = (1 / (k6 k)) C^(1 - a)
    return {"k": float(np.exp(log_k)), "a": a, "k_D": float(np.exp(-log_k) / k6), "b": 1.0 - a}
