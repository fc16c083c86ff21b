"""apply_mup on models it has never seen: roles, init by role, the absorbed readout
multiplier (equal losses to the explicit one), tied embeddings, NNX paths."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from scalelaw.errors import FieldError
from scalelaw.models import TransformerConfig, transformer
from scalelaw.mup import optim
from scalelaw.mup.any_model import apply_mup
from scalelaw.mup.rules import Parametrization

# --------------------------------------------------------------------- absorbed readout
BASE, WIDTH = 16, 64  # m = 4: sqrt(m) and a = 1/m are powers of two, so both inits agree
CFG = TransformerConfig(width=WIDTH, depth=1, head_dim=16, context=16, vocab=256)
P = Parametrization("mup", base_width=BASE)
EPS, LR, STEPS = 1e-4, 3e-3, 200


def _train(params: dict, opt: optax.GradientTransformation, p: Parametrization) -> np.ndarray:
    tokens = jax.random.randint(jax.random.key(7), (STEPS // 30, 4, CFG.context + 1), 0, 256)

    def step(carry: tuple, i: jax.Array) -> tuple:
        params, state = carry
        batch = tokens[i % tokens.shape[0]]

        def loss(params: dict) -> jax.Array:
            logits = transformer.forward(params, batch[:, :-1], CFG, p)
            return transformer.cross_entropy(logits, batch[:, 1:])

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    run = jax.jit(lambda params: jax.lax.scan(step, (params, opt.init(params)),
                                              jnp.arange(STEPS))[1])
    return np.asarray(run(params))


def _absorbed(eps_rule: str) -> np.ndarray:
    """scalelaw's transformer as a user model with no readout hook: its own forward with
    the multiplier switched off (output_mult = m makes output_mult / m = 1)."""
    sp = Parametrization("sp", base_width=WIDTH)
    setup = apply_mup(lambda w: transformer.init_params(CFG.replace(width=w), sp,
                                                        jax.random.key(0)),
                      width=WIDTH, parametrization=P, learning_rate=LR, eps=EPS,
                      probe_width=WIDTH)
    rules = setup.rules
    if eps_rule == "a * eps":  # the sign slip: epsilon multiplied by a instead of divided
        a = 1 / (WIDTH / BASE)
        rules = dict(rules, readout=replace(rules["readout"], eps_mult=a))
    opt = optim.adamw(LR, eps=EPS, rules=rules)
    return _train(setup.params, opt, replace(P, output_mult=WIDTH / BASE))


def test_absorbed_readout_multiplier_trains_like_the_explicit_one() -> None:
    params = transformer.init_params(CFG, P, jax.random.key(0))
    roles = transformer.roles(CFG, P)
    explicit = _train(params, optim.adamw(LR, eps=EPS, roles=roles, parametrization=P), P)
    absorbed = _absorbed("eps / a")
    assert explicit[-1] < explicit[0] - 1.0  # it trained
    np.testing.assert_allclose(absorbed, explicit, rtol=2e-4, atol=2e-4)
    wrong = _absorbed("a * eps")
    assert np.max(np.abs(wrong - explicit)) > 1e-2  # epsilon matters at this scale


# --------------------------------------------------------------------- any NNX model
class Net(nnx.Module):
    """A user's NNX MLP with biases everywhere (readout included)."""

    def __init__(self, width: int, rngs: nnx.Rngs) -> None:
        self.inp = nnx.Linear(8, width, rngs=rngs)
        self.hid = nnx.Linear(width, width, rngs=rngs)
        self.norm = nnx.LayerNorm(width, rngs=rngs)
        self.out = nnx.Linear(width, 3, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.inp(x))
        return self.out(self.norm(jax.nn.relu(self.hid(h))))


def _net(width: int) -> Net:
    return Net(width, nnx.Rngs(3))


