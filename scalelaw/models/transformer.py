"""A LLaMA-style decoder-only language model with muP/CompleteP multipliers.

Pre-norm RMSNorm, rotary positions, GELU or SwiGLU MLP, no biases, tied or untied
embeddings. The blocks' weights are stacked along a leading layer axis and run with
:func:`jax.lax.scan` (unrolled up to :data:`UNROLL_MAX_DEPTH` layers), so compile time
does not grow with depth and role inference sees the layer axis
(:mod:`scalelaw.mup.roles`).

The model is a pure function of a flat parameter dict (:func:`init_params`,
:func:`forward`) -- what the training loop jits -- and :class:`Transformer` wraps it as a
Flax NNX module. Shapes in comments: B batch, T time, D width, H heads, K head_dim,
F MLP width, V vocab, L depth.

Where the parametrization enters (TP V Table 8; Dey et al. 2025):

- init std from :meth:`Parametrization.init_std` (readout keeps its base-width scale
  under muP, optional zero-init readout and query);
- readout forward multiplier ``output_mult / m``, ``m = width / base_width``;
- attention logits times :meth:`Parametrization.attention_scale` (``1/d`` under muP);
- residual branches times ``depth_mult^-alpha`` under CompleteP.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> from flax import nnx
>>> from scalelaw.models.config import TransformerConfig
>>> from scalelaw.mup.rules import Parametrization
>>> cfg = TransformerConfig(width=32, depth=2, head_dim=8, context=16)
>>> model = Transformer(cfg, Parametrization("mup", base_width=32), rngs=nnx.Rngs(0))
>>> model(jnp.zeros((2, 16), jnp.int32)).shape
(2, 16, 256)
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from scalelaw.models._nnx import PureModule
from scalelaw.models.config import TransformerConfig
from scalelaw.mup.roles import infer_roles
from scalelaw.mup.rules import Parametrization

Params = dict[str, jax.Array]

UNROLL_MAX_DEPTH = 8
"""Models up to this depth unroll their layer scan (``lax.scan(..., unroll=True)``).

