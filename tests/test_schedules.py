"""Tests for scalelaw.schedules: token-driven LR schedules (Power, WSD, cosine, constant)."""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalelaw.schedules import constant, cosine, per_step, power, wsd

REL = 2e-6  # float32 arithmetic inside the schedules; reference values are float64
E = math.e


def lr(sched, tokens) -> float:
    return float(sched(tokens))


# A hand-computable Power schedule: lr_power(n) = min(0.02, 4 * 1 * n**-0.5) = min(0.02, 4/sqrt(n)).
# The cap binds for n <= 40_000. Warmup ends at 250_000 where lr_power = 4/500 = 0.008.
# Decay over the last 10% of 10M tokens starts at 9M where lr_power = 4/3000.
HAND = dict(batch_size=4, total_tokens=10_000_000, a=1.0, b=-0.5, lr_max=0.02)
LR_D = 4.0 / 3000.0


def test_defaults_are_the_papers():
    params = inspect.signature(power).parameters
    assert params["a"].default == 4.0
    assert params["b"].default == -0.51
    assert params["lr_max"].default == 0.02
    assert params["decay"].default == "exponential"
    assert params["final_fraction"].default == 0.0
    sched = power(batch_size=256, total_tokens=1e12)
    assert lr(sched, 1e10) == pytest.approx(256 * 4.0 * 1e10**-0.51, rel=REL)
    assert lr(sched, 1e6) == pytest.approx(0.02, rel=REL)  # 256*4*1e6**-0.51 = 0.89 > cap


def test_power_warmup_ramps_to_lr_power_at_end_of_warmup():
    sched = power(**HAND, warmup_tokens=250_000)
    assert lr(sched, 0) == 0.0
    # (n / N_w) * lr_power(N_w): 0.5 * 0.008 -- Levanter's ramp to lr_max would give 0.01
    assert lr(sched, 125_000) == pytest.approx(0.004, rel=REL)
    assert lr(sched, 25_000) == pytest.approx(0.0008, rel=REL)
    assert lr(sched, 250_000) == pytest.approx(0.008, rel=REL)


def test_power_plateau_where_lr_max_caps():
    sched = power(**HAND)
    assert lr(sched, 0) == pytest.approx(0.02, rel=REL)  # n**b = inf, capped
    assert lr(sched, 10_000) == pytest.approx(0.02, rel=REL)  # 4/100 = 0.04 > 0.02
    assert lr(sched, 40_000) == pytest.approx(0.02, rel=REL)  # exactly at the cap
    assert lr(sched, 160_000) == pytest.approx(0.01, rel=REL)  # 4/400


def test_power_law_phase_counts_tokens_from_start_of_training():
    sched = power(**HAND, warmup_tokens=250_000)
    # 4/sqrt(1e6); counting from the end of warmup would give 4/sqrt(750_000) = 0.00462
    assert lr(sched, 1_000_000) == pytest.approx(0.004, rel=REL)
    assert lr(sched, 4_000_000) == pytest.approx(0.002, rel=REL)
    assert lr(sched, 6_250_000) == pytest.approx(0.0016, rel=REL)


def test_power_exponential_decay_tail():
    sched = power(**HAND, warmup_tokens=250_000, decay_fraction=0.1)
    assert lr(sched, 8_999_999) == pytest.approx(4 / math.sqrt(8_999_999), rel=REL)
    assert lr(sched, 9_000_000) == pytest.approx(LR_D, rel=REL)
    # midpoint: IBM factor at x = T/2 with f = 0 is (e*e**-0.5 - 1)/(e - 1) = 1/(sqrt(e)+1)
    mid = (E * math.exp(-0.5) - 1) / (E - 1)
    assert mid == pytest.approx(1 / (math.sqrt(E) + 1))
    assert lr(sched, 9_500_000) == pytest.approx(LR_D * mid, rel=REL)
    x, T = 800_000, 1_000_000  # a point off the midpoint
    assert lr(sched, 9_800_000) == pytest.approx(
        LR_D * (E * math.exp(-x / T) - 1) / (E - 1), rel=1e-5
    )
    assert lr(sched, 10_000_000) == 0.0  # exactly 0 at the end, as in the paper
    assert lr(sched, 20_000_000) == 0.0  # held after the end


def test_power_exponential_decay_to_final_fraction():
    f = 0.2
    sched = power(**HAND, decay_fraction=0.1, final_fraction=f)
    factor = ((1 - f) * E * math.exp(-0.5) + f * E - 1) / (E - 1)
    assert lr(sched, 9_500_000) == pytest.approx(LR_D * factor, rel=REL)
    assert lr(sched, 10_000_000) == pytest.approx(f * LR_D, rel=REL)


