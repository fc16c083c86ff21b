"""Robust, vectorised multi-start fitting of a :class:`~scalelaw.fit.laws.Law` to a table.

The default objective is Hoffmann et al. (2022, App. D.2): the **sum** of Huber(δ = 1e-3)
losses of log residuals, minimised in log-parameter space with L-BFGS from every point of
the init grid, keeping the best. Here all starts are solved together: one ``jax.vmap`` over
optimistix solvers, in float64 scoped with ``jax.enable_x64`` so float32 code elsewhere is
untouched.

By default every start first runs ``screen_steps`` L-BFGS steps together; the ``keep`` best
are then polished with dense BFGS in coordinates *whitened* at the best screened point
(:func:`whitening`: unit Hessian, objective scaled by its value), which removes the
ill-conditioning of the flat A–B valley; the polish stops at a relative objective accuracy
``tol``. ``keep=None`` runs every start to L-BFGS convergence first (slower, the literal
Epoch AI protocol), then polishes all. On the Epoch AI data and on synthetic data both give
the same optimum to ~1e-14. Bootstrap refits (:mod:`scalelaw.fit.bootstrap`) use the same
whitened BFGS, whitened once at the full-data optimum.

Examples
--------
>>> import numpy as np, pandas as pd
>>> N, D = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5))
>>> L = 1.8 + 400 / N**0.34 + 2000 / D**0.37
>>> res = fit_law(pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": L.ravel()}))
>>> round(res.params["E"], 2), round(res.params["alpha"], 2)
(1.8, 0.34)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.fit._programs import compiled
from scalelaw.fit.laws import Law, get_law
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, read_table, validated_columns


def huber(r: Any, delta: float | None) -> Any:
    """Huber loss (Huber 1964) of residuals ``r``; ``delta=None`` gives ½r².

    >>> import jax.numpy as jnp
    >>> [round(float(v), 12) for v in huber(jnp.array([0.0005, 0.003]), 1e-3)]
    [1.25e-07, 2.5e-06]
    """
    import jax.numpy as jnp

    if delta is None:
        return 0.5 * r * r
    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def objective(law: Law, theta: Any, args: tuple[Any, Any, Any], delta: float | None) -> Any:
    """Σ wᵢ·Huber_δ(log L̂(xᵢ; θ) − log yᵢ) for fit-space ``theta`` (Hoffmann App. D.2).

    ``args = (x, log_y, w)``; ``w`` are row weights (bootstrap resample counts, or ones).
    """
    import jax.numpy as jnp

    x, log_y, w = args
    return jnp.sum(w * huber(law.log_predict_fit(theta, x) - log_y, delta))


def _penalised(law: Law, theta: Any, value: Any) -> Any:
    """``value``, or +inf if non-finite or outside ``law.bounds``."""
    import jax.numpy as jnp

    ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(theta))
    for name, (lo, hi) in law.bounds.items():
        v = theta[law.params.index(name)]
        ok = ok & (v >= lo) & (v <= hi)
    return jnp.where(ok, value, jnp.inf)


def _lbfgs_run(law: Law, delta: float | None, theta0: Any, args: Any, steps: int,
               tol: float) -> tuple[Any, Any, Any]:
    """Plain L-BFGS (optimistix) from ``theta0``; returns (theta, objective, steps)."""
    import optimistix as optx

    fn = partial(objective, law, delta=delta)
    sol = optx.minimise(lambda t, a: fn(t, a), optx.LBFGS(rtol=tol, atol=tol), theta0,
                        args=args, max_steps=steps, throw=False)
    theta = sol.value
    return theta, _penalised(law, theta, fn(theta, args)), sol.stats["num_steps"]


def whitening(law: Law, delta: float | None, theta: Any, args: Any) -> tuple[Any, Any]:
    """(P, scale) making the objective's Hessian at ``theta`` the identity.

    ``scale`` is the objective at ``theta`` (1 if it is zero or not finite) and
    ``P = (H / scale)^(-1/2)`` from the eigenvalues of the Hessian ``H``, taken in absolute
    value and floored at 1e-12 of the largest. In ``z`` with ``theta = theta + P z`` the
    scaled objective ``f / scale`` has unit curvature, so ``½|Δz|²`` estimates the relative
    distance to the optimum. Traceable.
    """
    import jax
    import jax.numpy as jnp

    fn = partial(objective, law, delta=delta)
    f = fn(theta, args)
    scale = jnp.where(jnp.isfinite(f) & (f > 0), f, 1.0)
    ev, vec = jnp.linalg.eigh(jax.hessian(fn)(theta, args) / scale)
    ev = jnp.abs(jnp.where(jnp.isfinite(ev), ev, 0.0))
    ev = jnp.maximum(ev, 1e-12 * jnp.max(ev))
    ev = jnp.where(ev > 0, ev, 1.0)
    return (vec / jnp.sqrt(ev)) @ vec.T, scale


def whitened_run(law: Law, delta: float | None, theta0: Any, precond: Any, scale: Any, z0: Any,
                 args: Any, steps: int, tol: float) -> tuple[Any, ...]:
    """Dense BFGS (optimistix) on ``f(theta0 + P z) / scale`` from ``z0``.

    Stops when a step moves ``z`` by less than ``sqrt(2 tol)`` (and the scaled objective by
    less than that), i.e. at an estimated relative objective gap of ``tol``. Returns
    (z, theta, objective, steps, converged), ``converged`` being optimistix's success flag
    (false at the step cap).
    """
    import jax.numpy as jnp
    import optimistix as optx

    fn = partial(objective, law, delta=delta)
    atol = float(np.sqrt(2.0 * tol))
    sol = optx.minimise(lambda z, a: fn(theta0 + precond @ z, a) / scale,
                        optx.BFGS(rtol=0.0, atol=atol), z0, args=args, max_steps=steps,
                        throw=False)
    theta = theta0 + precond @ sol.value
    value = _penalised(law, theta, fn(theta, args))
    ok = (sol.result == optx.RESULTS.successful) & jnp.isfinite(value)
    return sol.value, theta, value, sol.stats["num_steps"], ok


def _multistart(starts: Any, args: Any, *, law: Law, delta: float | None, screen_steps: int,
                keep: int | None, max_steps: int, tol: float) -> tuple[Any, ...]:
    """Screen all starts together (vmapped L-BFGS), then polish the ``keep`` best.

    Screening runs ``screen_steps`` L-BFGS steps (``keep=None``: every start to L-BFGS
    convergence, ``max_steps`` cap). Polishing whitens the problem at the best screened
    point (:func:`whitening`) and runs dense BFGS from each kept point to relative
    objective accuracy ``tol``.
    """
    import jax
    import jax.numpy as jnp

    run = partial(_lbfgs_run, law, delta)
    if keep is None:
        theta, value, _ = jax.vmap(lambda t: run(t, args, max_steps, 1e-10))(starts)
    else:
        theta, value, _ = jax.vmap(lambda t: run(t, args, screen_steps, 1e-10))(starts)
        order = jnp.argsort(jnp.where(jnp.isnan(value), jnp.inf, value))[:keep]
        theta, value = theta[order], value[order]
    best = theta[jnp.argmin(jnp.where(jnp.isnan(value), jnp.inf, value))]
    precond, scale = whitening(law, delta, best, args)
    z0 = jnp.linalg.solve(precond, (theta - best).T).T
    z0 = jnp.where(jnp.isfinite(z0), z0, 0.0)
    _, theta, value, steps, ok = jax.vmap(
        lambda z: whitened_run(law, delta, best, precond, scale, z, args, max_steps, tol))(z0)
    return theta, value, steps, ok


def _refits(theta0: Any, precond: Any, scale: Any, z0: Any, x: Any, log_y: Any, weights: Any, *,
            law: Law, delta: float | None, max_steps: int, tol: float,
            chunk: int = 500) -> tuple[Any, ...]:
    """One whitened BFGS refit per resample (bootstrap), from ``z0``, vectorised.

    ``x`` (each input), ``log_y`` and ``weights`` have one row per resample: that
    resample's rows (see :func:`scalelaw.fit.bootstrap.compact_resamples`). Resamples run
    ``chunk`` at a time (``jax.lax.map``), each chunk vmapped in its own solver loop: the
    per-step arrays stay cache-sized and a chunk stops as soon as its own refits have
    converged.
    """
    import jax

    def run(a: tuple[Any, ...]) -> tuple[Any, ...]:
        z, xr, yr, w = a
        return whitened_run(law, delta, theta0, precond, scale, z, (xr, yr, w), max_steps, tol)

    return jax.lax.map(run, (z0, x, log_y, weights), batch_size=chunk)


def _whitening(theta: Any, x: Any, log_y: Any, *, law: Law, delta: float | None) -> tuple:
    """:func:`whitening` on unit weights (the full-data fit), a compiled program."""
    import jax.numpy as jnp

    return whitening(law, delta, theta, (x, log_y, jnp.ones_like(log_y)))


def solve(law: Law, x: Mapping[str, np.ndarray], y: np.ndarray, *,
          starts: np.ndarray | None = None, weights: np.ndarray | None = None,
          delta: float | None | str = "law", screen_steps: int = 3, keep: int | None = 32,
          max_steps: int = 2000, tol: float = 1e-12) -> tuple[np.ndarray, float, dict]:
    """Minimise the robust objective from all ``starts``; return (theta, objective, info).

    Lower-level than :func:`fit_law`: arrays in, fit-space vector out.

    Parameters
    ----------
    law : Law
    x : mapping of input name to float array (n,)
    y : float array (n,)
        Target in natural units (the objective uses ``log y``).
    starts : array (S, P), optional
        Default: ``law.grid()``.
    weights : array (n,), optional
        Row weights (default ones).
    delta : float, None or "law"
        Huber δ; ``None`` = least squares; ``"law"`` = ``law.huber_delta``.
    screen_steps, keep : int
        Screening steps for all starts and how many continue (``keep=None``: all).
    max_steps : int
        Step cap of each solve (screening with ``keep=None``, and polishing).
    tol : float
        Relative objective accuracy of the polish: dense BFGS in whitened coordinates
        stops when a step is below ``sqrt(2 tol)`` (see :func:`whitened_run`).
    """
    import jax
    import jax.numpy as jnp

    delta = law.huber_delta if delta == "law" else delta
    starts = law.grid() if starts is None else np.atleast_2d(np.asarray(starts, float))
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    fn = compiled("multistart", law, delta=delta, screen_steps=screen_steps, keep=keep,
                  max_steps=max_steps, tol=tol)
    with jax.enable_x64(True):  # inputs prepared in numpy: no eager ops to compile
        args = ({k: jnp.asarray(np.asarray(v, np.float64)) for k, v in x.items()},
                jnp.asarray(np.log(np.asarray(y, np.float64))), jnp.asarray(w, jnp.float64))
        out = fn(jnp.asarray(starts, jnp.float64), args)
        theta, value, steps, ok = map(np.asarray, out)
    if not np.isfinite(value).any():
        raise ConfigError(f"law {law.name}: no start converged to a finite objective "
                          "(check units and the init grid)")
    best = int(np.argmin(value))
    info = {"starts": int(starts.shape[0]), "polished": int(value.shape[0]),
            "steps": int(steps[best]), "converged": bool(ok[best])}
    return theta[best], float(value[best]), info


def _select_rows(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in cols.items()}


def prepare(table: TableLike, law: Law, *, n: str, d: str, loss: str,
            columns: Mapping[str, str] | None, drop_top: int) -> tuple[dict, np.ndarray, dict]:
    """Validate the table and apply ``drop_top``; return (inputs, target, protocol)."""
    df = read_table(table)
    names = {"N": n, "D": d, **(columns or {})}
    roles = {k: names.get(k, k) for k in law.inputs}
    cols = validated_columns(df, {**roles, "__y": loss}, min_rows=len(law.params))
    y = cols.pop("__y")
    if y.min() <= 0:
        raise ConfigError(f"column {loss!r}: must be > 0")
    protocol: dict[str, Any] = {"columns": {**roles, law.target: loss}, "rows_in": int(len(y))}
    if drop_top < 0:
        raise ConfigError(f"drop_top: must be >= 0, got {drop_top}")
    if drop_top:
        if drop_top >= len(y):
            raise ConfigError(f"drop_top: {drop_top} would drop all {len(y)} rows")
        keep = y < np.sort(y)[-drop_top]  # Epoch AI: loss < sorted(loss)[-k]
        cols, y = _select_rows(cols, keep), y[keep]
        protocol["dropped_rows"] = np.flatnonzero(~keep).tolist()
    return cols, y, protocol


def fit_law(
    table: TableLike,
    law: str | Law = "chinchilla",
    *,
    n: str = "N",
    d: str = "D",
    loss: str = "loss",
    columns: Mapping[str, str] | None = None,
    drop_top: int = 0,
    init_grid: Mapping[str, Sequence[float]] | np.ndarray | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    holdout_above: float | None = None,
    delta: float | None | str = "law",
    screen_steps: int = 3,
    keep: int | None = 32,
    tol: float = 1e-12,
) -> FitResult:
    """Fit ``law`` to a table with Hoffmann et al.'s robust multi-start objective.

    Parameters
    ----------
    table : DataFrame or path (.csv, .parquet, .jsonl)
    law : str or Law
        Registry name (see :func:`~scalelaw.fit.laws.list_laws`) or a user :class:`Law`.
    n, d, loss : str
        Column names of N, D and the target (loss, or lr / batch for hparam laws).
    columns : mapping, optional
        Column names for other law inputs, e.g. ``{"U": "unique_tokens", "C": "flops"}``.
    drop_top : int
        Drop rows whose target is >= the ``drop_top``-th largest (Epoch AI drop 5).
    init_grid : mapping or array (S, P), optional
        Overrides per parameter (merged into the law's grid) or an explicit start array.
    bootstrap : int
        Number of row resamples; each refits from the best fit (Epoch AI's protocol),
        all vectorised. Draws land in ``FitResult.samples``.
    seed : int
        Seed of the bootstrap resampling.
    holdout_above : float, optional
        Fit only rows with N <= this; report relative loss error on the larger models in
        ``metadata["holdout"]`` (Farseer's extrapolation metric).
    delta : float, None or "law"
        Huber δ on log residuals (default: the law's, 1e-3 for loss laws).
    screen_steps, keep : int
        All starts run ``screen_steps`` steps; the ``keep`` best are polished
        (``keep=None``: every start to convergence).
    tol : float
        Relative objective accuracy of the polishing solve (see :func:`solve`).

    Returns
    -------
    FitResult
        ``params`` in natural units; ``objective``; ``metadata`` with fit-space values,
        derived quantities, protocol, and bootstrap / hold-out summaries.

    Raises
    ------
    ConfigError
        Unknown law, missing or invalid columns, too few rows, duplicated rows.
    """
    from scalelaw.fit import bootstrap as bs

    law = get_law(law)
    x, y, protocol = prepare(table, law, n=n, d=d, loss=loss, columns=columns,
                             drop_top=drop_top)
    holdout = None
    if holdout_above is not None:
        if "N" not in x:
            raise ConfigError(f"holdout_above: law {law.name!r} has no N input to split on")
        train = x["N"] <= holdout_above
        holdout = (_select_rows(x, ~train), y[~train])
        if not (~train).any():
            raise ConfigError(f"holdout_above: no rows with N > {holdout_above:g}")
        x, y = _select_rows(x, train), y[train]
        if len(y) < len(law.params):
            raise ConfigError(f"holdout_above: {len(y)} row(s) left to fit, need at least "
                              f"{len(law.params)}")
    if isinstance(init_grid, np.ndarray):
        starts = init_grid
    else:
        starts = law.grid(init_grid)
    theta, value, info = solve(law, x, y, starts=starts, delta=delta,
                               screen_steps=screen_steps, keep=keep, tol=tol)
    natural = law.to_natural(theta)
    eff_delta = law.huber_delta if delta == "law" else delta
    metadata: dict[str, Any] = {
        "fit_params": dict(zip(law.params, theta.tolist(), strict=True)),
        "derived": law.derived_values(natural),
        "objective": f"sum Huber(delta={eff_delta}) of log residuals" if eff_delta
        else "sum 0.5*squared log residuals",
        "solver": {"method": "optimistix LBFGS screening + whitened BFGS polish, vmapped "
                   "over starts", **info,
                   "screen_steps": screen_steps, "keep": keep, "tol": tol},
        "protocol": protocol, "source": law.source,
    }
    result = FitResult(law=law.name, params=natural, kind=law.kind,
                       conventions=dict(law.conventions), objective=value,
                       n_points=int(len(y)), metadata=metadata)
    if holdout is not None:
        metadata["holdout"] = bs.holdout_error(result, law, *holdout, above=holdout_above)
    if bootstrap:
        result.samples, summary = bs.bootstrap_samples(law, x, y, theta, n_resamples=bootstrap,
                                                       seed=seed, delta=eff_delta)
        metadata["bootstrap"] = {**summary, "seed": int(seed),
                                 "protocol": "rows resampled, each refit from the best fit; "
                                             "unconverged refits counted and left out"}
    return result
