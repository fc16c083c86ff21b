"""The solver's coordinates: parameters held fixed, and bounds enforced by reparametrisation.

The solver optimises a vector ``u`` of the *free* parameters only; :meth:`Coords.theta`
maps it to the law's full fit-space vector θ, inserting the fixed values as constants. A
parameter the user bounds to [lo, hi] is reparametrised as MINUIT does (James & Roos 1975;
MINUIT User's Guide, "parameter limits"):

    θ = lo + (hi − lo)·(sin u + 1)/2,    u = arcsin(2(θ − lo)/(hi − lo) − 1),

so every ``u`` is admissible, the optimiser stays unconstrained and smooth, and a bound
that is active at the optimum is reached exactly (at u = ±π/2, a stationary point of the
map) rather than approached asymptotically. The law's own ``bounds`` on the other free
parameters keep their role: solutions outside them are discarded when the best start is
chosen (:func:`scalelaw.fit.objective.penalised`). User bounds are given in natural units
and mapped to fit space (a log parameter's bounds become log bounds, so they must be > 0).

With nothing fixed or bounded, ``θ = u`` exactly (the default fit is unchanged).

Examples
--------
>>> from scalelaw.fit.laws import get_law
>>> c = make_coords(get_law("chinchilla"), fixed={"E": 1.69}, bounds={"alpha": (0.1, 0.6)})
>>> c.free, [round(v, 4) for _, v in c.fixed]
((0, 1, 3, 4), [0.5247])
>>> t = c.theta_np(c.to_u([6.0, 6.0, 0.0, 0.6, 0.3]))  # e is fixed, alpha at its upper bound
>>> [round(float(v), 6) for v in t]
[6.0, 6.0, 0.524729, 0.6, 0.3]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.fit.laws import Law

#: Starts outside a bound are moved this fraction of the interval inside it (at the bound
#: itself the sine map is stationary and the coordinate would not move).
START_MARGIN = 0.01


@dataclass(frozen=True)
class Coords:
    """Free parameters of a law and their map to fit space (a static, hashable setting).

    ``size`` is ``len(law.params)``; ``free`` the fit-space indices optimised, in order;
    ``fixed`` ``(index, fit-space value)`` pairs; ``box`` ``(position in u, lo, hi)`` in fit
    space for each bounded free parameter.
    """

    size: int
    free: tuple[int, ...]
    fixed: tuple[tuple[int, float], ...] = ()
    box: tuple[tuple[int, float, float], ...] = ()

    @property
    def identity(self) -> bool:
        """Nothing fixed or bounded: ``theta(u) is u``."""
        return not self.fixed and not self.box

    def theta(self, u: Any) -> Any:
        """Full fit-space θ from the free coordinates ``u`` (``jnp``, traceable)."""
        if self.identity:
            return u
        import jax.numpy as jnp

        return jnp.stack(self._assemble(u, jnp.sin, lambda v: jnp.asarray(v, u.dtype)))

    def theta_np(self, u: Any) -> np.ndarray:
        """:meth:`theta` in numpy (float64), for results and reports; ``u`` may be (..., F)."""
        u = np.asarray(u, np.float64)
        if self.identity:
            return u.copy()
        parts = np.broadcast_arrays(*self._assemble(u, np.sin, np.float64))
        return np.stack(parts, axis=-1).astype(np.float64)

    def _assemble(self, u: Any, sin: Any, const: Any) -> list[Any]:
        parts: list[Any] = [None] * self.size
        for i, v in self.fixed:
            parts[i] = const(v)
        boxed = {j: (lo, hi) for j, lo, hi in self.box}
        for j, i in enumerate(self.free):
            if j in boxed:
                lo, hi = boxed[j]
                parts[i] = lo + (hi - lo) * (sin(u[..., j]) + 1.0) / 2.0
            else:
                parts[i] = u[..., j]
        return parts

    def to_u(self, theta: Any) -> np.ndarray:
        """Free coordinates of the full fit-space ``theta`` (inverse of :meth:`theta`);
        values at or outside a bound map to the bound (u = ±π/2)."""
        theta = np.asarray(theta, np.float64)
        u = theta[..., list(self.free)].copy()
        for j, lo, hi in self.box:
            s = np.clip(2.0 * (u[..., j] - lo) / (hi - lo) - 1.0, -1.0, 1.0)
            u[..., j] = np.arcsin(s)
        return u

    def starts(self, starts: np.ndarray) -> np.ndarray:
        """Starts (S, size) in fit space → distinct starts (S', free) in ``u``; a start on
        or outside a bound is first moved ``START_MARGIN`` (0.01) of the interval inside."""
        s = np.asarray(starts, np.float64)[:, list(self.free)]
        if self.identity:
            return s
        for j, lo, hi in self.box:
            m = START_MARGIN * (hi - lo)
            s[:, j] = np.clip(s[:, j], lo + m, hi - m)
        _, first = np.unique(s, axis=0, return_index=True)
        s = s[np.sort(first)]
        full = np.zeros((len(s), self.size))
        full[:, list(self.free)] = s
        return self.to_u(full)

    def penalty_bounds(self, law: Law) -> tuple[tuple[int, float, float], ...]:
        """Fit-space ``(index, lo, hi)`` checked by :func:`~scalelaw.fit.objective.penalised`:
        the law's bounds on free parameters, a user bound replacing the law's."""
        boxed = {self.free[j]: (lo, hi) for j, lo, hi in self.box}
        fixed = {i for i, _ in self.fixed}
        out = [(i, lo, hi) for i, (lo, hi) in boxed.items()]
        for name, (lo, hi) in law.bounds.items():
            i = law.params.index(name)
            if i not in boxed and i not in fixed:
                out.append((i, lo, hi))
        return tuple(sorted(out))


def _names(law: Law) -> dict[str, int]:
    return {nat: i for i, nat in enumerate(law.natural_names)}


def _value(v: Any, field: str, name: str) -> float:
    try:
        out = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{field}: {name} must be a number, got {v!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{field}: {name} must be finite, got {v!r}")
    return out


def _fit_space(law: Law, i: int, v: float, field: str) -> float:
    name = law.params[i]
    if name in law.log_params:
        if v <= 0:
            raise ConfigError(f"{field}: {law.natural_names[i]} is fitted as a logarithm, "
                              f"so it must be > 0, got {v:g}")
        return math.log(v)
    return v


def make_coords(law: Law, fixed: Mapping[str, float] | None = None,
                bounds: Mapping[str, Sequence[float]] | None = None) -> Coords:
    """:class:`Coords` for ``law`` with ``fixed`` values and ``bounds`` (natural units, by
    the natural parameter names of :attr:`Law.natural_names`, e.g. ``E``, ``alpha``).

    Raises
    ------
    ConfigError
        Unknown name, non-finite value, lo >= hi, a log parameter's value or bound <= 0, a
        parameter both fixed and bounded, every parameter fixed (the message names
        ``fixed`` or ``bounds``).
    """
    index = _names(law)
    known = ", ".join(law.natural_names)
    fix: dict[int, float] = {}
    for name, v in (fixed or {}).items():
        if name not in index:
            raise ConfigError(f"fixed: unknown parameter {name!r} of law {law.name!r} "
                              f"(parameters: {known})")
        i = index[name]
        fix[i] = _fit_space(law, i, _value(v, "fixed", name), "fixed")
    box: dict[int, tuple[float, float]] = {}
    for name, pair in (bounds or {}).items():
        if name not in index:
            raise ConfigError(f"bounds: unknown parameter {name!r} of law {law.name!r} "
                              f"(parameters: {known})")
        if name in (fixed or {}):
            raise ConfigError(f"bounds: {name} is also fixed; give it one or the other")
        try:
            lo_, hi_ = pair
        except (TypeError, ValueError):
            raise ConfigError(f"bounds: {name} needs (lower, upper), got {pair!r}") from None
        lo, hi = _value(lo_, "bounds", name), _value(hi_, "bounds", name)
        if not lo < hi:
            raise ConfigError(f"bounds: {name} lower {lo:g} must be < upper {hi:g}")
        i = index[name]
        box[i] = (_fit_space(law, i, lo, "bounds"), _fit_space(law, i, hi, "bounds"))
    free = tuple(i for i in range(len(law.params)) if i not in fix)
    if not free:
        raise ConfigError(f"fixed: every parameter of law {law.name!r} is fixed; "
                          "leave at least one free")
    return Coords(len(law.params), free, tuple(sorted(fix.items())),
                  tuple((free.index(i), lo, hi) for i, (lo, hi) in sorted(box.items())))


def describe(law: Law, coords: Coords, theta: np.ndarray) -> dict[str, Any]:
    """``metadata`` entries: fixed values and bounds in natural units, and which bounds
    the fit ended on (within 1e-9 of the interval)."""
    nat = law.natural_names
    out: dict[str, Any] = {}
    if coords.fixed:
        out["fixed"] = {nat[i]: law.to_natural(_with(theta, i, v))[nat[i]]
                        for i, v in coords.fixed}
    if coords.box:
        bounds, at = {}, []
        for j, lo, hi in coords.box:
            i = coords.free[j]
            lo_n = law.to_natural(_with(theta, i, lo))[nat[i]]
            hi_n = law.to_natural(_with(theta, i, hi))[nat[i]]
            bounds[nat[i]] = [lo_n, hi_n]
            if min(theta[i] - lo, hi - theta[i]) <= 1e-9 * (hi - lo):
                at.append(nat[i])
        out["bounds"], out["at_bound"] = bounds, at
    return out


def _with(theta: np.ndarray, i: int, v: float) -> np.ndarray:
    t = np.array(theta, np.float64)
    t[i] = v
    return t