def test_power_linear_decay():
    sched = power(**HAND, decay_fraction=0.1, decay="linear", final_fraction=0.5)
    assert lr(sched, 9_000_000) == pytest.approx(LR_D, rel=REL)
    assert lr(sched, 9_500_000) == pytest.approx(0.75 * LR_D, rel=REL)
    assert lr(sched, 10_000_000) == pytest.approx(0.5 * LR_D, rel=REL)


def test_power_decay_after_a_capped_phase_starts_from_lr_max():
    sched = power(**{**HAND, "total_tokens": 20_000}, decay_fraction=0.5, decay="linear")
    assert lr(sched, 10_000) == pytest.approx(0.02, rel=REL)
    assert lr(sched, 15_000) == pytest.approx(0.01, rel=REL)
    assert lr(sched, 20_000) == 0.0


def test_tokens_outside_the_run_are_clamped():
    sched = power(**HAND, warmup_tokens=250_000)  # no decay
    assert lr(sched, 20_000_000) == lr(sched, 10_000_000)  # held, not extrapolated
    assert lr(sched, 10_000_000) == pytest.approx(4 / math.sqrt(1e7), rel=REL)
    assert lr(sched, -1000) == 0.0  # negative tokens count as 0
    assert lr(power(**HAND), -1000) == pytest.approx(0.02, rel=REL)


def test_batch_size_transfer_ratio_in_power_phase():
    small = power(batch_size=8, total_tokens=1e12, warmup_tokens=1e9)
    large = power(batch_size=32, total_tokens=1e12, warmup_tokens=1e9)
    # the cap binds below ~2.8e7 tokens for beta = 32, so the whole range is power-law
    for n in (5e8, 1e9, 1e10, 3e11):
        assert lr(small, n) / lr(large, n) == pytest.approx(8 / 32, rel=1e-5)
    # and the same tokens give the same schedule whatever the step size
    steps_small = per_step(small, tokens_per_step=8 * 2048)
    steps_large = per_step(large, tokens_per_step=32 * 2048)
    assert float(steps_small(4 * 10_000)) / float(steps_large(10_000)) == pytest.approx(0.25)


def test_wsd_values():
    sched = wsd(peak_lr=3.0, total_tokens=1000, warmup_tokens=100, decay_fraction=0.2)
    assert lr(sched, 0) == 0.0
    assert lr(sched, 25) == pytest.approx(0.75, rel=REL)
    assert lr(sched, 100) == pytest.approx(3.0, rel=REL)
    assert lr(sched, 800) == pytest.approx(3.0, rel=REL)
    assert lr(sched, 850) == pytest.approx(2.25, rel=REL)
    assert lr(sched, 1000) == 0.0
    cos = wsd(peak_lr=1.0, total_tokens=100, decay_fraction=0.5, decay="cosine", final_fraction=0.2)
    x = 0.25  # progress through the decay at 62.5 tokens
    expected = 0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * x))
    assert lr(cos, 62.5) == pytest.approx(expected, rel=REL)
    assert lr(cos, 100) == pytest.approx(0.2, rel=REL)
    sq = wsd(peak_lr=1.0, total_tokens=100, decay_fraction=0.5, decay="sqrt")
    assert lr(sq, 62.5) == pytest.approx(1 - math.sqrt(0.25), rel=REL)
    assert lr(sq, 100) == 0.0


def test_cosine_and_constant_values():
    sched = cosine(peak_lr=2.0, total_tokens=1100, warmup_tokens=100, final_fraction=0.1)
    assert lr(sched, 50) == pytest.approx(1.0, rel=REL)
    assert lr(sched, 100) == pytest.approx(2.0, rel=REL)
    x = 0.3  # at 400 tokens: 300 of 1000 decay tokens
    assert lr(sched, 400) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * x))))
    assert lr(sched, 1100) == pytest.approx(0.2, rel=REL)
    assert lr(cosine(peak_lr=1.0, total_tokens=10, final_fraction=0.0), 10) == 0.0
    c = constant(peak_lr=0.5, warmup_tokens=200)
    assert [lr(c, t) for t in (0, 50, 200, 1e12)] == [0.0, 0.125, 0.5, 0.5]
    assert lr(constant(peak_lr=0.5), 0) == 0.5


def _close_across(sched, boundary: float) -> None:
    eps = boundary * 1e-6
    left, right = lr(sched, boundary - eps), lr(sched, boundary + eps)
    assert left == pytest.approx(right, rel=1e-4), (boundary, left, right)


