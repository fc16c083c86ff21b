"""Bootstrap uncertainty and held-out extrapolation error for fitted laws.

Bootstrap (Efron 1979; as used for Chinchilla Approach 3 by Besiroglu et al. 2024, arXiv
2404.10102, §3): resample the rows with replacement, refit each resample from the best
full-data fit, and read standard errors and percentile intervals off the draws. A resample
is represented by the rows it drew and their counts, used as weights in the objective and
padded with zero-weight rows to one width, so every resample has the same shape and all
refits run as one vectorised, compiled program (see :func:`refit_weighted`; refits that do
not converge are counted and reported, never kept).

Held-out error (Li et al. 2025, Farseer, arXiv 2506.10972 §5): fit on models up to a size,
report the relative error |L̂ − L| / L of the predicted loss on the larger models.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from scalelaw.fit.fit_law import fit_law
>>> rng = np.random.default_rng(0)
>>> N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5)))
>>> L = (1.8 + 400 / N**0.34 + 2000 / D**0.37) * np.exp(0.005 * rng.standard_normal(N.size))
>>> res = fit_law(pd.DataFrame({"N": N, "D": D, "loss": L}), bootstrap=50)
>>> lo, hi = res.interval("alpha")
>>> lo < res.params["alpha"] < hi
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from scalelaw.fit import solver
from scalelaw.fit.coords import Coords, make_coords
from scalelaw.fit.identify import bound_hits
from scalelaw.fit.laws import Law, get_law
from scalelaw.fit.objective import Objective, as_objective
from scalelaw.fit.programs import compiled
from scalelaw.fit.result import FitResult

#: Resamples per compiled call of :func:`bootstrap_samples` (and per progress update).
BLOCK = 500


def resample_counts(n_rows: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """Row counts of ``n_resamples`` bootstrap resamples, shape (n_resamples, n_rows).

    >>> c = resample_counts(10, 3, seed=1)
    >>> c.shape, c.sum(axis=1).tolist()
    ((3, 10), [10.0, 10.0, 10.0])
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_rows, size=(n_resamples, n_rows))
    return np.stack([np.bincount(row, minlength=n_rows) for row in idx]).astype(np.float64)


