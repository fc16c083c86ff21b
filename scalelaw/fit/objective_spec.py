"""Objectives spelled as text: ``NAME[:TOKEN...]``, as ``scalelaw fit --objective`` takes them.

:func:`parse_objective` turns a spec into an :class:`~scalelaw.fit.objective.Objective`;
:attr:`~scalelaw.fit.objective.Objective.name` of a built-in objective is such a spec, so
``parse_objective(obj.name) == obj``. :func:`read_objective` is what
``fit_law(objective=...)`` reads: a spec, or anything
:func:`~scalelaw.fit.objective.as_objective` takes.

>>> parse_objective(huber(1e-3).name) == huber(1e-3) == read_objective("huber")
True
"""

from __future__ import annotations

from scalelaw.errors import ConfigError
from scalelaw.fit.objective import (
    Objective,
    Reduction,
    RowLoss,
    Space,
    absolute,
    as_objective,
    asymmetric,
    huber,
    squared,
)


def read_objective(spec: Objective | str | RowLoss | float | None) -> Objective:
    """:func:`parse_objective` for text, :func:`~scalelaw.fit.objective.as_objective` else."""
    return parse_objective(spec) if isinstance(spec, str) else as_objective(spec)

SPEC_HELP = ("huber[:DELTA], squared, absolute, asymmetric[:UNDER[:OVER]][:absolute|squared]; "
             "each with :log or :raw and optionally :mean")


def parse_objective(spec: str) -> Objective:
    """Read an objective from ``NAME[:TOKEN...]`` (the CLI's ``--objective``).

    ``NAME`` is ``huber``, ``squared``, ``absolute`` or ``asymmetric``. Tokens, in any order:
    ``log`` or ``raw`` (the residual space; default log, raw for asymmetric), ``mean``
    (instead of the sum), ``absolute`` / ``squared`` (asymmetric's base), and numbers:
    Huber's δ (default 1e-3), asymmetric's under- then over-prediction weights (defaults
    10 and 1). :attr:`Objective.name` is such a spec.

    >>> parse_objective("asymmetric:raw:10:mean").describe()
    'mean asymmetric absolute raw residuals (under-prediction x10, over-prediction x1)'
    >>> parse_objective("huber:1e-2:raw").name
    'huber:0.01:raw'
    >>> parse_objective("cauchy")
    Traceback (most recent call last):
    ...
    scalelaw.errors.ConfigError: objective: unknown objective 'cauchy' (huber[:DELTA], ...
    """
    name, *tokens = [t.strip() for t in str(spec).strip().split(":")]
    name = name.lower()
    space: str | None = None
    reduction = "sum"
    base: str | None = None
    numbers: list[float] = []
    if name not in ("huber", "squared", "absolute", "asymmetric"):
        raise ConfigError(f"objective: unknown objective {name!r} ({SPEC_HELP})")
    for token in tokens:
        low = token.lower()
        if low in ("log", "raw") and space is None:
            space = low
        elif low == "mean" and reduction == "sum":
            reduction = "mean"
        elif low in ("absolute", "squared") and name == "asymmetric" and base is None:
            base = low
        else:
            try:
                numbers.append(float(low))
            except ValueError:
                raise ConfigError(f"objective: cannot read {token!r} in {spec!r} "
                                  f"({SPEC_HELP})") from None
    most = {"huber": 1, "asymmetric": 2}.get(name, 0)
    if len(numbers) > most:
        raise ConfigError(f"objective: {name} takes {most or 'no'} number(s), got {spec!r} "
                          f"({SPEC_HELP})")
    red: Reduction = "mean" if reduction == "mean" else "sum"
    if name == "asymmetric":
        under = numbers[0] if numbers else 10.0
        over = numbers[1] if len(numbers) > 1 else 1.0
        return asymmetric(under, over, "log" if space == "log" else "raw",
                          "squared" if base == "squared" else "absolute", red)
    sp: Space = "raw" if space == "raw" else "log"
    if name == "huber":
        return huber(numbers[0] if numbers else 1e-3, sp, red)
    return squared(sp, red) if name == "squared" else absolute(sp, red)
