"""Figures for loss-surface fits (matplotlib, Agg backend; imported inside each function).

- :func:`plot_surface`: contours of the fitted L(N, D) with the data and the compute-optimal
  frontier N_opt(C) with its bootstrap band (Hoffmann et al. 2022, Fig. 4 style).
- :func:`plot_curves`: loss against D per model size, the fitted curves and their
  bootstrap bands.
- :func:`plot_isoflop`: loss against N per compute budget with each budget's parabola,
  window or interpolant, its optimum and interval, flagged budgets drawn apart (Approach 2,
  Hoffmann et al. 2022 Fig. 3).
- :func:`plot_residuals`: observed − predicted loss (nats) against N, coloured by D.

Rows the fit did not use are drawn apart and named in the legend: held out (``holdout_above``)
as open red circles, dropped (``drop_top``) as grey crosses (:func:`row_roles`).

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
    """pyplot, on the Agg backend unless a backend is in use already (Jupyter's inline
    one: a figure drawn without ``ax`` then shows in the notebook)."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _unit(result: FitResult) -> str:
    """The loss unit of ``result`` (its conventions; nats by default)."""
    return str(result.conventions.get("loss") or "nats")


def row_roles(result: FitResult, df: Any, n: str = "N") -> np.ndarray:
    """Each table row's part in the fit: ``"fit"``, ``"held out"`` (N above the fit's
    ``holdout_above``) or ``"dropped"`` (by ``drop_top``), from ``result.metadata``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"N": [1e8, 1e9, 1e10, 1e8]})
    >>> r = FitResult("chinchilla", {}, metadata={"protocol": {"dropped_rows": [3]},
    ...               "holdout": {"fit_N_max": 5e9}})
    >>> row_roles(r, df).tolist()
    ['fit', 'fit', 'held out', 'dropped']
    """
    roles = np.full(len(df), "fit", dtype=object)
    hold = result.metadata.get("holdout") or {}
    if hold.get("fit_N_max") is not None:
        roles[df[n].to_numpy(float) > float(hold["fit_N_max"])] = "held out"
    dropped = (result.metadata.get("protocol") or {}).get("dropped_rows") or []
    roles[np.asarray(dropped, dtype=int)] = "dropped"
    return roles


#: How rows other than the fitted ones are drawn: open circles, grey crosses.
_OTHER = {"held out": {"marker": "o", "facecolors": "none", "edgecolors": "crimson", "s": 28},
          "dropped": {"marker": "x", "c": "0.55", "s": 22}}


def _others(ax: Any, result: FitResult, df: Any, roles: np.ndarray, x: np.ndarray,
            y: np.ndarray) -> None:
    """Held-out and dropped rows, each in its own style and legend entry."""
    hold = (result.metadata.get("holdout") or {}).get("fit_N_max")
    for role, style in _OTHER.items():
        m = roles == role
        if m.any():
            label = f"held out (N > {hold:.3g})" if role == "held out" else "dropped (drop_top)"
            ax.scatter(x[m], y[m], label=f"{label}: {int(m.sum())}", zorder=3, **style)


