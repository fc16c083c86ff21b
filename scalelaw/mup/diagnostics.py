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

:func:`run_coord_check` takes the model as an argument (a function building it at one
width, :class:`CoordModel`), so this layer imports no model code; the check of the
reference models, :func:`scalelaw.coord_check`, is :mod:`scalelaw.models.coord_check`.

:func:`top_singular_values` is Fan et al. (2025)'s diagnostic for weight decay: match each
matrix's top singular value between proxy and target widths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from scalelaw.mup import optim
from scalelaw.mup.roles import path_str
from scalelaw.mup.rules import NAMES, Parametrization

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

    def plot(self, path: str | os.PathLike[str], title: str = "") -> None:
        """Write the figure of ``scalelaw coord-check --plot`` to ``path``.

        See :func:`scalelaw.plots.plot_coord_check`.
        """
        from scalelaw.plots import plot_coord_check

        plot_coord_check(self.data, path, title=title)


class CoordModel(NamedTuple):
    """What the coordinate check needs of a model at one width.

    ``init(config, p, key) -> params``, ``roles(config, p) -> roles``,
    ``forward(params, x, config, p, with_activations=True) -> (output, {module: l1})`` and
    ``loss(output, y)``; ``batch = (x, y)`` is the one fixed batch every step sees.
    ``rules(config, p, depth) -> LayerRule pytree``, when given, sets the optimizer's
    multipliers instead of the roles (a model whose readout multiplier is absorbed).
    """

    config: Any
    init: Callable[..., Any]
    roles: Callable[..., Any]
    forward: Callable[..., Any]
    loss: Callable[[Any, Any], Any]
    batch: tuple[Any, Any]
    rules: Callable[..., Any] | None = None


def _trace(model: CoordModel, p: Parametrization, depth: int, optimizer: str, lr: float,
           steps: int, seed: int) -> list[dict[str, float]]:
    cfg, init, roles_fn, forward, loss_fn, (x, y), rules_fn = model
    params = init(cfg, p, jax.random.key(seed))
    if rules_fn is not None:
        kw: dict[str, Any] = {"rules": rules_fn(cfg, p, depth)}
    else:
        kw = {"roles": roles_fn(cfg, p), "parametrization": p, "depth": depth}
    opt = optim.adamw(lr, **kw) if optimizer == "adam" else optim.sgd(lr, **kw)

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


