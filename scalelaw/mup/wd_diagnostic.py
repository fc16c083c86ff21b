"""The weight-decay diagnostic of Fan et al. (2025): top singular values across widths.

Fan, Liu, Zhao, Yuan and Gu, "Robust Layerwise Scaling Rules by Proper Weight Decay
Tuning" (arXiv 2510.15262), observe that under AdamW training soon reaches a steady state
set by the optimizer, where the singular-value spectrum of every matrix parameter scales in
norm as ``sqrt(eta / lambda)`` (``eta`` and ``lambda`` that matrix's learning rate and
coupled weight decay) with a shape that hardly changes, and that across widths ``d`` the
top singular value is about ``sqrt(eta / lambda) * d^0.75`` (an empirical exponent, from
LLaMA-style transformers). With muP's hidden LR ``eta ~ 1/d`` this is width-independent
only when ``lambda ~ sqrt(d)`` -- their rule, ``weight_decay_rule="sqrt"`` here -- and their
diagnostic is to match each matrix's top singular value between proxy and target widths.

For the three rules of :mod:`scalelaw.mup.rules` under muP (``eta_h = eta / m``), the
prediction ``sqrt(eta_h / lambda_h)`` scales as ``m^-1`` (``independent``, ``lambda_h =
lambda m``), ``m^-3/4`` (``sqrt``) and ``m^-1/2`` (``fixed``), so Fan et al.'s top singular
value as ``m^-1/4``, ``m^0`` and ``m^1/4``. A known case: an ``n x n`` matrix fed pure
gradient noise under AdamW settles where decay balances the random walk of Adam's
(roughly unit) updates, entries of variance ``eta / (2 lambda)``, so ``sigma_max ->
sqrt(eta / (2 lambda)) * 2 sqrt(n)`` (the Marchenko-Pastur edge): the ``sqrt(eta/lambda)``
scale with a width factor ``d^1/2`` instead of the ``d^3/4`` that trained (low-rank,
correlated) updates give.

:func:`sigma_max_table` takes measured top singular values with each matrix's effective
``eta`` and ``lambda`` (after the muP and weight-decay-rule multipliers) and returns, per
width and matrix family, sigma_max, ``sqrt(eta/lambda)`` and their ratio, and each
quantity's fitted exponent in width. :func:`scalelaw.weight_decay_diagnostic` builds the
measurements from trial folders trained with ``singular_values=True``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

FAN_EXPONENT = 0.75
"""Fan et al. (2025)'s width exponent: sigma_max ~ sqrt(eta/lambda) * d^0.75."""

_REQUIRED = ("width", "family", "sigma_max", "lr", "weight_decay")


@dataclass(frozen=True)
class WeightDecayDiagnostic:
    """Result of :func:`sigma_max_table`.

    Attributes
    ----------
    table : DataFrame
        One row per ``by`` group, width and matrix family: ``sigma_max`` (mean over the
        family's matrices, e.g. the layers of a stacked weight), ``lr`` and
        ``weight_decay`` (effective), ``prediction`` = ``sqrt(lr / weight_decay)``,
        ``ratio`` = ``sigma_max / prediction`` and ``matrices`` (how many were averaged).
    exponents : DataFrame
        One row per ``by`` group and family: the least-squares slopes in log width of
        ``sigma_max``, ``prediction`` and ``ratio``, and ``fan`` = ``prediction`` +
        :data:`FAN_EXPONENT`, Fan et al.'s predicted exponent of sigma_max. A rule keeps
        sublayer gains width-invariant when ``sigma_max``'s exponent is near 0.
    by : tuple of str
    """

    table: pd.DataFrame
    exponents: pd.DataFrame
    by: tuple[str, ...]

    def plot(self, path: str | os.PathLike[str], title: str = "") -> None:
        """Write sigma_max against width, with Fan et al.'s prediction, to ``path``.

        See :func:`scalelaw.plots.plot_sigma_max`.
        """
        from scalelaw.plots import plot_sigma_max

        plot_sigma_max(self, path, title=title)


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(y) & (y > 0)
    if len(np.unique(x[ok])) < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def sigma_max_table(measured: pd.DataFrame,
                    by: Sequence[str] = ("weight_decay_rule",)) -> WeightDecayDiagnostic:
    """Fan et al. (2025)'s diagnostic from measured top singular values.

    Parameters
    ----------
    measured : DataFrame
        One row per matrix (or per layer of a stacked matrix): ``width``, ``family`` (the
        parameter's name, shared across widths), ``sigma_max``, and that matrix's
        effective AdamW ``lr`` and coupled ``weight_decay`` (after the muP multipliers),
        plus the ``by`` columns.
    by : sequence of str
        Columns that split the runs into separate width series (default: the rule).

    Returns
    -------
    WeightDecayDiagnostic

    Examples
    --------
    Under muP's ``"sqrt"`` rule ``sqrt(lr/wd)`` falls as ``width^-3/4``, so a sigma_max
    that does not change with width is Fan et al.'s steady state:

    >>> widths = np.array([32, 64, 128])
    >>> m = widths / 32
    >>> measured = pd.DataFrame({"weight_decay_rule": "sqrt", "width": widths,
    ...                          "family": "w1", "sigma_max": 2.0,
    ...                          "lr": 0.01 / m, "weight_decay": 0.1 * np.sqrt(m)})
    >>> diag = sigma_max_table(measured)
    >>> diag.exponents[["sigma_max", "prediction", "fan"]].round(3).values.tolist()
    [[0.0, -0.75, 0.0]]
    """
    by = tuple(by)
    missing = [c for c in (*_REQUIRED, *by) if c not in measured]
    if missing:
        raise ValueError(f"measured: missing column {missing[0]!r}")
    if measured.empty:
        raise ValueError("measured: no rows")
    data = measured.copy()
    with np.errstate(divide="ignore"):
        data["prediction"] = np.sqrt(data["lr"] / data["weight_decay"])
    keys = [*by, "width", "family"]
    table = (data.groupby(keys, sort=False)  # the runs' order
             .agg(sigma_max=("sigma_max", "mean"), lr=("lr", "mean"),
                  weight_decay=("weight_decay", "mean"), prediction=("prediction", "mean"),
                  matrices=("sigma_max", "size"))
             .reset_index())
    with np.errstate(divide="ignore", invalid="ignore"):
        table["ratio"] = table["sigma_max"] / table["prediction"]
    table.loc[~np.isfinite(table["prediction"]), ["prediction", "ratio"]] = np.nan
    rows = []
    first = table.groupby(list(by), sort=False).ngroup() if by else 0  # runs' order
    table = (table.assign(_first=first).sort_values(["_first", "family", "width"], kind="stable")
             .drop(columns="_first").reset_index(drop=True))
    for key, part in table.groupby([*by, "family"], sort=False):
        x = part["width"].to_numpy(dtype=float)
        row: dict[str, Any] = dict(zip([*by, "family"],
                                       key if isinstance(key, tuple) else (key,), strict=True))
        slopes = {col: _slope(x, part[col].to_numpy(dtype=float))
                  for col in ("sigma_max", "prediction", "ratio")}
        row.update(slopes, fan=slopes["prediction"] + FAN_EXPONENT)
        rows.append(row)
    return WeightDecayDiagnostic(table, pd.DataFrame(rows), by)
