"""The published optimal-LR / batch-size laws: definitions, units, ranges and sources.

Plain ``math`` (no numpy, pandas or JAX); re-exported by :mod:`scalelaw.published`, whose
docstring lists the laws. Every entry says which N it expects (with or without embeddings,
active or total parameters for a mixture of experts), the unit of its batch, the range it
was fitted on and where its coefficients come from.

Examples
--------
>>> law = HPARAM_LAWS["kaplan"]
>>> lr, b = law.predict(1e9, 1e11, 2048)
>>> round(lr, 6), round(b / 1e6, 2)
(0.000348, 3.56)
>>> lr_m, _ = HPARAM_LAWS["deepseek"].evaluate(1e9, 1e11, flops_per_token=6.7e9)
>>> lr_6n, _ = HPARAM_LAWS["deepseek"].evaluate(1e9, 1e11)
>>> lr_m < lr_6n  # a larger M (attention FLOPs counted) means more compute, a smaller LR
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

Predict = Callable[[float, float, int], tuple[float, float]]
PredictCompute = Callable[[float], tuple[float, float]]
Schedule = Callable[[float, float, float], dict]

__all__ = ["HPARAM_LAWS", "LEFT_OUT", "POWER_A", "POWER_B", "POWER_GAMMA", "POWER_LR_MAX",
           "PublishedLaw", "power_schedule"]


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
    n_convention : str
        The N the law expects: with or without embeddings, and for a mixture of experts
        whether active or total parameters (as far as the source says).
    batch_unit : str
        The unit the source states its batch in (``predict`` always returns tokens).
    fitted_range : str
        The range of N, D or compute the coefficients were fitted on.
    predict_compute : callable, optional
        For a law of the compute C = M·D (M the non-embedding FLOPs per token): ``C ->
        (peak_lr, batch_tokens)``; :meth:`evaluate` uses it when M is known.
    domain : mapping, optional
        ``fitted_range`` as numbers, ``{"N": (lo, hi), "D": (lo, hi)}`` or ``{"C": ...}``:
        :func:`scalelaw.recommend` notes a query outside it (None: not stated).
    """

    name: str
    formula: str
    units: str
    source: str
    predict: Predict
    schedule: Schedule
    notes: tuple[str, ...] = field(default_factory=tuple)
    n_convention: str = ""
    batch_unit: str = "tokens"
    fitted_range: str = ""
    predict_compute: PredictCompute | None = None
    domain: dict[str, tuple[float, float]] | None = None

    def evaluate(self, n_params: float, n_tokens: float, seq_len: int = 2048, *,
                 flops_per_token: float | None = None) -> tuple[float, float]:
        """``(peak_lr, batch_tokens)`` at (N, D); a law of compute uses C = M·D with the
        given non-embedding ``flops_per_token`` M, else its own approximation (see
        ``notes``). Other laws ignore ``flops_per_token``."""
        if flops_per_token is not None and self.predict_compute is not None:
            return self.predict_compute(float(flops_per_token) * float(n_tokens))
        return self.predict(float(n_params), float(n_tokens), int(seq_len))


# ------------------------------------------------------------------------- Step Law
def _steplaw(n: float, d: float, seq_len: int) -> tuple[float, float]:
    return 1.79 * n**-0.713 * d**0.307, 0.58 * d**0.571


def _steplaw_schedule(lr: float, batch_seq: float, n_tokens: float) -> dict:
    return {
        "name": "warmup-decay",
        "peak_lr": lr,
        "min_lr": min(1e-5, lr / 10),
        "description": (
            f"linear warmup to peak LR {lr:.3g}, then decay to "
            + ("1e-5 (the minimum LR in Step Law's released runs)" if lr >= 1e-4 else
               f"{lr / 10:.3g} (a tenth of the peak: Step Law's released runs decay to "
               "1e-5, which is not below this peak)")
            + "; the law predicts the peak LR"
        ),
    }


# ------------------------------------------------------------------------- DeepSeek LLM
def _deepseek_c(c: float) -> tuple[float, float]:
    return 0.3118 * c**-0.1250, 0.2920 * c**0.3271


def _deepseek(n: float, d: float, seq_len: int) -> tuple[float, float]:
    return _deepseek_c(6.0 * n * d)


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


# ------------------------------------------------------------------------- Kaplan et al.
KAPLAN_LOSS = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
KAPLAN_B_STAR, KAPLAN_ALPHA_B = 2e8, 0.21


def kaplan_loss(n: float, d: float) -> float:
    """Kaplan et al.'s L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (Eq. 1.5, nats)."""
    k = KAPLAN_LOSS
    return float(((k["N_c"] / n) ** (k["alpha_N"] / k["alpha_D"]) + k["D_c"] / d)
                 ** k["alpha_D"])


