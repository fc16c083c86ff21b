"""Diagnostics that show a parametrization is right: the coordinate check and top sigma.

The coordinate check (TP V, App. D.1; microsoft/mup ``get_coord_data``) trains a model for a
few steps at several widths on one fixed batch and records every module's mean absolute
output ("l1") before each step ``t = 1, 2, ...`` (``t = 1`` is at init). Under a correct muP
every l1 stays Theta(1) as width grows; under SP with Adam, hidden and output activations
grow with width after the first updates. A module is *stable* when the ratio of its
seed-averaged l1 at the widest and at the narrowest width lies in ``[1/B, B]`` for every
``t``, with the bound ``B`` of :func:`coord_bound`: microsoft/mup's own test allows ``1.2``
for widths 4x apart, compounded here over the span (``1.2 ** log4(widest/narrowest)``, 1.44
for 16x: at small widths finite-width terms that shrink like ``width^-1/2`` still move l1 a
little, while SP's growth is a power of the width), and widened by ``z`` standard errors of
the log-ratio measured from the seed-to-seed spread of l1 at both widths. The span term
alone gives false alarms over narrow spans: for the reference transformer at widths 32 and
64 (bound 1.095) one seed's log-ratio has a seed-to-seed standard deviation up to 0.32
(measured over 8 seeds; the 8-seed means all lie within 0.96-1.14), so single-seed ratios of
0.85-1.31 were flagged; with 3 seeds and ``z = 3`` they pass, while SP's ratios (2-4.5
already from 64 to 256) stay far outside.

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
        Columns ``width, module, t, l1`` (mean over seeds), ``l1_sd`` (the seeds' standard
        deviation; NaN for one seed) and ``seeds``.
    verdicts : DataFrame
        One row per module: ``module, min_ratio, max_ratio, bound, verdict`` with verdict
        ``"stable"``, ``"blows up"`` or ``"vanishes"``; ratios are widest / narrowest and
        ``bound`` is the module's bound (the span's widened by its seed noise, at the step
        whose ratio came closest to or furthest past it).
    bound : float
        The span's bound before widening by seed noise (or the caller's fixed bound).
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

        plot_coord_check(self.data, path, title=title, verdicts=self.verdicts,
                         bound=self.bound)


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


def _traces(model: CoordModel, p: Parametrization, depth: int, optimizer: str, lr: float,
            steps: int, seeds: int) -> list[list[dict[str, float]]]:
    """Each seed's trace ``[{module: l1} per step]``; one compiled step serves every seed."""
    cfg, init, roles_fn, forward, loss_fn, (x, y), rules_fn = model
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

    traces = []
    for seed in range(seeds):
        params = init(cfg, p, jax.random.key(seed))
        state, records = opt.init(params), []
        for _ in range(steps):
            params, state, stats = step(params, state)
            records.append({k: float(v) for k, v in stats.items()})
        traces.append(records)
    return traces


NOISE_Z = 3.0
"""Standard errors of the seed noise by which :func:`coord_bound` widens the span's bound."""


def coord_bound(span: float, se: float | np.ndarray = 0.0, *, rate: float = 1.2,
                z: float = NOISE_Z) -> float | np.ndarray:
    """The coordinate check's bound on widest/narrowest l1 over a ``span`` of widths.

    ``B = rate ** log4(span) * exp(z * se)``: microsoft/mup's ``1.2`` per factor 4 of
    width, compounded over the span, widened by ``z`` standard errors ``se`` of the
    log-ratio (from the seed-to-seed spread, see :func:`log_ratio_se`). A module is stable
    when its ratio lies in ``[1/B, B]``.

    Examples
    --------
    >>> round(coord_bound(16.0), 3), round(coord_bound(2.0), 4)
    (1.44, 1.0954)
    >>> round(coord_bound(2.0, se=0.1), 3)  # 0.1 in log units, widened by 3 of them
    1.479
    """
    if not span >= 1:
        raise ValueError(f"span: must be >= 1, got {span!r}")
    widened = rate ** (np.log(span) / np.log(4.0)) * np.exp(z * np.asarray(se, dtype=float))
    return float(widened) if np.ndim(widened) == 0 else widened