def frontier_band(result: FitResult, compute: np.ndarray, level: float = 0.95,
                  max_draws: int = 200) -> tuple[np.ndarray, np.ndarray] | None:
    """Bootstrap band of N_opt(C): the ``level`` percentile interval of the compute-optimal
    N over the fit's draws (at most ``max_draws`` of them, evenly spaced), or ``None``
    without draws."""
    from scalelaw.fit.allocate import compute_optimal

    law = get_law(result.law)
    if not result.samples or not all(k in result.samples for k in law.natural_names):
        return None
    cols = np.array([result.samples[k] for k in law.natural_names], float).T
    cols = cols[np.isfinite(cols).all(axis=1)]
    if len(cols) < 2:
        return None
    cols = cols[np.unique(np.linspace(0, len(cols) - 1, min(max_draws, len(cols))).astype(int))]
    n_opt = np.array([compute_optimal(dict(zip(law.natural_names, row, strict=True)), compute,
                                      law=law)["N_opt"] for row in cols])
    lo, hi = np.nanquantile(n_opt, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def plot_surface(result: FitResult, table: TableLike, *, n: str = "N", d: str = "D",
                 loss: str = "loss", ax: Any = None) -> Any:
    """Contours of the fitted L(N, D) (log axes), the rows (fitted ones coloured by their
    loss, held-out and dropped ones apart) and the compute-optimal frontier, with its 95%
    bootstrap band when the fit has draws."""
    from scalelaw.fit.allocate import compute_optimal

    plt = _pyplot()
    df = read_table(table)
    law = get_law(result.law)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    N, D = df[n].to_numpy(float), df[d].to_numpy(float)
    roles = row_roles(result, df, n)
    gn = np.geomspace(N.min() / 2, N.max() * 2, 120)
    gd = np.geomspace(D.min() / 2, D.max() * 2, 120)
    GN, GD = np.meshgrid(gn, gd)
    Z = law.predict(result.params, N=GN, D=GD)
    cs = ax.contour(GN, GD, Z, levels=12, cmap="viridis")
    ax.clabel(cs, fontsize=7)
    fit = roles == "fit"
    sc = ax.scatter(N[fit], D[fit], c=df[loss].to_numpy(float)[fit], s=12, cmap="viridis",
                    edgecolors="k", linewidths=0.3, label=f"fitted: {int(fit.sum())}")
    ax.figure.colorbar(sc, ax=ax, label=f"{loss} ({_unit(result)})")
    _others(ax, result, df, roles, N, D)
    if law.name in ("chinchilla", "kaplan", "farseer"):
        C = np.geomspace(6 * gn.min() * gd.min(), 6 * gn.max() * gd.max(), 40)
        opt = compute_optimal(result, C)
        m = (opt["N_opt"] >= gn.min()) & (opt["N_opt"] <= gn.max())
        ax.plot(opt["N_opt"][m], opt["D_opt"][m], "r-", lw=1.5, label="compute-optimal")
        band = frontier_band(result, C[m])
        if band is not None:
            lo, hi = band
            k = 6.0  # C = 6 N D, as compute_optimal's default
            ax.fill(np.r_[lo, hi[::-1]], np.r_[C[m] / (k * lo), (C[m] / (k * hi))[::-1]],
                    color="r", alpha=0.2, lw=0, label="compute-optimal, 95% bootstrap band")
    ax.legend(loc="upper left", fontsize=7)
    ax.set(xscale="log", yscale="log", xlabel="N (parameters)", ylabel="D (tokens)",
           xlim=(gn.min(), gn.max()), ylim=(gd.min(), gd.max()),
           title=f"{result.law}: fitted loss")
    return ax.figure


def plot_curves(result: FitResult, table: TableLike, *, n: str = "N", d: str = "D",
                loss: str = "loss", ax: Any = None, max_sizes: int = 8) -> Any:
    """Loss against D for each model size N (up to ``max_sizes`` of them, evenly spread):
    the rows, the fitted law's curve and, with bootstrap draws, its 95% band
    (:func:`~scalelaw.fit.bootstrap.prediction_interval`); held-out and dropped rows apart.
    """
    from scalelaw.fit.bootstrap import prediction_interval

    plt = _pyplot()
    df = read_table(table)
    law = get_law(result.law)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    N, D, L = (df[col].to_numpy(float) for col in (n, d, loss))
    roles = row_roles(result, df, n)
    sizes = np.unique(N)
    sizes = sizes[np.unique(np.linspace(0, len(sizes) - 1, min(max_sizes, len(sizes)))
                            .astype(int))]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    gd = np.geomspace(D.min() / 1.5, D.max() * 1.5, 60)
    banded = False
    for size, color in zip(sizes, colors, strict=True):
        m = (N == size) & (roles == "fit")
        ax.scatter(D[m], L[m], s=12, color=color)
        ax.plot(gd, law.predict(result.params, N=size, D=gd), color=color, lw=1,
                label=f"N={size:.3g}")
        if result.samples:
            lo, hi = prediction_interval(result, law=law, N=size, D=gd)
            ax.fill_between(gd, lo, hi, color=color, alpha=0.2, lw=0,
                            label=None if banded else "95% bootstrap band")
            banded = True
    _others(ax, result, df, roles, D, L)
    ax.set(xscale="log", xlabel="D (tokens)", ylabel=f"{loss} ({_unit(result)})",
           title=f"{result.law}: fitted curves")
    ax.legend(fontsize=6, ncol=2)
    return ax.figure


def plot_residuals(result: FitResult, table: TableLike, *, n: str = "N", d: str = "D",
                   loss: str = "loss", ax: Any = None) -> Any:
    """Residuals, observed − predicted loss (in the loss's unit, nats by default), against
    N, fitted rows coloured by log10 D, held-out and dropped rows apart."""
    plt = _pyplot()
    df = read_table(table)
    law = get_law(result.law)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    N, D, L = (df[c].to_numpy(float) for c in (n, d, loss))
    r = L - law.predict(result.params, N=N, D=D)
    roles = row_roles(result, df, n)
    fit = roles == "fit"
    sc = ax.scatter(N[fit], r[fit], c=np.log10(D[fit]), s=12, cmap="plasma",
                    label=f"fitted: {int(fit.sum())}")
    ax.figure.colorbar(sc, ax=ax, label="log10 D (tokens)")
    _others(ax, result, df, roles, N, r)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="N (parameters)",
           ylabel=f"observed − predicted {loss} ({_unit(result)})", title="residuals")
    ax.legend(fontsize=7)
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
    ax.set(xscale="log", xlabel="N (parameters)", ylabel=f"{loss} (nats)",
           title=f"iso-FLOP profiles ({method})")
    ax.legend(fontsize=7)
    return ax.figure


def save_fit_figure(result: FitResult, table: TableLike, path: str | os.PathLike[str], *,
                    n: str = "N", d: str = "D", loss: str = "loss") -> None:
    """Surface, curves and residual panels in one file, written atomically (temp file +
    rename)."""
    plt = _pyplot()
    path = Path(path)
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(18, 4.8))
    plot_surface(result, table, ax=a1, n=n, d=d, loss=loss)
    plot_curves(result, table, ax=a2, n=n, d=d, loss=loss)
    plot_residuals(result, table, ax=a3, n=n, d=d, loss=loss)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
