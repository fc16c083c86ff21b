"""Chinchilla's closed forms: compute-optimal allocation and loss (numpy only, no JAX).

:func:`scalelaw.fit.allocate.compute_optimal` uses them for the ``chinchilla`` law, so that
``scalelaw recommend`` (the published allocations) runs without importing JAX.

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


def chinchilla_loss(params: Mapping[str, float], N: Any, D: Any) -> np.ndarray:
    """L = E + A/N^α + B/D^β in plain numpy (the closed form of the ``chinchilla`` law).

    >>> p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
    >>> round(float(chinchilla_loss(p, 70e9, 1.4e12)), 4)
    1.9366
    """
    E, A, B, al, be = (float(params[k]) for k in ("E", "A", "B", "alpha", "beta"))
    return E + A / np.asarray(N, dtype=float) ** al + B / np.asarray(D, dtype=float) ** be
