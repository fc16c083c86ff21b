"""train.divergence: a loss that blows up to a finite plateau counts as diverged.

One model shape (width 32, depth 1, context 16, batch 4) for every test. At LR 1.0 this
model's loss jumps from about 5.9 to a finite plateau near 20 and stays there: under the
old rule (only non-finite values or a cap of 3 ln V) it was recorded as ``done`` whenever
the cap was above the plateau. The expected divergence step is computed from the losses
of the same member run with the factor test off, so the tests do not depend on the
platform's exact numbers.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from scalelaw.errors import ConfigError
from scalelaw.sweep import TrialConfig
from scalelaw.train import read_metrics, train_group
from scalelaw.train.config import DEFAULT_DIVERGENCE, DivergenceRule
from scalelaw.train.step import member_hyper, step_fns

B, T, S = 4, 16, 24
CAP = 1e4  # far above the plateau: only the factor test can fire
HYPER = member_hyper(weight_decay=0.0, b1=0.9, b2=0.95, eps=1e-8, output_mult=1.0)
BATCHES = np.random.default_rng(0).integers(0, 256, (S, B, T + 1)).astype(np.int32)


def trial(lr: float, divergence: dict | None, steps: int = S) -> TrialConfig:
    train = {"tokens": steps * B * T, "batch_size": B, "eval_every": steps,
             "eval_tokens": 256, "log_every": 1, "checkpoint_every": 8}
    if divergence is not None:
        train["divergence"] = divergence
    return TrialConfig.from_dict({
        "model": {"width": 32, "depth": 1, "head_dim": 16, "context": T},
        "parametrization": {"name": "mup", "base_width": 32},
        "optimizer": {"lr": lr}, "schedule": {"name": "constant"}, "train": train,
    })


def run_chunk(rule: DivergenceRule, lr: float = 1.0):  # noqa: ANN201
    shape = trial(lr, None)
    fns = step_fns(shape.model, shape.parametrization, grad_clip=None, vmapped=False,
                   divergence=rule)
    state = fns.init(jax.random.key(0))
    state, out = fns.chunk(state, HYPER, np.full(S, lr, np.float32), BATCHES, np.ones(S, bool))
    return state, np.asarray(out["loss"])


def expected_step(losses: np.ndarray, factor: float, patience: int) -> int:
    """1-based step at which ``patience`` consecutive losses exceed factor x the first."""
    run = 0
    for i, loss in enumerate(losses, start=1):
        run = run + 1 if loss > factor * losses[0] else 0
        if run >= patience:
            return i
    return -1


def test_finite_plateau_is_diverged_by_the_factor_rule() -> None:
    """Loss far above its start but finite and under the cap: diverged after `patience`."""
    off, losses = run_chunk(DivergenceRule(max_loss=CAP, max_factor=None))
    assert int(off["diverged_step"]) == -1 and np.all(np.isfinite(losses))
    assert np.all(losses[2:] > 2 * losses[0]) and losses.max() < CAP  # the plateau
    for patience in (3, 10):
        rule = DivergenceRule(max_loss=CAP, max_factor=1.5, patience=patience)
        state, out = run_chunk(rule)
        want = expected_step(losses, 1.5, patience)
        assert 0 < want <= S and int(state["diverged_step"]) == want
        np.testing.assert_array_equal(out[:want], losses[:want])  # same run until then
        assert float(state["initial_loss"]) == losses[0]


def test_patience_longer_than_the_plateau_does_not_fire() -> None:
    state, _ = run_chunk(DivergenceRule(max_loss=CAP, max_factor=1.5, patience=S))
    assert int(state["diverged_step"]) == -1 and int(state["above"]) == S - 1


def test_a_diverged_member_is_frozen_at_the_step_before() -> None:
    """The step that trips the rule is not applied; nothing after it is either."""
    rule = DivergenceRule(max_loss=CAP, max_factor=1.5, patience=3)
    state, _ = run_chunk(rule)
    d = int(state["diverged_step"])
    shape = trial(1.0, None)
    fns = step_fns(shape.model, shape.parametrization, grad_clip=None, vmapped=False,
                   divergence=rule)
    before = fns.init(jax.random.key(0))
    active = np.arange(S) < d - 1  # exactly the d - 1 steps before the divergence
    before, _ = fns.chunk(before, HYPER, np.full(S, 1.0, np.float32), BATCHES, active)
    for name, value in state["params"].items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(before["params"][name]))


def test_default_rule_and_trial_ids() -> None:
    """The default catches a loss twice its start for 10 steps; leaving it out keeps ids."""
    assert DEFAULT_DIVERGENCE.max_factor < 2 and DEFAULT_DIVERGENCE.patience == 10
    plain = trial(1e-3, None)
    assert trial(1e-3, {"max_factor": 1.5, "patience": 10}).trial_id == plain.trial_id
    assert plain.train.divergence is None and plain.train.divergence_rule == DEFAULT_DIVERGENCE
    custom = trial(1e-3, {"max_factor": 3.0})
    assert custom.trial_id != plain.trial_id and custom.group_id != plain.group_id
    assert TrialConfig.from_json(custom.to_json()) == custom
    with pytest.raises(ConfigError, match=r"^train\.divergence\.patience: must be a positive"):
        trial(1e-3, {"patience": 0})
    with pytest.raises(ConfigError, match=r"^train\.divergence\.max_factr: unknown key"):
        trial(1e-3, {"max_factr": 2})


def test_training_loop_records_the_plateau_as_diverged(tmp_path) -> None:
    """Through train_group: status diverged (factor rule), done with the factor test off;
    an interruption between the first loss and the trip resumes to the same step."""
    caught = trial(1.0, {"max_loss": CAP, "patience": 12})  # trips after step 8's checkpoint
    missed = trial(1.0, {"max_loss": CAP, "max_factor": None})
    (r_missed,) = train_group([missed], [tmp_path / "b"], mode="sequential")
    (r_caught,) = train_group([caught], [tmp_path / "a"], mode="sequential")
    assert r_missed.status == "done"
    losses = np.array([r["train_loss"] for r in read_metrics(tmp_path / "b")])
    want = expected_step(losses, DEFAULT_DIVERGENCE.max_factor, 12)
    assert want > 8 and r_caught.status == "diverged" and r_caught.diverged_step == want

    done: list[int] = []

    def interrupt(steps: int) -> None:
        done.append(steps)
        if sum(done) >= 8:  # after the checkpoint at step 8, before the trip
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_group([caught], [tmp_path / "cut"], mode="sequential", progress=interrupt)
    assert sum(done) < want
    (resumed,) = train_group([caught], [tmp_path / "cut"], mode="sequential")
    assert resumed.status == "diverged" and resumed.diverged_step == want
    def rows(path):  # noqa: ANN001, ANN202
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in read_metrics(path)]

    assert rows(tmp_path / "cut") == rows(tmp_path / "a")  # same rows, none duplicated