def test_nnx_model_roles_init_and_optimizer() -> None:
    setup = apply_mup(_net, width=128, base_width=32, learning_rate=1e-2)
    kinds = {k: {n: r.kind for n, r in v.items()} for k, v in setup.roles.items()}
    assert kinds == {"inp": {"kernel": "input", "bias": "input"},
                     "hid": {"kernel": "hidden", "bias": "input"},
                     "norm": {"scale": "input", "bias": "input"},
                     "out": {"kernel": "output", "bias": "scalar"}}
    sp = _net(128)
    # readout: SP draw x sqrt(m) (muP init) x a = 1/m (absorbed multiplier); others kept
    np.testing.assert_allclose(setup.module.out.kernel[...], sp.out.kernel[...] * 2 / 4,
                               rtol=1e-6)
    np.testing.assert_array_equal(setup.module.hid.kernel[...], sp.hid.kernel[...])
    np.testing.assert_array_equal(setup.params["out"]["kernel"][...],
                                  setup.module.out.kernel[...])
    assert setup.output_mult == 1.0
    rules = setup.rules
    assert (rules["hid"]["kernel"].lr_mult, rules["out"]["kernel"].lr_mult) == (0.25, 0.25)
    assert rules["out"]["kernel"].eps_mult == 4.0 and rules["out"]["bias"].lr_mult == 1.0

    model = setup.module
    opt = nnx.Optimizer(model, setup.optimizer, wrt=nnx.Param)
    before = nnx.state(model, nnx.Param)
    before = jax.tree.map(jnp.copy, before)
    grads = nnx.grad(lambda m: jnp.mean(m(jnp.ones((4, 8))) ** 2))(model)
    opt.update(model, grads)
    step = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), nnx.state(model, nnx.Param), before)
    # Adam's first step moves every coordinate with a nonzero gradient by lr * lr_mult
    assert float(step["hid"]["kernel"][...]) == pytest.approx(1e-2 / 4, rel=1e-3)
    assert float(step["inp"]["kernel"][...]) == pytest.approx(1e-2, rel=1e-3)
    assert float(step["out"]["kernel"][...]) == pytest.approx(1e-2 / 4, rel=1e-3)


def test_sp_at_base_width_changes_nothing_and_normal_init_draws_by_role() -> None:
    same = apply_mup(_net, width=32, base_width=32, parametrization="sp")
    np.testing.assert_array_equal(same.module.out.kernel[...], _net(32).out.kernel[...])
    mup = apply_mup(_net, width=32, base_width=32)  # at the base width muP is SP exactly
    for a, b in zip(jax.tree.leaves(mup.params), jax.tree.leaves(same.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert jax.tree.leaves(mup.rules) == jax.tree.leaves(same.rules)
    fresh = apply_mup(_net, width=512, base_width=32, init="normal")
    hid = np.asarray(fresh.module.hid.kernel[...])
    assert hid.std() == pytest.approx(1 / np.sqrt(512), rel=0.02)
    out = np.asarray(fresh.module.out.kernel[...])  # 1/sqrt(base_fan_in) x a
    assert out.std() == pytest.approx(1 / np.sqrt(32) / 16, rel=0.1)
    np.testing.assert_array_equal(fresh.module.norm.scale[...], 1.0)  # vectors kept


@pytest.mark.parametrize("path", ["hid/kernel", "hid/kernel/value"])
def test_overrides_with_or_without_the_nnx_value_suffix(path: str) -> None:
    setup = apply_mup(_net, width=64, base_width=32, overrides={path: "input"})
    assert setup.roles["hid"]["kernel"].kind == "input"
    assert setup.rules["hid"]["kernel"].lr_mult == 1.0


class TiedLM(nnx.Module):
    """Input embedding reused as the readout; the muP multiplier applied at the readout."""

    def __init__(self, width: int, rngs: nnx.Rngs, readout_mult: float = 1.0) -> None:
        self.embed = nnx.Embed(50, width, rngs=rngs)
        self.hid = nnx.Linear(width, width, rngs=rngs)
        self.readout_mult = readout_mult

    def __call__(self, tokens: jax.Array) -> jax.Array:
        h = jax.nn.gelu(self.hid(self.embed(tokens)))
        return self.readout_mult * self.embed.attend(h)


def test_tied_embeddings_get_the_input_role_and_a_forward_multiplier() -> None:
    with pytest.raises(FieldError, match="^readout: .*tied embeddings.*hook"):
        apply_mup(lambda w: TiedLM(w, nnx.Rngs(0)), width=128, base_width=32)
    setup = apply_mup(lambda w: TiedLM(w, nnx.Rngs(0)), width=128, base_width=32,
                      readout="hook")
    embed = setup.roles["embed"]["embedding"]
    rule = setup.rules["embed"]["embedding"]
    assert embed.kind == "input" and (rule.lr_mult, rule.wd_mult, rule.eps_mult) == (1, 0, 1)
    assert setup.output_mult == 0.25
    np.testing.assert_array_equal(setup.module.embed.embedding[...],
                                  TiedLM(128, nnx.Rngs(0)).embed.embedding[...])
    setup.module.readout_mult = setup.output_mult
    assert setup.module(jnp.zeros((2, 5), jnp.int32)).shape == (2, 5, 50)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"readout": "fold"}, "readout"), ({"init": "xavier"}, "init"),
    ({"optimizer": "lion"}, "optimizer"), ({"width": 0}, "width"),
    ({"parametrization": "ntk"}, "parametrization"), ({"base_width": None}, "base_width"),
    ({"parametrization": Parametrization("mup", base_width=16)}, "base_width"),
])
def test_bad_arguments_name_the_argument(kwargs: dict, field: str) -> None:
    args = {"width": 64, "base_width": 32, **kwargs}
    with pytest.raises(FieldError, match=f"^{field}: "):
        apply_mup(_net, **args)


