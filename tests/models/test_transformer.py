"""Correctness of the reference transformer (scalelaw/models/transformer.py).

Causality, the custom VJPs against JAX's autodiff, rotary relative positions, the
muP/CompleteP multipliers against an independent reference forward written here with
plain jnp ops, and the NNX wrappers against the pure forward functions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from scalelaw.models import mlp, transformer
from scalelaw.models.config import MLPConfig, TransformerConfig
from scalelaw.mup.rules import Parametrization

# Tiny shapes shared by the tests (every new shape is a new compile).
WIDTH, BASE_WIDTH, HEAD_DIM, BASE_HEAD_DIM, CONTEXT, BATCH = 32, 16, 8, 4, 16, 3
OUTPUT_MULT = 3.0
CFG = TransformerConfig(width=WIDTH, depth=2, head_dim=HEAD_DIM, context=CONTEXT)
# muP away from the base width and head dimension, so every multiplier is != 1.
MUP = Parametrization("mup", base_width=BASE_WIDTH, base_head_dim=BASE_HEAD_DIM,
                      output_mult=OUTPUT_MULT)

# Cheaper XLA:CPU compiles (LLVM at -O0): compiling, not running, dominates these tests.
# Codegen options only; the HLO, and so what is computed, is the model's own.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                    "xla_llvm_disable_expensive_passes": True})
_forward = jit(transformer.forward,
               static_argnames=("config", "parametrization", "with_activations"))


def _tokens(seed: int = 0) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.integers(0, CFG.vocab, (BATCH, CONTEXT), dtype=np.int32))


@functools.cache
def _all_params() -> dict[str, np.ndarray]:
    """muP initial parameters of the largest model used here (depth 4, SwiGLU, untied), with
    random norm gains (at init they are all ones); :func:`_params` slices it.

    Two depth-2 inits stacked, so the random draws share their shapes (and compiled
    programs) with the module tests' ``init_params(CFG)``.
    """
    cfg = CFG.replace(mlp="swiglu")
    halves = [transformer.init_params(cfg, MUP, jax.random.key(i)) for i in range(2)]
    params = {}
    for name, value in halves[0].items():
        stacked = value.ndim == 3 or name in ("attn_norm", "mlp_norm")
        params[name] = np.concatenate([value, halves[1][name]]) if stacked else np.asarray(value)
    rng = np.random.default_rng(1)
    for name in ("attn_norm", "mlp_norm", "norm"):
        noise = rng.standard_normal(params[name].shape).astype(np.float32)
        params[name] = params[name] + np.float32(0.3) * noise
    return params


def _params(cfg: TransformerConfig) -> dict[str, jax.Array]:
    """Parameters for ``cfg`` (width CFG.width, depth <= 4): the first ``cfg.depth`` layers,
    ``w3`` only for SwiGLU and ``readout`` only when untied."""
    out = {}
    for name, value in _all_params().items():
        if (name == "w3" and cfg.mlp != "swiglu") or (name == "readout" and cfg.tied_embeddings):
            continue
        out[name] = jnp.asarray(value if name in ("embed", "norm", "readout")
                                else value[: cfg.depth])
    return out


def _ref_multipliers(cfg: TransformerConfig, p: Parametrization) -> dict[str, float]:
    """The three forward multipliers, from the formulas (not from Parametrization)."""
    if p.name == "sp":
        return {"res_mult": 1.0, "attn_scale": 1.0 / math.sqrt(cfg.head_dim),
                "out_mult": p.output_mult}
    base_k = p.base_head_dim or cfg.head_dim
    res = 1.0
    if p.name == "completep" and p.base_depth is not None:
        res = (cfg.depth / p.base_depth) ** -p.completep_alpha
    return {"res_mult": res, "attn_scale": math.sqrt(base_k) / cfg.head_dim,
            "out_mult": p.output_mult / (cfg.width / p.base_width)}


def _ref_rms(x: jax.Array, gain: jax.Array) -> jax.Array:
    return x / jnp.sqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * gain


def _ref_rotary(x: jax.Array) -> jax.Array:
    """Rotate the pairs ``(x[j], x[j + K/2])`` at position t by ``t * 10000^(-2j/K)``."""
    T, K = x.shape[1], x.shape[-1]
    half = K // 2
    angle = np.arange(T)[:, None] * 10000.0 ** (-2.0 * np.arange(half)[None, :] / K)
    cos = jnp.asarray(np.cos(angle), x.dtype)[None, :, None, :]
    sin = jnp.asarray(np.sin(angle), x.dtype)[None, :, None, :]
    a, b = x[..., :half], x[..., half:]
    return jnp.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


def _ref_forward(params: dict[str, jax.Array], tokens: jax.Array, cfg: TransformerConfig, *,
                 res_mult: float, attn_scale: float, out_mult: float) -> jax.Array:
    """The decoder written out layer by layer with plain jnp ops (no custom_vjp, no scan)."""
    B, T = tokens.shape
    K = cfg.head_dim
    H = cfg.width // K
    causal = np.tril(np.ones((T, T), bool))
    x = params["embed"][tokens]
    for i in range(cfg.depth):
        h = _ref_rms(x, params["attn_norm"][i])
        q = _ref_rotary((h @ params["wq"][i]).reshape(B, T, H, K))
        k = _ref_rotary((h @ params["wk"][i]).reshape(B, T, H, K))
        v = (h @ params["wv"][i]).reshape(B, T, H, K)
        s = jnp.einsum("bihd,bjhd->bhij", q, k) * attn_scale
        s = jnp.where(causal, s, -jnp.inf)
        e = jnp.exp(s - jnp.max(s, axis=-1, keepdims=True))
        probs = e / jnp.sum(e, axis=-1, keepdims=True)
        attn = jnp.einsum("bhij,bjhd->bihd", probs, v).reshape(B, T, H * K)
        x = x + res_mult * (attn @ params["wo"][i])
        h = _ref_rms(x, params["mlp_norm"][i])
        if cfg.mlp == "swiglu":
            a = h @ params["w1"][i]
            branch = (a * jax.nn.sigmoid(a) * (h @ params["w3"][i])) @ params["w2"][i]
        else:
            branch = jax.nn.gelu(h @ params["w1"][i], approximate=True) @ params["w2"][i]
        x = x + res_mult * branch
    x = _ref_rms(x, params["norm"])
    readout = params["embed"].T if cfg.tied_embeddings else params["readout"]
    return out_mult * (x @ readout)


_ref = jit(_ref_forward, static_argnames="cfg")  # multipliers traced: one compile per cfg


def _close(actual: jax.Array, desired: jax.Array, rtol: float, err_msg: str = "") -> None:
    """allclose with an absolute floor at ``rtol`` times the largest entry of ``desired``."""
    desired = np.asarray(desired)
    atol = rtol * float(np.max(np.abs(desired)))
    np.testing.assert_allclose(np.asarray(actual), desired, rtol=rtol, atol=atol,
                               err_msg=err_msg)


KINDS = [("gelu", False), ("gelu", True), ("swiglu", False), ("swiglu", True)]


# --------------------------------------------------------------------------- causality
@pytest.mark.parametrize(("kind", "tied"), KINDS)
def test_causality(kind: str, tied: bool) -> None:
    """Changing the token at s, or every token from s on, leaves the logits before s
    unchanged and changes those at every position from s on.

    Guards the causal mask (and any leak of future positions through the MLP or norms).
    """
    cfg = CFG.replace(mlp=kind, tied_embeddings=tied)
    params = _params(cfg)
    base = np.asarray(_tokens(0)[0])
    s_one, s_suffix = 6, 10
    rng = np.random.default_rng(9)
    new = (base + rng.integers(1, cfg.vocab, base.shape)) % cfg.vocab  # != base everywhere
    one = base.copy()
    one[s_one] = new[s_one]  # one token changed
    suffix = base.copy()
    suffix[s_suffix:] = new[s_suffix:]  # every token from s_suffix on changed
    tokens = jnp.asarray(np.stack([base, one, suffix]), jnp.int32)
    logits = np.asarray(_forward(params, tokens, cfg, MUP))
    np.testing.assert_allclose(logits[1, :s_one], logits[0, :s_one], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits[2, :s_suffix], logits[0, :s_suffix], rtol=1e-6,
                               atol=1e-6)
    # not vacuous: the change reaches every later position through attention
    change = np.max(np.abs(logits[1] - logits[0]), axis=-1)  # (T,)
    assert np.all(change[s_one:] > 1e-3), change
    change = np.max(np.abs(logits[2] - logits[0]), axis=-1)
    assert np.all(change[s_suffix:] > 1e-3), change


# --------------------------------------------------------------------- custom backwards
def _random(shape: tuple[int, ...], seed: int) -> jax.Array:
    """Float64 normal samples (call inside ``jax.enable_x64``)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def _matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    return x @ w


