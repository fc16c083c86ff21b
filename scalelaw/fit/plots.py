"""Figures for loss-surface fits (matplotlib, Agg backend; imported inside each function).

- :func:`plot_surface`: contours of the fitted L(N, D) with the data and the compute-optimal
  frontier N_opt(C) (Hoffmann et al. 2022, Fig. 4 style).
- :func:`plot_isoflop`: loss against N per compute budget with each budget's parabola,
  window or interpolant, its optimum and interval, flagged budgets drawn apart (Approach 2,
  Hoffmann et al. 2022 Fig. 3).
- :func:`plot_residuals`: log residuals against N, coloured by D.

Examples
--------
A table on Hoffmann et al.'s surface and that law as the fit (no fitting needed to plot):

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import numpy as np, pandas as pd
>>> from scalelaw.fit.result import FitResult
>>> p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
>>> N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e8, 1e10, 4),
...                                        np.geomspace(2e9, 2e11, 4)))
>>> df = pd.DataFrame({"N": N, "D": D, "loss": 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28})
>>> fit = FitResult(law="chinchilla", params=p)
>>> ax = plot_surface(fit, df).axes[0]
>>> ax.get_title(), ax.get_xscale(), ax.get_yscale()
('chinchilla: fitted loss', 'log', 'log')
>>> n_opt, d_opt = ax.get_lines()[0].get_data()  # the compute-optimal frontier
>>> slope = np.polyfit(np.log(6 * n_opt * d_opt), np.log(n_opt), 1)[0]
>>> round(float(slope), 3)  # N_opt grows as C^(beta / (alpha + beta)) = C^0.452
0.452
>>> r = plot_residuals(fit, df).axes[0].collections[0].get_offsets()[:, 1]
>>> bool(np.abs(r).max() < 1e-9)  # the data lie on the law
True
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "fit.png")
>>> save_fit_figure(fit, df, path)
>>> os.path.getsize(path) > 10_000
True
>>> import matplotlib.pyplot as plt
>>> plt.close("all")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from scalelaw._io import atomic_path
from scalelaw.fit.laws import get_law
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, read_table


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_surface(result: FitResult, table: TableLike, *, n: str = "N", d: str = "D",
                 loss: str = "loss", ax: Any = None) -> Any:
    """Contours of the fitted L(N, D) (log axes), data points and the optimal frontier."""
    from scalelaw.fit.allocate import compute_optimal

    plt = _pyplot()
    df = read_table(table)
    law = get_law(result.law)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    N, D = df[n].to_numpy(float), df[d].to_numpy(float)
    gn = np.geomspace(N.min() / 2, N.max() * 2, 120)
    gd = np.geomspace(D.min() / 2, D.max() * 2, 120)
    GN, GD = np.meshgrid(gn, gd)
    Z = law.predict(result.params, N=GN, D=GD)
    cs = ax.contour(GN, GD, Z, levels=12, cmap="viridis")
    ax.clabel(cs, fontsize=7)
    sc = ax.scatter(N, D, c=df[loss].to_numpy(float), s=12, cmap="viridis", edgecolors="k",
                    linewidths=0.3)
    ax.figure.colorbar(sc, ax=ax, label=loss)
    if law.name in ("chinchilla", "kaplan", "farseer"):
        C = np.geomspace(6 * gn.min() * gd.min(), 6 * gn.max() * gd.max(), 40)
        opt = compute_optimal(result, C)
        m = (opt["N_opt"] >= gn.min()) & (opt["N_opt"] <= gn.max())
        ax.plot(opt["N_opt"][m], opt["D_opt"][m], "r-", lw=1.5, label="compute-optimal")
        ax.legend(loc="upper left", fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="N (parameters)", ylabel="D (tokens)",
           xlim=(gn.min(), gn.max()), ylim=(gd.min(), gd.max()),
           title=f"{result.law}: fitted loss")
    return ax.figure


def plot_residuals(result: FitResult, table: TableLike, *, n: str = "N", d: str = "D",
                   loss: str = "loss", ax: Any = None) -> Any:
    """log L̂ − log L against N, coloured by log D."""
    plt = _pyplot()
    df = read_table(table)
    law = get_law(result.law)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    N, D, L = (df[c].to_numpy(float) for c in (n, d, loss))
    r = np.log(law.predict(result.params, N=N, D=D)) - np.log(L)
    sc = ax.scatter(N, r, c=np.log10(D), s=12, cmap="plasma")
    ax.figure.colorbar(sc, ax=ax, label="log10 D")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="N (parameters)", ylabel="log residual", title="residuals")
    return ax.figure


def plot_isoflop(table: TableLike, *, n: str = "N", c: str = "C", loss: str = "loss",
                 ax: Any = None, fit: FitResult | None = None) -> Any:
    """Loss vs N per compute budget with each budget's curve and optimum.

    Without ``fit``: least-squares parabolas in log N through every run and their vertices.
    With an :func:`~scalelaw.fit.isoflop.isoflop_fit` result: the curve of its method (the
    window parabola over its window, the Akima interpolant), each optimum with its 95%
    interval as a horizontal bar, and flagged budgets dashed, in grey, with open markers.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, pandas as pd
    >>> from scalelaw.fit.isoflop import isoflop_fit
    >>> rows = [(N, C, 2 + 0.3 * (1 - (N / n0) ** 0.3) ** 2) for C, n0 in
    ...         [(1e18, 1e8), (1e19, 3e8), (1e20, 9.9e9)] for N in np.geomspace(1e7, 1e10, 9)]
    >>> df = pd.DataFrame(rows, columns=["N", "C", "loss"])
    >>> fig = plot_isoflop(df, fit=isoflop_fit(df, method="window"))
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()][-1]
    'C=1e+20 (flagged)'
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    from scalelaw.fit.isoflop import parabola_minimum
    from scalelaw.fit.isoflop_budget import budget_curve

    plt = _pyplot()
    df = read_table(table)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    meta = fit.metadata if fit is not None else {}
    method = meta.get("method", "parabola")
    budgets = np.unique(df[c].to_numpy(float))
    colors = plt.cm.viridis(np.linspace(0, 1, len(budgets)))
    found = {C: j for j, C in enumerate(meta.get("budgets", {}).get("C", []))}
    for budget, color in zip(budgets, colors, strict=True):
        sub = df[df[c] == budget]
        x, y = np.log(sub[n].to_numpy(float)), sub[loss].to_numpy(float)
        j = found.get(budget)
        flagged = j is not None and not meta["budgets"]["used"][j]
        col, ls = ("0.5", "--") if flagged else (color, "-")
        ax.scatter(np.exp(x), y, s=12, label=f"C={budget:.2g}" + (" (flagged)" * flagged),
                   facecolors="none" if flagged else col, edgecolors=col)
        if len(np.unique(x)) < 3 or method == "given":
            continue
        xs, ys = budget_curve(x, y, method, window=meta.get("window") or 5,
                              band=meta.get("band"))
        ax.plot(np.exp(xs), ys, color=col, lw=1, ls=ls)
        if j is None:
            xm, coef = parabola_minimum(x, y)
            if np.isfinite(xm):
                ax.plot(np.exp(xm), np.polyval(coef, xm), "kx")
            continue
        b = meta["budgets"]
        n_opt, lo, hi = b["N_opt"][j], b["N_opt_lo"][j], b["N_opt_hi"][j]
        if n_opt is not None and np.isfinite(n_opt):
            y_opt = float(np.interp(np.log(n_opt), xs, ys))
            err = None if lo is None or not np.isfinite(lo) else [[n_opt - lo], [hi - n_opt]]
            ax.errorbar([n_opt], [y_opt], xerr=err, fmt="x", capsize=3,
                        color="0.5" if flagged else "k")
    ax.set(xscale="log", xlabel="N (parameters)", ylabel=loss,
           title=f"iso-FLOP profiles ({method})")
    ax.legend(fontsize=7)
    return ax.figure


def save_fit_figure(result: FitResult, table: TableLike, path: str | os.PathLike[str],
                    **columns: str) -> None:
    """Surface and residual panels in one file, written atomically (temp file + rename)."""
    plt = _pyplot()
    path = Path(path)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    plot_surface(result, table, ax=a1, **columns)
    plot_residuals(result, table, ax=a2, **columns)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
