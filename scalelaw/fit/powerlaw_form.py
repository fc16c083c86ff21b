"""The Step Law form of the optimal-hyperparameter laws (numpy only, no pandas or JAX).

``lr*(N, D) = exp(lr_intercept) * N^lr_coefN * D^lr_coefD`` and
``B*(D) = exp(bs_intercept) * D^bs_coefD`` (batch in tokens), with natural logs: the
coefficient names of Step Law's released fits (Li et al. 2025, arXiv 2503.04715, Eq. 1).
Kept apart so that :mod:`scalelaw.recommend` evaluates saved fits without importing pandas:
:func:`predict_hparams` is the one evaluation of a ``kind="hparams"`` fit, used by both.

Examples
--------
>>> coefs = {"lr_intercept": 0.5862, "lr_coefN": -0.713, "lr_coefD": 0.307,
...          "bs_intercept": -0.5447, "bs_coefD": 0.571}
>>> lr, bs = power_law_predict(coefs, 1e9, 1e11)
>>> round(float(lr), 5), round(float(bs) / 2048)
(0.00164, 541)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scalelaw.fit.result import FitResult

COEFS = ("lr_intercept", "lr_coefN", "lr_coefD", "bs_intercept", "bs_coefD")
"""The five Step Law-form coefficients, natural logs: log lr = lr_intercept + lr_coefN log N
+ lr_coefD log D, log B = bs_intercept + bs_coefD log D (B in tokens)."""


def power_law_predict(coefs: Mapping[str, float], N: Any, D: Any) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate Step Law-form coefficients (:data:`COEFS`) at (N, D): (lr, batch tokens)."""
    lN, lD = np.log(np.asarray(N, dtype=float)), np.log(np.asarray(D, dtype=float))
    lr = np.exp(coefs["lr_intercept"] + coefs["lr_coefN"] * lN + coefs["lr_coefD"] * lD)
    bs = np.exp(coefs["bs_intercept"] + coefs["bs_coefD"] * lD)
    return lr, bs


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
