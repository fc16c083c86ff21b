"""``fit_law``: fit a :class:`~scalelaw.fit.laws.Law` to a table, with Hoffmann et al.'s objective.

The table's columns are validated and mapped onto the law's inputs (:func:`prepare`), the
robust objective (:mod:`scalelaw.fit.objective`) is minimised from every start of the init
grid at once (:func:`scalelaw.fit.solver.solve`), and the best fit is reported in natural
units as a :class:`~scalelaw.fit.result.FitResult`, optionally with bootstrap draws
(:mod:`scalelaw.fit.bootstrap`) and a held-out extrapolation error.

Examples
--------
>>> import numpy as np, pandas as pd
>>> N, D = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5))
>>> L = 1.8 + 400 / N**0.34 + 2000 / D**0.37
>>> res = fit_law(pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": L.ravel()}))
>>> round(res.params["E"], 2), round(res.params["alpha"], 2)
(1.8, 0.34)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.fit import bootstrap as bs
from scalelaw.fit.laws import Law, get_law
from scalelaw.fit.result import FitResult
from scalelaw.fit.solver import solve
from scalelaw.fit.table import TableLike, check_bootstrap, read_table, validated_columns


def _select_rows(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in cols.items()}


def prepare(table: TableLike, law: Law, *, n: str, d: str, loss: str,
            columns: Mapping[str, str] | None, drop_top: int) -> tuple[dict, np.ndarray, dict]:
    """Validate the table and apply ``drop_top``; return (inputs, target, protocol)."""
    df = read_table(table)
    names = {"N": n, "D": d, **(columns or {})}
    roles = {k: names.get(k, k) for k in law.inputs}
    cols = validated_columns(df, {**roles, "__y": loss}, min_rows=len(law.params))
    y = cols.pop("__y")
    if y.min() <= 0:
        raise ConfigError(f"column {loss!r}: must be > 0")
    protocol: dict[str, Any] = {"columns": {**roles, law.target: loss}, "rows_in": int(len(y))}
    if drop_top < 0:
        raise ConfigError(f"drop_top: must be >= 0, got {drop_top}")
    if drop_top:
        if drop_top >= len(y):
            raise ConfigError(f"drop_top: {drop_top} would drop all {len(y)} rows")
        keep = y < np.sort(y)[-drop_top]  # Epoch AI: loss < sorted(loss)[-k]
        cols, y = _select_rows(cols, keep), y[keep]
        protocol["dropped_rows"] = np.flatnonzero(~keep).tolist()
    _check_identifiable(law, roles, cols)
    return cols, y, protocol


def _check_identifiable(law: Law, roles: Mapping[str, str], cols: Mapping[str, np.ndarray],
                        ) -> None:
    """Refuse inputs that cannot identify the law: one column for two inputs, or an input
    with a single value (its exponent and prefactor would trade off freely)."""
    by_column: dict[str, list[str]] = {}
    for role, column in roles.items():
        by_column.setdefault(column, []).append(role)
    for column, shared in by_column.items():
        if len(shared) > 1:
            flags = ", ".join(k.lower() for k in shared)
            raise ConfigError(f"{flags}: inputs {', '.join(shared)} of law {law.name!r} are all "
                              f"read from column {column!r}; give each its own column")
    for role, values in cols.items():
        distinct = np.unique(values)
        if len(distinct) < 2:
            raise ConfigError(f"column {roles[role]!r}: every row has {role} = {distinct[0]:g}; "
                              f"law {law.name!r} needs at least 2 distinct values of {role} "
                              "to identify its parameters")


def fit_law(
    table: TableLike,
    law: str | Law = "chinchilla",
    *,
    n: str = "N",
    d: str = "D",
    loss: str = "loss",
    columns: Mapping[str, str] | None = None,
    drop_top: int = 0,
    init_grid: Mapping[str, Sequence[float]] | np.ndarray | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    holdout_above: float | None = None,
    delta: float | None | Literal["law"] = "law",
    screen_steps: int = 3,
    keep: int | None = 32,
    tol: float = 1e-12,
) -> FitResult:
    """Fit ``law`` to a table with Hoffmann et al.'s robust multi-start objective.

    Parameters
    ----------
    table : DataFrame or path (.csv, .parquet, .jsonl)
    law : str or Law
        Registry name (see :func:`~scalelaw.fit.laws.list_laws`) or a user :class:`Law`.
    n, d, loss : str
        Column names of N, D and the target (loss, or lr / batch for hparam laws).
    columns : mapping, optional
        Column names for other law inputs, e.g. ``{"U": "unique_tokens", "C": "flops"}``.
    drop_top : int
        Drop rows whose target is >= the ``drop_top``-th largest (Epoch AI drop 5).
    init_grid : mapping or array (S, P), optional
        Overrides per parameter (merged into the law's grid) or an explicit start array.
    bootstrap : int
        Number of row resamples; each refits from the best fit (Epoch AI's protocol),
        all vectorised. Draws land in ``FitResult.samples``.
    seed : int
        Seed of the bootstrap resampling.
    holdout_above : float, optional
        Fit only rows with N <= this; report relative loss error on the larger models in
        ``metadata["holdout"]`` (Farseer's extrapolation metric).
    delta : float, None or "law"
        Huber δ on log residuals (default: the law's, 1e-3 for loss laws).
    screen_steps, keep : int
        All starts run ``screen_steps`` steps; the ``keep`` best are polished
        (``keep=None``: every start to convergence).
    tol : float
        Relative objective accuracy of the polishing solve (see :func:`~scalelaw.fit.solver.solve`).

    Returns
    -------
    FitResult
        ``params`` in natural units; ``objective``; ``metadata`` with fit-space values,
        derived quantities, protocol, and bootstrap / hold-out summaries.

    Raises
    ------
    ConfigError
        Unknown law, missing or invalid columns, too few rows, duplicated rows.
    """
    check_bootstrap(bootstrap)
    law = get_law(law)
    x, y, protocol = prepare(table, law, n=n, d=d, loss=loss, columns=columns,
                             drop_top=drop_top)
    holdout = None
    if holdout_above is not None:
        if "N" not in x:
            raise ConfigError(f"holdout_above: law {law.name!r} has no N input to split on")
        train = x["N"] <= holdout_above
        holdout = (_select_rows(x, ~train), y[~train])
        if not (~train).any():
            raise ConfigError(f"holdout_above: no rows with N > {holdout_above:g}")
        x, y = _select_rows(x, train), y[train]
        if len(y) < len(law.params):
            raise ConfigError(f"holdout_above: {len(y)} row(s) left to fit, need at least "
                              f"{len(law.params)}")
    if isinstance(init_grid, np.ndarray):
        starts = init_grid
    else:
        starts = law.grid(init_grid)
    theta, value, info = solve(law, x, y, starts=starts, delta=delta,
                               screen_steps=screen_steps, keep=keep, tol=tol)
    natural = law.to_natural(theta)
    eff_delta = law.huber_delta if delta == "law" else delta
    metadata: dict[str, Any] = {
        "fit_params": dict(zip(law.params, theta.tolist(), strict=True)),
        "derived": law.derived_values(natural),
        "objective": f"sum Huber(delta={eff_delta}) of log residuals" if eff_delta
        else "sum 0.5*squared log residuals",
        "solver": {"method": "optimistix LBFGS screening + whitened BFGS polish, vmapped "
                   "over starts", **info,
                   "screen_steps": screen_steps, "keep": keep, "tol": tol},
        "protocol": protocol, "source": law.source,
    }
    result = FitResult(law=law.name, params=natural, kind=law.kind,
                       conventions=dict(law.conventions), objective=value,
                       n_points=int(len(y)), metadata=metadata)
    if holdout is not None:
        metadata["holdout"] = bs.holdout_error(result, law, *holdout, above=holdout_above)
    if bootstrap:
        result.samples, summary = bs.bootstrap_samples(law, x, y, theta, n_resamples=bootstrap,
                                                       seed=seed, delta=eff_delta)
        metadata["bootstrap"] = {**summary, "seed": int(seed),
                                 "protocol": "rows resampled, each refit from the best fit; "
                                             "unconverged refits counted and left out"}
    return result