def log_ratio_se(mean_a: np.ndarray, sd_a: np.ndarray, mean_b: np.ndarray, sd_b: np.ndarray,
                 n: int) -> np.ndarray:
    """Standard error of ``log(mean_b / mean_a)`` for means of ``n`` seeds (delta method).

    ``sqrt((sd_a / mean_a)^2 / n + (sd_b / mean_b)^2 / n)``; a mean of zero (a zero-init
    readout at ``t = 1``) or a missing spread (one seed) contributes 0.

    Examples
    --------
    >>> float(log_ratio_se(np.array(1.0), np.array(0.3), np.array(2.0), np.array(0.8), 9))
    0.16666666666666666
    """
    def rel(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.asarray(sd, dtype=float) / np.abs(np.asarray(mean, dtype=float))
        return np.where(np.isfinite(r), r, 0.0)

    return np.sqrt((rel(mean_a, sd_a) ** 2 + rel(mean_b, sd_b) ** 2) / max(int(n), 1))


def run_coord_check(
    model: Callable[[int], CoordModel],
    parametrization: Parametrization | str,
    widths: Sequence[int],
    *,
    steps: int = 3,
    optimizer: str = "adam",
    lr: float | None = None,
    depth: int = 2,
    seeds: int = 3,
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
    fixed = bound is not None
    if bound is None:
        bound = float(coord_bound(widths[-1] / widths[0]))
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
        traces = _traces(built, parametrization, depth, optimizer, lr, steps, seeds)
        rows += _rows(traces, "width", width)
    data = pd.DataFrame(rows)
    return CoordCheck(data, _verdicts(data, bound, z=0.0 if fixed else NOISE_Z), bound)


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
    fixed = bound is not None
    if bound is None:
        bound = float(coord_bound(depths[-1] / depths[0]))
    rows = []
    for depth in depths:
        built = model(depth)
        traces = _traces(built, parametrization, depth, optimizer, lr, steps, seeds)
        if modules is not None:
            traces = [[modules(stats, depth) for stats in trace] for trace in traces]
        rows += _rows(traces, "depth", depth)
    data = pd.DataFrame(rows)
    judged = data[data["t"] >= judge_from]
    if judge is not None:
        missing = sorted(set(judge) - set(data["module"]))
        if missing:
            raise ValueError(f"judge: no module named {missing[0]!r}")
        judged = judged[judged["module"].isin(list(judge))]
    return CoordCheck(data, _verdicts(judged, bound, axis="depth", z=0.0 if fixed else NOISE_Z),
                      bound)


def _rows(traces: list[list[dict[str, float]]], axis: str, value: int) -> list[dict[str, Any]]:
    """One row per (module, t): the seeds' mean l1, their standard deviation, their count."""
    rows = []
    for t in range(len(traces[0])):
        for module in traces[0][t]:
            l1 = np.array([trace[t][module] for trace in traces])
            rows.append({axis: value, "module": module, "t": t + 1, "l1": float(l1.mean()),
                         "l1_sd": float(l1.std(ddof=1)) if len(l1) > 1 else float("nan"),
                         "seeds": len(l1)})
    return rows


def _verdicts(data: pd.DataFrame, bound: float, axis: str = "width",
              z: float = NOISE_Z) -> pd.DataFrame:
    """Per module: the ratios widest / narrowest over t, each t judged against ``bound``
    widened by ``z`` standard errors of its log-ratio (:func:`log_ratio_se`)."""
    lo_w, hi_w = data[axis].min(), data[axis].max()
    if "l1_sd" not in data:
        data = data.assign(l1_sd=np.nan, seeds=1)
    table = data.pivot_table(index=["module", "t"], columns=axis, values=["l1", "l1_sd"],
                             dropna=False)
    narrow, wide = table[("l1", lo_w)].to_numpy(), table[("l1", hi_w)].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((narrow == 0) & (wide == 0), 1.0, wide / narrow)
    se = log_ratio_se(narrow, table[("l1_sd", lo_w)].to_numpy(), wide,
                      table[("l1_sd", hi_w)].to_numpy(), int(data["seeds"].min()))
    limit = np.log(bound) + z * se
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.abs(np.log(ratio)) / limit  # > 1: outside the bound
    frame = pd.DataFrame({"ratio": ratio, "bound": np.exp(limit), "excess": excess,
                          "up": np.log(ratio) > limit, "down": np.log(ratio) < -limit},
                         index=table.index)
    groups = frame.groupby(level="module", sort=False)
    worst = frame["excess"].groupby(level="module", sort=False).idxmax()
    out = pd.DataFrame({"min_ratio": groups["ratio"].min(), "max_ratio": groups["ratio"].max(),
                        "bound": frame.loc[worst.to_numpy(), "bound"].to_numpy()})
    out["verdict"] = np.where(groups["up"].any(), "blows up",
                              np.where(groups["down"].any(), "vanishes", "stable"))
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
