"""Fit figures (issue 10 §5): held-out and dropped rows apart and in the legend, residuals as
observed − predicted in nats, bootstrap bands, colour bars with units, iso-FLOP intervals.

The figures are inspected as matplotlib objects (labels, collections, patches), not pixels.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from scalelaw.fit.plots import (  # noqa: E402
    plot_curves,
    plot_isoflop,
    plot_residuals,
    plot_surface,
    save_fit_figure,
)
from scalelaw.fit.result import FitResult  # noqa: E402

P = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}


@pytest.fixture(autouse=True)
def _close():  # noqa: ANN202
    yield
    plt.close("all")


def table() -> pd.DataFrame:
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e8, 1e10, 4),
                                           np.geomspace(2e9, 2e11, 4)))
    L = P["E"] + P["A"] / N ** P["alpha"] + P["B"] / D ** P["beta"] + 0.01  # 0.01 above the law
    return pd.DataFrame({"N": N, "D": D, "loss": L})


def fit(samples: bool = True) -> FitResult:
    rng = np.random.default_rng(0)
    draws = {k: (v * np.exp(0.02 * rng.standard_normal(50))).tolist() for k, v in P.items()}
    return FitResult("chinchilla", P, conventions={"loss": "nats"},
                     samples=draws if samples else None,
                     metadata={"protocol": {"dropped_rows": [0, 5]},
                               "holdout": {"fit_N_max": 3e9, "n": 4}})


def legend(ax) -> list[str]:  # noqa: ANN001
    return [t.get_text() for t in ax.get_legend().get_texts()]


def colorbar_label(fig, ax) -> str:  # noqa: ANN001
    return next(a for a in fig.axes if a is not ax).get_ylabel()


def test_residuals_are_observed_minus_predicted_in_nats() -> None:
    ax = plot_residuals(fit(), table()).axes[0]
    assert ax.get_ylabel() == "observed − predicted loss (nats)"
    r = ax.collections[0].get_offsets()[:, 1]
    np.testing.assert_allclose(r, 0.01, atol=1e-9)  # the data lie 0.01 nats above the law
    assert legend(ax) == ["fitted: 10", "held out (N > 3e+09): 4", "dropped (drop_top): 2"]
    assert colorbar_label(ax.figure, ax) == "log10 D (tokens)"


def test_curves_have_bootstrap_bands_and_the_other_rows() -> None:
    ax = plot_curves(fit(), table()).axes[0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 4  # one per model size
    labels = legend(ax)
    assert "95% bootstrap band" in labels and "dropped (drop_top): 2" in labels
    assert "held out (N > 3e+09): 4" in labels
    assert ax.get_ylabel() == "loss (nats)" and ax.get_xlabel() == "D (tokens)"
    bare = plot_curves(fit(samples=False), table()).axes[0]
    assert not [c for c in bare.collections if isinstance(c, PolyCollection)]
    assert "95% bootstrap band" not in legend(bare)


def test_surface_frontier_band_and_units() -> None:
    fig = plot_surface(fit(), table())
    ax = fig.axes[0]
    labels = legend(ax)
    assert "compute-optimal, 95% bootstrap band" in labels
    assert {"fitted: 10", "held out (N > 3e+09): 4", "dropped (drop_top): 2"} <= set(labels)
    band = next(p for p in ax.patches if p.get_label().endswith("bootstrap band"))
    xy = band.get_xy()
    assert np.ptp(np.log(xy[:, 0])) > 0  # a band of some width around the frontier
    assert colorbar_label(fig, ax) == "loss (nats)"
    bare = plot_surface(fit(samples=False), table()).axes[0]
    assert "compute-optimal, 95% bootstrap band" not in legend(bare)


def test_saved_figure_has_three_panels(tmp_path) -> None:
    path = tmp_path / "fit.png"
    save_fit_figure(fit(), table(), path)
    assert path.stat().st_size > 20_000


def test_isoflop_plot_shows_each_window_and_the_optimum_interval() -> None:
    from scalelaw.fit.isoflop import isoflop_fit

    rng = np.random.default_rng(1)
    rows = [(N, C, (2 + 0.3 * (1 - (N / n0) ** 0.3) ** 2) * np.exp(0.002 * rng.standard_normal()))
            for C, n0 in [(1e18, 1e8), (1e19, 3e8), (1e20, 9.9e9)]
            for N in np.geomspace(1e7, 1e10, 9)]
    df = pd.DataFrame(rows, columns=["N", "C", "loss"])
    res = isoflop_fit(df, method="window", window=5, bootstrap=30)
    ax = plot_isoflop(df, fit=res).axes[0]
    assert legend(ax) == ["C=1e+18", "C=1e+19", "C=1e+20 (flagged)"]
    assert ax.get_title() == "iso-FLOP profiles (window)"
    # each used budget's optimum with a horizontal error bar (its interval)
    bars = [c for c in ax.containers if getattr(c, "has_xerr", False)]
    assert len(bars) >= 2
    # the window parabola spans only the window (5 of 9 sizes), not the whole range
    curve = ax.get_lines()[0].get_xdata()
    assert curve.max() / curve.min() < 1e3 ** (5 / 8) * 1.01
