"""The coordinate check of the reference models (``scalelaw coord-check``).

:func:`coord_check` builds the transformer or the MLP at each width, with one fixed batch
(byte tokens of a standard-library source file, or Gaussian inputs with class labels),
and runs :func:`scalelaw.mup.diagnostics.run_coord_check` on it: muP and CompleteP keep
every module's l1 stable as the width grows, SP does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from scalelaw.models import mlp, transformer
from scalelaw.models.config import MLPConfig, TransformerConfig
from scalelaw.mup.diagnostics import (
    CoordCheck,
    CoordModel,
    run_coord_check,
    run_depth_coord_check,
)
from scalelaw.mup.rules import Parametrization

MODELS = ("transformer", "mlp")


def reference_model(model: str, width: int, depth: int) -> CoordModel:
    """The reference ``model`` at ``width`` with its fixed batch, for the coordinate check."""
    if model == "transformer":
        cfg = TransformerConfig(width=width, depth=depth, head_dim=16, context=32, vocab=256)
        tokens = jnp.asarray(_text_batch(8, cfg.context + 1))
        return CoordModel(cfg, transformer.init_params, transformer.roles, transformer.forward,
                          transformer.cross_entropy, (tokens[:, :-1], tokens[:, 1:]))
    mlp_cfg = MLPConfig(width=width, depth=depth, d_in=32, d_out=10)
    kx, ky = jax.random.split(jax.random.key(1234))
    batch = (jax.random.normal(kx, (64, mlp_cfg.d_in)), jax.random.randint(ky, (64,), 0, 10))
    return CoordModel(mlp_cfg, mlp.init_params, mlp.roles, mlp.forward, transformer.cross_entropy,
                      batch)


def _text_batch(rows: int, length: int) -> np.ndarray:
    """A fixed batch of byte tokens from a standard-library source file (no download)."""
    import json as module  # any stdlib module shipped as source

    with open(module.__file__, "rb") as fh:
        data = np.frombuffer(fh.read(rows * length), dtype=np.uint8)
    return data.astype(np.int32).reshape(rows, length)


def _multiples_of_16(widths: list[int]) -> None:
    if any(w % 16 for w in widths):
        raise ValueError(f"widths: transformer widths must be multiples of 16, got {widths}")


def coord_check(
    model: str | Callable[..., Any] = "mlp",
    batch: Any = None,
    widths: Sequence[int] = (128, 512),
    *,
    parametrization: Parametrization | str = "mup",
    loss: Callable[[Any, Any], Any] | None = None,
    steps: int = 3,
    optimizer: str = "adam",
    lr: float | None = None,
    depth: int = 2,
    seeds: int = 3,
    bound: float | None = None,
    zero_init_readout: bool = True,
) -> CoordCheck:
    """Coordinate check of a reference model, or of your own NNX model, over ``widths``.

    ``coord_check("transformer", widths=..., parametrization="mup")`` checks a reference
    model; ``coord_check(model_fn, batch, widths=..., parametrization="mup")`` checks
    yours (:func:`scalelaw.mup.coord_any.coord_check_model`, which sets the model up by
    :func:`scalelaw.apply_mup` at each width and records every submodule's output).
    Either way the result and its figure (:meth:`CoordCheck.plot`) are those of
    ``scalelaw coord-check``. (The older positional form ``coord_check("mlp", "mup")``,
    a parametrization in the batch's place, still works for the reference models.)

    Parameters
    ----------
    model : {"mlp", "transformer"} or callable
        A reference model, or ``model(width)`` (or ``model(width, seed)``) returning an
        ``nnx.Module``.
    batch : (x, y), optional
        Your model's fixed batch (``x`` a tuple is passed as several arguments); required
        with a callable ``model``, None for a reference model.
    parametrization : Parametrization or {"sp", "mup", "completep"}
        A name builds ``Parametrization(name, base_width=min(widths), base_depth=depth,
        zero_init_readout=zero_init_readout)``.
    loss : callable, optional
        ``loss(output, y)`` for your model (default: cross-entropy for integer ``y``, else
        mean squared error).
    widths : sequence of int
        At least two distinct widths (multiples of 16 for the transformer).
    steps : int
        Number of recorded steps; ``t = 1`` is the forward pass at init.
    optimizer : {"adam", "sgd"}
    lr : float, optional
        Base learning rate (default 1e-2 for Adam, 0.1 for SGD).
    depth : int
    seeds : int
        Number of seeds (inits) averaged; their spread widens the bound.
    bound : float, optional
        A fixed stability bound on the widest/narrowest l1 ratio (> 1). Default: 1.2 per
        factor 4 of width span, widened by 3 standard errors of each module's log-ratio
        from the seed-to-seed spread (:func:`scalelaw.mup.diagnostics.coord_bound`).
    zero_init_readout : bool
        Used when ``parametrization`` is a name: a zero readout makes the ``t = 1``
        readout exactly 0 at every width, as in microsoft/mup's tests.

    Returns
    -------
    CoordCheck

    Examples
    --------
    >>> result = coord_check("mlp", widths=(128, 512), parametrization="mup", steps=3)
    >>> result.stable
    True
    """
    if callable(model):
        if batch is None:
            raise ValueError("batch: required for your own model (coord_check(model_fn, batch))")
        from scalelaw.mup.coord_any import coord_check_model

        return coord_check_model(model, batch, widths, parametrization=parametrization,
                                 loss=loss, steps=steps, optimizer=optimizer, lr=lr,
                                 seeds=seeds, bound=bound, zero_init_readout=zero_init_readout)
    if model not in MODELS:
        raise ValueError(f"model: must be one of {', '.join(MODELS)}, got {model!r}")
    if isinstance(batch, str | Parametrization):  # coord_check("mlp", "mup"): the old form
        batch, parametrization = None, batch
    if batch is not None:
        raise ValueError("batch: the reference models bring their own batch; pass none")
    return run_coord_check(
        partial(reference_model, model, depth=depth), parametrization, widths, steps=steps,
        optimizer=optimizer, lr=lr, depth=depth, seeds=seeds, bound=bound,
        zero_init_readout=zero_init_readout,
        check_widths=_multiples_of_16 if model == "transformer" else None)


DEPTH_JUDGED = ("embed", "last.residual", "readout")
"""The modules :func:`depth_coord_check` judges by default."""


def _last_block(stats: dict[str, float], depth: int) -> dict[str, float]:
    """The statistics every depth shares: the last block's as ``last.<name>``, the rest."""
    prefix, out = (f"layer{depth - 1}.", f"hidden{depth - 1}"), {}
    for name, value in stats.items():
        if name.startswith(prefix[0]):
            out[f"last.{name[len(prefix[0]):]}"] = value
        elif name == prefix[1]:
            out["last"] = value
        elif not name.startswith(("layer", "hidden")):
            out[name] = value
    return out


def depth_coord_check(
    parametrization: Parametrization | str = "completep",
    depths: Sequence[int] = (2, 4, 8, 16),
    *,
    width: int = 64,
    completep_alpha: float = 1.0,
    steps: int = 4,
    judge_from: int = 3,
    judge: Sequence[str] | None = DEPTH_JUDGED,
    optimizer: str = "adam",
    lr: float | None = None,
    seeds: int = 1,
    bound: float | None = None,
) -> CoordCheck:
    """Coordinate check over depth of the reference transformer at a fixed ``width``.

    Each depth's last block (``last.residual``, ``last.attn_out``, ...), the embedding and
    the readout are recorded and :data:`DEPTH_JUDGED` -- the residual stream the depth
    rules act on, the embedding and the readout -- is compared between the deepest and the
    shallowest model. CompleteP (``completep_alpha=1``) and depth-muP (``0.5``) keep them
    stable -- their residual branches are multiplied by ``(depth/base_depth)^-alpha`` and
    their hidden LRs by ``(depth/base_depth)^(alpha-1)`` (Dey et al. 2025) -- while plain
    muP's residual stream grows with depth (about ``sqrt(depth)`` at init and faster once
    trained). Inside the blocks (not judged by default, ``judge=None`` judges all), depth
    16 against 2 measured: the MLP output 0.86 (CompleteP) and 0.31-0.45 (depth-muP,
    about ``8^-1/2``: its blocks learn lazily, Dey et al.'s argument for ``alpha = 1``);
    attention logits 0.63-0.70 under both.

    Steps before ``judge_from`` are recorded but not judged: with the zero readout, steps
    1 and 2 see the blocks as initialised, and at init CompleteP's ``alpha = 1`` makes
    each block nearly the identity, so the residual stream's l1 falls like
    ``depth^-1/2`` towards the embedding's -- by design, not a failure of feature learning.
    Measured (transformer, width 64, depths 2 to 16): last-block residual ratio 16/2 after
    training 0.79-0.85 (CompleteP), 1.06-1.15 (depth-muP), 3.5-6.7 (muP); readout
    1.01-1.05 under all three.

    (The reference MLP has no residual branches, so the depth rules do not apply to it.)

    Parameters
    ----------
    parametrization : Parametrization or {"completep", "mup", "sp"}
        A name builds ``Parametrization(name, base_width=width, base_depth=min(depths),
        completep_alpha=completep_alpha, zero_init_readout=True)``.
    depths : sequence of int
        At least two distinct depths.
    width, completep_alpha, steps, judge_from, optimizer, lr, seeds, bound
        ``lr`` defaults to 1e-2 (Adam) or 0.1 (SGD); ``bound`` to 1.2 per factor 4 of
        depth span (1.31 for 2 to 16).

    Examples
    --------
    Plain muP's residual stream at depth 8 against depth 2:

    >>> result = depth_coord_check("mup", depths=(2, 8), width=32, steps=3, judge_from=1)
    >>> result.verdicts.set_index("module").loc["last.residual", "verdict"]
    'blows up'
    """
    if lr is None:
        lr = 1e-2 if optimizer == "adam" else 0.1
    if isinstance(parametrization, str):
        if parametrization not in ("sp", "mup", "completep"):
            raise ValueError("parametrization: must be one of sp, mup, completep, got "
                             f"{parametrization!r}")
        parametrization = Parametrization(
            parametrization, base_width=width, base_depth=min(int(d) for d in depths),  # type: ignore[arg-type]
            completep_alpha=completep_alpha, zero_init_readout=True)
    if not isinstance(width, int) or width % 16:
        raise ValueError(f"width: must be a multiple of 16, got {width!r}")

    def at(depth: int) -> CoordModel:
        return reference_model("transformer", width, depth)

    return run_depth_coord_check(at, parametrization, depths, modules=_last_block,
                                 steps=steps, judge_from=judge_from, judge=judge,
                                 optimizer=optimizer,
                                 lr=lr, seeds=seeds, bound=bound)
