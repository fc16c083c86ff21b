"""Registry of published hyperparameter and compute-allocation laws, with units and sources.

Plain data and ``math``: :func:`scalelaw.recommend` and ``scalelaw recommend`` use it without
importing JAX or model code (the allocations are evaluated by
:func:`scalelaw.fit.allocate.compute_optimal`, in numpy for this closed form).

Hyperparameter laws (``HPARAM_LAWS``), each mapping (N, D, seq_len) to (peak LR, batch in
tokens):

- ``"steplaw"`` — Li et al. 2025, "Predictable Scale: Part I" (arXiv 2503.04715), Eq. 1 /
  Table 2: η = 1.79·N^−0.713·D^0.307, B = 0.58·D^0.571 (N non-embedding params, D tokens,
  B tokens, η the peak LR).
- ``"deepseek"`` — DeepSeek LLM (arXiv 2401.02954, §3.1): η = 0.3118·C^−0.1250,
  B = 0.2920·C^0.3271 (tokens), C = M·D with M the non-embedding FLOPs per token. Only N is
  known here, so M ≈ 6N (forward + backward of the non-embedding matmuls, attention
  FLOPs ignored); stated in the recommendation's notes.
- ``"power"`` — Power scheduler (Shen et al. 2024, arXiv 2408.13359): Eq. 5–6 give the
  optimal LR η = β·γ, γ = 4.6·T^−0.51 (β = batch in sequences, T tokens), capped at
  η_max = 0.02; the schedule is Eq. 7–8, η(n) = min(η_max, β·a·n^b), a = 4, b = −0.51.
  The paper prescribes no batch-size law, so the batch comes from Step Law.

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

from collections.abc import Callable
from dataclasses import dataclass, field

Predict = Callable[[float, float, int], tuple[float, float]]
Schedule = Callable[[float, float, float], dict]


@dataclass(frozen=True)
class PublishedLaw:
    """A published optimal-LR / batch-size law.

    Attributes
    ----------
    name : str
        Registry key.
    formula : str
        The law as printed, with its variables.
    units : str
        What N, D, B and the LR mean.
    source : str
        Paper and equation.
    predict : callable
        ``(n_params, n_tokens, seq_len) -> (peak_lr, batch_tokens)``.
    schedule : callable
        ``(peak_lr, batch_sequences, n_tokens) -> dict`` describing the schedule the law
        was fitted with (``"name"`` plus constants and a ``"description"``).
    notes : tuple of str
        Approximations made when applying the law.
    """

    name: str
    formula: str
    units: str
    source: str
    predict: Predict
    schedule: Schedule
    notes: tuple[str, ...] = field(default_factory=tuple)


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


# ------------------------------------------------------------------------- Step Law
def _steplaw(n: float, d: float, seq_len: int) -> tuple[float, float]:
    return 1.79 * n**-0.713 * d**0.307, 0.58 * d**0.571


def _steplaw_schedule(lr: float, batch_seq: float, n_tokens: float) -> dict:
    return {
        "name": "warmup-decay",
        "peak_lr": lr,
        "min_lr": 1e-5,
        "description": (
            f"linear warmup to peak LR {lr:.3g}, then decay to 1e-5 (the minimum LR in "
            "Step Law's released runs); the law predicts the peak LR"
        ),
    }


# ------------------------------------------------------------------------- DeepSeek LLM
def _deepseek(n: float, d: float, seq_len: int) -> tuple[float, float]:
    c = 6.0 * n * d
    return 0.3118 * c**-0.1250, 0.2920 * c**0.3271


def _deepseek_schedule(lr: float, batch_seq: float, n_tokens: float) -> dict:
    return {
        "name": "multi-step",
        "peak_lr": lr,
        "warmup_steps": 2000,
        "milestones": [0.8, 0.9],
        "factors": [0.316, 0.1],
        "description": (
            f"warmup over 2000 steps to {lr:.3g}, then x0.316 after 80% and x0.1 after "
            "90% of the tokens (DeepSeek LLM §2.3 multi-step schedule)"
        ),
    }


# ------------------------------------------------------------------------- Power scheduler
POWER_A, POWER_B, POWER_LR_MAX, POWER_GAMMA = 4.0, -0.51, 0.02, 4.6


def _power(n: float, d: float, seq_len: int) -> tuple[float, float]:
    batch_tokens = _steplaw(n, d, seq_len)[1]
    beta = max(1.0, round(batch_tokens / seq_len))
    return min(POWER_LR_MAX, beta * POWER_GAMMA * d**POWER_B), beta * seq_len


def power_schedule(lr: float, batch_seq: float, n_tokens: float, *, a: float = POWER_A,
                   b: float = POWER_B, lr_max: float = POWER_LR_MAX,
                   source: str = "Shen et al. 2024, Eq. 7-8") -> dict:
    """The Power schedule's settings for a run (``lr`` and ``n_tokens`` unused: the
    schedule sets its own LR from ``beta * a * n^b``)."""
    return {
        "name": "power",
        "a": a,
        "b": b,
        "lr_max": lr_max,
        "beta": batch_seq,
        "decay_fraction": 0.1,
        "decay": "exponential",
        "description": (
            f"Power schedule lr(n) = min({lr_max:.4g}, beta*{a:.4g}*n^{b:.4g}) with "
            f"beta = {batch_seq:g} sequences and n tokens seen from the start; warmup "
            f"linear to lr(N_warmup); exponential decay to 0 over the last 10% ({source})"
        ),
    }


def _power_schedule(lr: float, batch_seq: float, n_tokens: float) -> dict:
    return power_schedule(lr, batch_seq, n_tokens)


HPARAM_LAWS: dict[str, PublishedLaw] = {
    "steplaw": PublishedLaw(
        name="steplaw",
        formula="lr = 1.79 N^-0.713 D^0.307; B = 0.58 D^0.571",
        units="N non-embedding params, D tokens, B tokens, lr = peak LR",
        source="Step Law: Li et al. 2025, arXiv 2503.04715, Eq. 1 / Table 2",
        predict=_steplaw,
        schedule=_steplaw_schedule,
    ),
    "deepseek": PublishedLaw(
        name="deepseek",
        formula="lr = 0.3118 C^-0.1250; B = 0.2920 C^0.3271; C = M D",
        units="C FLOPs with M non-embedding FLOPs/token, B tokens, lr = peak LR",
        source="DeepSeek LLM: DeepSeek-AI 2024, arXiv 2401.02954, §3.1 (Eq. 1)",
        predict=_deepseek,
        schedule=_deepseek_schedule,
        notes=("C = M*D approximated with M = 6N (non-embedding matmul FLOPs per token, "
               "attention FLOPs ignored) because only N is given",),
    ),
    "power": PublishedLaw(
        name="power",
        formula="lr = beta * 4.6 * D^-0.51 (<= 0.02); schedule min(0.02, beta*4*n^-0.51)",
        units="beta = batch in sequences, D and n tokens, lr absolute",
        source="Power scheduler: Shen et al. 2024, arXiv 2408.13359, Eq. 5-8",
        predict=_power,
        schedule=_power_schedule,
        notes=("the Power scheduler gives no batch-size law: batch from Step Law's "
               "B = 0.58 D^0.571, rounded to whole sequences",
               "calibrated for muP models in Shen et al.; lr capped at lr_max = 0.02"),
    ),
}

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
    if name not in HPARAM_LAWS:
        choices = ", ".join(repr(k) for k in HPARAM_LAWS)
        raise ValueError(f"source: must be one of {choices}, got {name!r}")
    return HPARAM_LAWS[name]

