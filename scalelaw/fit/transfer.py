"""Learning-rate transfer across width: the optimum per width and its drift, lr*(w) = c·w^s.

The muP claim (Yang et al. 2022, Tensor Programs V, arXiv 2203.03466, §1 and Fig. 1) is
that the optimal global learning rate of a width sweep does not move with width (s = 0),
so the one tuned on a small proxy is the one to use at the target width; under standard
parametrization with Adam it falls roughly as 1/width (s ≈ −1; same paper, Fig. 1 left).

Per width, the optimum is the vertex of the parabola of the loss in log₂ lr through the
best grid point and its ``neighbours`` on each side (default 1: parabolic interpolation,
whose vertex lies within half a grid step of the best point; more neighbours give a
least-squares parabola). A continuous estimate, as Step Law's bowls and Chinchilla's
Approach 2 are, not limited to grid points. A best point
on the edge of the LR grid is reported as such (``edge``) and not extrapolated. Then
log lr* = log c + s·log(w / w_ref) is fitted by ordinary least squares, with Student-t
standard errors and prediction intervals (n − 2 degrees of freedom; none with 2 widths).

This module reads tables only (no JAX, no model code).

Examples
--------
>>> import numpy as np, pandas as pd
>>> lrs = 2.0 ** np.arange(-10, -4)
>>> def bowl(w, lr, s):  # a loss bowl in log2 lr whose optimum is 8e-3 * (w / 32)^s
...     return 2.5 + 0.05 * np.log2(lr / (8e-3 * (w / 32) ** s)) ** 2
>>> for s in (0.0, -1.0):
...     runs = pd.DataFrame([(w, lr, bowl(w, lr, s)) for w in (32, 64, 128) for lr in lrs],
...                         columns=["width", "lr", "final_eval_loss"])
...     fit = fit_lr_transfer(runs)
...     print(f"{fit.params['width_exponent']:+.3f} {float(predict_lr(fit, 1024)[0]):.2e}")
+0.000 8.00e-03
-1.000 2.50e-04
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from scalelaw.errors import ConfigError
from scalelaw.fit.isoflop import parabola_minimum
from scalelaw.fit.result import FitResult

__all__ = ["fit_lr_transfer", "lr_optima", "predict_lr"]

def lr_optima(summary: pd.DataFrame, *, width: str = "width", lr: str = "lr",
              loss: str = "final_eval_loss", neighbours: int = 1) -> pd.DataFrame:
    """The continuous loss-optimal LR per width, one row per width.

    Parameters
    ----------
    summary : DataFrame
        One row per run (e.g. :func:`scalelaw.trial_summary`); repeated (width, lr) rows,
        e.g. seeds, are averaged. Rows whose ``status`` is not ``done`` (diverged, failed,
        or still running: a partial loss) or whose loss is not finite count as missing.
    width, lr, loss : str
        Column names.
    neighbours : int
        Grid points on each side of the best one that the parabola goes through.

    Returns
    -------
    DataFrame
        ``width, lr_grid_best, loss_grid_best, lr_opt, loss_opt, edge, n_points``;
        ``lr_opt`` is the parabola's vertex, or the best grid LR when the best point is on
        the edge of the grid (``edge`` True) or the parabola is not convex.
    """
    for col in (width, lr, loss):
        if col not in summary:
            raise ConfigError(f"column {col!r}: not in the table (columns: "
                              f"{', '.join(map(str, summary.columns))})")
    data = summary.copy()
    bad = ~np.isfinite(data[loss].to_numpy(float))
    if "status" in data:  # unfinished trials' last losses are not comparable either
        bad |= (data["status"] != "done").to_numpy()
    data.loc[bad, loss] = np.nan
    if (data[lr] <= 0).any():
        raise ConfigError(f"column {lr!r}: learning rates must be > 0")
    rows = []
    for w, cell in data.groupby(width, sort=True):
        curve = cell.groupby(lr, sort=True)[loss].mean().dropna()
        if len(curve) < 3:
            raise ConfigError(f"width {w}: {len(curve)} finite learning rates; at least 3 "
                              "are needed to locate an optimum")
        x, y = np.log2(curve.index.to_numpy(float)), curve.to_numpy(float)
        best = int(np.argmin(y))
        edge = best in (0, len(y) - 1)
        lo, hi = max(0, best - neighbours), min(len(y), best + neighbours + 1)
        vertex = math.nan if edge else parabola_minimum(x[lo:hi], y[lo:hi])[0]
        ok = math.isfinite(vertex) and x[lo] <= vertex <= x[hi - 1]
        x_opt = vertex if ok else x[best]
        coef = np.polyfit(x[lo:hi], y[lo:hi], 2) if ok else None
        rows.append({"width": w, "lr_grid_best": float(2.0 ** x[best]),
                     "loss_grid_best": float(y[best]), "lr_opt": float(2.0 ** x_opt),
                     "loss_opt": float(np.polyval(coef, x_opt)) if ok else float(y[best]),
                     "edge": bool(edge), "n_points": int(hi - lo)})
    return pd.DataFrame(rows)


def fit_lr_transfer(summary: pd.DataFrame, *, width: str = "width", lr: str = "lr",
                    loss: str = "final_eval_loss", reference_width: float | None = None,
                    parametrization: str | None = None, neighbours: int = 1) -> FitResult:
    """Fit lr*(w) = c·(w / w_ref)^s to the per-width optima of a width x LR sweep.

    Parameters
    ----------
    summary : DataFrame
        One row per run: ``width``, ``lr``, ``loss`` (and optionally ``status`` and
        ``parametrization``), e.g. :func:`scalelaw.trial_summary` of a collected sweep.
    width, lr, loss : str
        Column names.
    reference_width : float, optional
        w_ref (default: the smallest width); ``c`` is the optimum there.
    parametrization : str, optional
        Keep only rows of this ``parametrization`` (required when the table has several).
    neighbours : int
        See :func:`lr_optima`.

    Returns
    -------
    FitResult
        ``kind="transfer"``, ``law="lr_transfer"``, params ``log_lr_ref``,
        ``width_exponent`` (s) and ``reference_width``; metadata: the per-width optima
        (``used``: False for an optimum on the grid's edge, left out of the fit while two
        other widths remain), standard errors, residual s.d., degrees of freedom and the
        parametrization.
    """
    data = summary
    if "parametrization" in summary:
        names = sorted(summary["parametrization"].dropna().unique())
        if parametrization is None and len(names) > 1:
            raise ConfigError(f"parametrization: the table holds {', '.join(names)}; "
                              "choose one")
        if parametrization is not None:
            if parametrization not in names:
                raise ConfigError(f"parametrization: {parametrization!r} not in the table "
                                  f"({', '.join(names)})")
            data = summary[summary["parametrization"] == parametrization]
        parametrization = parametrization or (names[0] if names else None)
    optima = lr_optima(data, width=width, lr=lr, loss=loss, neighbours=neighbours)
    if len(optima) < 2:
        raise ConfigError(f"column {width!r}: one width; at least 2 are needed to fit a drift")
    # an optimum on the grid's edge is only a bound: leave it out while 2 others remain
    used = ~optima["edge"].to_numpy() if (~optima["edge"]).sum() >= 2 else np.ones(
        len(optima), dtype=bool)
    optima["used"] = used
    w_ref = float(reference_width or optima["width"].min())
    x = np.log(optima["width"].to_numpy(float)[used] / w_ref)
    y = np.log(optima["lr_opt"].to_numpy(float)[used])
    slope, intercept = np.polyfit(x, y, 1)
    dof = len(x) - 2
    resid = y - (intercept + slope * x)
    sd = float(np.sqrt(resid @ resid / dof)) if dof > 0 else math.nan
    sxx = float(((x - x.mean()) ** 2).sum())
    se_slope = sd / math.sqrt(sxx)
    se_icpt = sd * math.sqrt(1 / len(x) + x.mean() ** 2 / sxx)
    return FitResult(
        law="lr_transfer", kind="transfer",
        params={"log_lr_ref": float(intercept), "width_exponent": float(slope),
                "reference_width": w_ref},
        conventions={"lr": "peak (global) learning rate", "width": "model width"},
        objective=float(resid @ resid), n_points=int(len(data)),
        metadata={"optima": optima.to_dict(orient="list"), "dof": dof, "residual_sd": sd,
                  "se": {"log_lr_ref": se_icpt, "width_exponent": se_slope},
                  "x_mean": float(x.mean()), "sxx": sxx, "loss": loss,
                  "parametrization": parametrization,
                  "source": "per-width parabola vertices in log2 lr, OLS of log lr* on "
                            "log width (muP transfer check, Tensor Programs V Fig. 1)"},
    )


def predict_lr(fit: FitResult, widths: float | Sequence[float], level: float = 0.95,
               ) -> tuple[np.ndarray, np.ndarray]:
    """lr*(w) and its ``level`` prediction interval (lo, hi) at ``widths``.

    The interval is the OLS prediction interval of a new width's log optimum (Student t
    with the fit's degrees of freedom); NaN when the fit had only two widths.
    """
    if fit.kind != "transfer":
        raise ValueError(f"fit: expected kind 'transfer', got {fit.kind!r}")
    w = np.asarray(widths, dtype=float)
    if not np.all(w > 0):
        raise ValueError(f"width: must be > 0, got {widths!r}")
    p, m = fit.params, fit.metadata
    x = np.log(w / p["reference_width"])
    log_lr = p["log_lr_ref"] + p["width_exponent"] * x
    n = m["dof"] + 2  # widths in the fit
    if m["dof"] > 0:
        t = stats.t.ppf(0.5 + level / 2, m["dof"])
        half = t * m["residual_sd"] * np.sqrt(1 + 1 / n + (x - m["x_mean"]) ** 2 / m["sxx"])
    else:
        half = np.full_like(x, np.nan)
    return np.exp(log_lr), np.stack([np.exp(log_lr - half), np.exp(log_lr + half)])
