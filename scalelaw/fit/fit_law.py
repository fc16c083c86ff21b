"""``fit_law``: fit a :class:`~scalelaw.fit.laws.Law` to a table (Hoffmann et al. by default).

The table's columns are validated and mapped onto the law's inputs (:func:`prepare`), the
objective (:mod:`scalelaw.fit.objective`: Huber of log residuals by default; least squares,
absolute, asymmetric or a user function on log or raw residuals), with optional row
weights, is minimised over the free parameters (:mod:`scalelaw.fit.coords`: some may be
fixed or bounded) from every start of the init grid at once
(:func:`scalelaw.fit.solver.solve`), and the best fit is reported in natural units as a
:class:`~scalelaw.fit.result.FitResult`, optionally with bootstrap draws
(:mod:`scalelaw.fit.bootstrap`) and a held-out extrapolation error.

Examples
--------
>>> import numpy as np, pandas as pd
>>> N, D = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5))
>>> L = 1.8 + 400 / N**0.34 + 2000 / D**0.37
>>> res = fit_law(pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": L.ravel()}))
>>> round(res.params["E"], 2), round(res.params["alpha"], 2)
(1.8, 0.34)

Least squares on the raw loss, with E known and alpha bounded:

>>> df = pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": L.ravel()})
>>> res = fit_law(df, objective="squared:raw", fixed={"E": 1.8}, bounds={"alpha": (0.1, 0.3)},
...               init_grid={"a": [5.0, 10.0], "b": [5.0, 10.0], "beta": [0.5]})
>>> res.params["E"], round(res.params["alpha"], 6), res.metadata["at_bound"]
(1.8, 0.3, ['alpha'])
>>> res.metadata["objective"]
'sum 0.5*squared raw residuals'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.fit import bootstrap as bs
from scalelaw.fit import coords as _coords
from scalelaw.fit import identify
from scalelaw.fit.laws import Law, get_law
from scalelaw.fit.objective import Objective, RowLoss, as_objective
from scalelaw.fit.objective_spec import read_objective
from scalelaw.fit.programs import machine_cache
from scalelaw.fit.progress import Progress, ProgressArg, check_progress
from scalelaw.fit.result import FitResult
from scalelaw.fit.solver import solve
from scalelaw.fit.table import TableLike, check_bootstrap, read_table, validated_columns


def _select_rows(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in cols.items()}


def prepare(table: TableLike, law: Law, *, n: str, d: str, loss: str,
            columns: Mapping[str, str] | None, drop_top: int,
            weights: str | Sequence[float] | np.ndarray | None = None,
            min_rows: int | None = None, fixed: Mapping[str, float] | None = None,
            ) -> tuple[dict, np.ndarray, np.ndarray | None, dict]:
    """Validate the table and ``weights`` and apply ``drop_top``; return (inputs, target,
    weights or None, protocol). Inputs that cannot identify the law are refused
    (:func:`scalelaw.fit.identify.check_distinct`; ``fixed`` relaxes the count)."""
    df = read_table(table)
    names = {"N": n, "D": d, **(columns or {})}
    roles = {k: names.get(k, k) for k in law.inputs}
    need = len(law.params) if min_rows is None else min_rows
    cols = validated_columns(df, {**roles, "__y": loss}, min_rows=need)
    w = None if weights is None else row_weights(df, weights)
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
        w = None if w is None else w[keep]
        protocol["dropped_rows"] = np.flatnonzero(~keep).tolist()
    if w is not None:
        protocol["weights"] = weights if isinstance(weights, str) else "array"
    identify.check_distinct(law, roles, cols, fixed)
    return cols, y, w, protocol


def row_weights(df: Any, weights: str | Sequence[float] | np.ndarray) -> np.ndarray:
    """Row weights from a column name or an array of one weight per row: finite, >= 0 and
    not all 0 (a ``ConfigError`` naming ``weights`` otherwise).

    >>> import pandas as pd
    >>> row_weights(pd.DataFrame({"w": [1, 2, 0]}), "w").tolist()
    [1.0, 2.0, 0.0]
    >>> row_weights(pd.DataFrame({"w": [1, 2]}), [1.0, -1.0])
    Traceback (most recent call last):
    ...
    scalelaw.errors.ConfigError: weights: must be >= 0, got -1 at row 1
    """
    if isinstance(weights, str):
        if weights not in df.columns:
            raise ConfigError(f"weights: column {weights!r} not in table")
        raw: Any = df[weights]
    else:
        raw = weights
    try:
        w = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("weights: not numeric") from None
    if w.shape != (len(df),):
        raise ConfigError(f"weights: need one weight per row ({len(df)}), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ConfigError(f"weights: NaN/inf at row {int(np.flatnonzero(~np.isfinite(w))[0])}")
    if (w < 0).any():
        row = int(np.flatnonzero(w < 0)[0])
        raise ConfigError(f"weights: must be >= 0, got {w[row]:g} at row {row}")
    if not (w > 0).any():
        raise ConfigError("weights: all zero; at least some rows need weight > 0")
    return w


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
    objective: Objective | str | RowLoss | None = None,
    weights: str | Sequence[float] | np.ndarray | None = None,
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    screen_steps: int = 3,
    keep: int | None = 32,
    tol: float = 1e-12,
    progress: ProgressArg = True,
) -> FitResult:
    """Fit ``law`` to a table with a robust multi-start solve (Hoffmann et al.'s by default).

    Parameters
    ----------
    table : DataFrame, path (.csv, .parquet, .jsonl), dict of columns or list of row dicts
        Columns may be lists or arrays (:func:`~scalelaw.fit.table.read_table`).
    law : str or Law
        Registry name (see :func:`~scalelaw.fit.laws.list_laws`) or a user :class:`Law`.
    n, d, loss : str
        Column names of N, D and the target (loss, or lr / batch for hparam laws).
    columns : mapping, optional
        Column names for other law inputs, e.g. ``{"U": "unique_tokens", "C": "flops"}``.
    drop_top : int
        Drop rows whose target is >= the ``drop_top``-th largest (Epoch AI drop 5).
    init_grid : mapping or array (S, P), optional
        Overrides per fit-space parameter (merged into the law's grid) or an explicit start
        array over all P fit-space parameters. Values for fixed parameters are ignored
        (duplicate starts dropped); starts outside a bound are moved inside it
        (:mod:`scalelaw.fit.coords`).
    bootstrap : int
        Number of row resamples; each refits from the best fit (Epoch AI's protocol),
        all vectorised. Draws land in ``FitResult.samples`` (fixed parameters constant).
    seed : int
        Seed of the bootstrap resampling.
    holdout_above : float, optional
        Fit only rows with N <= this; report relative loss error on the larger models in
        ``metadata["holdout"]`` (Farseer's extrapolation metric).
    delta : float, None or "law"
        Huber δ on log residuals (default: the law's, 1e-3 for loss laws; ``None``: least
        squares): the shortcut for ``objective=huber(delta)``; give one or the other.
    objective : Objective, str or callable, optional
        The objective (:mod:`scalelaw.fit.objective`): e.g. ``huber(1e-3)``,
        ``squared("raw")``, ``absolute("log")``, ``asymmetric(10, 1, space="raw")``, a spec
        string as the CLI takes (``"asymmetric:raw:10:mean"``, see
        :func:`~scalelaw.fit.objective_spec.parse_objective`), or a function ``r -> per-row
        loss`` in ``jnp`` applied to log residuals (compiled with ``jax.jit``, never
        exported to the disk cache).
    weights : str or array, optional
        Row weights: a column name or one value per table row (finite, >= 0, not all 0).
        The objective is Σ wᵢ·ℓ(rᵢ); bootstrap refits use counts × weights.
    fixed : mapping, optional
        Parameters held at a value, by natural name and in natural units, e.g.
        ``{"E": 1.69}``; they are removed from the search (``metadata["fixed"]``).
    bounds : mapping, optional
        ``{"alpha": (0.1, 0.6)}`` in natural units: enforced by reparametrisation
        (MINUIT's sine map, :mod:`scalelaw.fit.coords`), so the optimum may lie on a bound
        (``metadata["at_bound"]``). The law's own fit-space ``bounds`` still discard
        solutions outside them for the other parameters; a user bound replaces the law's.
    screen_steps, keep : int
        All starts run ``screen_steps`` steps; the ``keep`` best are polished
        (``keep=None``: every start to convergence).
    tol : float
        Relative objective accuracy of the polishing solve (see :func:`~scalelaw.fit.solver.solve`).
    progress : bool or callable
        Show progress of the solve and the bootstrap once a stage takes over 2 s (a bar
        in a terminal, a line in Jupyter); ``False``: never; a function
        ``f(stage, done, total)`` is called instead (:mod:`scalelaw.fit.progress`).

    Returns
    -------
    FitResult
        ``params`` in natural units; ``objective``; ``metadata`` with fit-space values,
        derived quantities, the objective in words (and its spec), protocol, fixed and
        bounded parameters, and bootstrap / hold-out summaries.

    Raises
    ------
    ConfigError
        Unknown law, missing or invalid columns, too few rows, duplicated rows, a bad
        objective, weights, fixed value or bound (the message names the argument); inputs
        that cannot identify the law (one column for N and D, too few distinct values:
        :mod:`scalelaw.fit.identify`).

    Warns
    -----
    IdentifiabilityWarning
        A direction of the parameters the data do not determine (flat curvature at the
        optimum), or a bootstrap interval that runs into a bound (reported as unbounded).

    Examples
    --------
    Fits are in the module's examples; lists, arrays and dicts of columns are taken, and
    bad arguments fail in one line:

    >>> fit_law({"N": [1e8, 2e8, 4e8, 8e8], "D": [1e9] * 4, "loss": [3.2, 3.0, 2.9, 2.8]},
    ...         bootstrap=2.5)
    Traceback (most recent call last):
    ...
    scalelaw.errors.ConfigError: bootstrap: must be 0 or >= 2 resamples (0: no intervals), got 2.5
    """
    check_bootstrap(bootstrap)
    progress = check_progress(progress)
    law = get_law(law)
    obj = _objective(law, objective, delta)
    coords = _coords.make_coords(law, fixed, bounds)
    n_free = len(coords.free)
    x, y, w, protocol = prepare(table, law, n=n, d=d, loss=loss, columns=columns,
                                drop_top=drop_top, weights=weights, min_rows=n_free,
                                fixed=fixed)
    holdout = None
    if holdout_above is not None:
        if "N" not in x:
            raise ConfigError(f"holdout_above: law {law.name!r} has no N input to split on")
        train = x["N"] <= holdout_above
        holdout = (_select_rows(x, ~train), y[~train])
        if not (~train).any():
            raise ConfigError(f"holdout_above: no rows with N > {holdout_above:g}")
        x, y = _select_rows(x, train), y[train]
        w = None if w is None else w[train]
        if len(y) < n_free:
            raise ConfigError(f"holdout_above: {len(y)} row(s) left to fit, need at least "
                              f"{n_free}")
    if w is not None and (w > 0).sum() < n_free:
        raise ConfigError(f"weights: {(w > 0).sum()} row(s) to fit have weight > 0, need at "
                          f"least {n_free} (the free parameters)")
    starts = _starts(law, init_grid)
    with machine_cache(), Progress(f"fitting {law.name}", 1, progress) as bar:
        theta, value, info = solve(law, x, y, starts=starts, weights=w, objective=obj,
                                   coords=coords, screen_steps=screen_steps, keep=keep,
                                   tol=tol)
        bar.advance()
    natural = law.to_natural(theta)
    metadata: dict[str, Any] = {
        "fit_params": dict(zip(law.params, theta.tolist(), strict=True)),
        "derived": law.derived_values(natural),
        "objective": obj.describe(),
        "objective_spec": obj.name,
        **_coords.describe(law, coords, theta),
        "solver": {"method": "optimistix LBFGS screening + whitened BFGS polish, vmapped "
                   "over starts", **info,
                   "screen_steps": screen_steps, "keep": keep, "tol": tol},
        "protocol": protocol, "source": law.source,
        "domain": {k: [float(np.min(v)), float(np.max(v))] for k, v in x.items()},
    }
    weak = identify.weak_directions(law, coords, x, theta, w,
                                    pinned=tuple(metadata.get("at_bound", ())))
    if weak:
        metadata["undetermined"] = [{"params": d["params"], "rms": d["rms"]} for d in weak]
        identify.warn_weak(law, weak)
    result = FitResult(law=law.name, params=natural, kind=law.kind,
                       conventions=dict(law.conventions), objective=value,
                       n_points=int(len(y)), metadata=metadata)
    if holdout is not None:
        metadata["holdout"] = bs.holdout_error(result, law, *holdout, above=holdout_above)
    if bootstrap:
        with machine_cache(), Progress("bootstrap", bootstrap, progress) as bar:
            result.samples, summary = bs.bootstrap_samples(
                law, x, y, theta, n_resamples=bootstrap, seed=seed, objective=obj,
                coords=coords, weights=w, progress=bar.advance)
        metadata["bootstrap"] = {**summary, "seed": int(seed),
                                 "protocol": "rows resampled, each refit from the best fit; "
                                             "unconverged refits counted and left out"}
        identify.warn_open(result)
    return result


def _objective(law: Law, objective: Objective | str | RowLoss | None,
               delta: float | None | Literal["law"]) -> Objective:
    """The fit's :class:`Objective` from ``objective`` or the Huber shortcut ``delta``."""
    if objective is not None and not (isinstance(delta, str) and delta == "law"):
        raise ConfigError("objective, delta: give one or the other (delta is the Huber "
                          "shortcut, objective=huber(delta))")
    if objective is None:
        if isinstance(delta, str) and delta != "law":
            raise ConfigError(f"delta: a number, None or 'law', got {delta!r}")
        return as_objective(law.huber_delta if delta == "law" else delta)
    if isinstance(objective, int | float):
        raise ConfigError(f"objective: expected an Objective, a spec such as 'huber:1e-3' or a "
                          f"function of the residuals, got {objective!r} (a Huber delta goes "
                          "in delta=)")
    obj = read_objective(objective)
    if not obj.builtin:
        _check_row_loss(obj)
    return obj


def _check_row_loss(obj: Objective) -> None:
    """A user loss must map residuals (n,) to finite per-row losses (n,)."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        try:
            out = jax.eval_shape(obj.loss, jax.ShapeDtypeStruct((3,), jnp.float64))
        except Exception as exc:  # any failure of the user's code, reported in one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"objective: the function fails on residuals of shape (3,): "
                              f"{first}") from None
    if getattr(out, "shape", None) != (3,):
        raise ConfigError(f"objective: the function must return one loss per row, shape "
                          f"(3,) for 3 residuals, got {getattr(out, 'shape', type(out))}")


def _starts(law: Law, init_grid: Mapping[str, Sequence[float]] | np.ndarray | None,
            ) -> np.ndarray:
    """Starts (S, P) in fit space from the law's grid or the user's ``init_grid``; values
    given for fixed parameters are ignored (the fixed value replaces them)."""
    if isinstance(init_grid, np.ndarray):
        starts = np.atleast_2d(np.asarray(init_grid, np.float64))
        if starts.shape[1] != len(law.params) or not np.isfinite(starts).all():
            raise ConfigError(f"init_grid: an array of starts needs {len(law.params)} finite "
                              f"columns ({', '.join(law.params)}), got shape {starts.shape}")
        return starts
    given = dict(init_grid or {})
    unknown = [k for k in given if k not in law.params]
    if unknown:
        raise ConfigError(f"init_grid: unknown parameter {unknown[0]!r} of law {law.name!r} "
                          f"(fit-space parameters: {', '.join(law.params)})")
    return law.grid(given)  # fixed parameters' columns are dropped by Coords.starts
