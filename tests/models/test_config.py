"""Parameter and FLOP accounting against hand computation."""

from __future__ import annotations

import jax
import pytest

from scalelaw.models import (
    MLPConfig,
    TransformerConfig,
    flops_per_token,
    mlp,
    param_count,
    transformer,
)


@pytest.mark.parametrize("kind", ["gelu", "swiglu"])
@pytest.mark.parametrize("tied", [False, True])
def test_param_count_matches_the_initialised_model(kind: str, tied: bool) -> None:
    cfg = TransformerConfig(width=48, depth=3, head_dim=16, mlp_ratio=2.5, vocab=100, mlp=kind,
                            tied_embeddings=tied)
    params = transformer.init_params(cfg, None, jax.random.key(0))
    total = sum(v.size for v in params.values())
    assert param_count(cfg, embeddings=True) == total
    names = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")
    matrices = sum(params[k].size for k in names if k in params)
    assert param_count(cfg) == matrices
    # by hand: F = 120; Step Law's N = L (4 D^2 + k D F)
    assert param_count(cfg) == 3 * (4 * 48**2 + (3 if kind == "swiglu" else 2) * 48 * 120)


def test_flops_per_token_by_hand() -> None:
    cfg = TransformerConfig(width=64, depth=2, head_dim=16, context=128, vocab=256)
    n = 2 * (4 * 64 * 64 + 2 * 64 * 256)
    assert flops_per_token(cfg) == 6 * (n + 64 * 256) + 12 * 2 * 128 * 64
    small = MLPConfig(width=16, depth=1, d_in=4, d_out=2)
    assert param_count(small, embeddings=True) == 16 * 16 + 16 * (4 + 2) + 2 * 16
    assert param_count(small) == 16 * 16
    assert flops_per_token(small) == 6 * param_count(small, embeddings=True)
    every = sum(v.size for v in mlp.init_params(small, None, jax.random.key(0)).values())
    assert every == param_count(small, embeddings=True)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"width": 0}, "width"), ({"width": 50, "head_dim": 16}, "width"), ({"depth": -1}, "depth"),
     ({"mlp": "relu"}, "mlp"), ({"mlp_ratio": 0}, "mlp_ratio"), ({"vocab": 2.5}, "vocab")],
)
def test_bad_transformer_config(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        TransformerConfig(**kwargs)
