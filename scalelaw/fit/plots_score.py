"""Figures for law scores (:func:`scalelaw.fit.score.score_laws`; Step Law Table 1 style).

Left: each law's mean and median loss excess over the cells' best runs (per mille), with its
worst cell as a marker. Right: the excess per cell against the cell's compute 6·N·D, one
series per law, open markers where the prediction fell outside the cell's grid.

Examples
--------
>>> fig = score_laws(runs).plot("scores.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def plot_law_scores(scores: Any, *, path: str | os.PathLike[str] | None = None,
                    metric: str = "bowl_vs_best") -> Any:
    """Draw a :class:`~scalelaw.fit.score.LawScores` (``metric``: ``"bowl_vs_best"``,
    ``"nearest_vs_best"``, ``"bowl_vs_bowl"`` or ``"nearest_vs_bowl"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scalelaw.errors import ConfigError

    if metric not in ("bowl_vs_best", "nearest_vs_best", "bowl_vs_bowl", "nearest_vs_bowl"):
        raise ConfigError(f"metric: must be bowl_vs_best, nearest_vs_best, bowl_vs_bowl or "
                          f"nearest_vs_bowl, got {metric!r}")
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary, table = scores.summary(), scores.to_frame()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(summary))
    ax.bar(x - 0.2, summary[f"mean_{metric}"], 0.4, label="mean")
    ax.bar(x + 0.2, summary[f"median_{metric}"], 0.4, label="median")
    ax.plot(x, summary[f"worst_{metric}"], "kv", label="worst cell")
    ax.set_xticks(x, list(summary.index), rotation=30, ha="right")
    ax.set_ylabel(f"loss excess, per mille ({metric.replace('_', ' ')})")
    ax.set_title(f"{len(scores.cells)} cells, loss column {scores.loss_column!r}", fontsize=9)
    ax.legend(fontsize=7)
    for law, g in table.groupby("law", sort=False):
        c = 6.0 * g["N"] * g["D"]
        y = 1000 * g[f"excess_{metric}"]
        line, = bx.plot(c[g["inside"]], y[g["inside"]], "o", label=str(law))
        bx.plot(c[~g["inside"]], y[~g["inside"]], "o", mfc="none", color=line.get_color())
    bx.set_xscale("log")
    bx.set_xlabel("cell compute 6 N D (FLOPs; N as each law reads it)")
    bx.set_ylabel("loss excess, per mille")
    bx.set_title("per cell (open: predicted outside the cell's grid)", fontsize=9)
    bx.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
