"""Compute-optimal allocation from a fitted loss surface L(N, D), with C = 6·N·D.

For Chinchilla's form L = E + A/N^α + B/D^β the optimum is closed form (Hoffmann et al. 2022,
Eq. 4 / App. D.2): G = (αA/(βB))^(1/(α+β)), N_opt = G·(C/6)^(β/(α+β)),
D_opt = G⁻¹·(C/6)^(α/(α+β)), and the loss there is evaluated in numpy, so this path imports
no JAX (:mod:`scalelaw.recommend` uses it for the published allocations). Any other law is
minimised numerically along the iso-FLOP line D = C/(6N) (bounded Brent search in log N).

Examples
--------
>>> p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
>>> out = compute_optimal(p, 5.76e23)
>>> round(float(out["N_opt"][0]) / 1e9, 1), round(float(out["tokens_per_param"][0]), 1)
(32.2, 92.6)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scalelaw.fit.chinchilla import chinchilla_loss, chinchilla_optimal
from scalelaw.fit.laws import Law, get_law
from scalelaw.fit.result import FitResult


def numeric_optimal(law: Law, params: Mapping[str, float], compute: Any,
                    flops_per_param_token: float = 6.0, *,
                    n_range: tuple[float, float] = (1e3, 1e16)) -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt) minimising ``law`` along D = C/(k·N), for each C; grid + Brent refine."""
    from scipy.optimize import minimize_scalar

    cs = np.atleast_1d(np.asarray(compute, dtype=float))
    grid = np.linspace(np.log(n_range[0]), np.log(n_range[1]), 401)
    n_out = np.empty_like(cs)
    for i, c in enumerate(cs):
        def loss(log_n: Any, c: float = c) -> Any:
            n = np.exp(log_n)
            return law.predict(params, N=n, D=c / (flops_per_param_token * n))

        vals = loss(grid)
        j = int(np.clip(np.nanargmin(vals), 1, len(grid) - 2))
        res = minimize_scalar(lambda t: float(loss(t)), bounds=(grid[j - 1], grid[j + 1]),
                              method="bounded", options={"xatol": 1e-10})
        n_out[i] = np.exp(res.x)
    n_out = n_out.reshape(np.shape(compute))
    return n_out, np.asarray(compute, dtype=float) / (flops_per_param_token * n_out)


def compute_optimal(fit: FitResult | Mapping[str, float], compute: Any, *,
                    law: str | Law | None = None, flops_per_param_token: float = 6.0,
                    numeric: bool = False) -> dict[str, np.ndarray]:
    """N_opt(C), D_opt(C), tokens per parameter and predicted loss at the optimum.

    Parameters
    ----------
    fit : FitResult or dict of natural parameters
    compute : float or array
        Training FLOPs C (> 0).
    law : str or Law, optional
        Default: ``fit.law`` for a FitResult, else ``"chinchilla"``.
    flops_per_param_token : float
        k in C = k·N·D (6 for the usual forward + backward count).
    numeric : bool
        Force the numeric optimiser even where a closed form exists.

    Raises
    ------
    ValueError
        A compute budget that is not finite and > 0.

    Examples
    --------
    Hoffmann et al.'s fitted law at Chinchilla's budget, from a saved fit or a dict:

    >>> from scalelaw.fit.result import FitResult
    >>> hoff = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
    >>> out = compute_optimal(FitResult("chinchilla", hoff), [5.76e23])
    >>> f"{out['N_opt'][0]:.3g} params, {out['D_opt'][0]:.3g} tokens"
    '3.22e+10 params, 2.98e+12 tokens'
    >>> compute_optimal(hoff, [1e21, 0.0])
    Traceback (most recent call last):
    ...
    ValueError: compute: must be finite and > 0, got [1e+21, 0.0]
    """
    if isinstance(fit, FitResult):
        params, law = fit.params, law or fit.law
    else:
        params, law = dict(fit), law or "chinchilla"
    law = get_law(law)
    c = np.atleast_1d(np.asarray(compute, dtype=float))
    if not np.all(np.isfinite(c) & (c > 0)):
        raise ValueError(f"compute: must be finite and > 0, got {compute!r}")
    if law.name == "chinchilla" and not numeric:
        n_opt, d_opt = chinchilla_optimal(params, c, flops_per_param_token)
        loss = chinchilla_loss(params, n_opt, d_opt)
    else:
        n_opt, d_opt = numeric_optimal(law, params, c, flops_per_param_token)
        loss = law.predict(params, N=n_opt, D=d_opt)
    return {"C": c, "N_opt": n_opt, "D_opt": d_opt, "tokens_per_param": d_opt / n_opt,
            "loss": loss}
