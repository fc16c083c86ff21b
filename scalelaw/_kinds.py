"""Field kinds: small checkers that validate a config value and return it in canonical form.

A *kind* is a function ``value -> value`` that returns the value in canonical form
(``2.0e5`` for an integer field becomes ``200000``, ``1`` for a float field becomes
``1.0``) or raises :class:`Invalid` (a :class:`ValueError`) with a short "must be ..."
message. The training sections (:mod:`scalelaw.train.config`) and the sweep schema
(:mod:`scalelaw.sweep._fields`) declare their fields with these, once.

Examples
--------
>>> integer(1)(2.0e5)
200000
>>> number(0)(-1.0)
Traceback (most recent call last):
...
scalelaw._kinds.Invalid: must be a number > 0, got -1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Kind = Callable[[Any], Any]


class Invalid(ValueError):
    """One field's value is not allowed; ``path`` is filled in once it is known."""

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(minimum: int) -> Kind:
    """Integers ``>= minimum``; integral floats (``2.0e5``) are accepted."""
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )

    def kind(value: Any) -> int:
        if _is_number(value) and math.isfinite(value) and value == int(value):
            if int(value) >= minimum:
                return int(value)
        raise Invalid(f"must be {what}, got {show(value)}")

    return kind


def number(low: float, high: float = math.inf, *, open_low: bool = True,
           open_high: bool = True) -> Kind:
    """Finite floats in an interval, e.g. ``number(0, 1, open_low=False)`` is [0, 1)."""
    left = "(" if open_low else "["
    right = ")" if open_high else "]"
    if high == math.inf:
        what = {(0, True): "> 0", (0, False): ">= 0"}.get((low, open_low), f"in {left}{low}, inf)")
    elif low == -math.inf:
        what = f"{'<' if open_high else '<='} {high:g}"
    else:
        what = f"in {left}{low:g}, {high:g}{right}"

    def kind(value: Any) -> float:
        if _is_number(value) and math.isfinite(value):
            x = float(value)
            above = x > low if open_low else x >= low
            below = x < high if open_high else x <= high
            if above and below:
                return x
        raise Invalid(f"must be a number {what}, got {show(value)}")

    return kind


def choice(*allowed: str) -> Kind:
    """One of the strings ``allowed``."""

    def kind(value: Any) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise Invalid(f"must be one of {', '.join(allowed)}; got {show(value)}")

    return kind


def boolean(value: Any) -> bool:
    """``true`` or ``false`` (not 0/1 or strings)."""
    if isinstance(value, bool):
        return value
    raise Invalid(f"must be true or false, got {show(value)}")


def string(value: Any) -> str:
    """A non-empty string."""
    if isinstance(value, str) and value:
        return value
    raise Invalid(f"must be a non-empty string, got {show(value)}")


def string_list(value: Any) -> tuple[str, ...]:
    """A list of non-empty strings (kept as a tuple)."""
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise Invalid(f"must be a list of paths (strings), got {show(value)}")


def optional(inner: Kind) -> Kind:
    """``null`` or whatever ``inner`` accepts."""

    def kind(value: Any) -> Any:
        if value is None:
            return None
        try:
            return inner(value)
        except Invalid as exc:
            raise Invalid(f"{exc.problem} (or null)") from None

    return kind


POSITIVE = number(0)
NON_NEGATIVE = number(0, open_low=False)
FRACTION = number(0, 1, open_low=False)  # [0, 1)
BETA = number(0, 1, open_low=False)
