"""Learning-rate schedules driven by tokens seen, so they transfer across batch sizes.

Every constructor returns a callable ``schedule(tokens) -> lr`` that takes a Python
number, a numpy array or a (traced) JAX array of token counts and returns a JAX array of
the same shape. It uses only ``jnp`` operations (no Python branching on the tokens), so it
can be called inside ``jax.jit``, ``jax.vmap`` and ``lax.scan``. :func:`per_step` adapts
it to optax, which counts optimizer steps.

What the value means:

- :func:`power` returns an **absolute** LR: its constants (``a``, ``lr_max``) are
  absolute learning rates calibrated by Shen et al. 2024 for a given batch size.
- :func:`wsd`, :func:`cosine` and :func:`constant` return ``peak_lr`` times a shape
  in ``[0, 1]``, i.e. an absolute LR; with ``peak_lr=1.0`` they return a **multiplier**
  (useful when the peak LR is swept or passed as a traced value: multiply outside).

Conventions shared by all schedules:

- tokens are counted from the start of training; the warmup is linear from 0 at
  ``tokens = 0`` to the schedule's own value at ``tokens = warmup_tokens``;
- tokens below 0 count as 0, tokens beyond ``total_tokens`` as ``total_tokens`` (the
  LR is held at its final value);
- a decay over the last ``decay_fraction`` of ``total_tokens`` multiplies the LR reached
  at its start by a factor that goes from 1 to ``final_fraction`` (reached exactly);
- arguments are concrete Python numbers, checked at construction: a bad one raises
  :class:`scalelaw.ConfigError` (a ``ValueError``) whose message names it.

Examples
--------
>>> sched = wsd(peak_lr=1.0, total_tokens=1000, warmup_tokens=100, decay_fraction=0.2)
>>> [round(float(sched(t)), 4) for t in (50, 100, 500, 900, 1000)]
[0.5, 1.0, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from scalelaw.errors import ConfigError

if TYPE_CHECKING:
    import optax

__all__ = ["Schedule", "constant", "cosine", "per_step", "power", "wsd"]

Schedule = Callable[[ArrayLike], jax.Array]
"""A function of tokens seen returning the learning rate (or multiplier)."""

# Decay shapes as functions of the *remaining* fraction r = (N - n) / N_decay in [0, 1]:
# 1 at the start of the decay (r = 1), exactly 0 at the end (r = 0), so the final value
# is exactly final_fraction whatever the float rounding of the token counts.
_SHAPES: dict[str, Callable[[jax.Array], jax.Array]] = {
    # IBM's factor [(1-f) e exp(-x/T) + f e - 1] / (e - 1), x = T (1 - r), rewritten.
    "exponential": lambda r: jnp.expm1(r) / (math.e - 1.0),
    "linear": lambda r: r,
    "cosine": lambda r: 0.5 * (1.0 - jnp.cos(jnp.pi * r)),
    "sqrt": lambda r: 1.0 - jnp.sqrt(1.0 - r),  # "1 - sqrt" cooldown (Hägele et al. 2024)
}


def _number(fn: str, name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{fn}: {name} must be a real number, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        kind = "> 0" if positive else ">= 0"
        raise ConfigError(f"{fn}: {name} must be a finite number {kind}, got {value!r}")
    return x


def _fraction(fn: str, name: str, value: object) -> float:
    x = _number(fn, name, value)
    if x >= 1.0:
        raise ConfigError(f"{fn}: {name} must be in [0, 1), got {value!r}")
    return x


def _choice(fn: str, name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{fn}: {name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _stable_end(fn: str, total: float, warmup: float, decay_fraction: float) -> float:
    """Start of the decay phase; checks that the warmup fits before it."""
    start = total * (1.0 - decay_fraction)
    if warmup > start:
        bound = "total_tokens * (1 - decay_fraction)" if decay_fraction else "total_tokens"
        raise ConfigError(
            f"{fn}: warmup_tokens must be <= {bound} = {start:g} "
            f"(the warmup may not overlap the decay), got {warmup:g}"
        )
    return start


def _tokens(tokens: ArrayLike, total: float | None) -> jax.Array:
    n = jnp.asarray(tokens, dtype=jnp.result_type(float))
    return jnp.clip(n, 0.0, total)


def _with_warmup(body: Callable[[jax.Array], jax.Array], warmup: float
                 ) -> Callable[[jax.Array], jax.Array]:
    """Linear warmup from 0 to ``body(warmup)``, then ``body``; ``body`` sees n >= warmup."""
    if warmup == 0.0:
        return body

    def schedule(n: jax.Array) -> jax.Array:
        end = body(jnp.asarray(warmup, dtype=n.dtype))
        return jnp.where(n < warmup, n / warmup * end, body(jnp.maximum(n, warmup)))

    return schedule


def _decay_factor(n: jax.Array, total: float, length: float, shape: str, final: float) -> jax.Array:
    """1 before ``total - length``, then ``final + (1 - final) * shape(remaining)``."""
    if length == 0.0:
        return jnp.ones_like(n)
    r = jnp.clip((total - n) / length, 0.0, 1.0)
    return jnp.where(r >= 1.0, 1.0, final + (1.0 - final) * _SHAPES[shape](r))


def power(
    *,
    batch_size: float,
    total_tokens: float,
    warmup_tokens: float = 0,
    a: float = 4.0,
    b: float = -0.51,
    lr_max: float = 0.02,
    decay_fraction: float = 0.0,
    decay: str = "exponential",
    final_fraction: float = 0.0,
) -> Schedule:
    """Power scheduler of Shen et al. 2024 (arXiv 2408.13359, Eq. 7-8); an absolute LR.

    ``lr_power(n) = min(lr_max, batch_size * a * n**b)`` (Eq. 7), with ``n`` the tokens
    seen counted from the start of training (not from the end of warmup, where Levanter
    deviates). Eq. 8: linear warmup ``(n / N_w) * lr_power(N_w)`` for ``n < N_w``; then
    ``lr_power(n)`` until ``D = N - N_decay``; then ``factor(n - D) * lr_power(D)``.

    Parameters
    ----------
    batch_size : float
        Batch size in **sequences** (beta in the paper), not tokens.
    total_tokens : float
        Training length N in tokens; the decay occupies its last ``decay_fraction``.
    warmup_tokens : float
        N_w; must end before the decay starts.
    a, b, lr_max : float
        Paper defaults a = 4, b = -0.51, lr_max = 0.02 (``b <= 0``).
    decay_fraction : float
        N_decay / N in [0, 1); the paper uses 0.1 (100B of 1T tokens); 0 = no decay.
    decay : {"exponential", "linear"}
        "exponential" is IBM's factor ``[(1-f) e exp(-x/T) + f e - 1] / (e - 1)`` over
        ``T = N_decay`` with ``f = final_fraction``: 0 (as in the paper) by default.
    final_fraction : float
        Value of the decay factor at ``total_tokens``, in [0, 1).

    Examples
    --------
    >>> sched = power(batch_size=4, total_tokens=10_000_000, warmup_tokens=250_000,
    ...               a=1.0, b=-0.5, decay_fraction=0.1)
    >>> [round(float(sched(t)), 6) for t in (125_000, 250_000, 1_000_000, 10_000_000)]
    [0.004, 0.008, 0.004, 0.0]
    >>> round(float(power(batch_size=4, total_tokens=1e9)(1.0)), 6)  # capped at lr_max
    0.02
    """
    fn = "power"
    beta = _number(fn, "batch_size", batch_size, positive=True)
    total = _number(fn, "total_tokens", total_tokens, positive=True)
    warmup = _number(fn, "warmup_tokens", warmup_tokens)
    a = _number(fn, "a", a, positive=True)
    if isinstance(b, bool) or not isinstance(b, numbers.Real) or not -math.inf < b <= 0:
        raise ConfigError(f"{fn}: b must be a finite number <= 0, got {b!r}")
    b = float(b)
    lr_max = _number(fn, "lr_max", lr_max, positive=True)
    decay_fraction = _fraction(fn, "decay_fraction", decay_fraction)
    decay = _choice(fn, "decay", decay, ("exponential", "linear"))
    final = _fraction(fn, "final_fraction", final_fraction)
    start = _stable_end(fn, total, warmup, decay_fraction)

    def lr_power(n: jax.Array) -> jax.Array:  # n ** b is inf at n = 0: capped by lr_max
        return jnp.minimum(lr_max, beta * a * n**b)

    def body(n: jax.Array) -> jax.Array:
        factor = _decay_factor(n, total, total - start, decay, final)
        return lr_power(jnp.minimum(n, start)) * factor

    inner = _with_warmup(body, warmup)
    return lambda tokens: inner(_tokens(tokens, total))


def wsd(
    *,
    peak_lr: float,
    total_tokens: float,
    warmup_tokens: float = 0,
    decay_fraction: float = 0.1,
    decay: str = "linear",
    final_fraction: float = 0.0,
) -> Schedule:
    """Warmup-Stable-Decay (MiniCPM, Hu et al. 2024, arXiv 2404.06395); ``peak_lr`` x shape.

    Linear warmup to ``peak_lr``, constant, then a decay over the last ``decay_fraction``
    of ``total_tokens`` to ``final_fraction * peak_lr``: "linear", "cosine" (half cosine)
    or "sqrt" (``1 - sqrt(x)``, Hägele et al. 2024, arXiv 2405.18392).

    Examples
    --------
    >>> sched = wsd(peak_lr=2.0, total_tokens=100, decay_fraction=0.5, decay="sqrt")
    >>> [round(float(sched(t)), 4) for t in (0, 50, 75, 100)]
    [2.0, 2.0, 0.5858, 0.0]
    """
    fn = "wsd"
    peak = _number(fn, "peak_lr", peak_lr, positive=True)
    total = _number(fn, "total_tokens", total_tokens, positive=True)
    warmup = _number(fn, "warmup_tokens", warmup_tokens)
    decay_fraction = _fraction(fn, "decay_fraction", decay_fraction)
    decay = _choice(fn, "decay", decay, ("linear", "cosine", "sqrt"))
    final = _fraction(fn, "final_fraction", final_fraction)
    start = _stable_end(fn, total, warmup, decay_fraction)

    def body(n: jax.Array) -> jax.Array:
        return peak * _decay_factor(n, total, total - start, decay, final)

    inner = _with_warmup(body, warmup)
    return lambda tokens: inner(_tokens(tokens, total))


def cosine(
    *,
    peak_lr: float,
    total_tokens: float,
    warmup_tokens: float = 0,
    final_fraction: float = 0.1,
) -> Schedule:
    """Cosine decay (Loshchilov & Hutter 2017, SGDR, arXiv 1608.03983); ``peak_lr`` x shape.

    Linear warmup to ``peak_lr``, then a half cosine from ``peak_lr`` at
    ``warmup_tokens`` to ``final_fraction * peak_lr`` at ``total_tokens``.

    Examples
    --------
    >>> sched = cosine(peak_lr=1.0, total_tokens=1100, warmup_tokens=100)
    >>> [round(float(sched(t)), 4) for t in (50, 100, 600, 1100)]
    [0.5, 1.0, 0.55, 0.1]
    """
    fn = "cosine"
    peak = _number(fn, "peak_lr", peak_lr, positive=True)
    total = _number(fn, "total_tokens", total_tokens, positive=True)
    warmup = _number(fn, "warmup_tokens", warmup_tokens)
    final = _fraction(fn, "final_fraction", final_fraction)
    _stable_end(fn, total, warmup, 0.0)

    def body(n: jax.Array) -> jax.Array:
        return peak * _decay_factor(n, total, total - warmup, "cosine", final)

    inner = _with_warmup(body, warmup)
    return lambda tokens: inner(_tokens(tokens, total))


def constant(*, peak_lr: float, warmup_tokens: float = 0) -> Schedule:
    """Linear warmup to ``peak_lr``, then constant; ``peak_lr`` x shape.

    Examples
    --------
    >>> sched = constant(peak_lr=0.5, warmup_tokens=1000)
    >>> [float(sched(t)) for t in (0, 500, 1000, 10**12)]
    [0.0, 0.25, 0.5, 0.5]
    """
    fn = "constant"
    peak = _number(fn, "peak_lr", peak_lr, positive=True)
    warmup = _number(fn, "warmup_tokens", warmup_tokens)
    inner = _with_warmup(lambda n: jnp.full_like(n, peak), warmup)
    return lambda tokens: inner(_tokens(tokens, None))


def per_step(schedule: Schedule, tokens_per_step: float) -> optax.Schedule:
    """Turn a schedule of tokens into an optax schedule of steps.

    optax (like PyTorch) calls the schedule with the number of updates already applied,
    so the LR of update ``s`` (counting from 0) is ``schedule(s * tokens_per_step)``: the
    tokens seen **before** that update. The first update thus uses ``schedule(0)``, which
    is 0 when there is a warmup. The step count is converted to float before the product,
    so large token counts do not overflow int32.

    Examples
    --------
    >>> sched = per_step(constant(peak_lr=1.0, warmup_tokens=4096), tokens_per_step=1024)
    >>> [float(sched(s)) for s in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    tps = _number("per_step", "tokens_per_step", tokens_per_step, positive=True)
    return lambda count: schedule(jnp.asarray(count, dtype=jnp.result_type(float)) * tps)
