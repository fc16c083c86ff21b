"""scalelaw.adamw / sgd: per-role updates by hand, and composition with optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scalelaw.mup.optim import adamw, sgd
from scalelaw.mup.roles import infer_roles
from scalelaw.mup.rules import Parametrization


def make(w: int) -> dict:
    return {"w_in": jnp.full((3, w), 2.0), "w_h": jnp.full((w, w), 2.0),
            "w_out": jnp.full((w, 2), 2.0), "gain": jnp.full((w,), 2.0)}


ROLES = infer_roles(make, base_width=8, width=32)  # m = 4
GRADS = jax.tree.map(lambda x: jnp.full_like(x, 0.5), make(32))


@pytest.mark.parametrize(("rule", "wd_h"), [("independent", 0.4), ("sqrt", 0.2), ("fixed", 0.1)])
def test_first_adamw_update_by_hand(rule: str, wd_h: float) -> None:
    p = Parametrization("mup", base_width=8, weight_decay_rule=rule)
    opt = adamw(1e-2, 0.1, roles=ROLES, parametrization=p)
    params = make(32)
    updates, _ = opt.update(GRADS, opt.init(params), params)
    # Adam's first step is g/|g| = 1 (eps negligible); coupled decay wd*p with p = 2
    np.testing.assert_allclose(updates["w_h"], -(1e-2 / 4) * (1 + wd_h * 2), rtol=1e-6)
    for vector_like in ("w_in", "w_out", "gain"):
        np.testing.assert_allclose(updates[vector_like], -1e-2, rtol=1e-6)


def test_scaled_eps_and_sgd_multipliers() -> None:
    p = Parametrization("mup", base_width=8, scale_adam_eps=True)
    params = make(32)
    tiny = jax.tree.map(lambda x: jnp.full_like(x, 1e-8), params)
    opt = adamw(1.0, roles=ROLES, parametrization=p, eps=1e-8, b1=0.0, b2=0.0)
    updates, _ = opt.update(tiny, opt.init(params), params)
    # hidden: lr/m * g/(|g| + eps/m) = 0.25 * 1e-8/(1e-8 + 0.25e-8) = 0.2; others 0.5
    np.testing.assert_allclose(updates["w_h"], -0.2, rtol=1e-5)
    np.testing.assert_allclose(updates["w_in"], -0.5, rtol=1e-5)
    s = sgd(0.1, roles=ROLES, parametrization=p)
    updates, _ = s.update(GRADS, s.init(params))
    assert float(updates["w_h"][0, 0]) == pytest.approx(-0.05)
    assert float(updates["w_in"][0, 0]) == pytest.approx(-0.2)  # input x m
    assert float(updates["w_out"][0, 0]) == pytest.approx(-0.2)  # output x m


def test_composes_with_optax_chain_inject_hyperparams_and_traced_lr() -> None:
    p = Parametrization("mup", base_width=8)
    params = make(32)
    mup_adamw = adamw(1e-2, roles=ROLES, parametrization=p)
    chained = optax.chain(optax.clip_by_global_norm(1.0), mup_adamw)
    updates, _ = chained.update(GRADS, chained.init(params), params)
    assert jnp.isfinite(updates["w_h"]).all()

    injected = optax.inject_hyperparams(adamw, static_args=("roles", "parametrization"))(
        learning_rate=1e-2, roles=ROLES, parametrization=p)
    state = injected.init(params)
    state.hyperparams["learning_rate"] = jnp.asarray(2e-2)
    updates, _ = injected.update(GRADS, state, params)
    np.testing.assert_allclose(updates["w_h"], -2e-2 / 4, rtol=1e-6)

    @jax.jit
    def step(lr: jax.Array) -> jax.Array:
        opt = adamw(lr, roles=ROLES, parametrization=p)
        return opt.update(GRADS, opt.init(params), params)[0]["w_out"]

    np.testing.assert_allclose(step(jnp.asarray(3e-2)), -3e-2, rtol=1e-6)
    schedule = adamw(optax.linear_schedule(1.0, 0.0, 10), roles=ROLES, parametrization=p)
    updates, _ = schedule.update(GRADS, schedule.init(params), params)
    np.testing.assert_allclose(updates["w_h"], -1.0 / 4, rtol=1e-6)
