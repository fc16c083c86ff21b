"""Under muP at one fixed LR, wider is better (microsoft/mup test 3)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scalelaw.models import TransformerConfig, transformer
from scalelaw.mup.optim import adamw
from scalelaw.mup.rules import Parametrization


def text_windows(steps: int, batch: int, length: int) -> np.ndarray:
    """Random windows of a few standard-library sources (bytes), fixed seed."""
    import argparse
    import json
    import typing

    data = b"".join(Path(m.__file__).read_bytes() for m in (argparse, json, typing))
    tokens = np.frombuffer(data, dtype=np.uint8).astype(np.int32)
    starts = np.random.default_rng(0).integers(0, len(tokens) - length, size=(steps, batch))
    return tokens[starts[..., None] + np.arange(length)]


def final_loss(width: int, windows: np.ndarray) -> tuple[float, float]:
    p = Parametrization("mup", base_width=32, zero_init_readout=True)
    cfg = TransformerConfig(width=width, depth=2, head_dim=16, context=windows.shape[-1] - 1)
    params = transformer.init_params(cfg, p, jax.random.key(0))
    opt = adamw(1e-2, roles=transformer.roles(cfg, p), parametrization=p, depth=2)

    def step(carry, batch):  # noqa: ANN001, ANN202
        params, state = carry
        loss, grads = jax.value_and_grad(lambda q: transformer.cross_entropy(
            transformer.forward(q, batch[:, :-1], cfg, p), batch[:, 1:]))(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    _, losses = jax.jit(lambda c, w: jax.lax.scan(step, c, w))((params, opt.init(params)),
                                                                jnp.asarray(windows))
    return float(losses[0]), float(jnp.mean(losses[-10:]))


def test_loss_decreases_with_width_under_mup() -> None:
    windows = text_windows(steps=100, batch=8, length=33)
    results = {w: final_loss(w, windows) for w in (32, 64, 128)}
    firsts = [r[0] for r in results.values()]
    finals = [r[1] for r in results.values()]
    # zero-init readout: step-1 loss is log(vocab) at every width (microsoft/mup's check)
    assert np.allclose(firsts, np.log(256), rtol=1e-6), results
    assert finals[0] > finals[1] > finals[2], results
    assert finals[2] < firsts[2] - 1.0, results  # it actually trained
