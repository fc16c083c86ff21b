"""Chinchilla's closed-form compute-optimal allocation (numpy only, no JAX).

Kept apart from :mod:`scalelaw.fit.allocate` so that :mod:`scalelaw.published` and
``scalelaw recommend`` can use it without importing JAX.

Examples
--------
>>> n, d = chinchilla_optimal({"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}, 5.76e23)
>>> round(float(n) / 1e9, 1), round(float(d / n), 1)
(32.2, 92.6)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def chinchilla_optimal(params: Mapping[str, float], compute: Any,
                       flops_per_param_token: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt) for L = E + A/N^α + B/D^β at compute C = k·N·D.

    Hoffmann et al. 2022, Eq. 4 / App. D.2: G = (αA/(βB))^(1/(α+β)),
    N_opt = G·(C/k)^(β/(α+β)), D_opt = (C/k)/N_opt.
    """
    A, B, al, be = (float(params[k]) for k in ("A", "B", "alpha", "beta"))
    c = np.asarray(compute, dtype=float) / flops_per_param_token
    g = (al * A / (be * B)) ** (1.0 / (al + be))
    n_opt = g * c ** (be / (al + be))
    return n_opt, c / n_opt
