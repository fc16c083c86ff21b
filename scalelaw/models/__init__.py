"""Reference models (Flax NNX) with muP multipliers, and their accounting."""

from scalelaw.models.config import (
    MLPConfig,
    ModelConfig,
    TransformerConfig,
    flops_per_token,
    param_count,
)

__all__ = ["MLPConfig", "ModelConfig", "TransformerConfig", "flops_per_token", "param_count"]
