"""The jit-compiled training chunk of ONE member, and its vmapped twin.

A *member* is one trial of a group. Everything that may differ between the members of
a group (:data:`HYPER_FIELDS`, the per-step learning rates, the init key) is passed as
data, never baked into the program, so the same compiled function serves every member
(sequential mode) and ``jax.vmap`` of it serves all of them at once (vmap mode) with
the same numbers.

One call of ``chunk`` (of :class:`StepFns`) runs ``S`` optimizer steps in a ``lax.scan``:

- ``lrs: f32[S]`` -- the base (width-independent) LR of each step, computed on the
  host from the schedule (muP multipliers are applied per layer by
  :func:`scalelaw.mup.optim.adamw`);
- ``batches: i32[S, B, T+1]`` -- shared by all members (``inputs = b[:, :-1]``,
  ``targets = b[:, 1:]``);
- ``active: bool[S]`` -- shared; inactive (padding) steps are skipped by a
  ``lax.cond``, so a short last chunk reuses the compiled program.

Divergence (the group's :class:`~scalelaw.train.config.DivergenceRule`): a step whose
loss, gradient norm or update norm is non-finite, whose loss exceeds the rule's cap
(``3 ln(vocab)`` by default), or whose loss has stayed above ``max_factor`` times the
member's first loss for ``patience`` steps in a row, is not applied (params and
optimizer state keep their values from before it) and the member is frozen from then
on; ``diverged_step`` records the 1-based number of that step (``-1`` while alive).
The state carries the first loss (``initial_loss``, NaN before the first step) and the
current run of high losses (``above``). The per-step outputs are the loss *before* the
update and the global gradient norm before clipping.

``output_mult`` enters as a traced factor on the logits: the model is built with
``output_mult=1`` (its readout multiplier ``output_mult / m`` is linear in it), so
members with different output multipliers share the program and the optimizer layout.

Examples
--------
>>> import jax, numpy as np
>>> from scalelaw.models.config import TransformerConfig
>>> from scalelaw.mup.rules import Parametrization
>>> cfg = TransformerConfig(width=32, depth=1, head_dim=16, context=8)
>>> fns = step_fns(cfg, Parametrization("mup", base_width=32), grad_clip=None, vmapped=False)
>>> state = fns.init(jax.random.key(0))
>>> hyper = member_hyper(weight_decay=0.0, b1=0.9, b2=0.95, eps=1e-8, output_mult=1.0)
>>> batches = np.random.default_rng(0).integers(0, 256, (4, 2, 9)).astype(np.int32)
>>> state, out = fns.chunk(state, hyper, np.full(4, 1e-3, np.float32), batches,
...                        np.ones(4, bool))
>>> int(state["step"]), out["loss"].shape, int(state["diverged_step"])
(4, (4,), -1)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scalelaw.models import transformer
from scalelaw.models.config import TransformerConfig
from scalelaw.mup.optim import adamw
from scalelaw.mup.rules import Parametrization
from scalelaw.train.config import DEFAULT_DIVERGENCE, DivergenceRule
from scalelaw.train.mesh import GroupMesh

__all__ = ["HYPER_FIELDS", "WATCH_FIELDS", "State", "StepFns", "member_hyper", "stack",
           "step_fns", "unstack"]

State = dict[str, Any]
"""``{"params": {name: array}, "opt_state": optax state, "step": i32[],
"diverged_step": i32[], "initial_loss": f32[], "above": i32[]}`` (with a leading member
axis K in vmap mode)."""

WATCH_FIELDS = ("initial_loss", "above")
"""The divergence rule's running values in the state (kept in a checkpoint's metadata)."""

HYPER_FIELDS = ("weight_decay", "b1", "b2", "eps", "output_mult")
"""Per-member scalars passed as f32 data (the LR is passed per step)."""



def member_hyper(**values: float) -> dict[str, np.float32]:
    """The hyper dict of one member: ``{field: f32[]}`` for :data:`HYPER_FIELDS`."""
    return {k: np.float32(values[k]) for k in HYPER_FIELDS}


@dataclasses.dataclass(frozen=True)
class StepFns:
    """Compiled functions of one group shape.

    In vmap mode ``state``, ``hyper`` and ``lrs`` carry a leading member axis K and the
    outputs gain one; ``batches`` and ``active`` are shared.

    Attributes
    ----------
    init : (key) -> State
        A fresh member (params from ``key``, zero optimizer state, step 0); never
        vmapped (stack members with :func:`stack`), so both modes start identically.
    chunk : (state, hyper, lrs[S], batches[S, B, T+1], active[S]) -> (state, out)
        ``S`` steps; ``out = {"loss": f32[S], "grad_norm": f32[S]}``. Donates ``state``.
    evaluate : (params, hyper, batches[N, B, T+1]) -> f32[]
        Mean loss over the held-out batches.
    """

    init: Callable[..., State]
    chunk: Callable[..., tuple[State, dict[str, jax.Array]]]
    evaluate: Callable[..., jax.Array]


def stack(states: list[State]) -> State:
    """Stack member states along a new leading axis K (for vmap mode)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def unstack(state: State, k: int) -> list[State]:
    """Inverse of :func:`stack` for ``k`` members."""
    return [jax.tree.map(lambda x, i=i: x[i], state) for i in range(k)]


