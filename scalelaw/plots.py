"""Matplotlib figures for the parametrization and training layers.

Fit figures live in :mod:`scalelaw.fit.plots` (and ``plots_hparams``) so that the fitting
package stays importable without anything else. Every function writes its file
atomically: a figure is drawn to a temporary file and renamed into place, so a failure
never leaves half a PNG behind.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from scalelaw._io import atomic_path


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    """Save ``fig`` to ``path`` atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower().lstrip(".") not in fig.canvas.get_supported_filetypes():
        plt.close(fig)
        raise ValueError(f"plot: unsupported figure format {path.suffix!r} for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def plot_coord_check(data: pd.DataFrame, path: str | os.PathLike[str], title: str = "") -> None:
    """The usual coordinate-check figure: one panel per module, l1 against width (or depth,
    for a depth check; log-log), one line per step ``t``.

    Parameters
    ----------
    data : DataFrame
        ``CoordCheck.data`` (columns ``width, module, t, l1``).
    path : path
        Output file (``.png``, ``.pdf``, ``.svg``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = "depth" if "depth" in data and "width" not in data else "width"
    modules = list(dict.fromkeys(data["module"]))
    cols = min(6, len(modules))
    rows = math.ceil(len(modules) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows), squeeze=False)
    for ax, module in zip(axes.flat, modules, strict=False):
        sub = data[data["module"] == module]
        for t, line in sub.groupby("t"):
            l1 = line["l1"].where(line["l1"] > 0)  # zeros (zero-init readout) are not drawn
            ax.plot(line[axis], l1, marker="o", ms=3, label=f"t={t}")
        ax.set_xscale("log", base=2)
        if (sub["l1"] > 0).any():
            ax.set_yscale("log")
        ax.set_title(module, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(modules):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.supxlabel(axis)
    fig.supylabel("mean |activation|")
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