def run_coord_check(
    model: Callable[[int], CoordModel],
    parametrization: Parametrization | str,
    widths: Sequence[int],
    *,
    steps: int = 3,
    optimizer: str = "adam",
    lr: float | None = None,
    depth: int = 2,
    seeds: int = 1,
    bound: float | None = None,
    zero_init_readout: bool = True,
    check_widths: Callable[[list[int]], None] | None = None,
) -> CoordCheck:
    """Coordinate check of the model that ``model(width)`` builds, over ``widths``.

    The parameters other than these two are those of
    :func:`scalelaw.models.coord_check.coord_check`.

    Parameters
    ----------
    model : callable
        ``model(width) -> CoordModel``: the model at one width (``depth`` is the caller's).
    check_widths : callable, optional
        Called with the sorted distinct widths once they are checked; raises
        ``ValueError`` (naming ``widths``) for widths this model cannot take.

    Examples
    --------
    A linear readout ``y = x w`` at ``width`` inputs (``w`` zero at init), under muP:

    >>> from scalelaw.mup.roles import infer_roles
    >>> def init(width, p, key):
    ...     return {"w": jnp.zeros((width, 1))}
    >>> def roles(width, p):
    ...     return infer_roles(lambda w: init(w, p, None), p.base_width, width)
    >>> def forward(params, x, width, p, with_activations=False):
    ...     out = x @ params["w"]
    ...     return out, {"readout": jnp.mean(jnp.abs(out))}
    >>> def linear(width):
    ...     return CoordModel(width, init, roles, forward, lambda out, y: jnp.mean((out - y) ** 2),
    ...                       (jnp.ones((4, width)), jnp.ones((4, 1))))
    >>> result = run_coord_check(linear, "mup", (64, 256), steps=2)
    >>> result.data[["width", "t"]].values.tolist()
    [[64, 1], [64, 2], [256, 1], [256, 2]]
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    widths = sorted({int(w) for w in widths})
    if len(widths) < 2 or widths[0] <= 0:
        raise ValueError(f"widths: need at least two distinct positive widths, got {widths}")
    if check_widths is not None:
        check_widths(widths)
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
        # a str checked against NAMES just above (mypy does not narrow str by `in`)
        parametrization = Parametrization(parametrization,  # type: ignore[arg-type]
                                          base_width=widths[0], base_depth=depth,
                                          zero_init_readout=zero_init_readout)
    rows = []
    for width in widths:
        built = model(width)
        traces = [_trace(built, parametrization, depth, optimizer, lr, steps, seed)
                  for seed in range(seeds)]
        for t in range(steps):
            for module in traces[0][t]:
                l1 = float(np.mean([trace[t][module] for trace in traces]))
                rows.append({"width": width, "module": module, "t": t + 1, "l1": l1})
    data = pd.DataFrame(rows)
    return CoordCheck(data, _verdicts(data, bound), bound)


def run_depth_coord_check(
    model: Callable[[int], CoordModel],
    parametrization: Parametrization,
    depths: Sequence[int],
    *,
    modules: Callable[[dict[str, float], int], dict[str, float]] | None = None,
    steps: int = 4,
    judge_from: int = 1,
    judge: Sequence[str] | None = None,
    optimizer: str = "adam",
    lr: float = 1e-2,
    seeds: int = 1,
    bound: float | None = None,
) -> CoordCheck:
    """The coordinate check over depth: ``model(depth)`` at one width, several depths.

    As :func:`run_coord_check` with depth in the place of width (``data`` has a ``depth``
    column; the verdict compares the deepest with the shallowest model, bound by default
    1.2 per factor 4 of depth span). ``modules(stats, depth)`` maps each step's statistics
    onto names shared by every depth (the last block's, say, as ``last.<name>``); steps
    before ``judge_from``, and modules not in ``judge`` (default: all), are recorded in
    ``data`` but not judged.

    Examples
    --------
    >>> from scalelaw.mup.rules import LayerRule
    >>> def init(depth, p, key):
    ...     return {"w": jnp.zeros((8, 1))}
    >>> def forward(params, x, depth, p, with_activations=False):
    ...     out = p.residual_mult(depth) * depth * (x @ params["w"])  # L branches, equal
    ...     return out, {"out": jnp.mean(jnp.abs(out))}
    >>> def model(depth):
    ...     return CoordModel(depth, init, lambda d, p: {"w": None}, forward,
    ...                       lambda out, y: jnp.mean((out - y) ** 2),
    ...                       (jnp.ones((4, 8)), jnp.ones((4, 1))),
    ...                       lambda d, p, depth: {"w": LayerRule()})
    >>> p = Parametrization("completep", base_width=8, base_depth=2)
    >>> run_depth_coord_check(model, p, (2, 8), steps=2).stable
    True
    """
    depths = sorted({int(d) for d in depths})
    if len(depths) < 2 or depths[0] <= 0:
        raise ValueError(f"depths: need at least two distinct positive depths, got {depths}")
    if not isinstance(judge_from, int) or not 1 <= judge_from <= steps:
        raise ValueError(f"judge_from: must be an integer in [1, steps={steps}], got "
                         f"{judge_from!r}")
    if bound is None:
        bound = 1.2 ** (np.log(depths[-1] / depths[0]) / np.log(4.0))
    rows = []
    for depth in depths:
        built = model(depth)
        traces = [_trace(built, parametrization, depth, optimizer, lr, steps, seed)
                  for seed in range(seeds)]
        if modules is not None:
            traces = [[modules(stats, depth) for stats in trace] for trace in traces]
        for t in range(steps):
            for module in traces[0][t]:
                l1 = float(np.mean([trace[t][module] for trace in traces]))
                rows.append({"depth": depth, "module": module, "t": t + 1, "l1": l1})
    data = pd.DataFrame(rows)
    judged = data[data["t"] >= judge_from]
    if judge is not None:
        missing = sorted(set(judge) - set(data["module"]))
        if missing:
            raise ValueError(f"judge: no module named {missing[0]!r}")
        judged = judged[judged["module"].isin(list(judge))]
    return CoordCheck(data, _verdicts(judged, bound, axis="depth"), bound)


def _verdicts(data: pd.DataFrame, bound: float, axis: str = "width") -> pd.DataFrame:
    lo_w, hi_w = data[axis].min(), data[axis].max()
    table = data.pivot_table(index=["module", "t"], columns=axis, values="l1")
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
