"""The Power scheduler's constants from one's own runs (Shen et al. 2024, Eq. 5-6).

Shen et al. ("Power Scheduler", arXiv 2408.13359) find, under WSD, the loss-optimal LR
of each (batch size, token budget) cell and fit ``eta* = beta * a * T^b`` with ``beta``
the batch size in sequences and ``T`` the tokens trained (their fit: a = 4.6, b = -0.51;
the schedule then uses a = 4). :func:`fit_power_schedule` does the same on a table of
runs: per (beta, T) cell the vertex of the parabola in log2 lr
(:func:`scalelaw.fit.transfer.curve_optimum`; an optimum on the grid's edge is only a
bound and is left out), then OLS of ``log(eta* / beta)`` on ``log T``. Cooldown branches
(:mod:`scalelaw.sweep.branches`) give several T per run.

Shen et al.'s form makes the optimal LR linear in the batch (their muP + WSD finding).
``batch_exponent=None`` fits ``eta* = a * beta^c * T^b`` instead (OLS of ``log eta*`` on
``log beta`` and ``log T``), so that the linear scaling is tested rather than assumed
(Adam's square-root rule, Granziol et al. 2022, is c = 1/2).

Reads tables only (numpy, pandas, scipy): no JAX.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rows = [(beta, T, lr, 3.0 + 0.04 * np.log2(lr / (beta * 4.6 * T**-0.51)) ** 2)
...         for beta in (8, 16, 32) for T in (1e6, 4e6, 1.6e7)
...         for lr in 2.0 ** np.arange(-14, -2)]
>>> fit = fit_power_schedule(pd.DataFrame(rows, columns=["batch_size", "tokens", "lr",
...                                                      "loss"]))
>>> round(fit.params["a"], 2), round(fit.params["b"], 3)
(4.6, -0.51)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalelaw.errors import ConfigError
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, check_bootstrap, read_table
from scalelaw.fit.transfer import curve_optimum

__all__ = ["fit_power_schedule"]


def cell_optima(runs: pd.DataFrame, *, batch: str, tokens: str, lr: str, loss: str,
                neighbours: int = 1) -> pd.DataFrame:
    """One row per (batch, tokens) cell with at least 3 finite LRs: its optimum."""
    rows = []
    for (beta, t), cell in runs.groupby([batch, tokens], sort=True):
        curve = cell.groupby(lr, sort=True)[loss].mean().dropna()
        if len(curve) >= 3:
            # pandas types group keys as Hashable; these are numbers
            rows.append({"batch": float(beta), "tokens": float(t),  # type: ignore[arg-type]
                         **curve_optimum(curve.index.to_numpy(float), curve.to_numpy(float),
                                         neighbours)})
    return pd.DataFrame(rows)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def _ols2(x: np.ndarray, z: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS of y on (1, x, z): (intercept, coefficient of x, coefficient of z)."""
    design = np.column_stack([np.ones_like(x), x, z])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(coef[0]), float(coef[1]), float(coef[2])


