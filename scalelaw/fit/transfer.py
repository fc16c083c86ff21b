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
standard errors. For prediction at a new width, muP and CompleteP sweeps by default use
the transfer the parametrization is built for (s = 0, c the geometric mean of the optima;
the fitted s is reported as the check), since a drift fitted to a few noisy optima
extrapolates poorly; other sweeps use the fitted line. Both give Student-t prediction
intervals.

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
...     s_hat = round(fit.params["width_exponent"], 3) + 0.0  # + 0.0: no "-0.0"
...     print(s_hat, f"{float(predict_lr(fit, 1024)[0]):.2e}")
0.0 8.00e-03
-1.0 2.50e-04
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from scalelaw.errors import ConfigError
from scalelaw.fit._evaluate import transfer_lr
from scalelaw.fit.isoflop import parabola_minimum
from scalelaw.fit.result import FitResult

__all__ = ["curve_optimum", "fit_lr_transfer", "lr_optima", "predict_lr", "select_parametrization"]

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
        ``width, lr_grid_best, loss_grid_best, lr_opt, loss_opt, curvature, edge,
        n_points``; ``lr_opt`` is the parabola's vertex, or the best grid LR when the best
        point is on the edge of the grid (``edge`` True) or the parabola is not convex;
        ``curvature`` is the parabola's ``c`` in ``loss ≈ loss_opt + c (log2 lr −
        log2 lr_opt)²`` (NaN without a vertex). Widths with
        fewer than 3 finished, finite learning rates (e.g. still training) are left out
        and listed in ``attrs["skipped"]`` (width: count); none left is an error.
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
    if neighbours < 1:
        raise ConfigError(f"neighbours: must be >= 1, got {neighbours}")
    rows, skipped = [], {}
    for w, cell in data.groupby(width, sort=True):
        # a learning rate counts only if every run of it (e.g. every seed) finished: a
        # diverged seed must not leave the survivors to speak for an unstable LR
        curve = cell.groupby(lr, sort=True)[loss].agg(
            lambda v: v.mean() if v.notna().all() else np.nan).dropna()
        if len(curve) < 3:  # e.g. a width still training: skipped, and said so
            # pandas types a group key as any scalar (str, date, ...); a width is a number
            skipped[float(w)] = int(len(curve))  # type: ignore[arg-type]
            continue
        rows.append({"width": w, **curve_optimum(curve.index.to_numpy(float),
                                                 curve.to_numpy(float), neighbours)})
    if not rows:
        detail = ", ".join(f"{w:g}: {n}" for w, n in skipped.items())
        raise ConfigError(f"column {width!r}: no width has 3 finished learning rates with a "
                          f"finite loss, needed to locate an optimum ({detail})")
    out = pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    return out


def curve_optimum(lrs: np.ndarray, losses: np.ndarray, neighbours: int = 1) -> dict[str, Any]:
    """The loss-optimal LR of one loss-vs-LR curve (``lrs`` increasing, losses finite).

    The vertex of the parabola in log2 lr through the best grid point and ``neighbours``
    points on each side; the best grid LR itself when that point is on the grid's edge
    (``edge``) or the parabola is not convex. Keys: ``lr_grid_best, loss_grid_best, lr_opt,
    loss_opt, curvature, edge, n_points`` (as :func:`lr_optima`'s columns).
    """
    x, y = np.log2(np.asarray(lrs, float)), np.asarray(losses, float)
    best = int(np.argmin(y))
    edge = best in (0, len(y) - 1)
    lo, hi = max(0, best - neighbours), min(len(y), best + neighbours + 1)
    vertex, coef = (math.nan, None) if edge else parabola_minimum(x[lo:hi], y[lo:hi])
    ok = math.isfinite(vertex) and x[lo] <= vertex <= x[hi - 1]
    x_opt = vertex if ok else x[best]
    return {"lr_grid_best": float(2.0 ** x[best]), "loss_grid_best": float(y[best]),
            "lr_opt": float(2.0 ** x_opt),
            "loss_opt": float(np.polyval(coef, x_opt)) if ok and coef is not None
            else float(y[best]),
            "curvature": float(coef[0]) if ok and coef is not None else math.nan,
            "edge": bool(edge),
            "n_points": int(hi - lo)}