def _where(keep: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, old)


def step_fns(
    config: TransformerConfig,
    parametrization: Parametrization,
    *,
    grad_clip: float | None,
    vmapped: bool,
    divergence: DivergenceRule = DEFAULT_DIVERGENCE,
    mesh: GroupMesh | None = None,
) -> StepFns:
    """Build (and cache per process) the jitted functions for one group shape.

    Parameters
    ----------
    config : TransformerConfig
    parametrization : Parametrization
        Its ``output_mult`` is ignored (members pass it in ``hyper``).
    grad_clip : float or None
        Global-norm clipping threshold, shared by the group.
    vmapped : bool
        ``True``: functions over a leading member axis (``jax.vmap`` of the same code).
    divergence : DivergenceRule
        When a member counts as diverged (the group's ``train.divergence``).
    mesh : GroupMesh, optional
        Shard over this mesh (:mod:`scalelaw.train.mesh`): the stacked member axis of
        ``state``, ``hyper``, ``lrs`` and the outputs over ``members`` (vmap mode; in
        sequential mode they are replicated), the batch axis of ``batches`` over ``data``.
        ``init`` then returns a state replicated over the mesh.
    """
    if not isinstance(config, TransformerConfig):
        raise ValueError(f"model: training supports the transformer family, got {config!r}")
    # output_mult is member data: groups that differ only in it share one program
    p1 = dataclasses.replace(parametrization, output_mult=1.0)
    return _step_fns(config, p1, grad_clip=grad_clip, vmapped=vmapped, divergence=divergence,
                     mesh=mesh)