def _plain_gelu_mlp(h: jax.Array, w1: jax.Array, w2: jax.Array) -> jax.Array:
    return jax.nn.gelu(h @ w1, approximate=True) @ w2


@functools.partial(jit, static_argnums=(0, 1))
def _vjps(f: Callable, ref: Callable, args: tuple, g: jax.Array) -> tuple:
    """Outputs and VJPs (cotangent ``g``) of ``f`` and of ``ref``, and their second
    derivatives (grad-of-grad through the VJP): the gradient of ``<vjp(g), args>``."""

    def first(fn: Callable, xs: tuple) -> tuple:
        return jax.vjp(fn, *xs)[1](g)

    def second(fn: Callable) -> tuple:
        def inner(xs: tuple) -> jax.Array:
            return sum(jnp.vdot(d, r) for d, r in zip(first(fn, xs), args, strict=True))

        return jax.grad(inner)(args)

    return ((f(*args), first(f, args), second(f)), (ref(*args), first(ref, args), second(ref)))


def _check_vjps(f: Callable, ref: Callable, args: tuple, g: jax.Array, rtol: float) -> None:
    (out, grads, hvps), (ref_out, ref_grads, ref_hvps) = _vjps(f, ref, args, g)
    np.testing.assert_allclose(out, ref_out, rtol=rtol, atol=rtol)
    for i, (got, want) in enumerate(zip(grads, ref_grads, strict=True)):
        assert got.shape == want.shape == args[i].shape, i
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, err_msg=f"input {i}")
    for i, (got, want) in enumerate(zip(hvps, ref_hvps, strict=True)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, err_msg=f"hvp {i}")


