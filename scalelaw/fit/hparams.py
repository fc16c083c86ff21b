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
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.errors import ConfigError
from scalelaw.fit.bowl import DEFAULT_WINDOW, cell_optima, fit_bowls
from scalelaw.fit.powerlaw_form import COEFS, power_law_predict
from scalelaw.fit.result import FitResult
from scalelaw.fit.table import TableLike, read_table, validated_columns

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
    loss: str = "loss",
    batch_unit: str = "sequences",
    seq_len: int = 2048,
) -> pd.DataFrame:
    """Validate a run table and return canonical columns ``N, D, lr, batch_tokens, loss``.

    Parameters
    ----------
    table : DataFrame or path (.csv, .parquet, .jsonl)
    n, d, lr, batch, loss : str
        Column names of parameters, tokens, peak LR, batch size and final loss.
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
    cols = validated_columns(
        df, {"N": n, "D": d, "lr": lr, "batch": batch, "loss": loss}, min_rows=4
    )
    scale = float(seq_len) if batch_unit == "sequences" else 1.0
    out = pd.DataFrame(
        {"N": cols["N"], "D": cols["D"], "lr": cols["lr"],
         "batch_tokens": cols["batch"] * scale, "loss": cols["loss"]}
    )
    if out.groupby(["N", "D"]).ngroups < 2:
        raise ConfigError(f"table: all runs share one ({n}, {d}) cell; need at least two")
    return out


# ------------------------------------------------------------------------------ Step Law band
def band_mask(runs: pd.DataFrame, threshold: float = 0.0025) -> np.ndarray:
    """Runs within ``threshold`` relative loss of their cell's minimum (Step Law §3).

    ``|L / L*(N, D) − 1| < threshold`` with ``L*`` the smallest loss in the (N, D) cell.
    """
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold: must lie in (0, 1), got {threshold!r}")
    best = runs.groupby(["N", "D"])["loss"].transform("min").to_numpy()
    return np.abs(runs["loss"].to_numpy() / best - 1.0) < threshold


def _design(logs: Sequence[np.ndarray]) -> np.ndarray:
    return np.column_stack([np.ones_like(logs[0]), *logs])


def _ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares, batched over leading axes of ``X`` (…, n, k) and ``y`` (…, n)."""
    xtx = np.einsum("...ni,...nj->...ij", X, X)
    xty = np.einsum("...ni,...n->...i", X, y)
    return np.linalg.solve(xtx, xty[..., None])[..., 0]


def power_law_ols(
    N: np.ndarray, D: np.ndarray, lr: np.ndarray, batch_tokens: np.ndarray
) -> dict[str, float]:
    """OLS of log lr on (1, log N, log D) and of log B on (1, log D); natural logs.

    Returns the five coefficients named as in :data:`COEFS` (Step Law's bootstrap table).
    """
    lN, lD = np.log(N), np.log(D)
    if not _well_posed(_design([lN, lD])):
        raise ConfigError(
            "table: the optima need at least two distinct N and D, not collinear in log space"
        )
    a = _ols(_design([lN, lD]), np.log(lr))
    b = _ols(_design([lD]), np.log(batch_tokens))
    return dict(zip(COEFS, [*a.tolist(), *b.tolist()], strict=True))


def bootstrap_power_law(
    N: np.ndarray,
    D: np.ndarray,
    lr: np.ndarray,
    batch_tokens: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Refit :func:`power_law_ols` on ``n_boot`` resamples of the rows (vectorised).

    Resamples whose design is singular (e.g. a single distinct N drawn, or N and D
    collinear) are dropped.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(N), size=(n_boot, len(N)))
    lN, lD = np.log(N)[idx], np.log(D)[idx]
    ones = np.ones_like(lN)
    Xa, Xb = np.stack([ones, lN, lD], axis=-1), np.stack([ones, lD], axis=-1)
    ok = _well_posed(Xa) & _well_posed(Xb)
    a = _ols(Xa[ok], np.log(lr)[idx[ok]])
    b = _ols(Xb[ok], np.log(batch_tokens)[idx[ok]])
    draws = np.concatenate([a, b], axis=1)
    return {name: draws[:, i] for i, name in enumerate(COEFS)}


