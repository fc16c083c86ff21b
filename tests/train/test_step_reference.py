"""The trainer off the base width against an independent AdamW reference written here.

A real trial goes through :func:`scalelaw.train.train_group` (so ``_member.py``, the
trial's ``schedule_kwargs`` and the compiled step are all on the path) at width 64 with
base width 32 (muP, ``m = 2``), a weight decay large enough to matter under two
weight-decay rules, ``output_mult = 2`` and an uncapped Power schedule, logging every
step. The reference rebuilds every ingredient by hand: the Power LR from Shen et al.'s
formula, the per-parameter LR, weight-decay and epsilon multipliers from the muP rules
(TP V Table 8 and App. B.3), the cross-entropy of the logits times ``output_mult``, and
one ``optax.adamw`` per parameter; only the model's forward pass and its initialisation
are reused. Both sides run at full float32 matmul precision (no TF32 on GPUs), so they
agree to about 1e-7 where each planted mistake moves them apart by 5e-5 or more.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from scalelaw.corpus import load_corpus
from scalelaw.models import transformer
from scalelaw.mup.rules import Parametrization
from scalelaw.sweep import TrialConfig
from scalelaw.train import read_metrics, read_summary, train_group

WIDTH, BASE, DEPTH, HEAD = 64, 32, 1, 16
M = WIDTH / BASE  # the muP width multiplier
B, T, STEPS = 4, 16, 6  # batch size in sequences, context, optimizer steps
TOKENS_PER_STEP = B * T
SEED, OUTPUT_MULT, B1, B2 = 3, 2.0, 0.9, 0.95
# Power schedule (Shen et al. 2024, Eq. 7-8): lr(n) = min(lr_max, beta * a * n^b) with
# beta = B sequences and n the tokens seen, after a linear warmup over NW tokens; lr_max
# lies far above every LR reached, so the power law itself sets every step's LR.
A, EXP_B, NW, LR_MAX = 0.03, -0.5, 2 * TOKENS_PER_STEP, 1.0
HIDDEN = ("wq", "wk", "wv", "wo", "w1", "w2")  # matrix-like: fan-in and fan-out grow
VECTOR_LIKE = ("embed", "attn_norm", "mlp_norm", "norm")  # only one dim grows
CASES = {  # weight_decay_rule: (weight decay, Adam eps, scale_adam_eps)
    "independent": (0.2, 1e-8, False),
    "sqrt": (0.3, 5e-5, True),
}
WD_RULE = {"independent": M, "sqrt": math.sqrt(M), "fixed": 1.0}  # hidden-matrix wd factor
# Measured on CPU: losses agree to <= 2e-7, parameter updates to <= 7e-6; every mistake
# in test_comparison_rejects_each_wiring_mistake moves them by >= 6e-5 and >= 5e-3.
LOSS_RTOL = 1e-5  # train and eval loss, relative
PARAM_RTOL = 2e-4  # |final params - reference| / |reference - init|, per parameter


def make_trial(rule: str) -> TrialConfig:
    wd, eps, scale_eps = CASES[rule]
    return TrialConfig.from_dict({
        "model": {"width": WIDTH, "depth": DEPTH, "head_dim": HEAD, "context": T},
        "parametrization": {"name": "mup", "base_width": BASE, "weight_decay_rule": rule,
                            "scale_adam_eps": scale_eps, "output_mult": OUTPUT_MULT},
        "optimizer": {"weight_decay": wd, "b1": B1, "b2": B2, "eps": eps},
        "schedule": {"name": "power", "a": A, "b": EXP_B, "warmup_tokens": NW,
                     "lr_max": LR_MAX},
        "train": {"tokens": STEPS * TOKENS_PER_STEP, "batch_size": B, "eval_every": STEPS,
                  "eval_tokens": 2 * TOKENS_PER_STEP, "log_every": 1, "seed": SEED},
    })


def power_lr(n: float) -> float:
    """Shen et al. 2024, Eq. 7-8, ``n`` tokens into training (no decay phase)."""

    def lr_power(x: float) -> float:
        return min(LR_MAX, B * A * x**EXP_B)

    return n / NW * lr_power(NW) if n < NW else lr_power(n)


HAND_LRS = [power_lr(s * TOKENS_PER_STEP) for s in range(STEPS)]  # tokens seen before step s


def hyper(weight_decay: float, rule: str, eps: float, scale_eps: bool,
          output_mult: float = OUTPUT_MULT) -> dict[str, Any]:
    """Per-parameter weight decay and Adam eps under muP at width multiplier ``M``.

    Hidden matrices: weight decay x the rule's factor (``independent``: M, ``sqrt``:
    sqrt(M), ``fixed``: 1), eps x 1/M with ``scale_adam_eps``; vector-like parameters and
    the readout: no weight decay, eps x 1.
    """
    names = (*HIDDEN, *VECTOR_LIKE, "readout")
    wd = {k: weight_decay * WD_RULE[rule] if k in HIDDEN else 0.0 for k in names}
    eps_of = {k: eps / M if k in HIDDEN and scale_eps else eps for k in names}
    return jax.tree.map(np.float32, {"wd": wd, "eps": eps_of, "output_mult": output_mult})


LR_MULT = {**{k: 1.0 / M for k in HIDDEN}, **{k: 1.0 for k in (*VECTOR_LIKE, "readout")}}
"""Adam LR multipliers: hidden matrices lr x base/width, everything else lr x 1."""

CFG = make_trial("independent").model
P1 = Parametrization("mup", base_width=BASE)  # output_mult 1: the readout is x 1/M


def optimizer(h: dict[str, Any]) -> optax.GradientTransformation:
    """One ``optax.adamw`` per parameter (coupled: p -= lr (adam + wd p))."""
    lrs = jnp.asarray(HAND_LRS, jnp.float32)  # indexed by optax's step count
    per_param = {k: optax.adamw(lambda count, k=k: lrs[count] * LR_MULT[k], b1=B1, b2=B2,
                                eps=h["eps"][k], weight_decay=h["wd"][k]) for k in LR_MULT}
    return optax.multi_transform(per_param, {k: k for k in LR_MULT})


def loss_fn(params: dict, batch: jax.Array, h: dict[str, Any]) -> jax.Array:
    """Next-token cross-entropy (nats) of the logits times ``output_mult``."""
    logits = transformer.forward(params, batch[:, :-1], CFG, P1) * h["output_mult"]
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, batch[:, 1:, None], axis=-1))


@jax.jit
def reference_step(params: dict, opt_state: Any, batch: jax.Array, h: dict[str, Any]) -> tuple:
    loss, grads = jax.value_and_grad(loss_fn)(params, batch, h)
    updates, opt_state = optimizer(h).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, optax.tree.norm(grads)


reference_loss = jax.jit(loss_fn)


def reference(trial: TrialConfig, h: dict[str, Any]) -> dict[str, Any]:
    """Train the trial's model by hand: per-step losses and grad norms, eval loss, params."""
    assert trial.model == CFG and trial.train.seed == SEED
    init = transformer.init_params(CFG, P1, jax.random.key(SEED))
    assert set(init) == set(LR_MULT)
    corpus = load_corpus(trial.data)
    params, opt_state, losses, norms = init, optimizer(h).init(init), [], []
    with jax.default_matmul_precision("highest"):
        for s in range(STEPS):
            batch = jnp.asarray(corpus.train_batch(s, B, T, trial.data.seed))
            params, opt_state, loss, norm = reference_step(params, opt_state, batch, h)
            losses.append(float(loss))
            norms.append(float(norm))
        evals = corpus.eval_batches(trial.train.eval_tokens, B, T)
        eval_loss = np.mean([float(reference_loss(params, b, h)) for b in evals])
    return {"loss": np.array(losses), "grad_norm": np.array(norms), "eval_loss": eval_loss,
            "params": params, "init": init}