@pytest.mark.parametrize(("lead", "d", "f"),
                         [((5,), 8, 12), ((2, 3), 12, 8), ((2, 1, 3), 12, 12)])
def test_dense_vjp_matches_autodiff(lead: tuple[int, ...], d: int, f: int) -> None:
    """``dense``'s custom VJP (and grad-of-grad through it) equals autodiff of ``x @ w`` for
    x and w, with square and non-square w and one to three leading batch axes."""
    with jax.enable_x64(True):
        x, w, g = _random((*lead, d), 0), _random((d, f), 1), _random((*lead, f), 2)
        _check_vjps(transformer.dense, _matmul, (x, w), g, 1e-12)


@pytest.mark.parametrize(("lead", "d", "f", "e"),
                         [((2, 3), 8, 12, 6), ((5,), 12, 8, 12), ((2, 1, 3), 8, 8, 8)])
def test_gelu_mlp_vjp_matches_autodiff(lead: tuple[int, ...], d: int, f: int, e: int) -> None:
    """``gelu_mlp``'s hand-written VJP (and grad-of-grad through it) equals autodiff of
    ``gelu(h @ w1) @ w2`` for h, w1 and w2, square and non-square, with batch axes."""
    with jax.enable_x64(True):
        h, w1, w2 = _random((*lead, d), 0), _random((d, f), 1), _random((f, e), 2)
        _check_vjps(transformer.gelu_mlp, _plain_gelu_mlp, (h, w1, w2),
                    _random((*lead, e), 3), 1e-11)


