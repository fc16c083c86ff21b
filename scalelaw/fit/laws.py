"""Scaling laws as small objects: parameter names, a ``jnp`` formula, an init grid, bounds.

A :class:`Law` predicts the *log* of a target (loss in nats, or an optimal learning rate or
batch size) from named inputs such as ``N`` (parameters) and ``D`` (tokens). Fitting works
in the law's *fit space*: parameters listed in ``log_params`` are optimised as logarithms
(``a = log A``) and reported in natural units (``A``), as in Hoffmann et al. (2022, App. D.2).

Built-in laws (see :func:`list_laws`):

- ``chinchilla``: L = E + A/N^α + B/D^β, fitted as log L = LSE(a − α log N, b − β log D, e)
  (Hoffmann et al. 2022, Eq. 2 and App. D.2).
- ``kaplan``: L = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (Kaplan et al. 2020, Eq. 1.5), N
  non-embedding.
- ``farseer``: L = exp(a₃N^γ + b₃) + exp(a₂N^β + b₂)·D^(−exp(a₁N^α + b₁)) (Li et al. 2025,
  arXiv 2506.10972, Eq. 3), N non-embedding. The dedicated differential fit lives in
  :mod:`scalelaw.fit.farseer`; this Law lets the form be evaluated and fitted generically.
- ``data_constrained``: Muennighoff et al. (2023, arXiv 2305.16264, Eq. 5) with unique
  tokens ``U`` and repeated epochs.
- ``lr_nd``, ``batch_d`` (Step Law form, Li et al. 2025, arXiv 2503.04715),
  ``lr_c``, ``batch_c`` (DeepSeek LLM form, arXiv 2401.02954 §3.1): power laws for optimal
  hyperparameters, fitted by least squares in log space.

Defining your own law
---------------------
Write the log of the prediction as a ``jnp`` function of two dicts (fit-space parameters,
inputs), list the parameter names and an init grid, and register it (optional):

>>> import jax.numpy as jnp
>>> def overtrain(p, x):  # L = E + A/N^alpha + B (D/N)^-beta, in tokens per parameter
...     lN, lr = jnp.log(x["N"]), jnp.log(x["D"] / x["N"])
...     return logsumexp3(p["a"] - p["alpha"] * lN, p["b"] - p["beta"] * lr, p["e"])
>>> law = Law("overtrain", params=("a", "b", "e", "alpha", "beta"), formula=overtrain,
...           inputs=("N", "D"), init_grid={"a": [0, 5, 10], "b": [0, 2], "e": [0.5],
...           "alpha": [0.2, 0.5], "beta": [0.2, 0.5]},
...           log_params={"a": "A", "b": "B", "e": "E"})
>>> law.natural_names
('A', 'B', 'E', 'alpha', 'beta')
>>> register_law(law)
>>> get_law("overtrain") is law
True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scalelaw.errors import ConfigError

Formula = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]


def logsumexp3(x1: Any, x2: Any, x3: Any) -> Any:
    """Stable log(e^x1 + e^x2 + e^x3) for broadcastable ``jnp`` arrays.

    Cheaper than stacking for :func:`jax.nn.logsumexp`; the shift is a stop-gradient so
    the derivative is the exact softmax.

    >>> import jax.numpy as jnp
    >>> round(float(logsumexp3(jnp.log(1.0), jnp.log(2.0), jnp.log(3.0))), 6)
    1.791759
    """
    import jax
    import jax.numpy as jnp

    m = jax.lax.stop_gradient(jnp.maximum(jnp.maximum(x1, x2), x3))
    return m + jnp.log(jnp.exp(x1 - m) + jnp.exp(x2 - m) + jnp.exp(x3 - m))


@dataclass(frozen=True)
class Law:
    """A parametric law predicting ``log(target)`` from named inputs.

    Parameters
    ----------
    name : str
        Registry name, also stored in :class:`~scalelaw.fit.result.FitResult`.
    params : tuple of str
        Fit-space parameter names, in the order of the optimiser's vector.
    formula : callable
        ``formula(p, x) -> log prediction``; ``p`` maps fit-space names to scalars, ``x``
        maps input names to arrays. Must use ``jax.numpy`` (it is differentiated and vmapped).
    inputs : tuple of str
        Input names the formula reads, e.g. ``("N", "D")``.
    init_grid : mapping of str to sequence of float
        Start values per fit-space parameter; the fit starts from their Cartesian product.
    log_params : mapping of str to str
        Fit-space names optimised as logarithms, mapped to their natural name
        (``{"a": "A"}`` means ``A = exp(a)``).
    bounds : mapping of str to (float, float)
        Admissible fit-space ranges; solutions outside are discarded when the best start
        is chosen (the optimiser itself is unconstrained).
    target : str
        What is predicted: ``"loss"`` (nats), ``"lr"`` or ``"batch"``.
    huber_delta : float or None
        Default robust loss on log residuals (Hoffmann et al. 2022: 1e-3); ``None`` means
        least squares (used for the hyperparameter power laws, which Step Law fits by OLS).
    conventions : mapping of str to str
        Units of inputs and target, e.g. ``{"N": "total params", "D": "tokens"}``.
    derived : callable, optional
        ``derived(natural_params) -> dict`` of extra quantities (e.g. a = β/(α+β)).
    source : str
        Citation.
    """

    name: str
    params: tuple[str, ...]
    formula: Formula
    inputs: tuple[str, ...]
    init_grid: Mapping[str, Sequence[float]]
    log_params: Mapping[str, str] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    target: str = "loss"
    huber_delta: float | None = 1e-3
    conventions: Mapping[str, str] = field(default_factory=dict)
    derived: Callable[[Mapping[str, float]], dict[str, float]] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        missing = [p for p in self.params if p not in self.init_grid]
        if missing:
            raise ConfigError(f"law {self.name}: init_grid lacks parameter {missing[0]!r}")
        extra = [p for p in (*self.init_grid, *self.log_params, *self.bounds)
                 if p not in self.params]
        if extra:
            raise ConfigError(f"law {self.name}: unknown parameter {extra[0]!r} "
                              f"(parameters: {', '.join(self.params)})")

    # ------------------------------------------------------------------ names
    @property
    def natural_names(self) -> tuple[str, ...]:
        """Parameter names in natural units, in ``params`` order."""
        return tuple(self.log_params.get(p, p) for p in self.params)

    @property
    def kind(self) -> str:
        """``"loss"`` or ``"hparams"`` (as in :class:`FitResult`)."""
        return "loss" if self.target == "loss" else "hparams"

    def to_natural(self, theta: ArrayLike) -> dict[str, float]:
        """Fit-space vector → natural-unit dict (``a`` → ``A = e^a``)."""
        out = {}
        for name, v in zip(self.params, np.asarray(theta, dtype=float), strict=True):
            out[self.log_params.get(name, name)] = math.exp(v) if name in self.log_params else v
        return {k: float(v) for k, v in out.items()}

    def from_natural(self, natural: Mapping[str, float]) -> np.ndarray:
        """Natural-unit dict → fit-space vector (inverse of :meth:`to_natural`)."""
        vals = []
        for name in self.params:
            nat = self.log_params.get(name, name)
            if nat not in natural:
                raise ConfigError(f"law {self.name}: missing parameter {nat!r}")
            v = float(natural[nat])
            vals.append(math.log(v) if name in self.log_params else v)
        return np.asarray(vals, dtype=np.float64)

    def grid(self, init_grid: Mapping[str, Sequence[float]] | None = None) -> np.ndarray:
        """Cartesian product of the init grid, shape (starts, len(params)), float64."""
        g = dict(self.init_grid)
        g.update(init_grid or {})
        axes = [np.atleast_1d(np.asarray(g[p], dtype=np.float64)) for p in self.params]
        return np.asarray(list(itertools.product(*axes)), dtype=np.float64)

    def derived_values(self, natural: Mapping[str, float]) -> dict[str, float]:
        """Derived quantities for ``natural`` params (empty if the law defines none)."""
        return {} if self.derived is None else dict(self.derived(natural))

    # ------------------------------------------------------------------ evaluation
    def log_predict_fit(self, theta: Any, x: Mapping[str, Any]) -> Any:
        """``formula`` on a fit-space vector ``theta`` (jnp, traceable)."""
        return self.formula(dict(zip(self.params, theta, strict=True)), x)

    def predict(self, natural: Mapping[str, float], **inputs: Any) -> np.ndarray:
        """Evaluate the law (target in natural units) at ``inputs``, in float64.

        >>> law = get_law("chinchilla")
        >>> p = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
        >>> round(float(law.predict(p, N=70e9, D=1.4e12)), 4)
        1.9366
        """
        import jax
        import jax.numpy as jnp

        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise ConfigError(f"law {self.name}: missing input {missing[0]!r}")
        theta = self.from_natural(natural)
        with jax.enable_x64(True):
            arrs = np.broadcast_arrays(*(np.asarray(inputs[k], dtype=np.float64)
                                         for k in self.inputs))
            x = {k: jnp.asarray(a) for k, a in zip(self.inputs, arrs, strict=True)}
            out = np.exp(np.asarray(self.log_predict_fit(jnp.asarray(theta), x)))
        return out


# ---------------------------------------------------------------------- built-ins
def _chinchilla(p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    """LSE(a − α log N, b − β log D, e), shifted by one scalar (the largest exponent).

    A shared shift keeps every exponent <= 0 (no overflow) and makes ``e^(e − shift)`` one
    scalar instead of one per row: 2 exponentials per row instead of 3 in the fit's hot
    loop. Underflow would need exponents spread by > 700 across rows (α·Δlog N > 700).
    """
    import jax
    import jax.numpy as jnp

    x1 = p["a"] - p["alpha"] * jnp.log(x["N"])
    x2 = p["b"] - p["beta"] * jnp.log(x["D"])
    c = jax.lax.stop_gradient(jnp.maximum(jnp.maximum(jnp.max(x1), jnp.max(x2)), p["e"]))
    return c + jnp.log(jnp.exp(x1 - c) + jnp.exp(x2 - c) + jnp.exp(p["e"] - c))


def _allocation_exponents(nat: Mapping[str, float]) -> dict[str, float]:
    s = nat["alpha"] + nat["beta"]
    return {"a": nat["beta"] / s, "b": nat["alpha"] / s}


def _kaplan(p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    import jax.numpy as jnp

    t1 = p["alpha_N"] / p["alpha_D"] * (p["nc"] - jnp.log(x["N"]))
    t2 = p["dc"] - jnp.log(x["D"])
    return p["alpha_D"] * jnp.logaddexp(t1, t2)


def _farseer(p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    import jax.numpy as jnp

    lN = jnp.log(x["N"])
    decay = jnp.exp(p["a1"] * jnp.exp(p["alpha"] * lN) + p["b1"])
    t1 = p["a3"] * jnp.exp(p["gamma"] * lN) + p["b3"]
    t2 = p["a2"] * jnp.exp(p["beta"] * lN) + p["b2"] - decay * jnp.log(x["D"])
    return jnp.logaddexp(t1, t2)


def _data_constrained(p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    import jax.numpy as jnp

    alpha, beta = p["alpha"], p["beta"]
    rd_star, rn_star = jnp.exp(p["r_d"]), jnp.exp(p["r_n"])
    u_d = jnp.minimum(x["U"], x["D"])
    r_d = x["D"] / u_d - 1.0
    d_eff = u_d * (1.0 + rd_star * (1.0 - jnp.exp(-r_d / rd_star)))
    # U_N: compute-optimal params for U_D unique tokens under the Chinchilla part
    # (Muennighoff et al. 2023, §3.1): N_opt = G (U_D G)^(beta/alpha) with
    # G = (alpha A / (beta B))^(1/(alpha+beta)).
    log_g = (jnp.log(alpha) + p["a"] - jnp.log(beta) - p["b"]) / (alpha + beta)
    log_un = log_g + beta / alpha * (jnp.log(u_d) + log_g)
    u_n = jnp.minimum(x["N"], jnp.exp(log_un))
    r_n = x["N"] / u_n - 1.0
    n_eff = u_n * (1.0 + rn_star * (1.0 - jnp.exp(-r_n / rn_star)))
    return logsumexp3(p["a"] - alpha * jnp.log(n_eff), p["b"] - beta * jnp.log(d_eff), p["e"])


def _power(names: tuple[str, ...]) -> Formula:
    def formula(p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
        import jax.numpy as jnp

        coef, *exps = p.values()
        return coef + sum(e * jnp.log(x[n]) for e, n in zip(exps, names, strict=True))

    return formula


_HOFFMANN_GRID: dict[str, list[float]] = {"a": [0, 5, 10, 15, 20, 25], "b": [0, 5, 10, 15, 20, 25],
                  "e": [-1, -0.5, 0, 0.5, 1], "alpha": [0, 0.5, 1, 1.5, 2],
                  "beta": [0, 0.5, 1, 1.5, 2]}
_LOSS_UNITS = {"N": "total parameters", "D": "tokens", "loss": "nats"}
_NONEMB = {"N": "non-embedding parameters", "D": "tokens", "loss": "nats"}

CHINCHILLA = Law(
    "chinchilla", ("a", "b", "e", "alpha", "beta"), _chinchilla, ("N", "D"), _HOFFMANN_GRID,
    log_params={"a": "A", "b": "B", "e": "E"},
    bounds={"alpha": (0.0, 10.0), "beta": (0.0, 10.0)},
    conventions=_LOSS_UNITS, derived=_allocation_exponents,
    source="Hoffmann et al. 2022, Eq. 2, App. D.2 (grid: 4,500 starts)",
)
KAPLAN = Law(
    "kaplan", ("alpha_N", "alpha_D", "nc", "dc"), _kaplan, ("N", "D"),
    {"alpha_N": [0.05, 0.1, 0.2], "alpha_D": [0.05, 0.1, 0.2],
     "nc": [20, 25, 30, 35], "dc": [15, 20, 25, 30]},
    log_params={"nc": "N_c", "dc": "D_c"},
    bounds={"alpha_N": (0.0, 5.0), "alpha_D": (1e-6, 5.0)}, conventions=_NONEMB,
    source="Kaplan et al. 2020, Eq. 1.5 (alpha_N 0.076, alpha_D 0.103, N_c 6.4e13, D_c 1.8e13)",
)
FARSEER = Law(
    "farseer", ("a1", "b1", "alpha", "a2", "b2", "beta", "a3", "b3", "gamma"), _farseer,
    ("N", "D"),
    {"a1": [-0.124], "b1": [0.2, 0.424], "alpha": [0.1, 0.123], "a2": [50.0, 88.01],
     "b2": [-6.287], "beta": [-0.1], "a3": [-0.021], "b3": [-0.091], "gamma": [0.169]},
    conventions={"N": "non-embedding parameters", "D": "tokens", "loss": "bits per character"},
    source="Li et al. 2025 (Farseer), arXiv 2506.10972, Eq. 3; grid centred on Eq. 15",
)
DATA_CONSTRAINED = Law(
    "data_constrained", ("a", "b", "e", "alpha", "beta", "r_d", "r_n"), _data_constrained,
    ("N", "D", "U"),
    {"a": [5, 6.25], "b": [6, 7.3], "e": [0.5, 0.63], "alpha": [0.3, 0.35],
     "beta": [0.3, 0.35], "r_d": [2.0, 2.73], "r_n": [1.0, 1.67]},
    log_params={"a": "A", "b": "B", "e": "E", "r_d": "R_D_star", "r_n": "R_N_star"},
    bounds={"alpha": (1e-6, 10.0), "beta": (1e-6, 10.0)},
    conventions={**_LOSS_UNITS, "U": "unique tokens"}, derived=_allocation_exponents,
    source="Muennighoff et al. 2023, arXiv 2305.16264, Eq. 5 (A 520.82, B 1487.72, E 1.8691, "
           "alpha = beta = 0.3527, R_D* 15.39, R_N* 5.31)",
)
LR_ND = Law("lr_nd", ("log_c", "p", "q"), _power(("N", "D")), ("N", "D"),
            {"log_c": [0.0], "p": [-0.5], "q": [0.3]}, log_params={"log_c": "c"},
            target="lr", huber_delta=None,
            conventions={"N": "non-embedding parameters", "D": "tokens", "lr": "peak LR"},
            source="Step Law, Li et al. 2025, arXiv 2503.04715: lr = c N^p D^q")
BATCH_D = Law("batch_d", ("log_d", "r"), _power(("D",)), ("D",),
              {"log_d": [0.0], "r": [0.5]}, log_params={"log_d": "d"},
              target="batch", huber_delta=None,
              conventions={"D": "tokens", "batch": "tokens"},
              source="Step Law, Li et al. 2025, arXiv 2503.04715: B = d D^r")
LR_C = Law("lr_c", ("log_c", "p"), _power(("C",)), ("C",), {"log_c": [0.0], "p": [-0.1]},
           log_params={"log_c": "c"}, target="lr", huber_delta=None,
           conventions={"C": "FLOPs (non-embedding, M*D)", "lr": "peak LR"},
           source="DeepSeek LLM, arXiv 2401.02954 §3.1: lr = c C^p")
BATCH_C = Law("batch_c", ("log_d", "r"), _power(("C",)), ("C",), {"log_d": [0.0], "r": [0.3]},
              log_params={"log_d": "d"}, target="batch", huber_delta=None,
              conventions={"C": "FLOPs (non-embedding, M*D)", "batch": "tokens"},
              source="DeepSeek LLM, arXiv 2401.02954 §3.1: B = d C^r")

_REGISTRY: dict[str, Law] = {
    law.name: law
    for law in (CHINCHILLA, KAPLAN, FARSEER, DATA_CONSTRAINED, LR_ND, BATCH_D, LR_C, BATCH_C)
}


def register_law(law: Law, *, overwrite: bool = False) -> None:
    """Add ``law`` to the registry so ``get_law(law.name)`` and the CLI find it."""
    if law.name in _REGISTRY and not overwrite and _REGISTRY[law.name] is not law:
        raise ConfigError(f"law {law.name!r}: already registered (pass overwrite=True)")
    _REGISTRY[law.name] = law


def get_law(name: str | Law) -> Law:
    """Look a law up by name (a :class:`Law` is returned unchanged).

    >>> get_law("chinchilla").params
    ('a', 'b', 'e', 'alpha', 'beta')
    """
    if isinstance(name, Law):
        return name
    if name not in _REGISTRY:
        raise ConfigError(f"law: unknown law {name!r} (known: {', '.join(list_laws())})")
    return _REGISTRY[name]


def list_laws() -> list[str]:
    """Names of the registered laws."""
    return sorted(_REGISTRY)
