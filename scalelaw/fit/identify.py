"""Identifiability: refuse or warn when the data cannot determine a law's parameters.

Three checks, from the cheapest:

- **Distinct values** (:func:`check_distinct`, refused with a one-line ``ConfigError``): one
  column read as two inputs, an input with a single value, or fewer distinct values of an
  input than the law needs. Chinchilla's L = E + A/N^α + B/D^β needs three sizes: with
  two, the N term enters only through A·(N₁^−α − N₂^−α), the rest going into E, so A and α
  trade off along a curve. The count (``NEEDS_DISTINCT``) assumes every parameter
  free; with one fixed, only two values are required and the curvature check decides.
- **Curvature at the optimum** (:func:`weak_directions`, warned with
  :class:`IdentifiabilityWarning`): the Gauss-Newton matrix G = Jᵀ W J / Σw of the log
  predictions (J = ∂ log L̂ / ∂θ over the free fit-space parameters, W the row weights).
  An eigenvalue λ of G is the mean squared change of log L̂ per unit move along its
  eigenvector; a direction with √λ < ``FLAT_RMS`` (1e-6: moving A by a factor e, or an
  exponent by 1, changes the predictions by less than a millionth, far below any measured
  loss's noise) is not determined by the data. The warning names the parameters with the
  largest part in that eigenvector's move, or a single parameter whose own moves barely
  change the predictions (e.g. E driven to ~0 beside the power-law terms). G rather than
  the objective's Hessian: Huber's and absolute error's curvature vanishes on rows in
  their linear part, so the objective's Hessian can be singular where the data determine
  every parameter.
- **Bootstrap intervals at a bound** (:func:`bound_hits`, :func:`warn_open`): a
  parameter whose draws pile up at a bound (the user's bound, exactly reached through the
  sine map of :mod:`scalelaw.fit.coords`, or a law's bound, whose refits beyond it are
  rejected) has that end of its interval set by the bound, not the data: it is reported as
  unbounded (±inf in :meth:`~scalelaw.fit.result.FitResult.interval` and ``to_frame``,
  ``null`` in JSON, "unbounded" in tables), with a warning. An end is open when more than
  the tail's share, (1 − level)/2, of the draws sit at or beyond that bound.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from scalelaw.fit.fit_law import fit_law
>>> N, D = np.meshgrid([1e8, 1e9], np.geomspace(1e9, 1e11, 5))
>>> df = pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": 1.8 + 400 / N.ravel()**0.34
...                    + 2000 / D.ravel()**0.37})
>>> fit_law(df)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
scalelaw.errors.ConfigError: column 'N': 2 distinct values of N; ... 3 to determine A, alpha ...
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.fit.coords import Coords
from scalelaw.fit.laws import Law

#: Distinct values each input of a built-in law needs when every parameter is free, and
#: the parameters they determine (checked by :func:`check_distinct`).
NEEDS_DISTINCT: dict[str, dict[str, tuple[int, str]]] = {
    "chinchilla": {"N": (3, "A, alpha"), "D": (3, "B, beta")},
    "data_constrained": {"N": (3, "A, alpha"), "D": (3, "B, beta")},
}

#: RMS change of the log predictions per unit move in fit space below which a direction
#: is reported as not determined (see the module docstring).
FLAT_RMS = 1e-6


class IdentifiabilityWarning(UserWarning):
    """A fit whose data leave some parameter (or combination) undetermined, or whose
    bootstrap interval runs into a bound. The CLI prints it as one ``warning:`` line."""


def check_distinct(law: Law, roles: Mapping[str, str], cols: Mapping[str, np.ndarray],
                   fixed: Mapping[str, float] | None = None) -> None:
    """Refuse (``ConfigError`` naming the column) inputs that cannot identify ``law``:
    one column read as two inputs, an input with one value, or fewer distinct values than
    ``NEEDS_DISTINCT`` asks (only when nothing is fixed)."""
    by_column: dict[str, list[str]] = {}
    for role, column in roles.items():
        by_column.setdefault(column, []).append(role)
    for column, shared in by_column.items():
        if len(shared) > 1:
            flags = ", ".join(k.lower() for k in shared)
            raise ConfigError(f"{flags}: inputs {', '.join(shared)} of law {law.name!r} are all "
                              f"read from column {column!r}; give each its own column")
    needs = {} if fixed else NEEDS_DISTINCT.get(law.name, {})
    for role, values in cols.items():
        distinct = np.unique(values)
        count, names = needs.get(role, (2, ""))
        if len(distinct) < 2:
            which = f" to determine {names}" if names else " to identify its parameters"
            raise ConfigError(f"column {roles[role]!r}: every row has {role} = {distinct[0]:g}; "
                              f"law {law.name!r} needs at least 2 distinct values of {role}"
                              f"{which}")
        if len(distinct) < count:
            raise ConfigError(f"column {roles[role]!r}: {len(distinct)} distinct values of "
                              f"{role}; law {law.name!r} needs at least {count} to determine "
                              f"{names} (with E free, two values fix only one combination "
                              "of them)")


def weak_directions(law: Law, coords: Coords, x: Mapping[str, np.ndarray],
                    theta: np.ndarray, weights: np.ndarray | None = None,
                    pinned: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Directions of fit space the data do not determine at ``theta`` (see the module
    docstring): each ``{"rms": √λ, "params": [names], "primary": k, "vector": {name:
    component}}``: first the ``k`` parameters that move most along the direction, then
    those whose moves along it would change the predictions most (and cancel theirs).

    ``pinned`` natural names (parameters at a user bound) are left out, as are fixed ones.

    >>> from scalelaw.fit.laws import get_law
    >>> from scalelaw.fit.coords import make_coords
    >>> law = get_law("chinchilla")
    >>> N, D = (g.ravel() for g in np.meshgrid([1e8, 1e9], np.geomspace(1e9, 1e11, 5)))
    >>> th = law.from_natural({"A": 400, "B": 2000, "E": 1.8, "alpha": 0.34, "beta": 0.37})
    >>> [d["params"] for d in weak_directions(law, make_coords(law), {"N": N, "D": D}, th)]
    [['A', 'alpha']]
    """
    import jax
    import jax.numpy as jnp

    nat = law.natural_names
    free = [i for i in coords.free if nat[i] not in pinned]
    if not free:
        return []
    w = np.ones(len(next(iter(x.values())))) if weights is None else np.asarray(weights, float)
    keep = w > 0
    with jax.enable_x64(True):
        xs = {k: jnp.asarray(np.asarray(v, np.float64)[keep]) for k, v in x.items()}
        jac = np.asarray(jax.jacfwd(lambda t: law.log_predict_fit(t, xs))(
            jnp.asarray(theta, jnp.float64)))
    jac = jac[:, free]
    if not np.isfinite(jac).all():
        return []
    ww = w[keep] / w[keep].sum()
    gram = jac.T @ (ww[:, None] * jac)
    scale = np.sqrt(np.diag(gram))
    out = []
    idle = scale < FLAT_RMS  # a parameter that alone barely moves the predictions
    for j in np.flatnonzero(idle):
        out.append({"rms": float(scale[j]), "params": [nat[free[j]]],
                    "vector": {nat[free[j]]: 1.0}})
    if idle.any():  # the others' directions, without it
        rest = np.flatnonzero(~idle)
        free = [free[j] for j in rest]
        gram, scale = gram[np.ix_(rest, rest)], scale[rest]
    ev, vec = np.linalg.eigh(gram)
    for lam, v in zip(ev, vec.T, strict=True):
        rms = float(np.sqrt(max(lam, 0.0)))
        if rms >= FLAT_RMS:
            continue
        # each parameter's part of the move: its step times how much it moves the
        # predictions alone; the parts cancel along a flat direction, and the parameters
        # with the largest parts are those trading off (90% of the squared total named)
        # first the parameters that move most along it (90% of v²), then the others
        primary = _top(v**2)
        others = [j for j in _top((v * scale) ** 2) if j not in primary]
        out.append({"rms": rms,
                    "params": [*sorted(nat[free[j]] for j in primary),
                               *sorted(nat[free[j]] for j in others)],
                    "primary": len(primary),
                    "vector": {nat[free[j]]: float(v[j]) for j in np.argsort(-np.abs(v))}})
    return out