def test_continuity_at_phase_boundaries():
    p = power(**HAND, warmup_tokens=20_000, decay_fraction=0.1)
    for boundary in (20_000, 40_000, 9_000_000):  # warmup end, cap end, decay start
        _close_across(p, boundary)
    p2 = power(**HAND, warmup_tokens=250_000, decay_fraction=0.3, decay="linear")
    for boundary in (250_000, 7_000_000):
        _close_across(p2, boundary)
    w = wsd(peak_lr=1.0, total_tokens=1000, warmup_tokens=100, decay="cosine")
    for boundary in (100, 900):
        _close_across(w, boundary)
    _close_across(cosine(peak_lr=1.0, total_tokens=1000, warmup_tokens=100), 100)


fractions = st.floats(0.0, 0.9)


@st.composite
def schedules(draw):
    total = draw(st.floats(1e4, 1e12))
    decay_fraction = draw(fractions)
    warmup = draw(st.floats(0.0, 1.0)) * total * (1 - decay_fraction)
    final = draw(fractions)
    kind = draw(st.sampled_from(["power", "wsd", "cosine"]))
    if kind == "power":
        sched = power(
            batch_size=draw(st.integers(1, 4096)),
            total_tokens=total,
            warmup_tokens=warmup,
            a=draw(st.floats(0.1, 10.0)),
            b=draw(st.floats(-1.0, 0.0)),
            lr_max=draw(st.floats(1e-4, 1.0)),
            decay_fraction=decay_fraction,
            decay=draw(st.sampled_from(["exponential", "linear"])),
            final_fraction=final,
        )
    elif kind == "wsd":
        decay = draw(st.sampled_from(["linear", "cosine", "sqrt"]))
        sched = wsd(
            peak_lr=1.0,
            total_tokens=total,
            warmup_tokens=warmup,
            decay_fraction=decay_fraction,
            decay=decay,
            final_fraction=final,
        )
    else:
        sched = cosine(peak_lr=1.0, total_tokens=total, warmup_tokens=warmup, final_fraction=final)
    return sched, warmup, total


@settings(max_examples=60, deadline=None)
@given(schedules(), st.lists(st.floats(0.0, 1.5), min_size=16, max_size=16))
def test_monotone_non_increasing_after_warmup(case, positions):
    sched, warmup, total = case
    tokens = np.sort(warmup + np.asarray(positions) * (total - warmup))
    values = np.asarray(sched(tokens), dtype=np.float64)
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    # float32 rounding of equal-in-theory values is allowed, nothing more
    assert np.all(values[1:] <= values[:-1] * (1 + 1e-5) + 1e-30), values


@settings(max_examples=30, deadline=None)
@given(schedules(), st.floats(0.0, 1.0))
def test_warmup_is_non_decreasing(case, position):
    sched, warmup, _ = case
    tokens = np.array([0.0, position * warmup, warmup])
    values = np.asarray(sched(tokens), dtype=np.float64)
    assert np.all(np.diff(values) >= -1e-6 * values.max())


def test_jit_and_numpy_arrays_match_scalar_calls():
    sched = power(**HAND, warmup_tokens=250_000, decay_fraction=0.1)
    tokens = np.array([0, 125_000, 250_000, 1_000_000, 9_500_000, 10_000_000], dtype=np.int64)
    expected = np.array([lr(sched, int(t)) for t in tokens])
    from_numpy = sched(tokens)
    assert from_numpy.shape == tokens.shape
    np.testing.assert_allclose(np.asarray(from_numpy), expected, rtol=1e-6)
    jitted = jax.jit(sched)
    np.testing.assert_allclose(np.asarray(jitted(jnp.asarray(tokens))), expected, rtol=1e-6)
    # a traced scalar inside a compiled loop
    scanned = jax.jit(lambda ts: jax.lax.map(sched, ts))(jnp.asarray(tokens, jnp.float32))
    np.testing.assert_allclose(np.asarray(scanned), expected, rtol=1e-6)
    for other in (
        wsd(peak_lr=1.0, total_tokens=1e7, warmup_tokens=1e5),
        cosine(peak_lr=1.0, total_tokens=1e7, warmup_tokens=1e5),
        constant(peak_lr=1.0, warmup_tokens=1e5),
    ):
        np.testing.assert_allclose(
            np.asarray(jax.jit(other)(tokens)), np.asarray(other(tokens)), rtol=1e-6
        )
    # token counts beyond int32 (a Python int and a numpy int64 array)
    big = power(batch_size=1024, total_tokens=10**13)
    assert lr(big, 10**12) == pytest.approx(1024 * 4 * 1e12**-0.51, rel=1e-5)
    assert np.asarray(big(np.array([10**12, 5 * 10**12]))).shape == (2,)