Unrolled, XLA keeps each layer's activations for the backward pass in their own
buffers instead of writing them into stacked ones and slicing them back out; at depth 4
that made a training step 7-13% faster at width 256 on one CPU core, with no longer
compile times (benchmarks/train_throughput.py). Deeper models keep a rolled loop, so
their compile time does not grow with depth.
"""


def _sp(config: TransformerConfig) -> Parametrization:
    return Parametrization("sp", base_width=config.width)


def init_params(
    config: TransformerConfig, parametrization: Parametrization | None, key: jax.Array
) -> Params:
    """Initial parameters (float32) under ``parametrization`` (default SP)."""
    p = parametrization or _sp(config)
    D, L, F, V = config.width, config.depth, config.mlp_width, config.vocab
    keys = iter(jax.random.split(key, 9))

    def normal(shape: tuple[int, ...], std: float) -> jax.Array:
        return std * jax.random.normal(next(keys), shape, jnp.float32)

    hidden_d = p.init_std("hidden", D, D)
    hidden_f = p.init_std("hidden", F, F)
    params = {
        "embed": normal((V, D), p.init_std("input", V, V)),
        "wq": normal((L, D, D), 0.0 if p.zero_init_query else hidden_d),
        "wk": normal((L, D, D), hidden_d),
        "wv": normal((L, D, D), hidden_d),
        "wo": normal((L, D, D), hidden_d),
        "w1": normal((L, D, F), hidden_d),
        "w2": normal((L, F, D), hidden_f),
        "attn_norm": jnp.ones((L, D), jnp.float32),
        "mlp_norm": jnp.ones((L, D), jnp.float32),
        "norm": jnp.ones((D,), jnp.float32),
    }
    if config.mlp == "swiglu":
        params["w3"] = normal((L, D, F), hidden_d)
    if not config.tied_embeddings:
        params["readout"] = normal((D, V), p.init_std("output", D, p.base_width))
    return params


def roles(
    config: TransformerConfig,
    parametrization: Parametrization,
    overrides: dict[str, str] | None = None,
) -> Any:
    """The muP role of every parameter, inferred from shapes at two widths and depths."""

    def make(width: int, depth: int) -> Params:
        cfg = config.replace(width=width, depth=depth)
        return init_params(cfg, parametrization, jax.random.key(0))

    return infer_roles(
        make, parametrization.base_width, config.width, depth=config.depth,
        probe_width=_probe_width(config, parametrization.base_width), overrides=overrides,
    )


def _probe_width(config: TransformerConfig, base_width: int) -> int:
    """A second width that keeps ``width % head_dim == 0``."""
    if config.width != base_width:
        return config.width
    return base_width + config.head_dim


def rms_norm(x: jax.Array, gain: jax.Array, eps: float = 1e-6) -> jax.Array:
    """RMSNorm over the last axis (Zhang & Sennrich 2019)."""
    scale = jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)
    return x * scale * gain


def rotary(x: jax.Array, theta: float = 10000.0) -> jax.Array:
    """Rotary position embedding (Su et al. 2021) of ``x: (B, T, H, K)``, K even."""
    T, K = x.shape[1], x.shape[-1]
    freqs = theta ** (-jnp.arange(0, K // 2, dtype=jnp.float32) / (K // 2))
    angles = jnp.arange(T, dtype=jnp.float32)[:, None] * freqs[None, :]  # (T, K/2)
    cos, sin = jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :]
    x1, x2 = x[..., : K // 2], x[..., K // 2 :]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, scale: float) -> jax.Array:
    """``softmax(scale * q k^T + causal mask) v`` per head; ``q, k, v: (B, T, H, K)``."""
    T = q.shape[1]
    mask = jnp.tril(jnp.ones((T, T), bool))
    logits = jnp.einsum("bthk,bshk->bhts", q, k) * scale
    probs = jax.nn.softmax(jnp.where(mask, logits, -jnp.inf), axis=-1)
    return jnp.einsum("bhts,bshk->bthk", probs, v)


def _weight_grad(x: jax.Array, g: jax.Array) -> jax.Array:
    """``x^T g`` (the gradient of ``w`` in ``x @ w``) for ``x: (N, D)``, ``g: (N, F)``.

    XLA:CPU runs these products, which contract the long token axis of both operands,
    on its generic dot kernel, whose speed depends on the operands' layouts: left to
    itself it transposed ``g`` into a copy and then contracted a transposed operand
    against it (about 70 GFLOP/s for the 256 x 256 attention weights, against 150 for
    the same product in isolation). The barrier keeps both operands row-major as
    produced, and the narrower operand goes on the left (the fast orientation). Both are
    CPU measurements, so on GPU/TPU the product is left to XLA (a barrier there would
    block fusing the producer of ``g`` into the matmul).
    """
    if jax.default_backend() != "cpu":
        return x.T @ g
    x, g = jax.lax.optimization_barrier((x, g))
    return x.T @ g if x.shape[-1] <= g.shape[-1] else (g.T @ x).T


@jax.custom_vjp
def dense(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` for ``x: (..., D)``, ``w: (D, F)``, weight gradient by :func:`_weight_grad`.

    A ``custom_vjp``: reverse mode (``grad``, ``vjp``, hvp by grad-of-grad) works,
    forward mode (``jvp``, ``jacfwd``) through the model does not.
    """
    return x @ w


def _dense_fwd(x: jax.Array, w: jax.Array) -> tuple[jax.Array, Any]:
    return x @ w, (x, w)