def test_builtin_mlp_readout_bias_is_scalar_role_and_added_after_the_multiplier() -> None:
    from scalelaw.models import MLPConfig, mlp, param_count

    cfg = MLPConfig(width=64, depth=1, d_in=4, d_out=3, readout_bias=True)
    p = Parametrization("mup", base_width=16)
    params = mlp.init_params(cfg, p, jax.random.key(0))
    assert params["b_out"].shape == (3,)
    assert param_count(cfg, embeddings=True) == sum(v.size for v in params.values())
    assert mlp.roles(cfg, p)["b_out"].kind == "scalar"
    x = jnp.ones((2, 4))
    shifted = dict(params, b_out=jnp.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(mlp.forward(shifted, x, cfg, p) - mlp.forward(params, x, cfg, p),
                               jnp.broadcast_to(jnp.array([1.0, 2.0, 3.0]), (2, 3)), rtol=1e-6)
    assert "b_out" not in mlp.init_params(cfg.replace(readout_bias=None), p, jax.random.key(0))


def test_stacked_layers_with_depth_and_normal_init_keeps_constants() -> None:
    cfg = CFG.replace(depth=3)
    sp = Parametrization("sp", base_width=WIDTH)

    def init(width: int, depth: int) -> dict:
        return transformer.init_params(cfg.replace(width=width, depth=depth), sp,
                                       jax.random.key(0))

    cp = Parametrization("completep", base_width=BASE, base_depth=1)
    setup = apply_mup(init, width=WIDTH, parametrization=cp, depth=3, stacked=True,
                      init="normal", probe_width=32)
    wq, gain = setup.roles["wq"], setup.roles["attn_norm"]
    assert (wq.kind, wq.fan_in, wq.in_block) == ("hidden", WIDTH, True)
    assert (gain.kind, gain.fan_in, gain.in_block) == ("input", 1, True)
    assert setup.rules["wq"].lr_mult == pytest.approx(1 / 4)  # CompleteP alpha=1: L^0 / m
    np.testing.assert_array_equal(setup.params["attn_norm"], 1.0)  # stacked gains kept
    assert float(jnp.std(setup.params["w1"])) == pytest.approx(1 / np.sqrt(WIDTH), rel=0.05)
    with pytest.raises(FieldError, match="^depth: "):
        apply_mup(init, width=WIDTH, parametrization=cp, stacked=True)
