"""Reference models (Flax NNX) with muP multipliers, their accounting (``config.py``) and
their coordinate check (``coord_check.py``)."""

from scalelaw.models.config import (
    MLPConfig,
    ModelConfig,
    TransformerConfig,
    flops_per_token,
    param_count,
)

__all__ = ["MLPConfig", "ModelConfig", "TransformerConfig", "flops_per_token", "param_count"]