@jit
def _gelu_pair(x: jax.Array) -> tuple:
    ours = transformer._gelu_and_derivative(x)
    return ours, (jax.nn.gelu(x, approximate=True), jax.vmap(jax.grad(jax.nn.gelu))(x))


def test_gelu_derivative_matches_autodiff() -> None:
    """``_gelu_and_derivative`` returns jax.nn.gelu (tanh) and its exact derivative."""
    with jax.enable_x64(True):
        (act, dact), (want_act, want_dact) = _gelu_pair(jnp.linspace(-8.0, 8.0, 1601))
        np.testing.assert_allclose(act, want_act, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(dact, want_dact, rtol=1e-12, atol=1e-13)


def test_gelu_mlp_against_finite_differences() -> None:
    """gelu_mlp's reverse-mode derivatives match finite differences (independently of
    JAX's derivative of jax.nn.gelu)."""
    with jax.enable_x64(True):
        h, w1, w2 = _random((2, 3, 8), 0), _random((8, 12), 1), _random((12, 6), 2)
        check_grads(jax.jit(transformer.gelu_mlp), (h, w1, w2), order=1, modes=["rev"])


# ------------------------------------------------------- the whole model vs a reference
@pytest.mark.parametrize(("kind", "tied"), [("gelu", True), ("swiglu", False)])
def test_logits_and_gradients_match_reference(kind: str, tied: bool) -> None:
    """Logits and the gradient w.r.t. every parameter equal a plain-jnp reference forward.

    At width != base_width and head_dim != base_head_dim under muP, so it also checks the
    readout multiplier output_mult/m and the 1/d attention scale sqrt(d_base)/d. In float64.
    """
    cfg = CFG.replace(mlp=kind, tied_embeddings=tied)
    mults = _ref_multipliers(cfg, MUP)
    assert mults["out_mult"] == OUTPUT_MULT * BASE_WIDTH / WIDTH != 1.0
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: a.astype(jnp.float64), _params(cfg))
        tokens = _tokens(1)
        ct = _random((BATCH, CONTEXT, cfg.vocab), 5)  # a random cotangent for the logits

        def model_loss(q: dict) -> tuple[jax.Array, jax.Array]:
            logits = transformer.forward(q, tokens, cfg, MUP)
            return jnp.sum(logits * ct), logits

        def ref_loss(q: dict) -> tuple[jax.Array, jax.Array]:
            logits = _ref_forward(q, tokens, cfg, **mults)
            return jnp.sum(logits * ct), logits

        @jit
        def both(q: dict) -> tuple:
            return jax.grad(model_loss, has_aux=True)(q), jax.grad(ref_loss, has_aux=True)(q)

        (grads, logits), (ref_grads, ref_logits) = both(params)
        assert logits.dtype == jnp.float64
        # the rotary tables are float32 in the model, float64 in the reference: ~1e-7
        _close(logits, ref_logits, 1e-6, "logits")
        assert set(grads) == set(ref_grads) == set(params)
        for name in params:
            assert float(jnp.max(jnp.abs(ref_grads[name]))) > 0, name
            _close(grads[name], ref_grads[name], 1e-6, name)


def test_reference_detects_wrong_multipliers() -> None:
    """In float32 too the forward matches the reference, and the comparison can fail: a
    wrong readout, attention or residual multiplier moves the logits far past its tolerance."""
    params, tokens = _params(CFG), _tokens(1)
    logits = np.asarray(_forward(params, tokens, CFG, MUP))
    mults = _ref_multipliers(CFG, MUP)
    _close(logits, _ref(params, tokens, CFG, **mults), 1e-5)
    for wrong in ({"out_mult": OUTPUT_MULT}, {"attn_scale": 1 / math.sqrt(HEAD_DIM)},
                  {"res_mult": 0.9}):
        ref = np.asarray(_ref(params, tokens, CFG, **{**mults, **wrong}))
        assert np.max(np.abs(ref - logits)) > 1e-2 * np.max(np.abs(logits)), wrong


