"""The vectorised multi-start solver that minimises the fit objective (objective.py).

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

Any objective of :mod:`scalelaw.fit.objective` is minimised the same way. The solver works
in the free coordinates ``u`` of a :class:`~scalelaw.fit.coords.Coords` (fixed parameters
removed, bounded ones reparametrised); with nothing fixed or bounded ``u`` is the law's
fit-space vector itself. Each solver program is a plain function of arrays with the law,
objective, coordinates and settings bound (:func:`multistart`, :func:`refits`,
:func:`full_data_whitening`), which :func:`scalelaw.fit.programs.compiled` jits or loads
from the on-disk export cache (built-in objectives only).
:func:`solve` is the array-level entry point under :func:`scalelaw.fit.fit_law.fit_law`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Literal

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.fit.coords import Coords
from scalelaw.fit.laws import Law
from scalelaw.fit.objective import Objective, as_objective, penalised
from scalelaw.fit.programs import compiled


def _identity(law: Law) -> Coords:
    return Coords(len(law.params), tuple(range(len(law.params))))


def _problem(law: Law, obj: Objective, coords: Coords | None) -> tuple[Any, Any]:
    """(f(u, args), admissible(u, value)) on the free coordinates ``u``."""
    c = _identity(law) if coords is None else coords
    bounds = c.penalty_bounds(law)

    def fn(u: Any, args: Any) -> Any:
        return obj.value(law, c.theta(u), args)

    def admissible(u: Any, value: Any) -> Any:
        return penalised(law, c.theta(u), value, bounds)

    return fn, admissible


def _lbfgs_run(law: Law, obj: Objective, coords: Coords | None, theta0: Any, args: Any,
               steps: int, tol: float) -> tuple[Any, Any, Any]:
    """Plain L-BFGS (optimistix) from ``theta0`` (free coordinates); returns (theta,
    objective, steps)."""
    import optimistix as optx

    fn, admissible = _problem(law, obj, coords)
    sol: optx.Solution[Any, Any] = optx.minimise(
        lambda t, a: fn(t, a), optx.LBFGS(rtol=tol, atol=tol), theta0,
        args=args, max_steps=steps, throw=False)
    theta = sol.value
    return theta, admissible(theta, fn(theta, args)), sol.stats["num_steps"]


def whitening(law: Law, obj: Objective | float | None, theta: Any, args: Any,
              coords: Coords | None = None) -> tuple[Any, Any]:
    """(P, scale) making the objective's Hessian at ``theta`` the identity.

    ``scale`` is the objective at ``theta`` (1 if it is zero or not finite) and
    ``P = (H / scale)^(-1/2)`` from the eigenvalues of the Hessian ``H``, taken in absolute
    value and floored at 1e-12 of the largest. In ``z`` with ``theta = theta + P z`` the
    scaled objective ``f / scale`` has unit curvature, so ``½|Δz|²`` estimates the relative
    distance to the optimum. ``theta`` is in the free coordinates of ``coords``; ``obj`` may
    be a Huber δ, as :func:`~scalelaw.fit.objective.as_objective` reads it. Traceable.
    """
    import jax
    import jax.numpy as jnp

    fn, _ = _problem(law, as_objective(obj), coords)
    f = fn(theta, args)
    scale = jnp.where(jnp.isfinite(f) & (f > 0), f, 1.0)
    ev, vec = jnp.linalg.eigh(jax.hessian(fn)(theta, args) / scale)
    ev = jnp.abs(jnp.where(jnp.isfinite(ev), ev, 0.0))
    ev = jnp.maximum(ev, 1e-12 * jnp.max(ev))
    ev = jnp.where(ev > 0, ev, 1.0)
    return (vec / jnp.sqrt(ev)) @ vec.T, scale


def whitened_run(law: Law, obj: Objective, coords: Coords | None, theta0: Any, precond: Any,
                 scale: Any, z0: Any, args: Any, steps: int, tol: float) -> tuple[Any, ...]:
    """Dense BFGS (optimistix) on ``f(theta0 + P z) / scale`` from ``z0``.

    Stops when a step moves ``z`` by less than ``sqrt(2 tol)`` (and the scaled objective by
    less than that), i.e. at an estimated relative objective gap of ``tol``. Returns
    (z, theta, objective, steps, converged), ``converged`` being optimistix's success flag
    (false at the step cap).
    """
    import jax.numpy as jnp
    import optimistix as optx

    fn, admissible = _problem(law, obj, coords)
    atol = float(np.sqrt(2.0 * tol))
    sol: optx.Solution[Any, Any] = optx.minimise(
        lambda z, a: fn(theta0 + precond @ z, a) / scale,
        optx.BFGS(rtol=0.0, atol=atol), z0, args=args, max_steps=steps, throw=False)
    theta = theta0 + precond @ sol.value
    value = admissible(theta, fn(theta, args))
    ok = (sol.result == optx.RESULTS.successful) & jnp.isfinite(value)
    return sol.value, theta, value, sol.stats["num_steps"], ok


def multistart(starts: Any, args: Any, *, law: Law, objective: Objective, coords: Coords,
               screen_steps: int, keep: int | None, max_steps: int,
               tol: float) -> tuple[Any, ...]:
    """Screen all starts together (vmapped L-BFGS), then polish the ``keep`` best.

    Screening runs ``screen_steps`` L-BFGS steps (``keep=None``: every start to L-BFGS
    convergence, ``max_steps`` cap). Polishing whitens the problem at the best screened
    point (:func:`whitening`) and runs dense BFGS from each kept point to relative
    objective accuracy ``tol``.
    """
    import jax
    import jax.numpy as jnp

    run = partial(_lbfgs_run, law, objective, coords)
    if keep is None:
        theta, value, _ = jax.vmap(lambda t: run(t, args, max_steps, 1e-10))(starts)
    else:
        theta, value, _ = jax.vmap(lambda t: run(t, args, screen_steps, 1e-10))(starts)
        order = jnp.argsort(jnp.where(jnp.isnan(value), jnp.inf, value))[:keep]
        theta, value = theta[order], value[order]
    if objective.smooth is not None:
        theta, value = _continuation(law, objective, coords, theta, value, args, max_steps, tol)
    return _polish(law, objective, coords, theta, value, args, max_steps, tol)


def _polish(law: Law, obj: Objective, coords: Coords, theta: Any, value: Any, args: Any,
            max_steps: int, tol: float) -> tuple[Any, ...]:
    """Whiten at the best of ``theta`` (K, F) and run whitened BFGS from each."""
    import jax
    import jax.numpy as jnp

    best = theta[jnp.argmin(jnp.where(jnp.isnan(value), jnp.inf, value))]
    precond, scale = whitening(law, obj, best, args, coords)
    z0 = jnp.linalg.solve(precond, (theta - best).T).T
    z0 = jnp.where(jnp.isfinite(z0), z0, 0.0)
    _, theta, value, steps, ok = jax.vmap(
        lambda z: whitened_run(law, obj, coords, best, precond, scale, z, args,
                               max_steps, tol))(z0)
    return theta, value, steps, ok


#: Smoothing levels of :func:`_continuation`: mu = (mean |r| at the best start) x these.
SMOOTHING = tuple(10.0 ** -k for k in range(1, 9))
#: Step cap of each continuation level in bootstrap refits (whose own cap is small).
STAGE_STEPS = 200


def surrogate(obj: Objective, mu: Any) -> Objective:
    """``obj`` with its row loss replaced by the smooth ``obj.smooth(r, mu)``."""
    import dataclasses

    smooth = obj.smooth
    assert smooth is not None
    return dataclasses.replace(obj, loss=lambda q: smooth(q, mu), smooth=None)


def smoothing_levels(law: Law, obj: Objective, coords: Coords, u: Any, args: Any) -> Any:
    """The mu of each continuation level: (weighted mean |r| at ``u``) x ``SMOOTHING``
    (1e-1 ... 1e-8)."""
    import jax.numpy as jnp

    x, t, w = args
    r = obj.residuals(law, coords.theta(u), x, t)
    level = jnp.sum(w * jnp.abs(r)) / jnp.sum(w)
    level = jnp.where(jnp.isfinite(level) & (level > 0), level, 1.0)
    return level * jnp.asarray(SMOOTHING, dtype=u.dtype)


def _continuation(law: Law, obj: Objective, coords: Coords, theta: Any, value: Any, args: Any,
                  max_steps: int, tol: float) -> tuple[Any, Any]:
    """Polish on ``obj.smooth(r, mu)`` for decreasing ``mu`` (:data:`SMOOTHING`), each level
    warm-started from the last: a loss with a kink at r = 0 (|r|) defeats quasi-Newton
    steps, its smooth surrogates do not, and their minimisers converge to its minimiser as
    mu -> 0 (smoothing continuation; e.g. Chen 2012, Math. Program. 134, "Smoothing
    methods for nonsmooth, nonconvex minimization"). One ``lax.scan`` over the levels."""
    import jax
    import jax.numpy as jnp

    best = theta[jnp.argmin(jnp.where(jnp.isnan(value), jnp.inf, value))]

    def stage(carry: tuple[Any, Any], mu: Any) -> tuple[tuple[Any, Any], None]:
        th, val = carry
        th, val, _, _ = _polish(law, surrogate(obj, mu), coords, th, val, args, max_steps, tol)
        return (th, val), None

    mus = smoothing_levels(law, obj, coords, best, args)
    (theta, value), _ = jax.lax.scan(stage, (theta, value), mus)
    return theta, value


def refits(theta0: Any, precond: Any, scale: Any, z0: Any, x: Any, target: Any, weights: Any,
           levels: Any = None, *, law: Law, objective: Objective, coords: Coords,
           max_steps: int, tol: float, chunk: int = 500) -> tuple[Any, ...]:
    """One whitened BFGS refit per resample (bootstrap), from ``z0``, vectorised.

    ``x`` (each input), ``target`` and ``weights`` have one row per resample: that
    resample's rows (see :func:`scalelaw.fit.bootstrap.compact_resamples`). Resamples run
    ``chunk`` at a time (``jax.lax.map``), each chunk vmapped in its own solver loop: the
    per-step arrays stay cache-sized and a chunk stops as soon as its own refits have
    converged. ``levels`` (from :func:`full_data_whitening` for a kinked loss: each
    continuation level's mu, whitening and scale) runs the refit through the smooth
    surrogates first, as the full-data fit does (:func:`_continuation`).
    """
    import jax
    import jax.numpy as jnp

    def run(a: tuple[Any, ...]) -> tuple[Any, ...]:
        z, xr, yr, w = a
        if levels is not None:
            def stage(th: Any, level: tuple[Any, Any, Any]) -> tuple[Any, None]:
                mu, p, s = level
                zz = jnp.linalg.solve(p, th - theta0)
                out = whitened_run(law, surrogate(objective, mu), coords, theta0, p, s, zz,
                                   (xr, yr, w), max(max_steps, STAGE_STEPS), tol)
                return out[1], None

            th, _ = jax.lax.scan(stage, theta0 + precond @ z, levels)
            z = jnp.linalg.solve(precond, th - theta0)
        return whitened_run(law, objective, coords, theta0, precond, scale, z, (xr, yr, w),
                            max_steps, tol)

    return jax.lax.map(run, (z0, x, target, weights), batch_size=chunk)


def full_data_whitening(theta: Any, x: Any, target: Any, weights: Any, *, law: Law,
                        objective: Objective, coords: Coords) -> tuple:
    """:func:`whitening` at the full-data fit (its row ``weights``), a compiled program;
    for a kinked loss also ``levels`` for :func:`refits`: each continuation level's mu
    and the surrogate's whitening there."""
    import jax

    args = (x, target, weights)
    precond, scale = whitening(law, objective, theta, args, coords)
    if objective.smooth is None:
        return precond, scale
    mus = smoothing_levels(law, objective, coords, theta, args)
    ps, ss = jax.vmap(lambda mu: whitening(law, surrogate(objective, mu), theta, args,
                                           coords))(mus)
    return precond, scale, (mus, ps, ss)


def solve(law: Law, x: Mapping[str, np.ndarray], y: np.ndarray, *,
          starts: np.ndarray | None = None, weights: np.ndarray | None = None,
          objective: Objective | None = None, coords: Coords | None = None,
          delta: float | None | Literal["law"] = "law", screen_steps: int = 3,
          keep: int | None = 32, max_steps: int = 2000,
          tol: float = 1e-12) -> tuple[np.ndarray, float, dict]:
    """Minimise the objective from all ``starts``; return (theta, objective, info).

    Lower-level than :func:`~scalelaw.fit.fit_law.fit_law`: arrays in, fit-space vector out.

    Parameters
    ----------
    law : Law
    x : mapping of input name to float array (n,)
    y : float array (n,)
        Target in natural units (log residuals use ``log y``).
    starts : array (S, P), optional
        In the law's fit space (all P parameters). Default: ``law.grid()``.
    weights : array (n,), optional
        Row weights (default ones).
    objective : Objective, optional
        Default: Huber(``delta``) of log residuals.
    coords : Coords, optional
        Fixed and bounded parameters (:func:`~scalelaw.fit.coords.make_coords`); the
        solver optimises the free ones. ``theta`` is returned in full (fit space).
    delta : float, None or "law"
        Huber δ when ``objective`` is None; ``None`` = least squares; ``"law"`` =
        ``law.huber_delta``.
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

    if objective is None:
        objective = as_objective(law.huber_delta if delta == "law" else delta)
    coords = _identity(law) if coords is None else coords
    full = law.grid() if starts is None else np.atleast_2d(np.asarray(starts, float))
    u0 = coords.starts(full)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    fn = compiled("multistart", multistart, law, objective=objective, coords=coords,
                  screen_steps=screen_steps, keep=keep, max_steps=max_steps, tol=tol)
    with jax.enable_x64(True):  # inputs prepared in numpy: no eager ops to compile
        args = ({k: jnp.asarray(np.asarray(v, np.float64)) for k, v in x.items()},
                jnp.asarray(objective.target(y)), jnp.asarray(w, jnp.float64))
        out = fn(jnp.asarray(u0, jnp.float64), args)
        theta, value, steps, ok = map(np.asarray, out)
    if not np.isfinite(value).any():
        raise ConfigError(f"law {law.name}: no start converged to a finite objective "
                          "(check units and the init grid)")
    best = int(np.argmin(value))
    info = {"starts": int(u0.shape[0]), "polished": int(value.shape[0]),
            "steps": int(steps[best]), "converged": bool(ok[best])}
    return coords.theta_np(theta[best]), float(value[best]), info