def _dense_bwd(res: Any, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, w = res
    g2 = g.reshape(-1, w.shape[-1])
    return (g2 @ w.T).reshape(x.shape), _weight_grad(x.reshape(-1, w.shape[0]), g2)


dense.defvjp(_dense_fwd, _dense_bwd)


_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu_and_derivative(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """tanh-approximate GELU (as :func:`jax.nn.gelu`) and its derivative, one pass."""
    t = jnp.tanh(_GELU_C * (x + 0.044715 * (x * x * x)))
    dt = _GELU_C * (1.0 + 3 * 0.044715 * (x * x)) * (1.0 - t * t)
    return 0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * dt


@jax.custom_vjp
def gelu_mlp(h: jax.Array, w1: jax.Array, w2: jax.Array) -> jax.Array:
    """``gelu(h @ w1) @ w2`` (tanh GELU) for ``h: (..., D)``, with a hand-written VJP.

    Same forward as autodiff would differentiate; the backward computes the GELU
    derivative once, in the row-major layout the two matmuls that read it want. With
    autodiff, XLA:CPU fused the GELU backward into a transposed copy for the weight
    gradient (strided stores, tanh recomputed): about a third of a training step at
    width 256 (benchmarks/train_throughput.py).
    """
    return jax.nn.gelu(h @ w1) @ w2


def _gelu_mlp_fwd(h: jax.Array, w1: jax.Array, w2: jax.Array) -> tuple[jax.Array, Any]:
    pre = h @ w1
    return jax.nn.gelu(pre) @ w2, (h, w1, w2, pre)


def _gelu_mlp_bwd(res: Any, g: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    h, w1, w2, pre = res
    shape = h.shape
    h, pre, g = h.reshape(-1, shape[-1]), pre.reshape(-1, w1.shape[-1]), g.reshape(-1, w2.shape[-1])
    act, dact = _gelu_and_derivative(pre)  # (N, F)
    dpre = (g @ w2.T) * dact
    return (dpre @ w1.T).reshape(shape), _weight_grad(h, dpre), _weight_grad(act, g)


gelu_mlp.defvjp(_gelu_mlp_fwd, _gelu_mlp_bwd)


def forward(
    params: Params,
    tokens: jax.Array,
    config: TransformerConfig,
    parametrization: Parametrization | None = None,
    *,
    with_activations: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """Logits ``(B, T, V)`` for ``tokens: (B, T)``.

    With ``with_activations`` also returns the mean absolute value ("l1") of every
    module's output, as ``{name: scalar}`` with per-layer names ``"layer{i}.q"`` etc.,
    for the coordinate check.
    """
    p = parametrization or _sp(config)
    B, T = tokens.shape
    H, K = config.n_heads, config.head_dim
    res_mult = p.residual_mult(config.depth)
    attn_scale = p.attention_scale(K, p.base_head_dim)
    out_mult = p.layer_rule("output", config.width / p.base_width).forward_mult
    l1 = lambda a: jnp.mean(jnp.abs(a))  # noqa: E731

    x = params["embed"][tokens]  # (B, T, D)
    stats: dict[str, jax.Array] = {"embed": l1(x)}
    blocks: Params = {k: params[k] for k in ("wq", "wk", "wv", "wo", "w1", "w2", "w3",
                                     "attn_norm", "mlp_norm") if k in params}

    def block(x: jax.Array, w: Params) -> tuple[jax.Array, dict[str, jax.Array]]:
        h = rms_norm(x, w["attn_norm"])
        q = dense(h, w["wq"]).reshape(B, T, H, K)
        k = dense(h, w["wk"]).reshape(B, T, H, K)
        v = dense(h, w["wv"]).reshape(B, T, H, K)
        qr, kr = rotary(q), rotary(k)
        attn = dense(causal_attention(qr, kr, v, attn_scale).reshape(B, T, H * K), w["wo"])
        x = x + res_mult * attn
        h = rms_norm(x, w["mlp_norm"])
        if "w3" in w:
            pre = dense(h, w["w1"])  # (B, T, F)
            mlp = dense(jax.nn.silu(pre) * dense(h, w["w3"]), w["w2"])
        else:
            pre, mlp = None, gelu_mlp(h, w["w1"], w["w2"])  # pre stays inside gelu_mlp
        x = x + res_mult * mlp
        if not with_activations:  # the training path carries no statistics through the scan
            return x, {}
        if pre is None:
            pre = h @ w["w1"]  # the GELU MLP's input, for the statistics only
        logits = jnp.einsum("bthk,bshk->bhts", qr, kr) * attn_scale
        s = {"q": l1(q), "k": l1(k), "v": l1(v), "attn_logits": l1(logits),
             "attn_out": l1(attn), "mlp_in": l1(pre), "mlp_out": l1(mlp), "residual": l1(x)}
        return x, s

    unroll = config.depth <= UNROLL_MAX_DEPTH  # see UNROLL_MAX_DEPTH
    x, per_layer = jax.lax.scan(block, x, blocks, unroll=unroll)
    x = rms_norm(x, params["norm"])
    readout = params["readout"] if "readout" in params else params["embed"].T
    logits = out_mult * dense(x, readout)
    if not with_activations:
        return logits
    for name, values in per_layer.items():
        for i in range(config.depth):
            stats[f"layer{i}.{name}"] = values[i]
    stats["readout"] = l1(logits)
    return logits, stats


def cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy in nats; ``logits (..., V)``, integer ``targets``."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


class Transformer(PureModule):
    """Flax NNX wrapper of :func:`forward`; parameters are :class:`nnx.Param` attributes.

    See :class:`scalelaw.models._nnx.PureModule` for the constructor.
    """

    init_fn = staticmethod(init_params)
    roles_fn = staticmethod(roles)
    forward_fn = staticmethod(forward)