def test_cross_entropy_by_hand() -> None:
    """cross_entropy is the mean of -log softmax(logits)[target]."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 5, 7)).astype(np.float32)
    targets = rng.integers(0, 7, (2, 5)).astype(np.int32)
    z = logits.astype(np.float64)
    logp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    want = -np.mean(np.take_along_axis(logp, targets[..., None], axis=-1))
    np.testing.assert_allclose(float(jit(transformer.cross_entropy)(logits, targets)), want,
                               rtol=1e-6)


# --------------------------------------------------------------------------- rotary
@jit
def _rotary_scores(q: jax.Array, k: jax.Array) -> jax.Array:
    return jnp.einsum("bihd,bjhd->bhij", transformer.rotary(q), transformer.rotary(k))


def test_rotary_depends_only_on_relative_position() -> None:
    """<rotary(q)_i, rotary(k)_j> is unchanged when both positions shift by a constant, and
    rotary is a per-position rotation (norm-preserving, identity at position 0)."""
    T, H, K = CONTEXT, 2, HEAD_DIM
    rng = np.random.default_rng(0)
    q, k = (rng.standard_normal((1, T, H, K)).astype(np.float32) for _ in range(2))
    scores = np.asarray(_rotary_scores(q, k))
    for c in (1, 5):
        # position i + c now holds what position i held
        shifted = np.asarray(_rotary_scores(np.roll(q, c, axis=1), np.roll(k, c, axis=1)))
        np.testing.assert_allclose(shifted[:, :, c:, c:], scores[:, :, : T - c, : T - c],
                                   rtol=1e-5, atol=1e-5)
    plain = np.einsum("bihd,bjhd->bhij", q, k)
    off_diag = ~np.eye(T, dtype=bool)
    assert np.max(np.abs((scores - plain)[..., off_diag])) > 0.1  # it does rotate
    r = np.asarray(jit(transformer.rotary)(q))
    np.testing.assert_allclose(np.linalg.norm(r, axis=-1), np.linalg.norm(q, axis=-1),
                               rtol=1e-5)
    np.testing.assert_allclose(r[:, 0], q[:, 0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r, jit(_ref_rotary)(q), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- CompleteP
@pytest.mark.parametrize("depth", [4, 1])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_completep_scales_residual_branches(depth: int, alpha: float) -> None:
    """Away from base_depth, CompleteP multiplies every residual branch by
    (depth/base_depth)^-alpha (checked against the reference forward with that multiplier,
    and against one without it)."""
    cfg = CFG.replace(depth=depth)
    p = Parametrization("completep", base_width=BASE_WIDTH, base_head_dim=BASE_HEAD_DIM,
                        output_mult=OUTPUT_MULT, base_depth=2, completep_alpha=alpha)
    params, tokens = _params(cfg), _tokens(2)
    mults = _ref_multipliers(cfg, p)
    assert mults["res_mult"] == pytest.approx((depth / 2) ** -alpha)
    logits = np.asarray(_forward(params, tokens, cfg, p))
    _close(logits, _ref(params, tokens, cfg, **mults), 1e-5)
    unscaled = np.asarray(_ref(params, tokens, cfg, **{**mults, "res_mult": 1.0}))
    assert np.max(np.abs(unscaled - logits)) > 1e-2 * np.max(np.abs(logits))


def test_completep_at_base_depth_equals_mup() -> None:
    """At depth == base_depth (or base_depth None) CompleteP's forward is muP's."""
    params, tokens = _params(CFG), _tokens(2)
    mup = np.asarray(_forward(params, tokens, CFG, MUP))
    for base_depth, alpha in ((CFG.depth, 0.5), (None, 1.0)):
        p = Parametrization("completep", base_width=BASE_WIDTH, base_head_dim=BASE_HEAD_DIM,
                            output_mult=OUTPUT_MULT, base_depth=base_depth,
                            completep_alpha=alpha)
        assert p.residual_mult(CFG.depth) == 1.0
        np.testing.assert_array_equal(np.asarray(_forward(params, tokens, CFG, p)), mup)


# --------------------------------------------------------------------------- NNX wrappers
def _call(model: nnx.Module, x: jax.Array) -> jax.Array:
    """``model(x)``, jitted: the module rebuilt from its state inside the trace."""
    graphdef, state = nnx.split(model)
    return jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)


def test_transformer_module_matches_forward() -> None:
    """Transformer (NNX) initialises like init_params with its parametrization and calls
    forward with it, on its live parameters (read again after nnx.update)."""
    model = transformer.Transformer(CFG, MUP, rngs=nnx.Rngs(0))
    want = transformer.init_params(CFG, MUP, nnx.Rngs(0).params())
    assert set(model.params()) == set(want)
    for name in want:
        np.testing.assert_array_equal(model.params()[name], want[name], err_msg=name)
    # new values through NNX's state API: the module must read them, not a copy
    _, state = nnx.split(model)
    nnx.update(model, jax.tree.map(lambda a: a * 1.1, state))
    params = model.params()
    assert not np.array_equal(params["wq"], want["wq"])
    tokens = _tokens(3)
    logits = _call(model, tokens)
    _close(logits, _forward(params, tokens, CFG, MUP), 1e-6)
    _close(logits, _ref(params, tokens, CFG, **_ref_multipliers(CFG, MUP)), 1e-5)


def test_transformer_module_default_is_sp() -> None:
    """Without a parametrization the module is SP at its own width, like forward's default."""
    model = transformer.Transformer(CFG, rngs=nnx.Rngs(0))
    assert model.parametrization == Parametrization("sp", base_width=CFG.width)
    want = transformer.init_params(CFG, None, nnx.Rngs(0).params())
    for name in want:
        np.testing.assert_array_equal(model.params()[name], want[name], err_msg=name)


