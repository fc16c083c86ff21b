"""The Step Law form of the optimal-hyperparameter laws (numpy only, no pandas or JAX).

``lr*(N, D) = exp(lr_intercept) * N^lr_coefN * D^lr_coefD`` and
``B*(D) = exp(bs_intercept) * D^bs_coefD`` (batch in tokens), with natural logs: the
coefficient names of Step Law's released fits (Li et al. 2025, arXiv 2503.04715, Eq. 1).
Kept apart so that :mod:`scalelaw.recommend` evaluates saved fits without importing pandas.

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

COEFS = ("lr_intercept", "lr_coefN", "lr_coefD", "bs_intercept", "bs_coefD")


def power_law_predict(coefs: Mapping[str, float], N: Any, D: Any) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate Step Law-form coefficients (:data:`COEFS`) at (N, D): (lr, batch tokens)."""
    lN, lD = np.log(np.asarray(N, dtype=float)), np.log(np.asarray(D, dtype=float))
    lr = np.exp(coefs["lr_intercept"] + coefs["lr_coefN"] * lN + coefs["lr_coefD"] * lD)
    bs = np.exp(coefs["bs_intercept"] + coefs["bs_coefD"] * lD)
    return lr, bs