def _top(weight: np.ndarray) -> list[int]:
    """Indices of the largest ``weight`` that make up 90% of its sum."""
    share = weight / weight.sum()
    order = np.argsort(-share)
    return order[: int(np.searchsorted(np.cumsum(share[order]), 0.9)) + 1].tolist()


def warn_weak(law: Law, directions: list[dict[str, Any]]) -> None:
    """One :class:`IdentifiabilityWarning` per undetermined direction."""
    for d in directions:
        k = d.get("primary", len(d["params"]))
        names = ", ".join(d["params"][:k])
        if d["params"][k:]:
            names += " (with " + ", ".join(d["params"][k:]) + ")"
        warnings.warn(IdentifiabilityWarning(
            f"{names}: not determined by the data (law {law.name!r}: moving along "
            f"{'this parameter' if len(d['params']) == 1 else 'a combination'} "
            f"changes the predictions by {d['rms']:.1e} RMS per unit in fit space)"),
            stacklevel=3)


def bound_hits(law: Law, coords: Coords, theta: np.ndarray, rejected: np.ndarray, *,
               tol: float = 1e-6) -> dict[str, dict[str, Any]]:
    """Per bounded parameter, how many bootstrap draws end at or beyond each bound.

    ``theta`` (R, P): every refit's fit-space vector, ``rejected`` (R,) refits discarded
    for leaving the law's bounds. Returns ``{name: {"lower": count, "upper": count,
    "at": [lo, hi] natural, "rejected": [below, above]}}`` for parameters with a user or
    law bound; a draw within ``tol`` of the interval's width counts as at the bound (the
    sine map reaches a bound quadratically: a refit stopped 1e-3 short in ``u`` is 2.5e-7
    of the width from it).
    """
    nat = law.natural_names
    out: dict[str, dict[str, Any]] = {}
    for i, lo, hi in coords.penalty_bounds(law):
        t = theta[:, i]
        eps = tol * (hi - lo)
        below, above = t <= lo + eps, t >= hi - eps
        rej_lo = int((rejected & (t < lo)).sum())
        rej_hi = int((rejected & (t > hi)).sum())
        if not (below.any() or above.any()):
            continue
        lo_n, hi_n = (float(np.exp(v)) if law.params[i] in law.log_params else float(v)
                      for v in (lo, hi))
        out[nat[i]] = {"lower": int(below.sum()), "upper": int(above.sum()),
                       "at": [lo_n, hi_n], "rejected": [rej_lo, rej_hi]}
    return out


def warn_open(result: Any, level: float = 0.95) -> list[str]:
    """Warn (:class:`IdentifiabilityWarning`) for every bootstrap interval of ``result``
    (a :class:`~scalelaw.fit.result.FitResult`) that runs into a bound; returns the names."""
    boot = result.metadata.get("bootstrap")
    if not isinstance(boot, dict):
        return []
    total = boot.get("draws", 0)
    named = []
    for name, hits in (boot.get("bound_hits") or {}).items():
        lo, hi = result.interval(name, level)
        for end, value, bound, count, sign in (("lower", lo, hits["at"][0], hits["lower"], ">="),
                                               ("upper", hi, hits["at"][1], hits["upper"], "<=")):
            if np.isinf(value):
                named.append(name)
                warnings.warn(IdentifiabilityWarning(
                    f"{name}: the {level:.0%} bootstrap interval runs into the bound {name} "
                    f"{sign} {bound:g} ({count} of {total} draws there); its {end} end is "
                    "reported as unbounded"), stacklevel=3)
    return named