def test_mlp_module_matches_forward() -> None:
    """MLP (NNX) equals mlp.forward on its parameters, and both equal a plain (numpy) relu
    MLP with the muP readout multiplier output_mult/m."""
    cfg = MLPConfig(width=32, depth=2, d_in=8, d_out=3)
    p = Parametrization("mup", base_width=8, output_mult=OUTPUT_MULT)
    model = mlp.MLP(cfg, p, rngs=nnx.Rngs(0))
    want = mlp.init_params(cfg, p, nnx.Rngs(0).params())
    assert set(model.params()) == set(want) == {"w_in", "b_in", "w_h", "b_h", "readout"}
    for name in want:
        np.testing.assert_array_equal(model.params()[name], want[name], err_msg=name)
    rng = np.random.default_rng(0)  # non-zero biases, so the reference checks them too
    _, state = nnx.split(model)
    nnx.update(model, jax.tree.map(
        lambda a: a + np.float32(0.1) * rng.standard_normal(a.shape, np.float32), state))
    params = {k: np.asarray(v, np.float64) for k, v in model.params().items()}
    x = rng.standard_normal((5, 8)).astype(np.float32)
    out = np.asarray(_call(model, x))
    forward = jit(mlp.forward, static_argnames=("config", "parametrization"))
    _close(out, forward(model.params(), x, cfg, p), 1e-6)
    h = np.maximum(x @ params["w_in"] + params["b_in"], 0)
    for i in range(cfg.depth):
        h = np.maximum(h @ params["w_h"][i] + params["b_h"][i], 0)
    _close(out, OUTPUT_MULT / (32 / 8) * (h @ params["readout"]), 1e-5)
