"""The fit's objective: Hoffmann et al.'s summed Huber loss of log residuals.

Hoffmann et al. (2022, App. D.2) fit a loss law by minimising the **sum** over rows of
Huber_δ(log L̂ − log L), δ = 1e-3, in log-parameter space. :func:`objective` is that sum
with row weights (bootstrap resample counts, or ones); :func:`penalised` makes a value that
is not finite, or lies outside the law's bounds, +inf, so that the best start chosen is
admissible. Traceable ``jnp`` code, minimised by :mod:`scalelaw.fit.solver`.

Examples
--------
Two rows off the law by 0.0005 and 0.003 in log loss: the objective is the sum of their
Huber losses, 1.25e-7 + 2.5e-6 (see :func:`huber`).

>>> import jax.numpy as jnp
>>> from scalelaw.fit.laws import get_law
>>> law = get_law("chinchilla")
>>> p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
>>> x = {"N": jnp.array([7e10, 7e11]), "D": jnp.array([1.4e12, 1.4e12])}
>>> log_y = jnp.log(law.predict(p, **x)) - jnp.array([0.0005, 0.003])
>>> theta = jnp.asarray(law.from_natural(p))
>>> round(float(objective(law, theta, (x, log_y, jnp.ones(2)), 1e-3)), 9)
2.625e-06
"""

from __future__ import annotations

from typing import Any

from scalelaw.fit.laws import Law


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


def penalised(law: Law, theta: Any, value: Any) -> Any:
    """``value``, or +inf if non-finite or outside ``law.bounds``."""
    import jax.numpy as jnp

    ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(theta))
    for name, (lo, hi) in law.bounds.items():
        v = theta[law.params.index(name)]
        ok = ok & (v >= lo) & (v <= hi)
    return jnp.where(ok, value, jnp.inf)
