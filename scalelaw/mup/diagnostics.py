"""Diagnostics that show a parametrization is right: the coordinate check and top sigma.

The coordinate check (TP V, App. D.1; microsoft/mup ``get_coord_data``) trains a model
for a few steps at several widths on one fixed batch and records every module's mean
absolute output ("l1") before each step ``t = 1, 2, ...`` (``t = 1`` is at init). Under a
correct muP every l1 stays Theta(1) as width grows; under SP with Adam, hidden and output
activations grow with width after the first updates. A module is *stable* when the ratio
of its l1 at the widest and at the narrowest width lies in ``[1/bound, bound]`` for every
``t``; microsoft/mup's own test uses ``bound = 1.2`` for widths 4x apart, and by default
the bound here is that rate compounded over the span, ``1.2 ** log4(widest/narrowest)``
(1.44 for 16x): at small widths finite-width terms that shrink like ``width^-1/2`` still
move l1 a little, while SP's growth is a power of the width.

:func:`top_singular_values` is Fan et al. (2025)'s diagnostic for weight decay: match each
matrix's top singular value between proxy and target widths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from scalelaw.mup import optim
from scalelaw.mup.roles import path_str
from scalelaw.mup.rules import NAMES, Parametrization

MODELS = ("transformer", "mlp")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class CoordCheck:
    """Result of :func:`coord_check`.

    Attributes
    ----------
    data : DataFrame
        Columns ``width, module, t, l1`` (mean over seeds).
    verdicts : DataFrame
        One row per module: ``module, min_ratio, max_ratio, verdict`` with verdict
        ``"stable"``, ``"blows up"`` or ``"vanishes"``; ratios are widest / narrowest.
    bound : float
    """

    data: pd.DataFrame
    verdicts: pd.DataFrame
    bound: float

    @property
    def stable(self) -> bool:
        """True when every module is stable."""
        return bool((self.verdicts["verdict"] == "stable").all())


def _model_fns(model: str, width: int, depth: int, p: Parametrization) -> tuple[Any, ...]:
    """(config, init, roles, forward, loss, batch) for a reference model at ``width``."""
    if model == "transformer":
        from scalelaw.models import transformer as mod
        from scalelaw.models.config import TransformerConfig

        cfg = TransformerConfig(width=width, depth=depth, head_dim=16, context=32, vocab=256)
        tokens = jnp.asarray(_text_batch(8, cfg.context + 1))
        batch = (tokens[:, :-1], tokens[:, 1:])
        loss = mod.cross_entropy
    else:
        from scalelaw.models import mlp as mod
        from scalelaw.models.config import MLPConfig

        cfg = MLPConfig(width=width, depth=depth, d_in=32, d_out=10)
        kx, ky = jax.random.split(jax.random.key(1234))
        batch = (jax.random.normal(kx, (64, cfg.d_in)), jax.random.randint(ky, (64,), 0, 10))
        from scalelaw.models.transformer import cross_entropy as loss
    return cfg, mod.init_params, mod.roles, mod.forward, loss, batch


def _text_batch(rows: int, length: int) -> np.ndarray:
    """A fixed batch of byte tokens from a standard-library source file (no download)."""
    import json as module  # any stdlib module shipped as source

    with open(module.__file__, "rb") as fh:
        data = np.frombuffer(fh.read(rows * length), dtype=np.uint8)
    return data.astype(np.int32).reshape(rows, length)


def _trace(model: str, width: int, depth: int, p: Parametrization, optimizer: str,
           lr: float, steps: int, seed: int) -> list[dict[str, float]]:
    cfg, init, roles_fn, forward, loss_fn, (x, y) = _model_fns(model, width, depth, p)
    params = init(cfg, p, jax.random.key(seed))
    roles = roles_fn(cfg, p)
    if optimizer == "adam":
        opt = optim.adamw(lr, roles=roles, parametrization=p, depth=depth)
    else:
        opt = optim.sgd(lr, roles=roles, parametrization=p, depth=depth)

    @jax.jit
    def step(params: Any, state: Any) -> tuple[Any, Any, dict[str, jax.Array]]:
        def loss(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            out, stats = forward(params, x, cfg, p, with_activations=True)
            return loss_fn(out, y), stats

        (_, stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, stats

    state, records = opt.init(params), []
    for _ in range(steps):
        params, state, stats = step(params, state)
        records.append({k: float(v) for k, v in stats.items()})
    return records


def coord_check(
    model: str = "mlp",
    parametrization: Parametrization | str = "mup",
    widths: Sequence[int] = (128, 512),
    *,
    steps: int = 3,
    optimizer: str = "adam",
    lr: float | None = None,
    depth: int = 2,
    seeds: int = 1,
    bound: float | None = None,
    zero_init_readout: bool = True,
) -> CoordCheck:
    """Coordinate check of a reference model over ``widths``.

    Parameters
    ----------
    model : {"transformer", "mlp"}
    parametrization : Parametrization or {"sp", "mup", "completep"}
        A name builds ``Parametrization(name, base_width=min(widths), base_depth=depth,
        zero_init_readout=zero_init_readout)``.
    widths : sequence of int
        At least two distinct widths (multiples of 16 for the transformer).
    steps : int
        Number of recorded steps; ``t = 1`` is the forward pass at init.
    optimizer : {"adam", "sgd"}
    lr : float, optional
        Base learning rate (default 1e-2 for Adam, 0.1 for SGD).
    depth : int
    seeds : int
        Number of seeds averaged.
    bound : float, optional
        Stability bound on the widest/narrowest l1 ratio (> 1); default 1.2 per factor 4
        of width span.
    zero_init_readout : bool
        Used when ``parametrization`` is a name: a zero readout makes the ``t = 1``
        readout exactly 0 at every width, as in microsoft/mup's tests.

    Returns
    -------
    CoordCheck

    Examples
    --------
    >>> result = coord_check("mlp", "mup", widths=(128, 512), steps=3)
    >>> result.stable
    True
    """
    if model not in MODELS:
        raise ValueError(f"model: must be one of {', '.join(MODELS)}, got {model!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    widths = sorted({int(w) for w in widths})
    if len(widths) < 2 or widths[0] <= 0:
        raise ValueError(f"widths: need at least two distinct positive widths, got {widths}")
    if model == "transformer" and any(w % 16 for w in widths):
        raise ValueError(f"widths: transformer widths must be multiples of 16, got {widths}")
    for name, value, low in (("steps", steps, 1), ("seeds", seeds, 1), ("depth", depth, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name}: must be an integer >= {low}, got {value!r}")
    if bound is None:
        bound = 1.2 ** (np.log(widths[-1] / widths[0]) / np.log(4.0))
    if not bound > 1:
        raise ValueError(f"bound: must be > 1, got {bound!r}")
    if lr is None:
        lr = 1e-2 if optimizer == "adam" else 0.1
    if not lr > 0:
        raise ValueError(f"lr: must be > 0, got {lr!r}")
    if isinstance(parametrization, str):
        if parametrization not in NAMES:
            raise ValueError(f"parametrization: must be one of {', '.join(NAMES)}, "
                             f"got {parametrization!r}")
        parametrization = Parametrization(parametrization, base_width=widths[0],
                                          base_depth=depth, zero_init_readout=zero_init_readout)
    rows = []
    for width in widths:
        traces = [_trace(model, width, depth, parametrization, optimizer, lr, steps, seed)
                  for seed in range(seeds)]
        for t in range(steps):
            for module in traces[0][t]:
                l1 = float(np.mean([trace[t][module] for trace in traces]))
                rows.append({"width": width, "module": module, "t": t + 1, "l1": l1})
    data = pd.DataFrame(rows)
    return CoordCheck(data, _verdicts(data, bound), bound)


def _verdicts(data: pd.DataFrame, bound: float) -> pd.DataFrame:
    lo_w, hi_w = data["width"].min(), data["width"].max()
    table = data.pivot_table(index=["module", "t"], columns="width", values="l1")
    narrow, wide = table[lo_w].to_numpy(), table[hi_w].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((narrow == 0) & (wide == 0), 1.0, wide / narrow)
    ratios = pd.Series(ratio, index=table.index).groupby(level="module", sort=False)
    out = pd.DataFrame({"min_ratio": ratios.min(), "max_ratio": ratios.max()})
    out["verdict"] = np.where(out["max_ratio"] > bound, "blows up",
                              np.where(out["min_ratio"] < 1 / bound, "vanishes", "stable"))
    order = list(dict.fromkeys(data["module"]))
    return out.reindex(order).reset_index(names="module")


def top_singular_values(params: Any) -> dict[str, np.ndarray]:
    """Top singular value of every matrix (per layer for stacked ``(L, m, n)`` weights).

    Vectors and scalars are skipped. Fan et al. 2025 (arXiv 2510.15262) use it to match
    the steady-state scale of each matrix across widths when tuning weight decay.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> top_singular_values({"w": 3.0 * jnp.eye(4)})["w"]
    array(3., dtype=float32)
    """
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jnp.ndim(leaf) >= 2:
            sigma = jnp.linalg.svd(jnp.asarray(leaf), compute_uv=False)[..., 0]
            out[path_str(path)] = np.asarray(sigma)
    return out
