"""The Step Law form of the optimal-hyperparameter laws (numpy only, no pandas or JAX).

``lr*(N, D) = exp(lr_intercept) * N^lr_coefN * D^lr_coefD`` and
``B*(D) = exp(bs_intercept) * D^bs_coefD`` (batch in tokens), with natural logs: the
coefficient names of Step Law's released fits (Li et al. 2025, arXiv 2503.04715, Eq. 1).
Kept apart so that :mod:`scalelaw.recommend` evaluates saved fits without importing pandas:
:func:`predict_hparams` is the one evaluation of a ``kind="hparams"`` fit, used by both.

The formula itself is ``scalelaw.fit._evaluate.power_law_predict`` (re-exported here),
whose example this module shares; :func:`predict_hparams` shows it on a fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scalelaw.errors import ConfigError
from scalelaw.fit._evaluate import COEFS, power_law_predict
from scalelaw.fit.result import FitResult

__all__ = ["COEFS", "band_mask", "bootstrap_power_law", "power_law_ols", "power_law_predict",
           "predict_hparams"]


def predict_hparams(
    fit: FitResult, N: float | np.ndarray, D: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (peak LR, batch in tokens) at (N, D) from a ``kind="hparams"`` fit.

    Raises
    ------
    ValueError
        ``fit`` is not a ``kind="hparams"`` fit with the :data:`COEFS` (the message names
        ``laws``, the argument of :func:`scalelaw.recommend` that such fits come through).

    Examples
    --------
    >>> law = FitResult("steplaw", {"lr_intercept": np.log(1.79), "lr_coefN": -0.713,
    ...                             "lr_coefD": 0.307, "bs_intercept": np.log(0.58),
    ...                             "bs_coefD": 0.571}, kind="hparams")
    >>> lr, b = predict_hparams(law, 1e9, 1e11)
    >>> round(float(lr), 5), round(float(b) / 1e6, 3)
    (0.00163, 1.108)
    """
    p = fit.params
    missing = [k for k in COEFS if k not in p]
    if fit.kind != "hparams" or missing:
        raise ValueError(
            f"laws: expected a kind='hparams' fit with {', '.join(COEFS)}; "
            f"got law {fit.law!r} (kind {fit.kind!r})"
        )
    return power_law_predict(p, N, D)


# ------------------------------------------------------------------------------ fitting the form
def cell_columns(runs: pd.DataFrame) -> list[str]:
    """The columns that key a run's cell: ``cell`` where the table has one (set from the
    user's ``cell_keys``, e.g. a model id and D, so that models sharing N stay apart), else
    ``N`` and ``D``."""
    return ["cell"] if "cell" in runs.columns else ["N", "D"]


def band_mask(runs: pd.DataFrame, threshold: float = 0.0025) -> np.ndarray:
    """Runs within ``threshold`` relative loss of their cell's minimum (Step Law §3).

    ``|L / L*(N, D) − 1| < threshold`` with ``L*`` the smallest loss in the run's cell
    (:func:`cell_columns`).
    """
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold: must lie in (0, 1), got {threshold!r}")
    best = runs.groupby(cell_columns(runs))["loss"].transform("min").to_numpy()
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
