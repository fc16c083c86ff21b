"""The fit's objective, a knob: Σᵢ wᵢ·ℓ(rᵢ) for a per-residual loss ℓ and residuals r.

An :class:`Objective` is three small pieces: the residual space (``"log"``: r = log L̂ − log L,
``"raw"``: r = L̂ − L), a per-residual loss ``ℓ`` written in ``jnp`` (the residuals of all
rows in, one loss per row out), and a reduction (``"sum"``, or ``"mean"`` = Σwℓ / Σw; the
minimiser is the same). The constructors build the usual ones:

- :func:`huber` — Huber_δ on log residuals, **summed**: Hoffmann et al. (2022, App. D.2),
  δ = 1e-3, the default of :func:`~scalelaw.fit.fit_law.fit_law` for loss laws;
- :func:`squared` — ½r² (least squares; on raw losses as Gadre et al. 2024 fit, on log
  residuals as Step Law's OLS of the hyperparameter power laws, the default there);
- :func:`absolute` — |r|;
- :func:`asymmetric` — a base loss weighted by ``under`` where the law under-predicts
  (r < 0) and by ``over`` where it over-predicts; the ``chinchilla`` package (Takano,
  PyPI ``chinchilla``, docs/changes.md) fits the mean asymmetric absolute error of the raw
  loss with under-prediction weighted 10×, ``asymmetric(10, 1, space="raw",
  reduction="mean")``;
- :func:`custom` — any user function ``r -> per-row loss`` in ``jnp`` (a plain callable
  given to ``fit_law(objective=...)`` is wrapped by it, on log residuals).

:func:`scalelaw.fit.objective_spec.parse_objective` reads the CLI spelling (``huber:1e-3``,
``absolute:raw``, ``asymmetric:raw:10:mean``). :func:`objective` evaluates the weighted
objective for a fit-space parameter vector; :func:`penalised` makes a value that is not
finite, or lies outside fit-space bounds, +inf, so that the best start chosen is admissible.
Traceable ``jnp`` code, minimised by :mod:`scalelaw.fit.solver`. Built-in objectives are
identified by their :attr:`Objective.name` (so compiled programs are cached and exported
under it); a user function is identified by the function object itself and never exported.

Examples
--------
Two rows off the law by 0.0005 and 0.003 in log loss: Hoffmann's objective is the sum of
their Huber losses, 1.25e-7 + 2.5e-6.

>>> import jax.numpy as jnp
>>> from scalelaw.fit.laws import get_law
>>> law = get_law("chinchilla")
>>> p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
>>> x = {"N": jnp.array([7e10, 7e11]), "D": jnp.array([1.4e12, 1.4e12])}
>>> log_y = jnp.log(law.predict(p, **x)) - jnp.array([0.0005, 0.003])
>>> theta = jnp.asarray(law.from_natural(p))
>>> round(float(objective(law, theta, (x, log_y, jnp.ones(2)), huber(1e-3))), 9)
2.625e-06
>>> asymmetric(10, space="raw", reduction="mean").describe()
'mean asymmetric absolute raw residuals (under-prediction x10, over-prediction x1)'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.fit.laws import Law

Space = Literal["log", "raw"]
Reduction = Literal["sum", "mean"]
RowLoss = Callable[[Any], Any]


@dataclass(frozen=True, eq=False)
class Objective:
    """A fit objective: Σᵢ wᵢ·``loss``(rᵢ) (or its weighted mean) over residuals in ``space``.

    Parameters
    ----------
    loss : callable
        ``loss(r) -> per-row loss`` for the residuals ``r`` of all rows, shape (n,) in and
        out, in ``jax.numpy`` (it is differentiated twice and vmapped).
    label : str
        What the loss is, without space and reduction: ``"huber:0.001"``, ``"squared"``,
        ``"absolute"``, ``"asymmetric:10:1:absolute"``, ``"user:<function name>"``.
    words : str
        The loss in words, with ``{}`` where the space goes (for ``metadata["objective"]``).
    space : {"log", "raw"}
        Residuals ``log L̂ − log L`` or ``L̂ − L``.
    reduction : {"sum", "mean"}
        Σwℓ, or Σwℓ / Σw.
    builtin : bool
        True for the constructors of this module: ``name`` then determines ``loss``, which
        lets compiled programs be cached under it and exported to disk. A user function
        (``builtin=False``) is compared by identity and compiled with plain ``jax.jit``.
    smooth : callable, optional
        For a loss with a kink at r = 0 (absolute, asymmetric absolute): ``smooth(r, mu)``,
        smooth surrogates tending to ``loss`` as ``mu -> 0``, which the solver minimises in
        turn for decreasing ``mu`` before polishing on ``loss`` itself
        (:func:`scalelaw.fit.solver.multistart`).
    """

    loss: RowLoss
    label: str
    words: str = "user loss of {} residuals"
    space: Space = "log"
    reduction: Reduction = "sum"
    builtin: bool = False
    smooth: Callable[[Any, Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.space not in ("log", "raw"):
            raise ConfigError(f"objective: space must be 'log' or 'raw', got {self.space!r}")
        if self.reduction not in ("sum", "mean"):
            raise ConfigError(f"objective: reduction must be 'sum' or 'mean', "
                              f"got {self.reduction!r}")
        if not callable(self.loss):
            raise ConfigError(f"objective: loss must be callable, got {type(self.loss).__name__}")

    @property
    def name(self) -> str:
        """``label:space`` (``:mean`` appended for the mean): the CLI spelling of a built-in.

        >>> huber(1e-3).name, absolute("raw", reduction="mean").name
        ('huber:0.001:log', 'absolute:raw:mean')
        """
        return f"{self.label}:{self.space}" + (":mean" if self.reduction == "mean" else "")

    @property
    def exportable(self) -> bool:
        """Whether compiled programs using it may be exported to disk (built-ins only)."""
        return self.builtin

    def describe(self) -> str:
        """The objective in words, e.g. ``'sum Huber(delta=0.001) of log residuals'``."""
        return f"{self.reduction} {self.words.format(self.space)}"

    def _key(self) -> tuple[Any, ...]:
        return (self.name, self.builtin, None if self.builtin else self.loss)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Objective) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:  # stable across processes: part of the export-cache key
        return f"Objective({self.name!r})"

    def target(self, y: Any) -> np.ndarray:
        """What residuals are taken against: ``log y`` or ``y`` (float64 numpy)."""
        y = np.asarray(y, np.float64)
        return np.log(y) if self.space == "log" else y

    def residuals(self, law: Law, theta: Any, x: Any, t: Any) -> Any:
        """``log L̂ − log L`` or ``L̂ − L`` at fit-space ``theta`` (``t = target(y)``)."""
        import jax.numpy as jnp

        log_pred = law.log_predict_fit(theta, x)
        return log_pred - t if self.space == "log" else jnp.exp(log_pred) - t

    def value(self, law: Law, theta: Any, args: tuple[Any, Any, Any]) -> Any:
        """The weighted objective at fit-space ``theta``; ``args = (x, target, w)``."""
        import jax.numpy as jnp

        x, t, w = args
        total = jnp.sum(w * self.loss(self.residuals(law, theta, x, t)))
        return total if self.reduction == "sum" else total / jnp.sum(w)


# ---------------------------------------------------------------------- row losses
def huber_loss(r: Any, delta: float | None) -> Any:
    """Huber loss (Huber 1964) of residuals ``r``; ``delta=None`` gives ½r².

    >>> import jax.numpy as jnp
    >>> [round(float(v), 12) for v in huber_loss(jnp.array([0.0005, 0.003]), 1e-3)]
    [1.25e-07, 2.5e-06]
    """
    import jax.numpy as jnp

    if delta is None:
        return 0.5 * r * r
    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _absolute(r: Any) -> Any:
    import jax.numpy as jnp

    return jnp.abs(r)


def _squared(r: Any) -> Any:
    return huber_loss(r, None)


def _pseudo_huber(r: Any, mu: Any) -> Any:
    """sqrt(r² + μ²) − μ: smooth, within μ of |r| (Charbonnier et al. 1994)."""
    import jax.numpy as jnp

    return jnp.sqrt(r * r + mu * mu) - mu


class _Huber:
    """``huber_loss(r, delta)`` with ``delta`` bound (a named, picklable row loss)."""

    def __init__(self, delta: float) -> None:
        self.delta = delta

    def __call__(self, r: Any) -> Any:
        return huber_loss(r, self.delta)


class _Asymmetric:
    """``base(r)`` times ``under`` where r < 0 (under-prediction), ``over`` elsewhere."""

    def __init__(self, base: Callable[..., Any], under: float, over: float) -> None:
        self.base, self.under, self.over = base, under, over

    def __call__(self, r: Any, *mu: Any) -> Any:
        import jax.numpy as jnp

        return jnp.where(r < 0, self.under, self.over) * self.base(r, *mu)


# ---------------------------------------------------------------------- constructors
def _fmt(v: float) -> str:
    """Short and exact: ``%g`` where it round-trips, else ``repr`` (names must not collide)."""
    s = f"{v:g}"
    return s if float(s) == v else repr(v)


def _number(value: Any, what: str, *, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"objective: {what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ConfigError(f"objective: {what} must be a finite number "
                          f"{'> 0' if positive else '>= 0'}, got {value!r}")
    return v


def huber(delta: float = 1e-3, space: Space = "log", reduction: Reduction = "sum") -> Objective:
    """Huber_δ of the residuals (Huber 1964); on log residuals, summed, with δ = 1e-3 it is
    Hoffmann et al. (2022, App. D.2)'s objective.

    >>> huber().describe()
    'sum Huber(delta=0.001) of log residuals'
    """
    d = _number(delta, "huber delta", positive=True)
    return Objective(_Huber(d), f"huber:{_fmt(d)}", f"Huber(delta={d}) of {{}} residuals", space,
                     reduction, builtin=True)


def squared(space: Space = "log", reduction: Reduction = "sum") -> Objective:
    """½r², least squares (the ½ does not move the minimiser).

    >>> squared("raw").describe()
    'sum 0.5*squared raw residuals'
    """
    return Objective(_squared, "squared", "0.5*squared {} residuals", space, reduction,
                     builtin=True)


def absolute(space: Space = "log", reduction: Reduction = "sum") -> Objective:
    """|r|, least absolute deviations. Not smooth at r = 0: the fit first minimises the
    surrogate sqrt(r² + μ²) − μ for decreasing μ (``Objective.smooth``), then |r|.

    >>> absolute("raw").name
    'absolute:raw'
    """
    return Objective(_absolute, "absolute", "absolute {} residuals", space, reduction,
                     builtin=True, smooth=_pseudo_huber)


def asymmetric(under: float = 10.0, over: float = 1.0, space: Space = "raw",
               base: Literal["absolute", "squared"] | Objective = "absolute",
               reduction: Reduction = "sum") -> Objective:
    """``base`` loss weighted ``under`` where the law under-predicts (L̂ < L), ``over`` where
    it over-predicts. With ``base="absolute"`` and ``under/(under+over) = τ`` this is the
    quantile (pinball) loss of Koenker & Bassett (1978) up to a factor; the ``chinchilla``
    package's default is ``asymmetric(10, 1, space="raw", reduction="mean")``.

    ``base`` may be another :class:`Objective` (its row loss is used; ``space`` still
    applies).

    >>> import jax.numpy as jnp
    >>> asymmetric(10).loss(jnp.array([-0.5, 0.5])).tolist()
    [5.0, 0.5]
    """
    u = _number(under, "asymmetric under-prediction weight")
    o = _number(over, "asymmetric over-prediction weight")
    if u == 0 and o == 0:
        raise ConfigError("objective: asymmetric weights under and over cannot both be 0")
    smooth: Callable[[Any, Any], Any] | None = None
    if isinstance(base, Objective):
        row, label, words, builtin = base.loss, base.label, base.label, base.builtin
        smooth = base.smooth
    elif base == "absolute":
        row, label, words, builtin = _absolute, "absolute", "absolute", True
        smooth = _pseudo_huber
    elif base == "squared":
        row, label, words, builtin = _squared, "squared", "0.5*squared", True
    else:
        raise ConfigError(f"objective: asymmetric base must be 'absolute', 'squared' or an "
                          f"Objective, got {base!r}")
    return Objective(_Asymmetric(row, u, o), f"asymmetric:{_fmt(u)}:{_fmt(o)}:{label}",
                     f"asymmetric {words} {{}} residuals (under-prediction x{u:g}, "
                     f"over-prediction x{o:g})", space, reduction, builtin=builtin,
                     smooth=None if smooth is None else _Asymmetric(smooth, u, o))


def custom(fn: RowLoss, space: Space = "log", reduction: Reduction = "sum",
           name: str | None = None) -> Objective:
    """A user row loss ``fn(r) -> per-row loss`` (``jnp``, shape (n,) -> (n,)).

    It is compiled with ``jax.jit`` in each process, never exported to the disk cache
    (its code is not part of the cache key).

    >>> import jax.numpy as jnp
    >>> def cauchy(r):
    ...     return jnp.log1p((r / 0.01) ** 2)
    >>> custom(cauchy).describe()
    'sum user function cauchy of log residuals'
    """
    if not callable(fn):
        raise ConfigError(f"objective: expected a function of the residuals, got "
                          f"{type(fn).__name__}")
    label = str(name or getattr(fn, "__name__", type(fn).__name__))
    braced = label.replace("{", "{{").replace("}", "}}")
    return Objective(fn, f"user:{label}", f"user function {braced} of {{}} residuals", space,
                     reduction, builtin=False)


def as_objective(spec: Objective | RowLoss | float | None) -> Objective:
    """An :class:`Objective` from an objective, a user function (log residuals), a Huber δ
    (float) or ``None`` (least squares, ½r² of log residuals); text specs are read by
    :func:`scalelaw.fit.objective_spec.read_objective`.

    >>> as_objective(1e-3) == huber(1e-3)
    True
    """
    if isinstance(spec, Objective):
        return spec
    if spec is None:
        return squared("log")
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return huber(spec)
    if callable(spec):
        return custom(spec)
    raise ConfigError(f"objective: expected an Objective, a spec such as 'huber:1e-3' or a "
                      f"function of the residuals, got {type(spec).__name__}")


# ---------------------------------------------------------------------- evaluation
def objective(law: Law, theta: Any, args: tuple[Any, Any, Any],
              obj: Objective | float | None) -> Any:
    """Σ wᵢ·ℓ(rᵢ) at fit-space ``theta`` (Hoffmann App. D.2 for ``huber(1e-3)``).

    ``args = (x, target, w)``: ``target`` is ``obj.target(y)`` (``log y`` for log
    residuals), ``w`` row weights (bootstrap counts × user weights, or ones). ``obj`` may
    be a Huber δ or ``None`` (½r²), as :func:`as_objective` reads them.
    """
    return as_objective(obj).value(law, theta, args)


def penalised(law: Law, theta: Any, value: Any,
              bounds: tuple[tuple[int, float, float], ...] | None = None) -> Any:
    """``value``, or +inf if non-finite or outside the bounds.

    ``bounds`` are ``(index, lo, hi)`` in fit space; default ``law.bounds``.
    """
    import jax.numpy as jnp

    if bounds is None:
        bounds = tuple((law.params.index(k), lo, hi) for k, (lo, hi) in law.bounds.items())
    ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(theta))
    for i, lo, hi in bounds:
        v = theta[i]
        ok = ok & (v >= lo) & (v <= hi)
    return jnp.where(ok, value, jnp.inf)
