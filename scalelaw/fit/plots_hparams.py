"""LR × batch bowls per (N, D) cell (Step Law, Li et al. 2025, arXiv 2503.04715, Fig. 2 style).

Each panel shows one cell: the smoothed final loss of every run as coloured points in
(log lr, log B), contours of the fitted convex bowl (:func:`scalelaw.fit.bowl.fit_bowl`),
the runs inside Step Law's near-optimal band (open circles), the bowl's continuous minimum
(star) and, if a law is given, its predicted optimum (cross).

Examples
--------
>>> fig = plot_bowls(runs, fit, path="bowls.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.fit.bowl import DEFAULT_WINDOW, cell_mask, fit_bowls
from scalelaw.fit.powerlaw_form import band_mask, predict_hparams
from scalelaw.fit.result import FitResult


def plot_bowls(
    runs: pd.DataFrame,
    fit: FitResult | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    threshold: float = 0.0025,
    window: float = DEFAULT_WINDOW,
    max_excess: float = 0.05,
) -> Any:
    """One panel per cell of a canonical run table (:func:`scalelaw.fit.hparams.load_runs`).

    Parameters
    ----------
    runs : DataFrame
        Columns ``N, D, lr, batch_tokens, loss``.
    fit : FitResult, optional
        A ``kind="hparams"`` law whose predicted optimum is marked.
    path : path, optional
        Save the figure there (format from the suffix).
    threshold : float
        Band half-width for the highlighted runs.
    window : float
        Bowl fitting window (relative loss above the cell's best).
    max_excess : float
        Colour scale clipped at ``L*·(1 + max_excess)`` (diverged runs are greyed out).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    bowls = fit_bowls(runs, window=window)
    band = band_mask(runs, threshold)
    cells = list(bowls)
    ncol = min(4, len(cells))
    nrow = math.ceil(len(cells) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.1 * nrow), squeeze=False)
    for ax in axes.ravel()[len(cells):]:
        ax.set_visible(False)
    for ax, key in zip(axes.ravel(), cells, strict=False):
        N, D = key[:2]
        sel = cell_mask(runs, key)
        g, inband = runs[sel], band[sel]
        x, y, loss = np.log10(g["lr"]), np.log10(g["batch_tokens"]), g["loss"].to_numpy()
        best = np.nanmin(loss)
        vmax = best * (1 + max_excess)
        ok = np.isfinite(loss) & (loss <= vmax)
        ax.scatter(x[~ok], y[~ok], c="0.8", s=12, marker="x", label="diverged / high")
        sc = ax.scatter(x[ok], y[ok], c=loss[ok], cmap="viridis", s=18, vmin=best, vmax=vmax)
        ax.scatter(x[inband], y[inband], facecolors="none", edgecolors="red", s=60,
                   label=f"band |L/L*-1|<{threshold:g}")
        b = bowls[key]
        gx = np.linspace(x.min(), x.max(), 80)
        gy = np.linspace(y.min(), y.max(), 80)
        X, Y = np.meshgrid(gx, gy)
        Z = b.loss(10.0**X, 10.0**Y)
        levels = b.loss_opt * (1 + np.array([0.0025, 0.005, 0.01, 0.02, 0.04]))
        ax.contour(X, Y, Z, levels=levels, colors="k", linewidths=0.6, alpha=0.7)
        ax.plot(np.log10(b.lr_opt), np.log10(b.batch_opt), "*", color="orange", ms=13,
                mec="k", label="bowl minimum")
        if fit is not None:
            lr_hat, bs_hat = predict_hparams(fit, N, D)
            ax.plot(np.log10(lr_hat), np.log10(bs_hat), "P", color="magenta", ms=10,
                    mec="k", label="law prediction")
        ax.set_title(f"N={N:.3g}, D={D:.3g}", fontsize=9)
        ax.set_xlabel("log10 lr")
        ax.set_ylabel("log10 batch (tokens)")
        fig.colorbar(sc, ax=ax, shrink=0.8, label="final loss (nats)")
    axes.ravel()[0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
