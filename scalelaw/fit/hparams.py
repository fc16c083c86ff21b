"""Optimal-hyperparameter laws: peak LR η*(N, D) and batch size B*(D) from LR × batch grids.

Input is a table of runs, one row per (N, D, lr, batch) with its final (smoothed) training
loss. Each (N, D) pair is a *cell*; the fitter locates each cell's optimum and regresses
the optima on N and D in log space (Step Law form, Li et al. 2025, arXiv 2503.04715, Eq. 1):

    η*(N, D) = exp(lr_intercept) · N^lr_coefN · D^lr_coefD
    B*(D)    = exp(bs_intercept) · D^bs_coefD            (B in tokens)

Two estimators of the optimum (``method``):

- ``"band"`` — Step Law's procedure (their ``fit_tool.py``): per cell keep every run with
  ``|L / L* − 1| < threshold`` (0.0025), pool the kept runs of all cells, OLS of log lr on
  log N and log D and of log B (tokens) on log D; 1,000 bootstrap resamples of the pooled
  runs, coefficients averaged (the published law is that mean).
- ``"bowl"`` — a robust convex quadratic in (log lr, log B) per cell
  (:mod:`scalelaw.fit.bowl`); its continuous minimum is the cell optimum, and the OLS runs
  over the cell minima (bootstrap over cells).

Conventions: N as given (Step Law: non-embedding), D in tokens, batch in tokens
(``batch_unit="sequences"`` multiplies by ``seq_len``), lr = peak LR, loss in nats.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> rows = []
>>> for N, D in [(1e8, 2e9), (1e8, 8e9), (4e8, 8e9), (4e8, 3.2e10)]:
...     lr0, b0 = 2.0 * N**-0.7 * D**0.3, 0.5 * D**0.57
...     for lr in lr0 * 2.0 ** np.arange(-3, 3.5, 0.5):
...         for b in b0 * 2.0 ** np.arange(-3, 3.5, 1.0):
...             loss = 3.0 + 0.01 * np.log(lr / lr0) ** 2 + 0.005 * np.log(b / b0) ** 2
...             rows.append((N, D, lr, b, loss))
>>> runs = pd.DataFrame(rows, columns=["N", "D", "lr", "bs", "loss"])
>>> fit = fit_hparams(runs, batch_unit="tokens", bootstrap=0)
>>> round(fit.params["lr_coefN"], 2), round(fit.params["bs_coefD"], 2)
(-0.7, 0.57)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.errors import ConfigError
from scalelaw.fit.bowl import DEFAULT_WINDOW, cell_optima
from scalelaw.fit.held_out import holdout_cell
from scalelaw.fit.powerlaw_form import (
    COEFS,
    band_mask,
    bootstrap_power_law,
    power_law_ols,
)
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, read_table, resolve_loss_column, validated_columns

METHODS = ("band", "bowl")
BATCH_UNITS = ("sequences", "tokens")
CONVENTIONS = {
    "N": "as given (Step Law: non-embedding params)",
    "D": "tokens",
    "B": "tokens",
    "lr": "peak learning rate",
    "loss": "final smoothed training loss, nats",
}


# ------------------------------------------------------------------------------ input
def load_runs(
    table: TableLike,
    *,
    n: str = "N",
    d: str = "D",
    lr: str = "lr",
    batch: str = "bs",
    loss: str | None = None,
    batch_unit: str = "sequences",
    seq_len: int = 2048,
    cell_keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Validate a run table and return canonical columns ``N, D, lr, batch_tokens, loss``.

    Parameters
    ----------
    table : DataFrame or path (.csv, .parquet, .jsonl)
    n, d, lr, batch, loss : str
        Column names of parameters, tokens, peak LR, batch size and final loss. ``loss``
        defaults to ``"loss"``; when the table also has a smoothed-loss column the
        returned frame's ``attrs["loss_note"]`` says so (and the fitters print it).
    cell_keys : sequence of str, optional
        Columns that define a cell (default ``(n, d)``), e.g. ``("model_id", "D")`` so that
        two MoE models with the same total N stay apart; the frame then has an integer
        ``cell`` column, and N and D must be constant within each cell.
    batch_unit : {"sequences", "tokens"}
        Unit of the batch column; sequences are multiplied by ``seq_len``.
    seq_len : int
        Tokens per sequence (Step Law: 2048).

    Raises
    ------
    ConfigError
        Missing column, NaN/inf, non-positive value, duplicated row, bad unit, or fewer
        than two cells (the message names the column or argument).
    """
    if batch_unit not in BATCH_UNITS:
        raise ConfigError(f"batch_unit: must be 'sequences' or 'tokens', got {batch_unit!r}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int | np.integer) or seq_len <= 0:
        raise ConfigError(f"seq_len: must be a positive integer, got {seq_len!r}")
    df = read_table(table)
    loss, note = resolve_loss_column(df, loss)
    cols = validated_columns(
        df, {"N": n, "D": d, "lr": lr, "batch": batch, "loss": loss}, min_rows=4
    )
    scale = float(seq_len) if batch_unit == "sequences" else 1.0
    out = pd.DataFrame(
        {"N": cols["N"], "D": cols["D"], "lr": cols["lr"],
         "batch_tokens": cols["batch"] * scale, "loss": cols["loss"]}
    )
    if cell_keys is not None and tuple(cell_keys) != (n, d):
        out["cell"] = cell_codes(df, cell_keys)
        for role, name in (("N", n), ("D", d)):
            if (out.groupby("cell")[role].nunique() > 1).any():
                raise ConfigError(f"cell_keys: a cell of ({', '.join(cell_keys)}) mixes "
                                  f"several values of column {name!r}; add it to cell_keys")
    if out.groupby(["cell"] if "cell" in out else ["N", "D"]).ngroups < 2:
        raise ConfigError(f"table: all runs share one ({n}, {d}) cell; need at least two")
    out.attrs["loss_column"] = loss
    if note:
        out.attrs["loss_note"] = note
    return out


def cell_codes(df: pd.DataFrame, cell_keys: Sequence[str]) -> np.ndarray:
    """An integer cell id per row from the ``cell_keys`` columns (``ConfigError`` naming
    ``cell_keys`` for a missing column)."""
    keys = list(cell_keys)
    missing = [k for k in keys if k not in df.columns]
    if not keys or missing:
        raise ConfigError(f"cell_keys: column {missing[0] if missing else ''!r} not in table "
                          f"(columns: {', '.join(map(str, df.columns[:12]))})")
    return df.groupby(keys, sort=True, dropna=False).ngroup().to_numpy()


# ------------------------------------------------------------------------------ Step Law band
def _with_prefactors(values: dict[str, float]) -> dict[str, float]:
    out = dict(values)
    out["lr_prefactor"] = float(np.exp(values["lr_intercept"]))
    out["bs_prefactor"] = float(np.exp(values["bs_intercept"]))
    return out


def _law_result(
    optima: pd.DataFrame, *, method: str, bootstrap: int, seed: int, metadata: dict
) -> FitResult:
    arrays = [optima[c].to_numpy() for c in ("N", "D", "lr", "batch_tokens")]
    point = power_law_ols(*arrays)
    samples = None
    params = point
    if bootstrap > 0:
        draws = bootstrap_power_law(*arrays, n_boot=bootstrap, seed=seed)
        params = {k: float(np.mean(v)) for k, v in draws.items()}
        samples = {k: v.tolist() for k, v in draws.items()}
        with np.errstate(over="ignore"):  # an undetermined exponent: a huge intercept
            samples["lr_prefactor"] = np.exp(draws["lr_intercept"]).tolist()
        samples["bs_prefactor"] = np.exp(draws["bs_intercept"]).tolist()
    return FitResult(
        law=f"steplaw-{method}",
        params=_with_prefactors(params),
        kind="hparams",
        conventions=dict(CONVENTIONS),
        n_points=len(optima),
        samples=samples,
        metadata={
            "method": method,
            "estimate": "bootstrap mean" if bootstrap > 0 else "point OLS",
            "point_fit": _with_prefactors(point),
            "bootstrap": bootstrap,
            "seed": seed,
            "source": "Li et al. 2025, Step Law, arXiv 2503.04715 (Eq. 1, §3 procedure)",
            **metadata,
        },
    )


def fit_hparams(
    table: TableLike,
    *,
    n: str = "N",
    d: str = "D",
    lr: str = "lr",
    batch: str = "bs",
    loss: str | None = None,
    batch_unit: str = "sequences",
    seq_len: int = 2048,
    cell_keys: Sequence[str] | None = None,
    method: str = "band",
    threshold: float = 0.0025,
    window: float = DEFAULT_WINDOW,
    bootstrap: int = 0,
    seed: int = 0,
) -> FitResult:
    """Fit Step Law–form laws η*(N, D), B*(D) to an LR × batch grid of runs.

    Parameters
    ----------
    table : DataFrame or path
        One row per run; see :func:`load_runs` for the column arguments and
        ``cell_keys``. A defaulted ``loss`` with a smoothed-loss column present is warned
        about (``UserWarning``) and noted in ``metadata["loss_note"]``.
    method : {"band", "bowl"}
        ``"band"``: Step Law's near-optimal band (pooled runs with
        ``|L/L* − 1| < threshold``). ``"bowl"``: each cell's continuous minimum of a
        robust convex quadratic in (log lr, log B) (:func:`scalelaw.fit.bowl.fit_bowl`).
    threshold : float
        Band half-width as a relative loss (Step Law and DeepSeek LLM use 0.25%).
    window : float
        ``"bowl"`` only: runs within this relative loss of the cell's best are fitted.
    bootstrap : int
        Number of bootstrap resamples (runs for ``"band"``, cells for ``"bowl"``); the
        reported ``params`` are then the bootstrap means (Step Law's protocol) and the
        single OLS fit is in ``metadata["point_fit"]``. 0 (the default, as in every
        fit of scalelaw) reports the point fit and no intervals; Step Law used 1000.

    Returns
    -------
    FitResult
        ``kind="hparams"``; params ``lr_intercept, lr_coefN, lr_coefD, bs_intercept,
        bs_coefD`` (natural logs) plus ``lr_prefactor = exp(lr_intercept)`` and
        ``bs_prefactor``; bootstrap ``samples`` of each.

    Examples
    --------
    >>> fit = fit_hparams("dense_lr_bs_loss.csv", loss="smooth loss")  # doctest: +SKIP
    >>> fit.n_points                                                    # doctest: +SKIP
    129
    """
    if method not in METHODS:
        raise ConfigError(f"method: must be 'band' or 'bowl', got {method!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise ConfigError(f"bootstrap: must be a non-negative integer, got {bootstrap!r}")
    runs = load_runs(table, n=n, d=d, lr=lr, batch=batch, loss=loss, batch_unit=batch_unit,
                     seq_len=seq_len, cell_keys=cell_keys)
    loss = runs.attrs["loss_column"]
    cells = runs.groupby(["cell"] if "cell" in runs else ["N", "D"])
    meta: dict[str, Any] = {"columns": {"N": n, "D": d, "lr": lr, "batch": batch, "loss": loss},
            "table": str(table) if isinstance(table, str | os.PathLike) else None,
            "batch_unit": batch_unit, "seq_len": int(seq_len), "threshold": threshold,
            "n_cells": int(cells.ngroups),
            "cell_keys": list(cell_keys) if cell_keys is not None else [n, d],
            "not_determined": not_determined(cells["N"].first(), cells["D"].first(), n, d),
            "domain": {k: [float(runs[k].min()), float(runs[k].max())] for k in ("N", "D")}}
    if "loss_note" in runs.attrs:
        meta["loss_note"] = runs.attrs["loss_note"]
        warnings.warn(runs.attrs["loss_note"], UserWarning, stacklevel=2)
    meta["holdout"] = holdout_cell(runs, method=method, threshold=threshold, window=window)
    if method == "band":
        selected = runs[band_mask(runs, threshold)]
        return _law_result(selected, method=method, bootstrap=bootstrap, seed=seed, metadata=meta)
    meta["window"] = window
    optima = cell_optima(runs, window=window)
    optima = optima.rename(columns={"lr_opt": "lr", "batch_opt": "batch_tokens"})
    meta["cells"] = optima.to_dict(orient="list")
    return _law_result(optima, method=method, bootstrap=bootstrap, seed=seed, metadata=meta)


MIN_SPAN = 1.5
"""An exponent is *not determined* when its regressor spans less than this factor across
the cells (e.g. MoE models that share a total N: the exponent on N is then fitted to noise)."""


def not_determined(N: pd.Series, D: pd.Series, n: str = "N", d: str = "D") -> dict[str, str]:
    """``{coefficient: reason}`` for the exponents the cells cannot determine.

    >>> import pandas as pd
    >>> not_determined(pd.Series([2.150e9, 2.155e9]), pd.Series([2e9, 2e10]))
    {'lr_coefN': 'not determined: N spans only x1.002 across the cells (needs x1.5)'}
    """
    out = {}
    for coefs, values, name in ((("lr_coefN",), N, n), (("lr_coefD", "bs_coefD"), D, d)):
        span = float(values.max() / values.min())
        if span < MIN_SPAN:
            for c in coefs:
                out[c] = (f"not determined: {name} spans only x{span:.4g} across the cells "
                          f"(needs x{MIN_SPAN:g})")
    return out


# ------------------------------------------------------------------------------ use a law
def from_coefficients(
    coefs: Sequence[float] | pd.DataFrame | str | os.PathLike[str], *, law: str = "steplaw"
) -> FitResult:
    """A ``FitResult`` from Step Law coefficients, or from a table of bootstrap refits.

    Parameters
    ----------
    coefs : sequence of 5 floats, DataFrame or CSV path
        ``(lr_intercept, lr_coefN, lr_coefD, bs_intercept, bs_coefD)`` (natural logs), or a
        table with those columns, one bootstrap refit per row (e.g. Step Law's
        ``1004_fitted_lr_bs_scaling_model_parameters.csv``): params are the column means
        and the rows become ``samples``.
    """
    if isinstance(coefs, pd.DataFrame | str | os.PathLike):
        df = read_table(coefs)
        cols = validated_columns(
            df, {c: c for c in COEFS}, positive=(), min_rows=2, allow_duplicates=True
        )
        samples = {k: v.tolist() for k, v in cols.items()}
        samples["lr_prefactor"] = np.exp(cols["lr_intercept"]).tolist()
        samples["bs_prefactor"] = np.exp(cols["bs_intercept"]).tolist()
        means = {k: float(np.mean(v)) for k, v in cols.items()}
        return FitResult(law=law, params=_with_prefactors(means), kind="hparams",
                         conventions=dict(CONVENTIONS), n_points=len(df), samples=samples,
                         metadata={"estimate": "bootstrap mean", "bootstrap": len(df)})
    values = [float(c) for c in coefs]
    if len(values) != len(COEFS):
        raise ValueError(f"coefs: expected {len(COEFS)} values {COEFS}, got {len(values)}")
    return FitResult(law=law, params=_with_prefactors(dict(zip(COEFS, values, strict=True))),
                     kind="hparams", conventions=dict(CONVENTIONS))