def test_per_step_uses_tokens_seen_before_the_step():
    tokens_sched = constant(peak_lr=1.0, warmup_tokens=4096)
    sched = per_step(tokens_sched, tokens_per_step=1024)
    assert [float(sched(s)) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert float(jax.jit(sched)(jnp.int32(2))) == 0.5
    # no int32 overflow: 5000 steps of 2**20 tokens = 5.2e9 tokens
    p = power(batch_size=512, total_tokens=1e13)
    big = per_step(p, tokens_per_step=2**20)
    assert float(big(jnp.int32(5000))) == pytest.approx(lr(p, 5000 * 2**20), rel=1e-6)
    # optax calls the schedule with the number of updates already applied
    opt = optax.sgd(learning_rate=sched)
    params = jnp.array(0.0)
    state = opt.init(params)
    applied = []
    for _ in range(6):
        updates, state = opt.update(jnp.array(1.0), state, params)
        applied.append(-float(updates))
    assert applied == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


BAD = [
    (power, dict(batch_size=0, total_tokens=1e9), "batch_size"),
    (power, dict(batch_size=-8, total_tokens=1e9), "batch_size"),
    (power, dict(batch_size=8, total_tokens=0), "total_tokens"),
    (power, dict(batch_size=8, total_tokens=-1.0), "total_tokens"),
    (power, dict(batch_size=8, total_tokens=math.nan), "total_tokens"),
    (power, dict(batch_size=8, total_tokens=100, warmup_tokens=-1), "warmup_tokens"),
    (
        power,
        dict(batch_size=8, total_tokens=100, warmup_tokens=95, decay_fraction=0.1),
        "warmup_tokens",
    ),
    (power, dict(batch_size=8, total_tokens=100, decay_fraction=1.0), "decay_fraction"),
    (power, dict(batch_size=8, total_tokens=100, decay_fraction=-0.1), "decay_fraction"),
    (power, dict(batch_size=8, total_tokens=100, final_fraction=1.5), "final_fraction"),
    (power, dict(batch_size=8, total_tokens=100, decay="cosine"), "decay"),
    (power, dict(batch_size=8, total_tokens=100, a=0.0), "a"),
    (power, dict(batch_size=8, total_tokens=100, b=0.5), "b"),
    (power, dict(batch_size=8, total_tokens=100, lr_max=-0.02), "lr_max"),
    (power, dict(batch_size="8", total_tokens=100), "batch_size"),
    (wsd, dict(peak_lr=0.0, total_tokens=100), "peak_lr"),
    (wsd, dict(peak_lr=1.0, total_tokens=0), "total_tokens"),
    (wsd, dict(peak_lr=1.0, total_tokens=100, warmup_tokens=91), "warmup_tokens"),
    (wsd, dict(peak_lr=1.0, total_tokens=100, decay_fraction=1.0), "decay_fraction"),
    (wsd, dict(peak_lr=1.0, total_tokens=100, final_fraction=-0.5), "final_fraction"),
    (wsd, dict(peak_lr=1.0, total_tokens=100, decay="exp"), "decay"),
    (cosine, dict(peak_lr=1.0, total_tokens=100, warmup_tokens=101), "warmup_tokens"),
    (cosine, dict(peak_lr=1.0, total_tokens=100, final_fraction=1.0), "final_fraction"),
    (cosine, dict(peak_lr=-1.0, total_tokens=100), "peak_lr"),
    (constant, dict(peak_lr=1.0, warmup_tokens=-5), "warmup_tokens"),
    (constant, dict(peak_lr=0, warmup_tokens=5), "peak_lr"),
]


@pytest.mark.parametrize(("ctor", "kwargs", "name"), BAD)
def test_bad_arguments_are_rejected_naming_them(ctor, kwargs, name):
    with pytest.raises(ValueError) as info:
        ctor(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert f"{ctor.__name__}: {name} must" in message


def test_per_step_rejects_non_positive_tokens_per_step():
    with pytest.raises(ValueError, match="tokens_per_step"):
        per_step(constant(peak_lr=1.0), tokens_per_step=0)


def test_errors_list_allowed_decay_kinds():
    with pytest.raises(ValueError, match="exponential, linear"):
        power(batch_size=8, total_tokens=100, decay="sqrt")
    with pytest.raises(ValueError, match="linear, cosine, sqrt"):
        wsd(peak_lr=1.0, total_tokens=100, decay="exponential")