def _well_posed(X: np.ndarray) -> np.ndarray:
    """Batched check that each design (…, n, k) has full column rank (centred, scaled)."""
    Xc = X[..., 1:] - X[..., 1:].mean(axis=-2, keepdims=True)
    Xc = Xc / np.maximum(np.linalg.norm(Xc, axis=-2, keepdims=True), 1e-300)
    eig = np.linalg.eigvalsh(np.einsum("...ni,...nj->...ij", Xc, Xc))
    return eig[..., 0] > 1e-8


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
    loss: str = "loss",
    batch_unit: str = "sequences",
    seq_len: int = 2048,
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
        One row per run; see :func:`load_runs` for the column arguments.
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
    runs = load_runs(
        table, n=n, d=d, lr=lr, batch=batch, loss=loss, batch_unit=batch_unit, seq_len=seq_len
    )
    meta: dict[str, Any] = {"columns": {"N": n, "D": d, "lr": lr, "batch": batch, "loss": loss},
            "table": str(table) if isinstance(table, str | os.PathLike) else None,
            "batch_unit": batch_unit, "seq_len": int(seq_len), "threshold": threshold,
            "n_cells": int(runs.groupby(["N", "D"]).ngroups)}
    if method == "band":
        selected = runs[band_mask(runs, threshold)]
        return _law_result(selected, method=method, bootstrap=bootstrap, seed=seed, metadata=meta)
    meta["window"] = window
    optima = cell_optima(runs, window=window)
    optima = optima.rename(columns={"lr_opt": "lr", "batch_opt": "batch_tokens"})
    meta["cells"] = optima.to_dict(orient="list")
    return _law_result(optima, method=method, bootstrap=bootstrap, seed=seed, metadata=meta)


# ------------------------------------------------------------------------------ held-out cells
_COLS = ("N", "D", "lr", "batch_tokens")


def leave_one_cell_out(
    runs: pd.DataFrame, *, threshold: float = 0.0025, window: float = DEFAULT_WINDOW
) -> pd.DataFrame:
    """Hold out each cell, predict its optimum from the others, score it on its bowl.

    Both estimators are fitted on the remaining cells with point OLS: ``band`` (Step Law:
    pooled runs with ``|L/L* − 1| < threshold``) and ``bowl`` (cell minima of
    :func:`~scalelaw.fit.bowl.fit_bowl`). The predicted (lr, B) is evaluated **on the
    held-out cell's fitted bowl**: ``excess_* = (bowl(pred) − bowl_min) / bowl_min``, the
    relative excess over the bowl's own minimum. This is our declared choice for off-grid
    evaluation; Step Law reports 0.094% on its held-out cell without saying how it evaluates
    an off-grid point. ``excess_*_vs_grid`` uses the cell's best *grid* loss instead of the
    bowl minimum (it can be negative).

    Returns
    -------
    DataFrame
        One row per held-out cell, with the predicted lr and batch (tokens) of each
        estimator and their excesses; ``df[["excess_band", "excess_bowl"]].mean()`` is the
        summary.
    """
    bowls = fit_bowls(runs, window=window)
    keep = band_mask(runs, threshold)
    cells = list(bowls)
    opt = pd.DataFrame([(N, D, b.lr_opt, b.batch_opt) for (N, D), b in bowls.items()],
                       columns=["N", "D", "lr", "batch_tokens"])
    rows = []
    for k, (N, D) in enumerate(cells):
        held = (runs["N"] == N) & (runs["D"] == D)
        band = runs[keep & ~held]
        others = opt.drop(index=k)
        fits = {
            "band": power_law_ols(*(band[c].to_numpy() for c in _COLS)),
            "bowl": power_law_ols(*(others[c].to_numpy() for c in _COLS)),
        }
        b = bowls[(N, D)]
        grid = float(runs.loc[held, "loss"].min())
        row = {"N": N, "D": D, "grid_best": grid, "bowl_min": b.loss_opt,
               "bowl_lr": b.lr_opt, "bowl_batch": b.batch_opt}
        for name, coefs in fits.items():
            lr_hat, bs_hat = (float(v) for v in power_law_predict(coefs, N, D))
            pred = float(b.loss(lr_hat, bs_hat))
            row[f"lr_{name}"] = lr_hat
            row[f"batch_{name}"] = bs_hat
            row[f"excess_{name}"] = (pred - b.loss_opt) / b.loss_opt
            row[f"excess_{name}_vs_grid"] = (pred - grid) / grid
        rows.append(row)
    return pd.DataFrame(rows)


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
