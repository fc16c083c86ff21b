"""At the base width, muP init and the first updates equal SP bit for bit (microsoft/mup test 1)."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from scalelaw.models import MLPConfig, TransformerConfig, mlp, transformer
from scalelaw.mup.optim import adamw
from scalelaw.mup.rules import Parametrization


def run(module, cfg, p: Parametrization, batch, loss_fn, steps: int = 3) -> list:  # noqa: ANN001
    params = module.init_params(cfg, p, jax.random.key(7))
    opt = adamw(3e-3, 0.1, roles=module.roles(cfg, p), parametrization=p, depth=cfg.depth)
    state, history = opt.init(params), [params]

    @jax.jit
    def step(params, state):  # noqa: ANN001, ANN202
        grads = jax.grad(lambda q: loss_fn(module.forward(q, batch[0], cfg, p), batch[1]))(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
        history.append(params)
    return history


@pytest.mark.parametrize("name", ["mup", "completep"])
def test_transformer_base_width_equals_sp(name: str) -> None:
    cfg = TransformerConfig(width=64, depth=2, head_dim=16, context=16)
    tokens = jax.random.randint(jax.random.key(0), (4, 17), 0, 256)
    batch = (tokens[:, :-1], tokens[:, 1:])
    sp = run(transformer, cfg, Parametrization("sp", base_width=64), batch,
             transformer.cross_entropy)
    other = run(transformer, cfg, Parametrization(name, base_width=64, base_depth=2), batch,
                transformer.cross_entropy)
    for a, b in zip(sp, other, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(sp[0]["wq"], sp[-1]["wq"])  # the updates did something


def test_mlp_base_width_equals_sp_but_not_wider() -> None:
    x = jax.random.normal(jax.random.key(1), (16, 32))
    y = jax.random.randint(jax.random.key(2), (16,), 0, 10)
    cfg = MLPConfig(width=64, depth=2)
    sp = run(mlp, cfg, Parametrization("sp", base_width=64), (x, y), transformer.cross_entropy)
    mup = run(mlp, cfg, Parametrization("mup", base_width=64), (x, y), transformer.cross_entropy)
    for a, b in zip(sp, mup, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the same comparison away from the base width must differ (the test can fail)
    sp2 = run(mlp, cfg, Parametrization("sp", base_width=16), (x, y), transformer.cross_entropy)
    mup2 = run(mlp, cfg, Parametrization("mup", base_width=16), (x, y), transformer.cross_entropy)
    assert not np.array_equal(sp2[1]["w_h"], mup2[1]["w_h"])


def test_output_mult_is_applied_identically_by_sp_and_mup_at_base() -> None:
    cfg = TransformerConfig(width=64, depth=1, head_dim=16, context=16)
    tokens = jax.random.randint(jax.random.key(0), (2, 16), 0, 256)
    params = transformer.init_params(cfg, None, jax.random.key(3))
    out = {name: transformer.forward(params, tokens, cfg,
                                     Parametrization(name, base_width=64, output_mult=2.0))
           for name in ("sp", "mup")}
    np.testing.assert_array_equal(out["sp"], out["mup"])
    base = transformer.forward(params, tokens, cfg, Parametrization("sp", base_width=64))
    np.testing.assert_allclose(out["sp"], 2.0 * base, rtol=1e-6)


def test_completep_optimizer_requires_depth() -> None:
    p = Parametrization("completep", base_width=64, base_depth=1)
    cfg = TransformerConfig(width=64, depth=2, head_dim=16)
    with pytest.raises(ValueError, match="^depth: required"):
        adamw(1e-3, roles=transformer.roles(cfg, p), parametrization=p)


def test_one_over_d_attention_uses_the_base_head_dim() -> None:
    cfg = TransformerConfig(width=64, depth=1, head_dim=32, context=16)
    tokens = jax.random.randint(jax.random.key(0), (2, 16), 0, 256)
    params = transformer.init_params(cfg, None, jax.random.key(3))
    params["wq"] = params["wq"] * 8.0  # sharpen the attention so its scale matters

    def logits(**kw: object) -> np.ndarray:
        return np.asarray(transformer.forward(params, tokens, cfg,
                                              Parametrization("mup", base_width=16, **kw)))

    fixed = logits()  # heads grow with width: 1/d == 1/sqrt(d)
    np.testing.assert_array_equal(fixed, logits(attn_scale="1/sqrt(d)"))
    grown = logits(base_head_dim=8)  # head_dim grew 4x from the base: sqrt(8)/32
    assert not np.allclose(fixed, grown, rtol=1e-3)
    assert Parametrization("mup", base_head_dim=8).attention_scale(32, 8) == pytest.approx(
        8**0.5 / 32)
