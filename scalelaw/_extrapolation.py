"""Where a law is asked to speak: plausible inputs, and notes on extrapolation.

Every law carries the range of its inputs it was fitted on (``domain``: a published law's
as its source states it, a fitted law's from its data). :func:`extrapolation_notes` says,
in decades, how far a query lies outside it; :func:`check_plausible` refuses inputs that no
law here can speak to at all (``recommend(1e30, ...)`` used to answer a weight decay of
3.5e14).

Plain ``math``: :mod:`scalelaw.recommend` imports it without numpy or JAX.

Examples
--------
>>> (note,) = extrapolation_notes("Step Law", {"N": (6e7, 1e9), "D": (2e9, 1e11)},
...                               {"N": 7e9, "D": 5e10})
>>> note[:60]
'N = 7e+09 is 0.8 decades above the range Step Law was fitted'
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scalelaw.errors import ConfigError

__all__ = ["PLAUSIBLE", "check_plausible", "extrapolation_notes"]

PLAUSIBLE: dict[str, tuple[float, float]] = {
    "n_params": (1e2, 1e15),
    "n_tokens": (1e3, 1e17),
    "compute": (6e5, 6e32),  # 6 N D over the two ranges above
}
"""Inputs outside these are refused: the largest models trained hold about 2e12 parameters
and the largest corpora about 4e13 tokens, so these bounds leave two to three decades of
headroom over any run and refuse only numbers no law could speak to."""

MIN_DECADES = 0.05  # closer than this to the edge (a factor of 1.12) is not an extrapolation


def check_plausible(name: str, value: float) -> float:
    """``value`` if it lies in :data:`PLAUSIBLE` ``[name]``, else a one-line ConfigError.

    >>> check_plausible("n_params", 1e30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    scalelaw.errors.ConfigError: n_params: 1e+30 is outside what any law here can speak ...
    """
    lo, hi = PLAUSIBLE[name]
    if not lo <= value <= hi:
        raise ConfigError(f"{name}: {value:.3g} is outside what any law here can speak to "
                          f"({lo:.0e} to {hi:.0e})")
    return value


def extrapolation_notes(label: str, domain: Mapping[str, tuple[float, float]] | None,
                        values: Mapping[str, float]) -> list[str]:
    """One note per input of ``values`` outside ``domain`` (by more than a factor of 1.12),
    saying how many decades beyond it and on which side; none when ``domain`` is None."""
    if not domain:
        return []
    notes = []
    for name, (lo, hi) in domain.items():
        if name not in values:
            continue
        v = float(values[name])
        below, above = math.log10(lo / v), math.log10(v / hi)
        if max(below, above) <= MIN_DECADES:
            continue
        side, dist = ("below", below) if below > above else ("above", above)
        notes.append(f"{name} = {v:.3g} is {dist:.1f} decades {side} the range {label} was "
                     f"fitted on ({lo:.3g} to {hi:.3g}): an extrapolation")
    return notes
