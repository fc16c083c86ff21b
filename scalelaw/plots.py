"""Matplotlib figures for the parametrization and training layers.

Fit figures live in :mod:`scalelaw.fit.plots` (and ``plots_hparams``) so that the fitting
package stays importable without anything else. Every function writes its file
atomically: a figure is drawn to a temporary file and renamed into place, so a failure
never leaves half a PNG behind.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
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


STEP_STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", (0, (5, 1))),
               ("P", (0, (1, 1))))
"""(marker, linestyle) of step ``t = 1, 2, ...`` in the coordinate-check figure (cycled)."""

_VERDICT_ORDER = {"stable": 0, "vanishes": 1, "blows up": 2}
_FAMILY = re.compile(r"(?<![^./])([A-Za-z_]*)\d+(?=[./])")


def module_family(name: str) -> str:
    """The family of a module name: every numbered path component but the last one becomes
    ``*`` (``layer0.attn_out`` -> ``layer*.attn_out``, ``blocks/3/mlp`` -> ``blocks/*/mlp``).

    The last component keeps its number, so an ``nnx.Sequential``'s ``layers/0`` (an input
    layer) and ``layers/4`` (a readout) stay apart.

    Examples
    --------
    >>> [module_family(n) for n in ("layer1.q", "blocks/0/attn", "layers/2", "readout")]
    ['layer*.q', 'blocks/*/attn', 'layers/2', 'readout']
    """
    return _FAMILY.sub(r"\1*", name)


def coord_ratios(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with a column ``ratio``: each (module, t)'s l1 over its l1 at the base
    (narrowest) width -- or shallowest depth -- (1 where both are 0, NaN where only the
    base is 0).

    Examples
    --------
    >>> data = pd.DataFrame({"width": [64, 256], "module": "q", "t": 1, "l1": [0.5, 0.6]})
    >>> coord_ratios(data)["ratio"].tolist()
    [1.0, 1.2]
    """
    axis = _axis(data)
    base = data[data[axis] == data[axis].min()].set_index(["module", "t"])["l1"]
    ref = base.reindex(pd.MultiIndex.from_frame(data[["module", "t"]])).to_numpy()
    l1 = data["l1"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((ref == 0) & (l1 == 0), 1.0, np.where(ref == 0, np.nan, l1 / ref))
    return data.assign(ratio=ratio)


def _axis(data: pd.DataFrame) -> str:
    return "depth" if "depth" in data and "width" not in data else "width"


def _nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round ratios in ``[lo, hi]`` (always 1), at least ``log(hi/lo)/most`` apart in log;
    1-2-5 values first, then 1.25, 1.5, 3, 7.5, 2/3, 0.9 and 1.1 where they fit between."""
    nice = {m * 10.0 ** k for k in range(-4, 5) for m in (1, 1.25, 1.5, 2, 3, 5, 7.5)}
    nice |= {0.8, 2 / 3, 0.9, 1.1}

    def rank(v: float) -> tuple[int, float]:
        mantissa = round(v / 10.0 ** math.floor(math.log10(v) + 1e-9), 6)
        return (0 if mantissa in (1.0, 2.0, 5.0) else 1, abs(math.log(v)))

    gap = math.log(hi / lo) / most
    kept = [1.0]
    for v in sorted((v for v in nice if lo <= v <= hi), key=rank):
        if all(abs(math.log(v / k)) >= gap for k in kept):
            kept.append(v)
    return sorted(kept)


def coord_check_figure(data: pd.DataFrame, title: str = "", *,
                       verdicts: pd.DataFrame | None = None, bound: float | None = None,
                       families: bool | None = None) -> Any:
    """The coordinate-check figure as a matplotlib ``Figure`` (see :func:`plot_coord_check`).

    Each step's line of a module has the ``gid`` ``"<module>|t=<t>"``.

    Examples
    --------
    >>> data = pd.DataFrame({"width": [64, 256] * 2, "module": "q", "t": [1, 1, 2, 2],
    ...                      "l1": [0.5, 0.5, 0.6, 0.9]})
    >>> fig = coord_check_figure(data, bound=1.44)
    >>> [(line.get_gid(), line.get_ydata().tolist()) for line in fig.axes[0].get_lines()
    ...  if line.get_gid()]
    [('q|t=1', [1.0, 1.0]), ('q|t=2', [1.0, 1.5])]
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis = _axis(data)
    data = coord_ratios(data)
    modules = list(dict.fromkeys(data["module"]))
    if families is None:
        families = len(modules) > 12
    family_of = {m: module_family(m) if families else m for m in modules}
    panels = list(dict.fromkeys(family_of.values()))
    verdict = {} if verdicts is None else verdicts.set_index("module")["verdict"].to_dict()
    bounds = {} if verdicts is None else verdicts.set_index("module")["bound"].to_dict()

    steps = sorted(data["t"].unique())
    xs = sorted(data[axis].unique())
    octaves = max(math.log2(xs[-1] / xs[0]), 1.0)
    shift = {t: 2.0 ** (0.035 * octaves * (i - (len(steps) - 1) / 2))  # keep steps apart
             for i, t in enumerate(steps)}
    ratios = data["ratio"][np.isfinite(data["ratio"]) & (data["ratio"] > 0)]
    top = max([ratios.max(), 1 / ratios.min()] + ([bound] if bound else [])
              + [b for b in bounds.values() if np.isfinite(b)])
    lo, hi = 1 / (top * 1.15), top * 1.15

    cols = min(5, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols, 2.3 * rows + 0.6),
                             squeeze=False, sharey=True)
    for ax, panel in zip(axes.flat, panels, strict=False):
        members = [m for m in modules if family_of[m] == panel]
        band = min((bounds.get(m, bound or np.nan) for m in members), default=np.nan)
        if np.isfinite(band):
            ax.axhspan(1 / band, band, color="0.88", zorder=0)
        ax.axhline(1.0, color="0.5", lw=0.6, zorder=0.5)
        for module in members:
            sub = data[data["module"] == module]
            for i, t in enumerate(steps):
                line = sub[sub["t"] == t].sort_values(axis)
                marker, style = STEP_STYLES[i % len(STEP_STYLES)]
                ax.plot(line[axis] * shift[t], line["ratio"], color=f"C{i % 10}",
                        marker=marker, ls=style, ms=6 - 1.2 * min(i, 3), mfc="none", lw=1.2,
                        alpha=0.9, label=f"t={t}", gid=f"{module}|t={t}")
        worst = max((verdict.get(m, "stable") for m in members), key=_VERDICT_ORDER.__getitem__)
        name = panel + (f" ({len(members)})" if len(members) > 1 else "")
        if verdict and not any(m in verdict for m in members):
            ax.set_title(f"{name} (not judged)", fontsize=8, color="0.45")
        else:
            ax.set_title(name if worst == "stable" else f"{name}: {worst}", fontsize=8,
                         color="black" if worst == "stable" else "tab:red")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlim(xs[0] / 2 ** (0.12 * octaves), xs[-1] * 2 ** (0.12 * octaves))
        labelled = xs if len(xs) <= 4 else xs[::math.ceil(len(xs) / 4)]
        ax.xaxis.set_major_locator(FixedLocator(labelled))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylim(lo, hi)
    axes[0, 0].yaxis.set_major_locator(FixedLocator(_nice_ticks(lo, hi)))
    axes[0, 0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    axes[0, 0].yaxis.set_minor_locator(NullLocator())
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles: list[Any] = []
    for i, t in enumerate(steps):
        marker, style = STEP_STYLES[i % len(STEP_STYLES)]
        handles.append(Line2D([], [], color=f"C{i % 10}", marker=marker, ls=style, mfc="none",
                              label=f"t={t}"))
    if bound is not None or bounds:
        handles.append(Patch(color="0.88", label="stable band"))
    fig.legend(handles=handles, loc="upper right", ncol=len(handles), fontsize=7,
               frameon=False)
    fig.supxlabel(axis, fontsize=9)
    fig.supylabel(f"mean |activation| / its value at {axis} {xs[0]:g}", fontsize=9)
    if title:
        fig.suptitle(title, x=0.02, ha="left", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def plot_coord_check(data: pd.DataFrame, path: str | os.PathLike[str], title: str = "", *,
                     verdicts: pd.DataFrame | None = None, bound: float | None = None,
                     families: bool | None = None) -> None:
    """The coordinate-check figure: one panel per module (or per family of modules), each
    module's mean |activation| relative to its value at the narrowest width (or shallowest
    depth, for a depth check), against width (log-log), one line per step ``t``.

    Every panel shares one y range that covers the stable band, so a flat line looks flat
    and a module that grows stands out; steps are told apart by colour, marker and line
    style (and a small sideways shift, so that equal lines do not hide each other).

    Parameters
    ----------
    data : DataFrame
        ``CoordCheck.data`` (columns ``width, module, t, l1``).
    path : path
        Output file (``.png``, ``.pdf``, ``.svg``).
    verdicts : DataFrame, optional
        ``CoordCheck.verdicts``: flagged panels get a red title, the band each module's
        bound (the smallest of a family's).
    bound : float, optional
        The band where ``verdicts`` gives none (``CoordCheck.bound``).
    families : bool, optional
        Draw modules that differ only in a layer number (:func:`module_family`) in one
        panel; default: when there are more than 12 modules.
    """
    save_figure(coord_check_figure(data, title, verdicts=verdicts, bound=bound,
                                   families=families), path)


def sigma_max_figure(diagnostic: Any, title: str = "", *, fan_exponent: float = 0.75) -> Any:
    """Figure of :func:`plot_sigma_max` as a matplotlib ``Figure``.

    Examples
    --------
    >>> from scalelaw.mup.wd_diagnostic import sigma_max_table
    >>> measured = pd.DataFrame({"weight_decay_rule": "sqrt", "width": [32, 64],
    ...                          "family": "w1", "sigma_max": 2.0, "lr": [0.01, 0.005],
    ...                          "weight_decay": [0.1, 0.1 * 2 ** 0.5]})
    >>> fig = sigma_max_figure(sigma_max_table(measured))
    >>> [ax.get_title() for ax in fig.axes]
    ['sqrt']
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, by = diagnostic.table, list(diagnostic.by)
    groups = list(table.groupby(by, sort=False)) if by else [("all", table)]
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.2),
                             squeeze=False, sharey=True)
    families = list(dict.fromkeys(table["family"]))
    for ax, (key, part) in zip(axes.flat, groups, strict=True):
        for i, family in enumerate(families):
            line = part[part["family"] == family].sort_values("width")
            if line.empty:
                continue
            base = line.iloc[0]
            fan = base["sigma_max"] * (line["prediction"] / base["prediction"]) * (
                line["width"] / base["width"]) ** fan_exponent
            ax.plot(line["width"], line["sigma_max"], "o-", color=f"C{i % 10}", label=family)
            ax.plot(line["width"], fan, ls=":", color=f"C{i % 10}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sorted(part["width"].unique()))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(", ".join(map(str, key)) if isinstance(key, tuple) else str(key),
                     fontsize=9)
        ax.set_xlabel("width")
    axes[0, 0].set_ylabel("top singular value (solid)\n"
                          f"sqrt(lr/wd) width^{fan_exponent:g} (dotted)")
    axes[0, -1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_sigma_max(diagnostic: Any, path: str | os.PathLike[str], title: str = "") -> None:
    """Fan et al. (2025)'s diagnostic: each hidden matrix family's top singular value
    against width (solid), one panel per weight-decay rule, with their steady-state
    prediction ``sqrt(lr/wd) * width^0.75`` (dotted, matched at the narrowest width).

    Parameters
    ----------
    diagnostic : WeightDecayDiagnostic
        From :func:`scalelaw.weight_decay_diagnostic` or
        :func:`scalelaw.mup.wd_diagnostic.sigma_max_table`.
    path : path
        Output file (``.png``, ``.pdf``, ``.svg``).
    """
    save_figure(sigma_max_figure(diagnostic, title), path)