def _ols(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """OLS of y on x: intercept, slope and its standard error, residual s.d., dof, and
    whether the slope differs from 0 (two-sided t test at 5%)."""
    slope, intercept = np.polyfit(x, y, 1)
    dof = len(x) - 2
    resid = y - (intercept + slope * x)
    sd = float(np.sqrt(resid @ resid / dof)) if dof > 0 else math.nan
    sxx = float(((x - x.mean()) ** 2).sum())
    se = sd / math.sqrt(sxx)
    nonzero = bool(dof > 0 and se > 0 and abs(slope) / se > stats.t.ppf(0.975, dof))
    return {"intercept": float(intercept), "slope": float(slope), "dof": dof, "sd": sd,
            "sxx": sxx, "rss": float(resid @ resid), "se_slope": se, "nonzero": nonzero}


def select_parametrization(summary: pd.DataFrame, parametrization: str | None,
                           ) -> tuple[pd.DataFrame, str | None]:
    """The rows of one parametrization, and its name.

    ``None`` picks the only one in the table (a table of several needs a choice).
    """
    if "parametrization" not in summary:
        return summary, parametrization
    names = sorted(summary["parametrization"].dropna().unique())
    if parametrization is None and len(names) > 1:
        raise ConfigError(f"parametrization: the table holds {', '.join(names)}; choose one")
    if parametrization is None:
        return summary, names[0] if names else None
    if parametrization not in names:
        raise ConfigError(f"parametrization: {parametrization!r} not in the table "
                          f"({', '.join(names)})")
    return summary[summary["parametrization"] == parametrization], parametrization


def fit_lr_transfer(summary: pd.DataFrame, *, width: str = "width", lr: str = "lr",
                    loss: str = "final_eval_loss", reference_width: float | None = None,
                    parametrization: str | None = None, drift: str = "auto",
                    neighbours: int = 1) -> FitResult:
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
    drift : {"auto", "fit", "none"}
        How lr* is predicted at other widths. ``"fit"``: the OLS line in log width
        (prediction interval with n − 2 degrees of freedom). ``"none"``: no drift, the
        transfer muP is built for (s = 0; c = geometric mean of the optima, prediction
        interval t(n − 1)·sd·√(1 + 1/n)); the fitted s is still reported as a check.
        ``"auto"``: ``"none"`` for muP and CompleteP sweeps, ``"fit"`` otherwise.
    neighbours : int
        See :func:`lr_optima`.

    Returns
    -------
    FitResult
        ``kind="transfer"``, ``law="lr_transfer"``, params ``log_lr_ref``,
        ``width_exponent`` (the s used for prediction) and ``reference_width``; metadata:
        the per-width optima (``used``: False for an optimum on the grid's edge, left out
        while two other widths remain), ``drift``, the fitted exponent and standard
        errors (``fitted``, with ``differs_from_zero``: a 5% t test of the exponent),
        residual s.d. and degrees of freedom of the prediction model.
    """
    if drift not in ("auto", "fit", "none"):
        raise ConfigError(f"drift: must be 'auto', 'fit' or 'none', got {drift!r}")
    data, parametrization = select_parametrization(summary, parametrization)
    requested = drift
    if drift == "auto":
        drift = "none" if parametrization in ("mup", "completep") else "fit"
    optima = lr_optima(data, width=width, lr=lr, loss=loss, neighbours=neighbours)
    skipped = optima.attrs.get("skipped", {})
    if len(optima) < 2:
        more = (f" (left out for lack of finished LRs: "
                f"{', '.join(f'{w:g}' for w in skipped)})" if skipped else "")
        raise ConfigError(f"column {width!r}: one width; at least 2 are needed to fit a "
                          f"drift{more}")
    # an optimum on the grid's edge is only a bound: leave it out; refuse with < 2 left
    used = ~optima["edge"].to_numpy()
    if used.sum() < 2:
        edges = ", ".join(f"{w:g}" for w in optima["width"][~used])
        raise ConfigError(f"column {lr!r}: the best LR is on the grid's edge at widths "
                          f"{edges}; extend the LR grid so that at least 2 widths have an "
                          "interior optimum")
    optima["used"] = used
    if reference_width is not None and not reference_width > 0:
        raise ConfigError(f"reference_width: must be > 0, got {reference_width!r}")
    w_ref = float(reference_width or optima["width"].min())
    x = np.log(optima["width"].to_numpy(float)[used] / w_ref)
    y = np.log(optima["lr_opt"].to_numpy(float)[used])
    ols = _ols(x, y)
    model: dict[str, Any]
    if drift == "fit":
        model = {"log_lr_ref": ols["intercept"], "width_exponent": ols["slope"],
                 "dof": ols["dof"], "residual_sd": ols["sd"], "x_mean": float(x.mean()),
                 "sxx": ols["sxx"], "rss": ols["rss"]}
    else:
        dof = len(y) - 1
        sd = float(np.std(y, ddof=1))
        model = {"log_lr_ref": float(y.mean()), "width_exponent": 0.0, "dof": dof,
                 "residual_sd": sd, "x_mean": float(x.mean()), "sxx": None,
                 "rss": float(((y - y.mean()) ** 2).sum())}
    holdout = _holdout_check(optima, used, drift, w_ref)
    return FitResult(
        law="lr_transfer", kind="transfer",
        params={"log_lr_ref": model["log_lr_ref"],
                "width_exponent": model["width_exponent"], "reference_width": w_ref},
        conventions={"lr": "peak (global) learning rate", "width": "model width"},
        objective=model["rss"], n_points=int(len(data)),
        metadata={"optima": optima.to_dict(orient="list"), "drift": drift,
                  "drift_requested": requested,
                  "skipped_widths": {f"{w:g}": n for w, n in skipped.items()},
                  "dof": model["dof"], "residual_sd": model["residual_sd"],
                  "x_mean": model["x_mean"], "sxx": model["sxx"], "loss": loss,
                  "fitted": {"width_exponent": ols["slope"], "se": ols["se_slope"],
                             "log_lr_ref": ols["intercept"], "dof": ols["dof"],
                             "differs_from_zero": ols["nonzero"]},
                  "parametrization": parametrization, "holdout": holdout,
                  "source": "per-width parabola vertices in log2 lr; "
                            + ("OLS of log lr* on log width" if drift == "fit" else
                               "no drift (muP transfer), geometric mean of the optima")
                            + " (Tensor Programs V, Fig. 1)"},
    )


HOLDOUT_LOG2_TOLERANCE = 1.0
"""The held-out check passes within a factor of 2 of the measured optimum (one step of a
factor-2 LR grid) ..."""
HOLDOUT_REGRET_TOLERANCE = 0.005
"""... and a loss regret on the held-out width's parabola of at most 0.5%."""


def _holdout_check(optima: pd.DataFrame, used: np.ndarray, drift: str,
                   w_ref: float) -> dict[str, Any]:
    """Leave the largest interior width out, predict its optimum from the others (the same
    drift model), and compare with what was measured there.

    ``log2_error`` = log2(predicted / measured lr*); ``regret`` = the relative loss excess
    of the predicted LR on the held-out width's parabola, ``c·log2_error² / loss_opt``.
    """
    widths = optima["width"].to_numpy(float)
    idx = np.flatnonzero(used)
    if len(idx) < 3:
        return {"checked": False, "reason": f"{len(idx)} widths with an interior optimum; the "
                "check needs 3 (2 to fit, 1 held out)"}
    k = int(idx[np.argmax(widths[idx])])
    rest = idx[idx != k]
    x = np.log(widths[rest] / w_ref)
    y = np.log(optima["lr_opt"].to_numpy(float)[rest])
    x_k = math.log(widths[k] / w_ref)
    if drift == "fit":  # the same line fit_lr_transfer draws, on the other widths
        line = _ols(x, y)
        pred = line["intercept"] + line["slope"] * x_k
    else:
        pred = float(y.mean())
    measured = float(optima["lr_opt"].iloc[k])
    error = (pred - math.log(measured)) / math.log(2.0)
    curvature, loss_opt = float(optima["curvature"].iloc[k]), float(optima["loss_opt"].iloc[k])
    regret = curvature * error**2 / loss_opt if math.isfinite(curvature) else math.nan
    ok = abs(error) <= HOLDOUT_LOG2_TOLERANCE and not regret > HOLDOUT_REGRET_TOLERANCE
    if ok:
        verdict = (f"held out width {widths[k]:g}: predicted lr* {math.exp(pred):.3g} vs "
                   f"measured {measured:.3g} ({error:+.2f} in log2), loss regret "
                   f"{regret:.3%} on its parabola: within the tolerance")
    else:
        verdict = (f"held-out check FAILED at width {widths[k]:g}: the fit on the smaller "
                   f"widths predicts lr* {math.exp(pred):.3g}, measured {measured:.3g} "
                   f"({error:+.2f} in log2, loss regret {regret:.3%}; tolerance "
                   f"{HOLDOUT_LOG2_TOLERANCE:g} in log2 and {HOLDOUT_REGRET_TOLERANCE:.1%}): "
                   "do not trust the transfer to larger widths without checking")
    return {"checked": True, "width": float(widths[k]), "predicted_lr": math.exp(pred),
            "measured_lr": measured, "log2_error": float(error), "regret": float(regret),
            "passed": bool(ok), "log2_tolerance": HOLDOUT_LOG2_TOLERANCE,
            "regret_tolerance": HOLDOUT_REGRET_TOLERANCE, "verdict": verdict}


def predict_lr(fit: FitResult, widths: float | Sequence[float], level: float = 0.95,
               ) -> tuple[np.ndarray, np.ndarray]:
    """lr*(w) and its ``level`` prediction interval (lo, hi) at ``widths``.

    Student-t prediction interval of a new width's log optimum under the fit's model
    (``drift`` "fit": the OLS line; "none": a constant); NaN without residual degrees
    of freedom (two widths with a fitted drift).
    """
    if fit.kind != "transfer":
        raise ValueError(f"fit: expected kind 'transfer', got {fit.kind!r}")
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level!r}")
    w = np.asarray(widths, dtype=float)
    if not np.all(w > 0):
        raise ValueError(f"width: must be > 0, got {widths!r}")
    return transfer_lr(fit.params, fit.metadata, w, level)