def _kaplan(n: float, d: float, seq_len: int) -> tuple[float, float]:
    lr = 0.003239 - 0.0001395 * math.log(n)
    return lr, KAPLAN_B_STAR / kaplan_loss(n, d) ** (1.0 / KAPLAN_ALPHA_B)


def _kaplan_schedule(lr: float, batch_seq: float, n_tokens: float) -> dict:
    return {
        "name": "cosine",
        "peak_lr": lr,
        "warmup_steps": 3000,
        "min_lr": 0.0,
        "description": (f"3000-step linear warmup to {lr:.3g}, then cosine decay to zero "
                        "(Kaplan et al. 2020, §2.2)"),
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
        n_convention=("non-embedding parameters; for a mixture of experts the material "
                      "checked here does not say whether active or total N (the released "
                      "MoE table lists both): score both"),
        batch_unit="tokens (the released grids list sequences of 2048 tokens)",
        fitted_range="N 60M-1B non-embedding, D 2B-100B tokens (7 N x 5 D dense cells; "
                     "the 1B/100B cell held out)",
        domain={"N": (6e7, 1e9), "D": (2e9, 1e11)},
    ),
    "deepseek": PublishedLaw(
        name="deepseek",
        formula="lr = 0.3118 C^-0.1250; B = 0.2920 C^0.3271; C = M D",
        units="C FLOPs with M non-embedding FLOPs/token, B tokens, lr = peak LR",
        source="DeepSeek LLM: DeepSeek-AI 2024, arXiv 2401.02954, §3.1 (Eq. 1)",
        predict=_deepseek,
        schedule=_deepseek_schedule,
        notes=("C = M*D approximated with M = 6N (non-embedding matmul FLOPs per token, "
               "attention FLOPs ignored) because only N is given; pass flops_per_token "
               "(e.g. Step Law's 6N + 12*layers*hidden*seq_len) to use the true M",),
        n_convention="no N: the law takes compute C = M*D with M the non-embedding FLOPs "
                     "per token (attention included, vocabulary excluded); for a mixture "
                     "of experts M counts the active parameters",
        batch_unit="tokens",
        fitted_range="small-scale grid searches over compute budgets of roughly 1e17-2e19 "
                     "FLOPs (§3.1; range as reported there, not re-checked for this entry)",
        predict_compute=_deepseek_c,
        domain={"C": (1e17, 2e19)},
    ),
    "kaplan": PublishedLaw(
        name="kaplan",
        formula=("lr = 0.003239 - 0.0001395 ln N; B = B_crit(L) = 2e8 / L^(1/0.21) with "
                 "L = [(6.4e13/N)^(0.076/0.103) + 1.8e13/D]^0.103"),
        units="N non-embedding params, D tokens, L nats/token (WebText2), B tokens",
        source=("Kaplan et al. 2020, arXiv 2001.08361: LR(N) App. D.6; B_crit(L) Eq. 1.4 "
                "(B* ~ 2e8 tokens, alpha_B ~ 0.21); L(N, D) Eq. 1.5 / Table 2"),
        predict=_kaplan,
        schedule=_kaplan_schedule,
        notes=("Kaplan's LR(N) is the rule of thumb used for most of their runs (App. D.6; "
               "'breaks down for N > 1e10'), not a fitted optimum",
               "the batch is the critical batch B_crit(L) (the time/compute trade-off), at "
               "the loss L(N, D) of Kaplan's own fit (WebText2, GPT-2 tokenizer), not a "
               "loss-optimal batch: how Step Law's Table 1 turned it into one is not stated"),
        n_convention="non-embedding parameters (dense models only)",
        batch_unit="tokens",
        fitted_range="N 768 to 1.5B non-embedding params, D 22M to 23B tokens",
        domain={"N": (768.0, 1.5e9), "D": (2.2e7, 2.3e10)},
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
        n_convention="no N in the LR relation (muP models); the batch comes from Step Law "
                     "(non-embedding N)",
        batch_unit="sequences (beta)",
        fitted_range="muP models trained with the Power schedule (Shen et al. §3-4)",
    ),
}

LEFT_OUT: dict[str, str] = {
    "porian": ("Porian et al. 2024 (arXiv 2406.19146) fit optimal-LR and batch-size laws "
               "in N; their coefficients could not be checked against the paper from the "
               "material reachable here, so the law is left out rather than copied from a "
               "secondary source"),
    "microsoft": ("Bjorck et al. 2024 (arXiv 2409.19913, 'Microsoft' in Step Law's Table "
                  "1): LR*(N, D) power law; coefficients not verifiable here, left out"),
}
"""Laws of Step Law's Table 1 that the registry does not carry, and why."""
