"""Evaluating fitted hyperparameter laws from their parameters (numpy and scipy only).

The formulas of the ``hparams``, ``transfer`` and ``schedule`` kinds of
:class:`~scalelaw.fit.result.FitResult`, written against plain parameter dicts so that
the result type can evaluate itself (``FitResult.predict``) without importing the
modules that fit it.

Examples
--------
>>> coefs = {"lr_intercept": 0.5862, "lr_coefN": -0.713, "lr_coefD": 0.307,
...          "bs_intercept": -0.5447, "bs_coefD": 0.571}
>>> lr, bs = power_law_predict(coefs, 1e9, 1e11)
>>> round(float(lr), 5), round(float(bs) / 2048)
(0.00164, 541)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

COEFS = ("lr_intercept", "lr_coefN", "lr_coefD", "bs_intercept", "bs_coefD")
"""The five Step Law-form coefficients, natural logs: log lr = lr_intercept + lr_coefN log N
+ lr_coefD log D, log B = bs_intercept + bs_coefD log D (B in tokens)."""


def power_law_predict(coefs: Mapping[str, float], N: Any, D: Any) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate Step Law-form coefficients (:data:`COEFS`) at (N, D): (lr, batch tokens)."""
    lN, lD = np.log(np.asarray(N, dtype=float)), np.log(np.asarray(D, dtype=float))
    lr = np.exp(coefs["lr_intercept"] + coefs["lr_coefN"] * lN + coefs["lr_coefD"] * lD)
    bs = np.exp(coefs["bs_intercept"] + coefs["bs_coefD"] * lD)
    return lr, bs


def transfer_lr(params: Mapping[str, float], metadata: Mapping[str, Any],
                widths: float | Sequence[float] | np.ndarray, level: float = 0.95,
                ) -> tuple[np.ndarray, np.ndarray]:
    """lr*(w) of an LR-transfer fit and its ``level`` Student-t prediction interval.

    ``params``: ``log_lr_ref``, ``width_exponent``, ``reference_width``; ``metadata``:
    ``dof``, ``drift``, ``residual_sd``, ``x_mean``, ``sxx`` (see
    :func:`scalelaw.fit.transfer.fit_lr_transfer`). NaN bounds without residual degrees
    of freedom.
    """
    from scipy import stats

    w = np.asarray(widths, dtype=float)
    x = np.log(w / params["reference_width"])
    log_lr = params["log_lr_ref"] + params["width_exponent"] * x
    n = metadata["dof"] + (2 if metadata["drift"] == "fit" else 1)  # widths in the fit
    if metadata["dof"] > 0:
        t = stats.t.ppf(0.5 + level / 2, metadata["dof"])
        lever = ((x - metadata["x_mean"]) ** 2 / metadata["sxx"]
                 if metadata["drift"] == "fit" else 0.0 * x)
        half = t * metadata["residual_sd"] * np.sqrt(1 + 1 / n + lever)
    else:
        half = np.full_like(x, np.nan)
    return np.exp(log_lr), np.stack([np.exp(log_lr - half), np.exp(log_lr + half)])


def schedule_lr(params: Mapping[str, float], batch: Any, tokens: Any) -> np.ndarray:
    """The Power scheduler's optimal LR ``a * beta^c * T^b`` (Shen et al. 2024, Eq. 5-6:
    c = 1), ``beta`` the batch in sequences, ``T`` the tokens trained; ``c`` is the fit's
    ``batch_exponent`` (1 when absent)."""
    beta = np.asarray(batch, dtype=float)
    c = params.get("batch_exponent", 1.0)
    return params["a"] * beta**c * np.asarray(tokens, dtype=float) ** params["b"]
