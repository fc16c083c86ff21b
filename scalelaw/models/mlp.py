"""A plain ReLU MLP with muP multipliers, for fast tests and coordinate checks.

``x (B, d_in) -> width -> [width -> width] * depth -> d_out``, with biases (the readout's
with ``readout_bias``: added after the muP multiplier, as microsoft/mup's ``MuReadout``
does, and of the scalar role, its size being finite). Hidden layers are stacked along a
leading layer axis and run with :func:`jax.lax.scan`.

Examples
--------
>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from scalelaw.models.config import MLPConfig
>>> model = MLP(MLPConfig(width=64, depth=2, d_in=8, d_out=3), rngs=nnx.Rngs(0))
>>> model(jnp.ones((5, 8))).shape
(5, 3)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from scalelaw.models._nnx import PureModule
from scalelaw.models.config import MLPConfig
from scalelaw.mup.roles import infer_roles
from scalelaw.mup.rules import Parametrization

Params = dict[str, jax.Array]


def _sp(config: MLPConfig) -> Parametrization:
    return Parametrization("sp", base_width=config.width)


def init_params(
    config: MLPConfig, parametrization: Parametrization | None, key: jax.Array
) -> Params:
    """Initial parameters (float32); biases start at zero."""
    p = parametrization or _sp(config)
    W, L = config.width, config.depth
    k_in, k_h, k_out = jax.random.split(key, 3)
    out_std = p.init_std("output", W, p.base_width)
    params = {
        "w_in": p.init_std("input", config.d_in, config.d_in)
        * jax.random.normal(k_in, (config.d_in, W)),
        "b_in": jnp.zeros((W,)),
        "w_h": p.init_std("hidden", W, W) * jax.random.normal(k_h, (L, W, W)),
        "b_h": jnp.zeros((L, W)),
        "readout": out_std * jax.random.normal(k_out, (W, config.d_out)),
    }
    if config.readout_bias:
        params["b_out"] = jnp.zeros((config.d_out,))
    return params


def roles(
    config: MLPConfig, parametrization: Parametrization, overrides: dict[str, str] | None = None
) -> Any:
    """The muP role of every parameter (see :func:`scalelaw.mup.roles.infer_roles`)."""

    def make(width: int, depth: int) -> Params:
        return init_params(config.replace(width=width, depth=depth), parametrization,
                           jax.random.key(0))

    return infer_roles(make, parametrization.base_width, config.width,
                       depth=max(config.depth, 1), overrides=overrides)


def forward(
    params: Params,
    x: jax.Array,
    config: MLPConfig,
    parametrization: Parametrization | None = None,
    *,
    with_activations: bool = False,
) -> Any:
    """Outputs ``(B, d_out)``; with ``with_activations`` also per-layer mean |output|."""
    p = parametrization or _sp(config)
    out_mult = p.layer_rule("output", config.width / p.base_width).forward_mult
    l1 = lambda a: jnp.mean(jnp.abs(a))  # noqa: E731
    h = jax.nn.relu(x @ params["w_in"] + params["b_in"])
    stats = {"input": l1(h)}

    def layer(h: jax.Array, w: Params) -> tuple[jax.Array, jax.Array]:
        h = jax.nn.relu(h @ w["w"] + w["b"])
        return h, l1(h)

    h, per_layer = jax.lax.scan(layer, h, {"w": params["w_h"], "b": params["b_h"]})
    out = out_mult * (h @ params["readout"])
    if "b_out" in params:
        out = out + params["b_out"]
    if not with_activations:
        return out
    for i in range(config.depth):
        stats[f"hidden{i}"] = per_layer[i]
    stats["readout"] = l1(out)
    return out, stats


class MLP(PureModule):
    """Flax NNX wrapper of :func:`forward`; parameters are :class:`nnx.Param` attributes.

    See :class:`scalelaw.models._nnx.PureModule` for the constructor.
    """

    init_fn = staticmethod(init_params)
    roles_fn = staticmethod(roles)
    forward_fn = staticmethod(forward)
