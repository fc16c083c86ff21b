"""Per-member orbax checkpoints: the training state plus a little host-side metadata.

Each trial directory has ``ckpt/<step>/`` written by an :class:`orbax.checkpoint.
CheckpointManager` (synchronous, so donated device buffers are never read late; atomic:
orbax writes to a temporary directory and renames it when complete, so only finished
checkpoints are ever listed; the two newest are kept). A checkpoint holds two items:

- ``state``: params, optimizer-state leaves (stored as a flat ``{"00000": leaf}`` dict and
  re-assembled with the tree structure of a fresh state, so optax's named tuples
  round-trip exactly), step and diverged_step;
- ``meta``: JSON of the host-side values a resumed run needs to continue exactly
  (the partial train-loss window since the last metrics row, elapsed wall time, and the
  divergence rule's running values, which :mod:`scalelaw.train._member` puts back into
  the state).

Examples
--------
>>> import tempfile, jax.numpy as jnp
>>> ckpt = Checkpointer(Path(tempfile.mkdtemp()) / "ckpt")
>>> state = {"params": {"w": jnp.ones(3)}, "opt_state": (jnp.zeros(3),),
...          "step": jnp.int32(5), "diverged_step": jnp.int32(-1)}
>>> ckpt.save(5, state, {"loss_sum": 1.5})
>>> ckpt.latest_step()
5
>>> restored, meta = ckpt.restore(5, state)
>>> int(restored["step"]), meta["loss_sum"], type(restored["opt_state"]).__name__
(5, 1.5, 'tuple')
>>> ckpt.close()
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = ["Checkpointer"]

logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO


def _to_tree(state: dict[str, Any], leaf: Any = np.asarray) -> dict[str, Any]:
    """State -> a tree of dicts of ``leaf(x)`` (host arrays; optimizer leaves flattened)."""
    leaves = jax.tree.leaves(state["opt_state"])
    return {
        "params": {k: leaf(v) for k, v in state["params"].items()},
        "opt_state": {f"{i:05d}": leaf(x) for i, x in enumerate(leaves)},
        "step": leaf(state["step"]),
        "diverged_step": leaf(state["diverged_step"]),
    }


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype)


class Checkpointer:
    """Save and restore one member's state under ``directory`` (keep the newest 2).

    Parameters
    ----------
    directory : Path
        Usually ``trial_dir / "ckpt"``; created on first save.
    max_to_keep : int or None
        ``None`` keeps every checkpoint (a stable-phase run's branch points).
    """

    def __init__(self, directory: Path, max_to_keep: int | None = 2) -> None:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True)
        self._manager = ocp.CheckpointManager(Path(directory).absolute(), options=options,
                                              item_names=("state", "meta"))

    def all_steps(self) -> list[int]:
        """Steps of every complete checkpoint, in increasing order."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """Step of the newest complete checkpoint, or ``None``."""
        return self._manager.latest_step()

    def save(self, step: int, state: dict[str, Any], meta: dict[str, Any]) -> None:
        """Write ``state`` (one member, no member axis) and JSON ``meta`` at ``step``."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(_to_tree(state)),
                                  meta=ocp.args.JsonSave(meta))
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, step: int, like: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The state at ``step``, structured like ``like`` (a member state or its
        ``jax.eval_shape``), and the saved ``meta``."""
        target = _to_tree(like, _abstract)
        out = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
        tree, meta = out["state"], out["meta"]
        treedef = jax.tree.structure(like["opt_state"])
        opt = [tree["opt_state"][k] for k in sorted(tree["opt_state"])]
        state = {"params": dict(tree["params"]), "opt_state": jax.tree.unflatten(treedef, opt),
                 "step": tree["step"], "diverged_step": tree["diverged_step"]}
        return jax.tree.map(jax.numpy.asarray, state), dict(meta)

    def close(self) -> None:
        self._manager.close()