def compact_resamples(weights: np.ndarray, multiple: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(row index, weight), each (resamples, K): every resample's rows of nonzero weight.

    A bootstrap resample leaves about 1/e of the rows out (weight 0). Listing only the rows
    each resample drew, padded with zero-weight rows to a common width ``K`` (the largest
    count, rounded up to ``multiple``), gives the same weighted objective over ~63% of the
    points, in one shape for all resamples.

    >>> idx, w = compact_resamples(np.array([[2.0, 0, 1, 0], [0, 0, 3, 1]]), multiple=1)
    >>> idx.tolist(), w.tolist()
    ([[0, 2], [2, 3]], [[2.0, 1.0], [3.0, 1.0]])
    """
    nonzero = weights != 0
    k = int(nonzero.sum(axis=1).max(initial=1))
    k = min(weights.shape[1], -(-k // multiple) * multiple)
    idx = np.argsort(~nonzero, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(weights, idx, axis=1)


class Refits(NamedTuple):
    """Bootstrap refits: one row per resample."""

    theta: np.ndarray
    """Fit-space parameters, shape (resamples, P)."""
    objective: np.ndarray
    """Objective of each resample at ``theta`` (+inf if outside bounds or not finite)."""
    steps: np.ndarray
    """BFGS steps taken (both passes)."""
    converged: np.ndarray
    """Whether the refit met the tolerance within the step caps (bool)."""

    def summary(self) -> dict[str, Any]:
        """Counts for reports: resamples, converged, not converged and their indices."""
        bad = np.flatnonzero(~self.converged)
        return {"resamples": int(len(self.converged)), "converged": int(self.converged.sum()),
                "not_converged": int(bad.size), "not_converged_index": bad.tolist(),
                "max_steps_taken": int(self.steps.max(initial=0))}


def refit_weighted(law: Law, x: Mapping[str, np.ndarray], y: np.ndarray, theta0: np.ndarray,
                   weights: np.ndarray, *, objective: Objective | float | None,
                   coords: Coords | None = None, full_weights: np.ndarray | None = None,
                   tol: float = 1e-12, max_steps: int = 20, straggler_steps: int = 1000,
                   chunk: int = 500, progress: Callable[[int], Any] | None = None) -> Refits:
    """Refit once per row of ``weights`` from ``theta0`` (the full-data optimum).

    ``objective`` is the fit's (or a Huber δ, as
    :func:`~scalelaw.fit.objective.as_objective` reads it); ``coords`` its fixed and bounded
    parameters (``theta0`` and the returned ``theta`` are full fit-space vectors, fixed
    values carried constant); ``full_weights`` the full-data fit's row weights (default
    ones), used to whiten at ``theta0``. ``weights`` are the refits' complete row weights
    (bootstrap counts × user weights). A loss with a kink (absolute, asymmetric absolute)
    is refitted through its smooth surrogates first, as the full-data fit is
    (:func:`scalelaw.fit.solver.refits`).

    Every refit minimises the weighted objective in coordinates whitened at ``theta0``
    (:func:`scalelaw.fit.solver.whitening`: unit Hessian for the full data, objective
    scaled by its full-data value), with optimistix's dense BFGS vmapped over resamples,
    to relative objective accuracy ``tol``. Each resample evaluates only the rows it drew
    (:func:`compact_resamples`, ~63% of them), and resamples run in cache-sized chunks
    (:func:`scalelaw.fit.solver.refits`). All run ``max_steps`` steps at most; the few
    that have not converged by then (stragglers, which would otherwise hold the whole
    vectorised batch) continue from where they stopped in a second, small batch of up to
    ``straggler_steps`` steps. Refits still unconverged are flagged in ``converged``.
    ``chunk`` resamples share one solver loop: each loop runs until its slowest refit is
    done, so smaller chunks waste fewer steps but give each loop less to spread over the
    cores (Epoch's 4,000 resamples: 128 was about 10% faster than 500 on one core, and
    35% slower on two, where 250 to 4,000 were within 10% of each other); the results do
    not depend on it. The resamples go to the compiled program in equal blocks of at most
    ``chunk`` (the last padded), and ``progress(n)`` is called after each block's ``n``
    refits.
    """
    import jax
    import jax.numpy as jnp

    obj = as_objective(objective)
    coords = make_coords(law) if coords is None else coords
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    xs = {k: np.asarray(v, np.float64) for k, v in x.items()}
    target = obj.target(y)
    w_full = np.ones_like(target) if full_weights is None else np.asarray(full_weights, float)
    idx, w = compact_resamples(weights)  # gathered on the host: no eager device ops
    xr, yr = {k: v[idx] for k, v in xs.items()}, target[idx]
    static: dict[str, Any] = {"objective": obj, "coords": coords}
    with jax.enable_x64(True):
        t0 = jnp.asarray(coords.to_u(theta0), jnp.float64)
        whiten = compiled("whitening", solver.full_data_whitening, law, **static)
        precond, scale, *smoothing = whiten(t0, xs, target, w_full)
        levels = smoothing[0] if smoothing else None  # a kinked loss: continuation levels
        n_blocks = -(-len(weights) // chunk)  # host calls of equal size, for progress
        block = -(-len(weights) // n_blocks)
        fn = compiled("refits", solver.refits, law, **static, max_steps=max_steps, tol=tol,
                      chunk=block)
        parts = []
        for start in range(0, len(weights), block):
            rows = np.arange(start, min(start + block, len(weights)))
            pick = np.resize(rows, block)  # the last block padded by repeating its rows
            out = fn(t0, precond, scale, np.zeros((block, t0.size)),
                     {k: v[pick] for k, v in xr.items()}, yr[pick], w[pick], levels)
            parts.append([np.array(a)[:rows.size] for a in out])
            if progress is not None:
                progress(int(rows.size))
        z, theta, value, steps, ok = (np.concatenate(p) for p in zip(*parts, strict=True))
        todo = np.flatnonzero(~ok)
        if todo.size and straggler_steps > 0:
            bucket = min(len(weights), max(16, 1 << int(np.ceil(np.log2(todo.size)))))
            pick = np.resize(todo, bucket)  # pad by repeating to a power-of-two batch
            fn2 = compiled("refits", solver.refits, law, **static,
                           max_steps=straggler_steps, tol=tol, chunk=min(chunk, bucket))
            out = fn2(t0, precond, scale, z[pick], {k: v[pick] for k, v in xr.items()},
                      yr[pick], w[pick])
            _, th2, v2, s2, ok2 = (np.asarray(a)[:todo.size] for a in out)
            theta[todo], value[todo], ok[todo] = th2, v2, ok2
            steps[todo] += s2
    return Refits(coords.theta_np(theta), value, steps, ok.astype(bool))


def bootstrap_samples(law: Law, x: Mapping[str, np.ndarray], y: np.ndarray,
                      theta: np.ndarray, *, n_resamples: int, seed: int = 0,
                      objective: Objective | float | None = 1e-3,
                      coords: Coords | None = None, weights: np.ndarray | None = None,
                      progress: Callable[[int], Any] | None = None,
                      ) -> tuple[dict[str, list[float]], dict]:
    """Bootstrap draws of every natural parameter and derived quantity, and a summary.

    Rows are resampled uniformly; a resample's row weights are its counts times the user's
    ``weights`` (default ones), so a row of weight 0 stays out of every refit. Fixed
    parameters (``coords``) are carried constant in every draw.

    Refits that failed (non-finite objective) or did not converge within the step caps
    are stored as NaN, which :meth:`FitResult.interval` and :meth:`FitResult.stderr`
    ignore, and are counted in the summary (see :meth:`Refits.summary`). Draws that end at
    a bound, or were rejected for leaving one of the law's bounds, are counted per
    parameter in the summary's ``bound_hits`` (:func:`scalelaw.fit.identify.bound_hits`),
    with ``draws`` the draws kept or rejected that way: :meth:`FitResult.interval` reports
    an end set by a bound as unbounded. ``progress(n)`` is called as blocks of refits end.
    """
    if n_resamples < 2:
        raise ValueError(f"bootstrap: need at least 2 resamples, got {n_resamples}")
    counts = resample_counts(len(y), n_resamples, seed)
    if weights is not None:
        counts = counts * np.asarray(weights, np.float64)
    coords = make_coords(law) if coords is None else coords
    fits = refit_weighted(law, x, y, theta, counts, objective=objective, coords=coords,
                          full_weights=weights, progress=progress, chunk=BLOCK)
    kept = fits.converged & np.isfinite(fits.objective)
    rejected = outside_bounds(law, coords, fits.theta)
    counted = kept | rejected
    hits = bound_hits(law, coords, fits.theta[counted], rejected[counted], tol=1e-6)
    names = [*law.natural_names, *law.derived_values(law.to_natural(theta))]
    draws: dict[str, list[float]] = {k: [] for k in names}
    for t, v, ok in zip(fits.theta, fits.objective, fits.converged, strict=True):
        nat = law.to_natural(t) if (ok and np.isfinite(v)) else None
        row = {} if nat is None else {**nat, **law.derived_values(nat)}
        for k in names:
            draws[k].append(row.get(k, float("nan")))
    summary = fits.summary()
    if hits:
        summary["bound_hits"], summary["draws"] = hits, int(counted.sum())
    return draws, summary


def outside_bounds(law: Law, coords: Coords, theta: np.ndarray) -> np.ndarray:
    """Rows of ``theta`` (R, P), fit space, outside a law or user bound (finite rows only)."""
    out = np.zeros(len(theta), bool)
    finite = np.isfinite(theta).all(axis=1)
    for i, lo, hi in coords.penalty_bounds(law):
        out |= finite & ((theta[:, i] < lo) | (theta[:, i] > hi))
    return out


def prediction_samples(result: FitResult, law: str | Law | None = None,
                       **inputs: Any) -> np.ndarray:
    """Predictions at ``inputs`` for every bootstrap draw, shape (draws, *broadcast(inputs)).

    Two draws of Hoffmann et al.'s law that differ only in E, at two model sizes:

    >>> p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
    >>> res = FitResult(law="chinchilla", params=p,
    ...                 samples={**{k: [v, v] for k, v in p.items()}, "E": [1.69, 1.79]})
    >>> draws = prediction_samples(res, N=[7e10, 7e11], D=1.4e12)
    >>> draws.shape
    (2, 2)
    >>> np.round(draws[:, 0], 4).tolist()  # Chinchilla's loss, then 0.1 higher
    [1.9366, 2.0366]
    >>> lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)  # as prediction_interval does
    >>> bool(np.all(lo < hi))
    True
    """
    law = get_law(law or result.law)
    if not result.samples:
        raise KeyError("no bootstrap samples stored (fit with bootstrap > 0)")
    names = law.natural_names
    cols = np.array([result.samples[k] for k in names], dtype=float).T
    out = []
    for row in cols:
        if np.all(np.isfinite(row)):
            out.append(law.predict(dict(zip(names, row, strict=True)), **inputs))
    return np.asarray(out)


def prediction_interval(result: FitResult, level: float = 0.95, law: str | Law | None = None,
                        **inputs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap percentile interval of the law's prediction at ``inputs``."""
    draws = prediction_samples(result, law, **inputs)
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def holdout_error(result: FitResult, law: str | Law, x: Mapping[str, np.ndarray],
                  y: np.ndarray, *, above: float | None = None) -> dict[str, Any]:
    """Relative error of ``result``'s predictions on held-out rows (Farseer's metric).

    Returns a dict with ``mean_rel_error``, ``max_rel_error``, ``n`` and per-N means.
    """
    law = get_law(law)
    pred = law.predict(result.params, **x)
    return holdout_record(np.abs(pred - y) / y, np.asarray(x["N"]), above)


def holdout_record(rel: np.ndarray, N: np.ndarray, above: float | None = None,
                   ) -> dict[str, Any]:
    """``mean_rel_error``, ``max_rel_error``, ``n``, ``per_N`` (and ``fit_N_max``) of the
    held-out relative errors ``rel`` at sizes ``N``: the record every fitter writes to
    ``metadata["holdout"]``.

    >>> holdout_record(np.array([0.01, 0.03]), np.array([1e9, 2e9]), above=5e8)["per_N"]
    {'1e+09': 0.01, '2e+09': 0.03}
    """
    per_n = {f"{n:.6g}": float(rel[N == n].mean()) for n in np.unique(N)}
    out = {"mean_rel_error": float(rel.mean()), "max_rel_error": float(rel.max()),
           "n": int(len(rel)), "per_N": per_n}
    if above is not None:
        out["fit_N_max"] = float(above)
    return out
