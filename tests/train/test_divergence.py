"""Divergence masking: a diverged member is frozen at its last finite state, also on resume.

Every model here has one shape (width 32, depth 1, context 16, batch 4, 8 steps per
compiled call), so the step-level tests and the training-loop tests share one compiled
chunk per mode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scalelaw.sweep import TrialConfig
from scalelaw.train import read_metrics, read_summary, train_group
from scalelaw.train.step import member_hyper, stack, step_fns

B, T, S = 4, 16, 8  # batch, context, steps per compiled call
LR = 3e-3
K = 3  # finite steps before the divergence, which is step K + 1
STEPS = 24  # training-loop trials
BAD_LR = 2.5  # peak LR of a loop trial that diverges during warm-up, between steps 8 and 12


def trial(lr: float, seed: int = 0) -> TrialConfig:
    return TrialConfig.from_dict({
        "model": {"width": 32, "depth": 1, "head_dim": 16, "context": T},
        "parametrization": {"name": "mup", "base_width": 32},
        "optimizer": {"lr": lr, "grad_clip": 1.0},
        "schedule": {"name": "wsd", "warmup_tokens": 1024, "decay_fraction": 0.25},
        # chunks end at steps 8, 12, 16, 24; checkpoints at 8, 16, 24
        "train": {"tokens": STEPS * B * T, "batch_size": B, "eval_every": 12,
                  "eval_tokens": 256, "log_every": 4, "checkpoint_every": 8, "seed": seed},
    })


# ----------------------------------------------------------------------------- step level
SHAPE = trial(LR)
MAX_LOSS = SHAPE.train.divergence_rule.loss_cap(SHAPE.model.vocab)  # 3 ln V
HYPER = member_hyper(weight_decay=0.0, b1=0.9, b2=0.95, eps=1e-8, output_mult=1.0)
BATCHES = [np.random.default_rng(i).integers(0, 256, (S, B, T + 1)).astype(np.int32)
           for i in range(2)]  # two chunks: steps 1..S and S+1..2S
ALL = np.ones(S, bool)
FIRST_K = np.arange(S) < K  # a chunk that runs only the first K steps


def fns(vmapped: bool):  # noqa: ANN201
    return step_fns(SHAPE.model, SHAPE.parametrization, grad_clip=1.0, vmapped=vmapped)


def spiked_lrs(kind: str) -> np.ndarray:
    """``f32[S]``: ``LR`` except for one absurd LR, so that step ``K + 1`` diverges.

    ``overflow``: the LR of step K+1 is 1e30, whose update's norm overflows to inf (its
    loss, measured before the update, is still fine). ``loss_limit``: step K takes a
    huge but finite update (LR 1e3, applied), so the loss of step K+1 exceeds the limit.
    The LR is back to ``LR`` afterwards: a member that were not frozen would train again.
    """
    lrs = np.full(S, LR, np.float32)
    if kind == "overflow":
        lrs[K] = 1e30
    else:
        lrs[K - 1] = 1e3
    return lrs


def host(tree):  # noqa: ANN001, ANN201
    """Host copies (the chunk donates its input state, so keep nothing aliased)."""
    return jax.tree.map(lambda x: np.array(x, copy=True), tree)


def device(tree):  # noqa: ANN001, ANN201
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def member(tree, i: int):  # noqa: ANN001, ANN201
    return jax.tree.map(lambda x: x[i], tree)


def assert_same(got, want) -> None:  # noqa: ANN001
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)


def assert_differs(got, want) -> None:  # noqa: ANN001
    assert any(not np.array_equal(a, b)
               for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True))


def check_loss_at_divergence(kind: str, loss: float) -> None:
    if kind == "overflow":  # caught by the update's norm, not by the loss
        assert np.isfinite(loss) and loss < MAX_LOSS
    else:  # caught by the loss limit: huge, but finite
        assert np.isfinite(loss) and loss > MAX_LOSS


def run_chunks(f, state, hyper, lrs):  # noqa: ANN001, ANN201
    """Two chunks (steps 1..S, S+1..2S): the host states after each and the losses."""
    after, losses = [], []
    for i, batches in enumerate(BATCHES):
        # the first chunk carries the spike; the second runs at the plain LR throughout
        step_lrs = lrs if i == 0 else np.full_like(lrs, LR)
        state, out = f.chunk(device(state), hyper, step_lrs, batches, ALL)
        state = host(state)
        after.append(state)
        losses.append(np.asarray(out["loss"]))
    return after, np.concatenate(losses, axis=-1)


@pytest.mark.parametrize("kind", ["overflow", "loss_limit"])
def test_diverged_member_is_frozen_sequential(kind) -> None:
    """Sequential: after diverging at step K+1, params and optimizer state equal the state
    after exactly K steps, and stay so through 2S steps (the LR is sane again)."""
    f = fns(vmapped=False)
    init = host(f.init(jax.random.key(0)))
    want, _ = f.chunk(device(init), HYPER, spiked_lrs(kind), BATCHES[0], FIRST_K)
    want = host(want)
    assert int(want["step"]) == K and int(want["diverged_step"]) == -1
    assert_differs(want["params"], init["params"])  # K real steps were taken

    after, losses = run_chunks(f, init, HYPER, spiked_lrs(kind))
    check_loss_at_divergence(kind, float(losses[K]))
    for n, state in zip((S, 2 * S), after, strict=True):
        assert int(state["step"]) == n
        assert int(state["diverged_step"]) == K + 1
        assert_same(state["params"], want["params"])
        assert_same(state["opt_state"], want["opt_state"])


@pytest.mark.parametrize("kind", ["overflow", "loss_limit"])
def test_diverged_member_is_frozen_vmapped_beside_a_healthy_one(kind) -> None:
    """Vmapped group of two: the diverged member is frozen at its K-step state, while the
    healthy one keeps training, with the losses of its own sequential run."""
    f = fns(vmapped=True)
    inits = [host(fns(vmapped=False).init(jax.random.key(s))) for s in (0, 1)]
    init = host(stack(inits))
    hyper = stack([HYPER, HYPER])
    lrs = np.stack([spiked_lrs(kind), np.full(S, LR, np.float32)])
    want, _ = f.chunk(device(init), hyper, lrs, BATCHES[0], FIRST_K)
    want = member(host(want), 0)
    assert int(want["step"]) == K and int(want["diverged_step"]) == -1

    after, losses = run_chunks(f, init, hyper, lrs)
    check_loss_at_divergence(kind, float(losses[0, K]))
    for n, state in zip((S, 2 * S), after, strict=True):
        bad, good = member(state, 0), member(state, 1)
        assert int(bad["step"]) == int(good["step"]) == n
        assert int(bad["diverged_step"]) == K + 1 and int(good["diverged_step"]) == -1
        assert_same(bad["params"], want["params"])
        assert_same(bad["opt_state"], want["opt_state"])
    # the healthy member trains on: its state moves from chunk to chunk ...
    good_1, good_2 = (member(s, 1) for s in after)
    assert_differs(good_1["params"], member(init, 1)["params"])
    assert_differs(good_2["params"], good_1["params"])
    assert_differs(good_2["opt_state"], good_1["opt_state"])
    # ... exactly as it does alone (to vmap's float rounding)
    _, alone = run_chunks(fns(vmapped=False), inits[1], HYPER, np.full(S, LR, np.float32))
    assert np.isfinite(losses[1]).all()
    np.testing.assert_allclose(losses[1], alone, rtol=1e-5)


# ----------------------------------------------------------------------------- resume
def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]


def _summary(folder: Path) -> dict:
    return {k: v for k, v in read_summary(folder).items() if k != "wall_time"}


def _steps(folder: Path) -> list[int]:
    return [r["step"] for r in read_metrics(folder)]


@pytest.mark.parametrize("mode", ["sequential", "vmap"])
def test_resume_keeps_a_member_that_diverged_before_the_interruption(mode, tmp_path) -> None:
    """A group interrupted after one member diverged resumes with that member still
    diverged at the same step, its rows neither duplicated nor extended, and the healthy
    member finishing with the losses of an uninterrupted run; also when the diverged
    member's summary was lost (killed before it was written) and it must be replayed."""
    trials = [trial(BAD_LR), trial(LR, seed=1)]

    def run(root: Path, **kwargs: object) -> tuple[list, list[Path]]:
        dirs = [root / t.trial_id for t in trials]
        return train_group(trials, dirs, mode=mode, steps_per_call=S, **kwargs), dirs

    (bad_ref, good_ref), (bad_full, good_full) = run(tmp_path / "full")
    d = bad_ref.diverged_step
    assert bad_ref.status == "diverged" and good_ref.status == "done"
    assert 8 < d < 12, f"retune BAD_LR: diverged at {d}, wanted after the checkpoint at 8"
    assert _steps(bad_full) == [4, 8, d]

    seen: list[int] = []

    def interrupt(k: int) -> None:  # stop after the chunk that ends at step 12 of the good one
        seen.append(k)
        if sum(seen) >= STEPS + 12:  # the diverged member reports all its steps
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", progress=interrupt)
    bad, good = (tmp_path / "cut" / t.trial_id for t in trials)
    assert read_summary(bad)["status"] == "diverged" and read_summary(bad)["diverged_step"] == d
    assert _steps(good) == [4, 8, 12] and read_summary(good) is None
    assert max(int(p.name) for p in (good / "ckpt").iterdir() if p.name.isdigit()) == 8
    shutil.copytree(tmp_path / "cut", tmp_path / "lost")  # for the lost-summary case
    bad_text = {f: (bad / f).read_text() for f in ("metrics.jsonl", "summary.json")}

    def check_healthy(results: list, folder: Path) -> None:
        assert results[1].status == "done" and results[1].diverged_step is None
        assert _steps(folder) == _steps(good_full)  # no duplicated rows
        got, want = _strip(read_metrics(folder)), _strip(read_metrics(good_full))
        if mode == "sequential":  # the same compiled step: bit-identical
            assert got == want
            assert _summary(folder) == _summary(good_full)
        else:  # after the resume it may run alone: vmap rounds differently for K = 1
            for key in ("train_loss", "eval_loss", "grad_norm"):
                a, b = (np.array([r[key] for r in rows], dtype=float) for rows in (got, want))
                np.testing.assert_allclose(a, b, rtol=1e-5)  # NaN (not evaluated) == NaN
                assert np.isfinite(a).any()

    # 1. the diverged member is final: skipped, its files untouched
    total: list[int] = []
    results, _ = run(tmp_path / "cut", progress=total.append)
    assert sum(total) == 2 * STEPS and total[:2] == [STEPS, 8]  # skipped; resumed at 8
    assert results[0].status == "diverged" and results[0].diverged_step == d
    assert results[0] == bad_ref
    assert {f: (bad / f).read_text() for f in bad_text} == bad_text
    check_healthy(results, good)

    # 2. its summary was lost: replayed from its checkpoint at 8, it diverges at d again
    lost_bad, lost_good = (tmp_path / "lost" / t.trial_id for t in trials)
    (lost_bad / "summary.json").unlink()
    total = []
    results, _ = run(tmp_path / "lost", progress=total.append)
    assert sum(total) == 2 * STEPS and total[:2] == [8, 8]  # both resume at step 8
    assert results[0].status == "diverged" and results[0].diverged_step == d
    assert results[0].steps == d - 1 and results[0].final_train_loss is None
    assert _steps(lost_bad) == [4, 8, d]  # not duplicated, not extended past d
    assert _strip(read_metrics(lost_bad)) == _strip(read_metrics(bad_full))
    assert _summary(lost_bad) == _summary(bad_full)
    check_healthy(results, lost_good)
