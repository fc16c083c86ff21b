"""Convex loss bowls in (log lr, log batch) per (N, D) cell, and leave-one-cell-out tests.

Step Law (Li et al. 2025, arXiv 2503.04715, §3 and Fig. 2) observes that the final loss is
convex in (log η, log B) within each (N, D) cell. Instead of a near-optimal band of grid
points, :func:`fit_bowl` fits near the cell's best run

    L(x, y) = c + ½ (z − z*)ᵀ H (z − z*),   z = (log lr, log B),   H = R Rᵀ

with ``R`` lower-triangular with a positive diagonal, so ``H`` is positive definite by
construction. The fit is robust (scipy ``least_squares`` with a soft-L1 loss whose scale is
0.1% of the best loss) and uses only runs within ``window`` relative loss of the cell's best
(diverged runs and the far, non-quadratic walls are thus excluded). The minimum ``z*`` is a
parameter of the fit, so its delta-method interval is read from the Gauss–Newton
covariance ``s² (JᵀJ)⁻¹``.

:func:`scalelaw.fit.held_out.leave_one_cell_out` scores the laws fitted from bowl minima
and from Step Law's band on each held-out cell's bowl.

Examples
--------
>>> import numpy as np
>>> x, y = np.meshgrid(np.linspace(-2, 2, 9), np.linspace(-2, 2, 7))
>>> loss = 2.5 + 0.02 * (x - 0.3) ** 2 + 0.01 * (y + 0.4) ** 2
>>> b = fit_bowl(np.exp(x.ravel() - 6), np.exp(y.ravel() + 12), loss.ravel(), window=0.05)
>>> round(float(np.log(b.lr_opt)) + 6, 3), round(float(np.log(b.batch_opt)) - 12, 3)
(0.3, -0.4)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalelaw.fit.powerlaw_form import cell_columns

DEFAULT_WINDOW = 0.01  # relative loss above the cell's best; see held_out.leave_one_cell_out


@dataclass(frozen=True)
class Bowl:
    """A fitted convex quadratic ``L = c + ½ (z − z*)ᵀ H (z − z*)`` in (log lr, log B).

    Attributes
    ----------
    lr_opt, batch_opt : float
        Continuous minimum ``exp(z*)`` (batch in the unit it was given, e.g. tokens).
    loss_opt : float
        ``c``, the bowl's minimum loss.
    hessian : ndarray (2, 2)
        ``H``, positive definite.
    cov : ndarray (2, 2)
        Delta-method covariance of ``(log lr*, log B*)``.
    n_points : int
        Runs used (inside the window, finite loss).
    at_edge : bool
        The minimum sits on the bound of the observed (lr, B) range (extrapolation).
    """

    lr_opt: float
    batch_opt: float
    loss_opt: float
    hessian: np.ndarray
    cov: np.ndarray
    n_points: int
    at_edge: bool = False
    window: float = field(default=0.0)

    def loss(self, lr: float | np.ndarray, batch: float | np.ndarray) -> np.ndarray:
        """The bowl's loss at (lr, batch); off-grid points use the quadratic."""
        dz = np.stack([np.log(lr) - np.log(self.lr_opt),
                       np.log(batch) - np.log(self.batch_opt)], axis=-1)
        return self.loss_opt + 0.5 * np.einsum("...i,ij,...j->...", dz, self.hessian, dz)

    def interval(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Delta-method interval of ``lr_opt`` and ``batch_opt`` (symmetric in log space)."""
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + level / 2))
        se = np.sqrt(np.clip(np.diag(self.cov), 0.0, None))
        lo = np.exp(np.log([self.lr_opt, self.batch_opt]) - z * se)
        hi = np.exp(np.log([self.lr_opt, self.batch_opt]) + z * se)
        return {"lr": (float(lo[0]), float(hi[0])), "batch": (float(lo[1]), float(hi[1]))}


def _model(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    c, x0, y0, r11, r21, r22 = theta
    a, b = np.exp(r11), np.exp(r22)
    # H = R Rᵀ, R = [[a, 0], [r21, b]]  →  ½ zᵀ H z = ½ (a dx)² + ½ (r21 dx + b dy)²
    dx, dy = x - x0, y - y0
    return c + 0.5 * (a * dx) ** 2 + 0.5 * (r21 * dx + b * dy) ** 2


def fit_bowl(
    lr: ArrayLike,
    batch: ArrayLike,
    loss: ArrayLike,
    *,
    window: float = DEFAULT_WINDOW,
    min_points: int = 10,
) -> Bowl:
    """Fit a robust positive-definite quadratic bowl to one cell's runs.

    Parameters
    ----------
    lr, batch, loss : array
        One entry per run of the cell; non-finite losses (diverged runs) are ignored.
    window : float
        Use runs with ``L < L*·(1 + window)``; widened (×1.5 steps) until at least
        ``min_points`` runs are inside. The default 1% is a compromise: on Step Law's
        dense grid the bowl minimum sits 0.01–0.16% above the best grid loss at 1% and
        0.02–0.27% at 2% (the walls are steeper than quadratic).
    min_points : int
        Minimum number of runs to fit the 6 parameters.

    Raises
    ------
    ValueError
        If the cell has fewer than ``min_points`` finite runs.
    """
    from scipy.optimize import least_squares  # imported here: scipy.optimize is slow to load

    lr, batch, loss = (np.asarray(a, dtype=float) for a in (lr, batch, loss))
    ok = np.isfinite(loss) & (lr > 0) & (batch > 0)
    if ok.sum() < min_points:
        raise ValueError(f"cell: {int(ok.sum())} finite runs, a bowl needs {min_points}")
    x_all, y_all, l_all = np.log(lr[ok]), np.log(batch[ok]), loss[ok]
    best = float(l_all.min())
    w = window
    while (inside := l_all < best * (1 + w)).sum() < min_points:
        w *= 1.5
    x, y, ls = x_all[inside], y_all[inside], l_all[inside]
    i0 = int(np.argmin(ls))
    span = max(np.ptp(x), np.ptp(y), 1.0)
    h0 = 2 * w * best / (span / 2) ** 2
    theta0 = np.array([best, x[i0], y[i0], 0.5 * np.log(h0), 0.0, 0.5 * np.log(h0)])
    lo = np.array([-np.inf, x_all.min(), y_all.min(), -30, -np.inf, -30])
    hi = np.array([np.inf, x_all.max(), y_all.max(), 30, np.inf, 30])
    theta0 = np.clip(theta0, lo + 1e-9, hi - 1e-9)
    def residuals(t: np.ndarray) -> np.ndarray:
        return _model(t, x, y) - ls

    res = least_squares(
        residuals, theta0, bounds=(lo, hi), loss="soft_l1", f_scale=1e-3 * best, x_scale="jac",
    )
    c, x0, y0, r11, r21, r22 = res.x
    R = np.array([[np.exp(r11), 0.0], [r21, np.exp(r22)]])
    J = np.asarray(res.jac)  # dense: least_squares' default finite differences
    dof = max(len(ls) - len(res.x), 1)
    s2 = float(np.sum(res.fun**2) / dof)
    cov_full = s2 * np.linalg.pinv(J.T @ J)
    tol = 1e-6 * max(1.0, span)
    at_edge = bool(
        min(x0 - lo[1], hi[1] - x0) < tol or min(y0 - lo[2], hi[2] - y0) < tol
    )
    return Bowl(
        lr_opt=float(np.exp(x0)), batch_opt=float(np.exp(y0)), loss_opt=float(c),
        hessian=R @ R.T, cov=cov_full[1:3, 1:3], n_points=int(len(ls)), at_edge=at_edge,
        window=float(w),
    )


def fit_bowls(
    runs: pd.DataFrame, *, window: float = DEFAULT_WINDOW
) -> dict[tuple, Bowl]:
    """One :class:`Bowl` per cell of a canonical run table
    (:func:`~scalelaw.fit.hparams.load_runs`), keyed ``(N, D)``, or ``(N, D, cell)`` where
    the table has a ``cell`` column (cells chosen by the user's ``cell_keys``)."""
    out: dict[tuple, Bowl] = {}
    for _, g in runs.groupby(cell_columns(runs)):
        key: tuple = (float(g["N"].iloc[0]), float(g["D"].iloc[0]))
        if "cell" in g.columns:
            key = (*key, g["cell"].iloc[0])
        out[key] = fit_bowl(g["lr"], g["batch_tokens"], g["loss"], window=window)
    return out


def cell_mask(runs: pd.DataFrame, key: tuple) -> np.ndarray:
    """The runs of the cell ``key`` (a key of :func:`fit_bowls`)."""
    if len(key) > 2:
        return (runs["cell"] == key[2]).to_numpy()
    return ((runs["N"] == key[0]) & (runs["D"] == key[1])).to_numpy()


def cell_optima(runs: pd.DataFrame, *, window: float = DEFAULT_WINDOW) -> pd.DataFrame:
    """Per-cell bowl minima with 95% delta-method intervals, one row per cell.

    Columns: ``N, D, lr_opt, batch_opt, loss_opt, lr_lo, lr_hi, batch_lo, batch_hi,
    n_points, at_edge, grid_best``.
    """
    rows = []
    for key, b in fit_bowls(runs, window=window).items():
        N, D = key[:2]
        ci = b.interval()
        grid = runs.loc[cell_mask(runs, key), "loss"].min()
        rows.append({"N": N, "D": D, "lr_opt": b.lr_opt, "batch_opt": b.batch_opt,
                     "loss_opt": b.loss_opt, "lr_lo": ci["lr"][0], "lr_hi": ci["lr"][1],
                     "batch_lo": ci["batch"][0], "batch_hi": ci["batch"][1],
                     "n_points": b.n_points, "at_edge": b.at_edge, "grid_best": float(grid)})
    return pd.DataFrame(rows)
