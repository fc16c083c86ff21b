"""One compute budget's optimum N*(C): the per-budget estimators of :func:`isoflop_fit`.

Three estimators of log N* from one budget's runs (loss against log N):

- ``"parabola"``: the least-squares parabola of the loss in log N through every run
  (Hoffmann et al. 2022 §3.2, Approach 2), its uncertainty from a bootstrap of the runs.
- ``"window"``: the same parabola through the ``window`` model sizes nearest, in log N, to
  the budget's best size (or through the sizes whose loss is within ``band`` of the best,
  relative), so that the far, asymmetric tails of a wide sweep do not pull the vertex.
- ``"akima"``: an Akima interpolant of log loss in log N (log-log space), its argmin on a
  fine grid; the optimum is the median of the argmins over a seed-noise bootstrap and its
  uncertainty their spread (Porian et al. 2024, arXiv 2406.19146, §2 and App. B).

The window and Akima bootstraps perturb each model size's (seed-averaged) loss by seed
noise, log L -> log L + σ/√m·ε with m the seeds at that size: σ is the user's ``noise``, or
estimated from the data (:func:`estimate_noise`). A budget is *flagged* (left out of the
frontier fit) when it has fewer than 3 model sizes, when its lowest loss is at its smallest
or largest model (no interior minimum: the optimum may lie outside the sweep), when the
parabola opens downward, or when the estimate lands outside the sampled N range.

Examples
--------
>>> x = np.log(np.geomspace(1e7, 1e10, 16))  # 3 decades of N, asymmetric curve
>>> y = 2 + 0.3 * (1 - np.exp(0.3 * (x - np.log(1e9)))) ** 2  # minimum at N = 1e9
>>> rng = np.random.default_rng(0)
>>> [round(float(np.exp(budget_optimum(x, y, m, bootstrap=0, rng=rng).log_n) / 1e9), 2)
...  for m in METHODS]
[0.33, 0.9, 1.03]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METHODS = ("parabola", "window", "akima")
GRID_POINTS = 2001


@dataclass
class BudgetEstimate:
    """log N* of one budget, its bootstrap draws, and why it is flagged (``""``: usable)."""

    log_n: float
    draws: np.ndarray = field(default_factory=lambda: np.empty(0))
    flag: str = ""


def quadratic_vertices(x: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Vertices of weighted least-squares parabolas Y[b] ≈ c₂x² + c₁x + c₀, one per row.

    ``x`` (n,), ``Y`` and ``W`` (B, n); NaN where fewer than 3 distinct x carry weight or the
    parabola is not convex (c₂ <= 0). Solved in a centred, scaled x for conditioning.
    """
    m, s = x.mean(), max(float(np.ptp(x)), 1e-12)
    u = (x - m) / s
    V = np.stack([u * u, u, np.ones_like(u)], axis=-1)  # (n, 3)
    G = np.einsum("bn,ni,nj->bij", W, V, V)
    r = np.einsum("bn,ni,bn->bi", W, V, Y)
    distinct = np.array([len(np.unique(x[w > 0])) for w in W])
    good = distinct >= 3
    coef = np.full((len(W), 3), np.nan)
    if good.any():
        coef[good] = np.linalg.solve(G[good], r[good][..., None])[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        vertex = m + s * (-coef[:, 1] / (2 * coef[:, 0]))
    return np.where(coef[:, 0] > 0, vertex, np.nan)


def seed_means(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct sizes (sorted), the mean log loss at each and the number of runs there."""
    sizes, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return sizes, np.bincount(inverse, weights=np.log(y)) / counts, counts


def estimate_noise(groups: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, str]:
    """Seed noise σ of log loss from the runs of every budget, and how it was estimated.

    With repeated runs (seeds) at some (C, N): the pooled within-size standard deviation of
    log loss. Otherwise: the pooled residual standard deviation of a cubic in log N fitted
    to log loss per budget with >= 5 sizes (smooth curves leave only noise and the cubic's
    own misfit, so σ errs large). NaN when neither is possible.
    """
    ss, dof = 0.0, 0
    for x, y in groups:
        sizes, inverse = np.unique(x, return_inverse=True)
        dev = np.log(y) - seed_means(x, y)[1][inverse]
        ss, dof = ss + float(dev @ dev), dof + len(x) - len(sizes)
    if dof > 0:
        return float(np.sqrt(ss / dof)), "pooled seed repeats"
    for x, y in groups:
        if len(x) >= 5:
            coef = np.polyfit(x - x.mean(), np.log(y), 3)
            res = np.log(y) - np.polyval(coef, x - x.mean())
            ss, dof = ss + float(res @ res), dof + len(x) - 4
    if dof > 0:
        return float(np.sqrt(ss / dof)), "cubic residuals in log-log space"
    return float("nan"), "not estimable (fewer than 5 sizes per budget, no seed repeats)"


def _window_mask(sizes: np.ndarray, Ylog: np.ndarray, window: int, band: float | None,
                 ) -> np.ndarray:
    """(B, n) 0/1 weights: the sizes each row of log losses puts in its window."""
    best = np.argmin(Ylog, axis=1)
    if band is not None:
        return (Ylog <= Ylog[np.arange(len(Ylog)), best][:, None] + np.log1p(band)) * 1.0
    dist = np.abs(sizes[None, :] - sizes[best][:, None])
    rank = np.argsort(np.argsort(dist, axis=1, kind="stable"), axis=1, kind="stable")
    return (rank < min(window, len(sizes))) * 1.0


def _akima_argmin(sizes: np.ndarray, Ylog: np.ndarray) -> np.ndarray:
    """Argmin over a fine grid in log N of Akima interpolants of each row of ``Ylog``."""
    from scipy.interpolate import Akima1DInterpolator

    grid = np.linspace(sizes[0], sizes[-1], GRID_POINTS)
    values = Akima1DInterpolator(sizes, Ylog.T, axis=0)(grid)  # (G, B)
    return grid[np.argmin(values, axis=0)]


def _estimate(method: str, x: np.ndarray, y: np.ndarray, Ylog: np.ndarray, W: np.ndarray,
              window: int, band: float | None) -> np.ndarray:
    """log N* for each row of perturbed log losses ``Ylog`` (or of run weights ``W``)."""
    sizes = np.unique(x)
    if method == "parabola":
        return quadratic_vertices(x, np.broadcast_to(y, W.shape), W)
    if method == "window":
        mask = _window_mask(sizes, Ylog, window, band)
        return quadratic_vertices(sizes, np.exp(Ylog), mask)
    return _akima_argmin(sizes, Ylog)


def budget_optimum(x: np.ndarray, y: np.ndarray, method: str, *, bootstrap: int,
                   rng: np.random.Generator, window: int = 5, band: float | None = None,
                   noise: float = float("nan")) -> BudgetEstimate:
    """log N* of one budget from log sizes ``x`` and losses ``y`` (rows may repeat sizes).

    ``"parabola"`` resamples the runs (``bootstrap`` draws); ``"window"`` and ``"akima"``
    perturb the seed-averaged losses by ``noise`` (σ of log loss). The Akima optimum is the
    median of its draws when ``bootstrap`` >= 2, the unperturbed argmin otherwise.
    """
    sizes, mean_log, counts = seed_means(x, y)
    if len(sizes) < 3:
        return BudgetEstimate(float("nan"), flag="fewer than 3 model sizes")
    best = int(np.argmin(mean_log))
    point = float(_estimate(method, x, y, mean_log[None], np.ones((1, len(x))), window,
                            band)[0])
    if best in (0, len(sizes) - 1):
        side = "smallest" if best == 0 else "largest"
        return BudgetEstimate(point, flag=f"no interior minimum: the lowest loss is at the "
                              f"{side} model (the optimum may lie outside the sweep)")
    draws = np.empty(0)
    if bootstrap and method == "parabola":
        idx = rng.integers(0, len(x), (bootstrap, len(x)))  # the runs, with replacement
        W = np.stack([np.bincount(i, minlength=len(x)) for i in idx]).astype(float)
        draws = _estimate(method, x, y, mean_log[None], W, window, band)
    elif bootstrap and np.isfinite(noise):
        eps = rng.standard_normal((bootstrap, len(sizes))) * noise / np.sqrt(counts)
        draws = _estimate(method, x, y, mean_log[None] + eps, np.empty((0, 0)), window, band)
        if method == "akima":
            point = float(np.median(draws))
    flag = ""
    if method == "window" and band is not None and \
            (mean_log <= mean_log[best] + np.log1p(band)).sum() < 3:
        flag = f"fewer than 3 model sizes within the loss band {band:g} of the best"
    elif not np.isfinite(point):
        flag = "no interior minimum: the parabola opens downward"
    elif not sizes[0] <= point <= sizes[-1]:
        flag = (f"optimum N*={np.exp(point):.3g} outside the sampled N range "
                f"[{np.exp(sizes[0]):.3g}, {np.exp(sizes[-1]):.3g}]")
    return BudgetEstimate(point, draws, flag)


def budget_curve(x: np.ndarray, y: np.ndarray, method: str, *, window: int = 5,
                 band: float | None = None, points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(log N, loss) of the curve ``method`` puts through one budget's runs, for plots: the
    parabola over every run, the window parabola over its window, or the Akima interpolant.

    >>> x = np.log(np.geomspace(1e7, 1e10, 16))
    >>> xs, ys = budget_curve(x, 2 + (x - 20) ** 2, "window", window=3)
    >>> len(xs), bool(np.allclose(ys, 2 + (xs - 20) ** 2))
    (100, True)
    """
    sizes, mean_log, _ = seed_means(x, y)
    if method == "akima":
        from scipy.interpolate import Akima1DInterpolator

        xs = np.linspace(sizes[0], sizes[-1], points)
        return xs, np.exp(Akima1DInterpolator(sizes, mean_log)(xs))
    if method == "window":
        inside = _window_mask(sizes, mean_log[None], window, band)[0] > 0
        coef = np.polyfit(sizes[inside], np.exp(mean_log[inside]), 2)
        xs = np.linspace(sizes[inside].min(), sizes[inside].max(), points)
    else:
        coef = np.polyfit(x, y, 2)
        xs = np.linspace(x.min(), x.max(), points)
    return xs, np.polyval(coef, xs)