@functools.lru_cache(maxsize=16)
def _step_fns(
    config: TransformerConfig, p1: Parametrization, *, grad_clip: float | None, vmapped: bool,
    divergence: DivergenceRule, mesh: GroupMesh | None,
) -> StepFns:
    max_loss = divergence.loss_cap(config.vocab)
    factor, patience = divergence.max_factor, divergence.patience
    roles = transformer.roles(config, p1)

    def optimizer(lr: Any, hyper: dict[str, Any]) -> optax.GradientTransformation:
        return adamw(lr, hyper["weight_decay"], roles=roles, parametrization=p1,
                     b1=hyper["b1"], b2=hyper["b2"], eps=hyper["eps"], depth=config.depth)

    def loss_fn(params: Any, hyper: dict[str, Any], batch: jax.Array) -> jax.Array:
        logits = transformer.forward(params, batch[:, :-1], config, p1)  # (B, T, V)
        return transformer.cross_entropy(logits * hyper["output_mult"], batch[:, 1:])

    def init(key: jax.Array) -> State:
        params = transformer.init_params(config, p1, key)
        dummy = {k: 0.5 for k in HYPER_FIELDS}  # the state's layout ignores the values
        return {"params": params, "opt_state": optimizer(1.0, dummy).init(params),
                "step": jnp.zeros((), jnp.int32), "diverged_step": jnp.full((), -1, jnp.int32),
                "initial_loss": jnp.full((), jnp.nan, jnp.float32),
                "above": jnp.zeros((), jnp.int32)}

    def one_step(state: State, hyper: dict[str, Any], lr: jax.Array,
                 batch: jax.Array) -> tuple[State, dict[str, jax.Array]]:
        params, opt_state = state["params"], state["opt_state"]
        loss, grads = jax.value_and_grad(loss_fn)(params, hyper, batch)
        grad_norm = optax.tree.norm(grads)
        if grad_clip is not None:
            grads, _ = optax.clip_by_global_norm(grad_clip).update(grads, optax.EmptyState())
        updates, new_opt = optimizer(lr, hyper).update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        step = state["step"] + 1
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & (loss < max_loss)
        ok &= jnp.isfinite(optax.tree.norm(updates))
        initial = jnp.where(jnp.isnan(state["initial_loss"]), loss, state["initial_loss"])
        above = state["above"]
        if factor is not None:  # a finite plateau far above the start
            above = jnp.where(loss > factor * initial, above + 1, 0)
            ok &= above < patience
        alive = state["diverged_step"] < 0
        keep = alive & ok
        new_state = {
            "params": _where(keep, new_params, params),
            "opt_state": _where(keep, new_opt, opt_state),
            "step": step,
            "diverged_step": jnp.where(alive & ~ok, step, state["diverged_step"]),
            "initial_loss": jnp.where(alive, initial, state["initial_loss"]),
            "above": jnp.where(alive, above, state["above"]),
        }
        return new_state, {"loss": loss, "grad_norm": grad_norm}

    def chunk(state: State, hyper: dict[str, Any], lrs: jax.Array, batches: jax.Array,
              active: jax.Array) -> tuple[State, dict[str, jax.Array]]:
        def body(state: State, xs: tuple[jax.Array, ...]) -> tuple[State, Any]:
            lr, batch, on = xs

            def skip(state: State) -> tuple[State, dict[str, jax.Array]]:
                return state, {"loss": jnp.float32(jnp.nan), "grad_norm": jnp.float32(jnp.nan)}

            return jax.lax.cond(on, lambda s: one_step(s, hyper, lr, batch), skip, state)

        return jax.lax.scan(body, state, (lrs, batches, active))

    def evaluate(params: Any, hyper: dict[str, Any], batches: jax.Array) -> jax.Array:
        return jnp.mean(jax.lax.map(lambda b: loss_fn(params, hyper, b), batches))

    if vmapped:
        chunk = jax.vmap(chunk, in_axes=(0, 0, 0, None, None))
        evaluate = jax.vmap(evaluate, in_axes=(0, 0, None))
    if mesh is None:
        return StepFns(init=jax.jit(init), chunk=jax.jit(chunk, donate_argnums=0),
                       evaluate=jax.jit(evaluate))
    return _sharded(mesh, init, chunk, evaluate, vmapped)


def _sharded(mesh: GroupMesh, init: Callable[..., State], chunk: Callable[..., Any],
             evaluate: Callable[..., jax.Array], vmapped: bool) -> StepFns:
    """The jitted functions with their shardings on ``mesh`` (XLA adds the collectives)."""
    rep, batch = mesh.replicated, mesh.batch
    per = mesh.stacked if vmapped else rep  # member-axis values
    sharded_chunk = jax.jit(chunk, donate_argnums=0, in_shardings=(per, per, per, batch, rep),
                            out_shardings=(per, per))
    sharded_eval = jax.jit(evaluate, in_shardings=(per, per, batch), out_shardings=per)
    init_from_data = jax.jit(lambda data: init(jax.random.wrap_key_data(data)),
                             in_shardings=rep, out_shardings=rep)

    def sharded_init(key: jax.Array) -> State:
        if isinstance(key, jax.core.Tracer):  # under jax.eval_shape: the layout only
            return init(key)
        # the key's bits as host data: every process passes the same value
        return init_from_data(np.asarray(jax.random.key_data(key)))

    return StepFns(init=sharded_init, chunk=sharded_chunk, evaluate=sharded_eval)
