"""Registry of published hyperparameter and compute-allocation laws, with units and sources.

Plain data and ``math``: :func:`scalelaw.recommend` and ``scalelaw recommend`` use it without
importing JAX or model code (the allocations are evaluated by
:func:`scalelaw.fit.allocate.compute_optimal`, in numpy for this closed form).

Hyperparameter laws (``HPARAM_LAWS``, defined in :mod:`scalelaw._published_hparams`), each
mapping (N, D, seq_len) to (peak LR, batch in tokens), each with its units, the N it expects
(``n_convention``), the unit of its batch, its fitted range and its source:

- ``"steplaw"`` — Li et al. 2025, "Predictable Scale: Part I" (arXiv 2503.04715), Eq. 1 /
  Table 2: η = 1.79·N^−0.713·D^0.307, B = 0.58·D^0.571 (N non-embedding params, D tokens,
  B tokens, η the peak LR).
- ``"deepseek"`` — DeepSeek LLM (arXiv 2401.02954, §3.1): η = 0.3118·C^−0.1250,
  B = 0.2920·C^0.3271 (tokens), C = M·D with M the non-embedding FLOPs per token. With
  ``PublishedLaw.evaluate(..., flops_per_token=M)`` the given M is used; otherwise M ≈ 6N
  (attention FLOPs ignored), and the notes say so.
- ``"kaplan"`` — Kaplan et al. 2020 (arXiv 2001.08361): LR(N) ≈ 0.003239 − 0.0001395·ln N
  (App. D.6, their rule of thumb) and the critical batch B_crit(L) = B*/L^(1/α_B),
  B* ≈ 2e8 tokens, α_B ≈ 0.21 (Eq. 1.4), at their own L(N, D) (Eq. 1.5).
- ``"power"`` — Power scheduler (Shen et al. 2024, arXiv 2408.13359): Eq. 5–6 give the
  optimal LR η = β·γ, γ = 4.6·T^−0.51 (β = batch in sequences, T tokens), capped at
  η_max = 0.02; the schedule is Eq. 7–8, η(n) = min(η_max, β·a·n^b), a = 4, b = −0.51.
  The paper prescribes no batch-size law, so the batch comes from Step Law.

``LEFT_OUT`` names the laws of Step Law's Table 1 not carried (Porian et al. 2024, Bjorck et
al. 2024) and why: their coefficients could not be verified against the papers.

Compute-optimal allocation (``ALLOCATIONS``), for L = E + A/N^α + B/D^β with C = 6ND
(Hoffmann et al. 2022, App. D.2): G = (αA/(βB))^(1/(α+β)), N_opt = G·(C/6)^(β/(α+β)),
D_opt = (C/6)/N_opt. ``"chinchilla"`` uses Hoffmann et al.'s published fit, ``"epoch"``
Besiroglu et al. 2024's replication (arXiv 2404.10102). N counts all parameters there.

Examples
--------
>>> lr, b = HPARAM_LAWS["steplaw"].predict(1e9, 1e11, 2048)
>>> round(lr, 6), round(b)
(0.001632, 1107715)
>>> from scalelaw.fit.allocate import compute_optimal
>>> out = compute_optimal(ALLOCATIONS["chinchilla"].params, 6 * 1e9 * 2e10)
>>> round(float(out["tokens_per_param"][0]), 1)
40.8
"""

from __future__ import annotations

from dataclasses import dataclass

from scalelaw._published_hparams import (
    HPARAM_LAWS,
    LEFT_OUT,
    POWER_A,
    POWER_B,
    POWER_GAMMA,
    POWER_LR_MAX,
    PublishedLaw,
    power_schedule,
)

__all__ = ["ALLOCATIONS", "HPARAM_LAWS", "LEFT_OUT", "POWER_A", "POWER_B", "POWER_GAMMA",
           "POWER_LR_MAX", "ChinchillaFit", "PublishedLaw", "get_law", "power_schedule",
           "weight_decay_from_timescale"]

@dataclass(frozen=True)
class ChinchillaFit:
    """Published constants of L = E + A/N^α + B/D^β (C = 6ND) and their source."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    @property
    def params(self) -> dict[str, float]:
        """The constants as the ``chinchilla`` law's natural parameters (for
        :func:`scalelaw.fit.allocate.compute_optimal`)."""
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta}


ALLOCATIONS: dict[str, ChinchillaFit] = {
    "chinchilla": ChinchillaFit(
        "chinchilla", E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
        source="Hoffmann et al. 2022, arXiv 2203.15556, App. D.2 (Approach 3)",
    ),
    "epoch": ChinchillaFit(
        "epoch", E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658,
        source="Besiroglu et al. 2024, arXiv 2404.10102 (Chinchilla replication, Eq. 2)",
    ),
}

DEFAULT_WD_TIMESCALE = 0.1
WD_SOURCE = (
    "weight decay from the AdamW timescale tau = B/(lr*wd*D) (Power Lines, Bergsma et al. "
    "2025, arXiv 2505.13738) with scalelaw's default tau = {tau:g}: a chosen default, not a "
    "published optimum (Power Lines find tau_opt falls as a power law in D/N; sweep it)"
)


def weight_decay_from_timescale(
    lr: float, batch_tokens: float, n_tokens: float, tau: float = DEFAULT_WD_TIMESCALE
) -> float:
    """Coupled AdamW weight decay λ = B/(η·τ·D) for a timescale τ (Power Lines, Eq. 1).

    Examples
    --------
    >>> round(weight_decay_from_timescale(1e-3, 1e6, 1e11, tau=0.1), 6)
    0.1
    """
    if not tau > 0:
        raise ValueError(f"wd_timescale: must be > 0, got {tau!r}")
    return batch_tokens / (lr * tau * n_tokens)


def get_law(name: str) -> PublishedLaw:
    """The published hyperparameter law ``name``; ``ValueError`` naming ``source`` if unknown."""
    if name in LEFT_OUT:
        raise ValueError(f"source: {name!r} is not in the registry: {LEFT_OUT[name]}")
    if name not in HPARAM_LAWS:
        choices = ", ".join(repr(k) for k in HPARAM_LAWS)
        raise ValueError(f"source: must be one of {choices}, got {name!r}")
    return HPARAM_LAWS[name]