def final_params(trial_dir: Path) -> dict[str, np.ndarray]:
    """The trainer's parameters after the last step, from its final checkpoint."""
    path = (trial_dir / "ckpt" / str(STEPS) / "state").absolute()
    return {k: np.asarray(v) for k, v in ocp.StandardCheckpointer().restore(path)["params"].items()}


def mismatch(ref: dict[str, Any], rows: list[dict], eval_loss: float,
             params: dict[str, np.ndarray]) -> dict[str, float]:
    """Largest relative differences between a run's records and a reference."""
    loss = np.array([r["train_loss"] for r in rows])
    upd = {k: np.linalg.norm(params[k] - ref["params"][k])
           / np.linalg.norm(ref["params"][k] - ref["init"][k]) for k in ref["params"]}
    return {"train_loss": float(np.max(np.abs(loss / ref["loss"] - 1))),
            "eval_loss": abs(eval_loss / ref["eval_loss"] - 1), "params": max(upd.values())}


@pytest.fixture(scope="module", params=list(CASES))
def trained(request, tmp_path_factory) -> tuple[TrialConfig, Path, dict[str, Any]]:
    """``(trial, trial_dir, right hyper)`` for one weight-decay rule, trained once."""
    rule = request.param
    trial = make_trial(rule)
    d = tmp_path_factory.mktemp(rule) / trial.trial_id
    with jax.default_matmul_precision("highest"):
        [result] = train_group([trial], [d])
    assert result.status == "done" and result.steps == STEPS
    wd, eps, scale_eps = CASES[rule]
    return trial, d, hyper(wd, rule, eps, scale_eps)