def fit_power_schedule(table: TableLike, *, batch: str = "batch_size", tokens: str = "tokens",
                       lr: str = "lr", loss: str = "loss", bootstrap: int = 0,
                       seed: int = 0, batch_exponent: float | None = 1.0) -> FitResult:
    """Fit ``eta*(beta, T) = a * beta^c * T^b`` (Shen et al.: c = 1) to an LR x batch x
    tokens grid of runs.

    Parameters
    ----------
    table : DataFrame or path
        One row per run (or per cooldown branch): the batch size in **sequences**
        (``batch``), the tokens trained (``tokens``), the peak LR (``lr``) and the final
        loss (``loss``; for a collected sweep, :func:`scalelaw.loss_points` or
        :func:`scalelaw.trial_summary` give it). Rows whose ``status`` is not ``done``, or
        whose loss is not finite, are left out.
    bootstrap : int
        Resamples of the cells (0, the default: the point fit, no intervals).
    batch_exponent : float or None
        ``c``, the power of the batch: 1 (the default) is Shen et al.'s linear scaling;
        None fits it (it then needs at least 2 batch sizes with interior optima).

    Returns
    -------
    FitResult
        ``kind="schedule"``, ``law="power_schedule"``, params ``a``, ``b``,
        ``batch_exponent`` (and ``log_a``); ``metadata["cells"]`` the per-cell optima
        (``used``: False on the grid's edge), ``metadata["paper"]`` Shen et al.'s values
        for comparison.

    Raises
    ------
    ConfigError
        A missing column, or fewer than 2 token budgets with an interior optimum.
    """
    runs = read_table(table)
    for col in (batch, tokens, lr, loss):
        if col not in runs:
            raise ConfigError(f"column {col!r}: not in the table (columns: "
                              f"{', '.join(map(str, runs.columns))})")
    check_bootstrap(bootstrap)
    runs = runs.copy()
    bad = ~np.isfinite(runs[loss].to_numpy(float))
    if "status" in runs:
        bad |= (runs["status"] != "done").to_numpy()
    runs.loc[bad, loss] = np.nan
    for col in (batch, tokens, lr):
        if not (runs[col].to_numpy(float) > 0).all():
            raise ConfigError(f"column {col!r}: must be > 0")
    cells = cell_optima(runs, batch=batch, tokens=tokens, lr=lr, loss=loss)
    if cells.empty:
        raise ConfigError(f"column {lr!r}: no (batch, tokens) cell has 3 finite LRs")
    used = ~cells["edge"].to_numpy()
    cells["used"] = used
    x = np.log(cells["tokens"].to_numpy(float))[used]
    z = np.log(cells["batch"].to_numpy(float))[used]
    log_lr = np.log(cells["lr_opt"].to_numpy(float))[used]
    if len(np.unique(x)) < 2:
        raise ConfigError(f"column {tokens!r}: {len(np.unique(x))} token budget(s) with an "
                          "interior LR optimum; at least 2 are needed to fit the exponent b")
    if batch_exponent is None and len(np.unique(z)) < 2:
        raise ConfigError(f"batch_exponent: None fits it, which needs at least 2 batch sizes "
                          f"(column {batch!r}) with an interior LR optimum, got "
                          f"{len(np.unique(z))}")

    def solve(idx: np.ndarray) -> tuple[float, float, float] | None:
        if len(np.unique(x[idx])) < 2:
            return None
        if batch_exponent is None:
            if len(np.unique(z[idx])) < 2:
                return None
            log_a, b, c = _ols2(x[idx], z[idx], log_lr[idx])
            return log_a, b, c
        log_a, b = _ols(x[idx], log_lr[idx] - batch_exponent * z[idx])
        return log_a, b, float(batch_exponent)

    everything = np.arange(len(x))
    point = solve(everything)
    assert point is not None  # checked above
    log_a, b, c = point
    samples: dict[str, list[float]] = {}
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = [d for d in (solve(rng.integers(0, len(x), len(x))) for _ in range(bootstrap))
                 if d is not None]
        arr = np.array(draws)
        samples = {"log_a": arr[:, 0].tolist(), "b": arr[:, 1].tolist(),
                   "a": np.exp(arr[:, 0]).tolist()}
        if batch_exponent is None:
            samples["batch_exponent"] = arr[:, 2].tolist()
    resid = log_lr - (log_a + b * x + c * z)
    return FitResult(
        law="power_schedule", kind="schedule",
        params={"a": math.exp(log_a), "b": b, "batch_exponent": c, "log_a": log_a},
        conventions={"batch": "sequences", "tokens": "tokens trained (T)",
                     "lr": "loss-optimal peak LR (absolute)"},
        objective=float(resid @ resid), n_points=int(used.sum()), samples=samples,
        metadata={"cells": cells.to_dict(orient="list"), "bootstrap": bootstrap,
                  "seed": seed, "formula": "lr* = a * beta^c * T^b" + (
                      " (c fitted)" if batch_exponent is None else f" (c = {c:g})"),
                  "paper": {"a": 4.6, "b": -0.51, "source": "Shen et al. 2024, arXiv "
                                                            "2408.13359, Eq. 5-6"},
                  "source": "per-cell parabola vertices in log2 lr; OLS of log(lr*/beta) "
                            "on log T (Shen et al. 2024, Eq. 5-6)"},
    )
