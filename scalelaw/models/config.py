"""Model configurations and their parameter and FLOP accounting (pure Python, no JAX).

Conventions (used by the fitters and sweep tables):

- ``param_count(cfg, embeddings=False)`` is the *non-embedding* count N, the Step Law
  (arXiv 2503.04715) and Farseer (arXiv 2506.10972) convention: the attention and MLP
  matrices only, ``depth * (4 D^2 + k D F)`` with ``k = 2`` (GELU) or 3 (SwiGLU); the
  norm gains (``(2 depth + 1) D`` numbers), the embedding and the readout are excluded.
- ``param_count(cfg, embeddings=True)`` is every parameter: it adds the norm gains, the
  embedding and (if untied) the readout.
- ``flops_per_token(cfg)`` = ``6 (N + D V) + 12 * depth * context * width`` training
  FLOPs per token: 6 per weight for the forward and backward matmuls of every matrix
  *including the readout* ``D V`` (the embedding lookup is free), plus the attention
  score and value products, ``2 * 2 * depth * context * width`` forward, times 3 with
  the backward pass; causal masking is not discounted (PaLM, Chowdhery et al. 2022,
  App. B; Hoffmann et al. 2022, App. F).

Examples
--------
>>> cfg = TransformerConfig(width=64, depth=2, head_dim=16, context=128, vocab=256)
>>> param_count(cfg)  # depth * (4 * width**2 + 2 * width * mlp_width)
98304
>>> flops_per_token(cfg) == 6 * (param_count(cfg) + 64 * 256) + 12 * 2 * 128 * 64
True
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from scalelaw._validation import (
    FieldError,
    Flag,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    section,
)

FAMILIES = ("transformer", "mlp")
MLP_KINDS = ("gelu", "swiglu")


@section
class TransformerConfig:
    """A LLaMA-style decoder: pre-norm RMSNorm, rotary positions, no biases.

    Parameters
    ----------
    width : int
        Model width ``D``; must be divisible by ``head_dim``.
    depth : int
        Number of residual blocks (each attention + MLP).
    head_dim : int
        Per-head width; the number of heads is ``width // head_dim``.
    mlp_ratio : float
        MLP hidden size = ``round(mlp_ratio * width)`` (for SwiGLU, each of the two
        input projections has that size).
    context : int
        Sequence length ``T``.
    vocab : int
        Vocabulary size (256 for byte-level text).
    mlp : {"gelu", "swiglu"}
    tied_embeddings : bool
        Share the embedding matrix with the readout.
    family : "transformer"
        The discriminator of :data:`ModelConfig` (a spec's ``model.family``).
    """

    width: PositiveInt = 128
    depth: PositiveInt = 2
    head_dim: PositiveInt = 32
    mlp_ratio: PositiveFloat = 4.0
    context: PositiveInt = 128
    vocab: PositiveInt = 256
    mlp: Literal["gelu", "swiglu"] = "gelu"
    tied_embeddings: Flag = False
    family: Literal["transformer"] = Field(default="transformer", repr=False)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerConfig:
        if self.width % self.head_dim:
            raise FieldError("width", f"must be divisible by head_dim={self.head_dim}, "
                                      f"got {self.width}")
        return self

    @property
    def n_heads(self) -> int:
        return self.width // self.head_dim

    @property
    def mlp_width(self) -> int:
        return max(1, round(self.mlp_ratio * self.width))

    def replace(self, **changes: Any) -> TransformerConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


@section
class MLPConfig:
    """A plain MLP ``d_in -> width -> ... -> width -> d_out`` for fast tests.

    ``depth`` counts the hidden (width x width) layers; activations are ReLU. Every layer
    has a bias; ``readout_bias=True`` gives the readout one too (``None``, the default,
    means no readout bias and keeps the trial ids of earlier specs, which hash the
    config with ``None`` fields left out).
    """

    width: PositiveInt = 128
    depth: NonNegativeInt = 2
    d_in: PositiveInt = 32
    d_out: PositiveInt = 10
    readout_bias: Flag | None = None
    family: Literal["mlp"] = Field(default="mlp", repr=False)

    def replace(self, **changes: Any) -> MLPConfig:
        return dataclasses.replace(self, **changes)


ModelConfig = Annotated[TransformerConfig | MLPConfig, Field(discriminator="family")]
"""A model config of either family, told apart by ``family``."""
MODEL_CLASSES = {"transformer": TransformerConfig, "mlp": MLPConfig}


def param_count(config: ModelConfig, embeddings: bool = False) -> int:
    """Number of parameters; without embeddings (default) the Step Law/Farseer N.

    For an :class:`MLPConfig` the input and output layers play the embedding and
    readout roles (``embeddings=False`` counts the hidden matrices only; ``True`` adds
    them and every bias).
    """
    if isinstance(config, MLPConfig):
        core = config.depth * config.width**2
        if not embeddings:
            return core
        biases = (config.depth + 1) * config.width + (config.d_out if config.readout_bias else 0)
        return core + config.width * (config.d_in + config.d_out) + biases
    w, f = config.width, config.mlp_width
    mlp = (3 if config.mlp == "swiglu" else 2) * w * f
    core = config.depth * (4 * w * w + mlp)  # q, k, v, o and the MLP matrices
    if not embeddings:
        return core
    gains = (2 * config.depth + 1) * w
    readout = 0 if config.tied_embeddings else w * config.vocab
    return core + gains + config.vocab * w + readout


def flops_per_token(config: ModelConfig) -> int:
    """Training FLOPs per token (forward + backward), see the module docstring."""
    if isinstance(config, MLPConfig):
        return 6 * param_count(config, embeddings=True)
    matmul_params = param_count(config) + config.width * config.vocab  # + readout
    attention = 12 * config.depth * config.context * config.width
    return 6 * matmul_params + attention