def test_lr_column_is_the_uncapped_power_law(trained) -> None:
    """Guards the Power schedule's wiring through ``Trial.schedule_kwargs``: beta is the
    batch size in sequences, n the tokens seen before the step, the warmup linear, and
    lr_max never binds (so a wrong beta or n changes every logged LR)."""
    trial, d, _ = trained
    rows = read_metrics(d)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert HAND_LRS[0] == 0.0 and max(HAND_LRS) < LR_MAX / 50  # warmup from 0; uncapped
    assert HAND_LRS[2] == pytest.approx(B * A * NW**EXP_B)  # the end of the warmup
    assert [r["lr"] for r in rows] == pytest.approx(HAND_LRS, rel=1e-6, abs=1e-12)
    assert trial.peak_lr == pytest.approx(HAND_LRS[2], rel=1e-12)


def test_trainer_matches_hand_built_adamw(trained) -> None:
    """Guards the trainer's optimizer and loss wiring off the base width (per-role LR,
    weight decay with its rule, eps scaling, the member's weight decay, output_mult):
    per-step losses and grad norms, the final eval loss and the final parameters."""
    trial, d, h = trained
    ref = reference(trial, h)
    rows = read_metrics(d)
    np.testing.assert_allclose([r["train_loss"] for r in rows], ref["loss"], rtol=LOSS_RTOL)
    np.testing.assert_allclose([r["grad_norm"] for r in rows], ref["grad_norm"], rtol=1e-4)
    eval_loss = read_summary(d)["final_eval_loss"]
    assert eval_loss == pytest.approx(ref["eval_loss"], rel=LOSS_RTOL)
    params = final_params(d)
    assert set(params) == set(ref["params"])
    for k, want in ref["params"].items():
        change = np.linalg.norm(want - ref["init"][k])
        assert change > 0, k  # every parameter moved
        assert np.linalg.norm(params[k] - want) <= PARAM_RTOL * change, k


def test_comparison_rejects_each_wiring_mistake(trained) -> None:
    """Guards the power of the comparison above: a reference with the weight decay
    halved or dropped, the wrong weight-decay rule, output_mult 1 or (where it is
    scaled) unscaled eps lies outside its tolerances, by a wide margin."""
    trial, d, _ = trained
    rule = trial.parametrization.weight_decay_rule
    wd, eps, scale_eps = CASES[rule]
    rows, eval_loss, params = read_metrics(d), read_summary(d)["final_eval_loss"], final_params(d)
    wrong = {"halved weight decay": hyper(wd / 2, rule, eps, scale_eps),
             "no weight decay": hyper(0.0, rule, eps, scale_eps),
             "rule 'fixed'": hyper(wd, "fixed", eps, scale_eps),
             "output_mult 1": hyper(wd, rule, eps, scale_eps, output_mult=1.0)}
    if scale_eps:
        wrong["unscaled eps"] = hyper(wd, rule, eps, False)
    limits = {"train_loss": LOSS_RTOL, "eval_loss": LOSS_RTOL, "params": PARAM_RTOL}
    for label, h in wrong.items():
        off = mismatch(reference(trial, h), rows, eval_loss, params)
        assert off["params"] > 10 * PARAM_RTOL, (label, off)
        assert any(off[k] > 10 * limits[k] for k in ("train_loss", "eval_loss")), (label, off)
