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

On several processes (a multi-host slice) every process calls :meth:`Checkpointer.save`
and :meth:`~Checkpointer.restore` with the same global arrays; in a shared folder orbax
writes and reads them collectively (each array once, from the process that holds its
first replica). At a URL each host stages locally: process 0 saves its copy of the
(replicated) member state and uploads it, and every process downloads and restores a
step by itself.

On a URL (``s3://``, ``gs://``, any fsspec URL) orbax writes each step into a local
staging folder (with its usual atomic rename); the finished step is then uploaded to
``<url>/<step>/`` and :data:`scalelaw.storage.COMMIT_MARKER` written last, so a step
without its marker (an upload cut short) is never listed or restored. Older steps beyond
``max_to_keep`` are deleted after the new one is committed; a restore downloads the step
into the staging folder first. (orbax can write to ``gs://`` itself through TensorStore,
but not to every fsspec URL, and TensorStore's S3 driver has its own endpoint settings,
so one staged path serves every backend with the backend's usual configuration.)

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
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from scalelaw.distributed import is_writer, process_count
from scalelaw.storage import COMMIT_MARKER, Location, as_location, committed_steps

__all__ = ["Checkpointer"]

logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO


def _savable(x: Any) -> Any:
    """A :class:`jax.Array` as it is (orbax writes each process's shards of a global
    array), anything else as a host array."""
    return x if isinstance(x, jax.Array) else np.asarray(x)


def _to_tree(state: dict[str, Any], leaf: Any = _savable) -> dict[str, Any]:
    """State -> a tree of dicts of ``leaf(x)`` (optimizer leaves flattened)."""
    leaves = jax.tree.leaves(state["opt_state"])
    return {
        "params": {k: leaf(v) for k, v in state["params"].items()},
        "opt_state": {f"{i:05d}": leaf(x) for i, x in enumerate(leaves)},
        "step": leaf(state["step"]),
        "diverged_step": leaf(state["diverged_step"]),
    }


def _host_copy(x: Any) -> np.ndarray:
    """This process's copy of a fully replicated array (or a host value)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(x.addressable_data(0))
    return np.asarray(x)


def _abstract(x: Any, sharding: Any = None) -> jax.ShapeDtypeStruct:
    if sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)


class Checkpointer:
    """Save and restore one member's state under ``directory`` (keep the newest 2).

    Parameters
    ----------
    directory : path, URL or Location
        Usually ``trial_dir / "ckpt"``; created on first save. A URL is written through a
        local staging folder (see the module notes).
    max_to_keep : int or None
        ``None`` keeps every checkpoint (a stable-phase run's branch points).
    """

    def __init__(self, directory: str | os.PathLike[str] | Location,
                 max_to_keep: int | None = 2) -> None:
        self.location = as_location(directory)
        self.max_to_keep = max_to_keep
        self._staging: Path | None = None
        # On several processes a URL's staging folders are each host's own: every process
        # runs orbax alone there (process 0 saves host copies of the replicated state and
        # uploads them; each process downloads and restores for itself).
        self._solo = not self.location.is_local and process_count() > 1
        if self.location.is_local:
            local = self.location.local.absolute()
        else:
            self._staging = local = Path(tempfile.mkdtemp(prefix="scalelaw-ckpt-"))
        extra: dict[str, Any] = {}
        if self._solo:
            me = jax.process_index()
            extra["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
                primary_host=me, active_processes={me})
        options = ocp.CheckpointManagerOptions(  # (a staging folder exists already)
            max_to_keep=max_to_keep, enable_async_checkpointing=False,
            create=not self._solo, **extra)
        self._manager = ocp.CheckpointManager(local, options=options,
                                              item_names=("state", "meta"))

    def all_steps(self) -> list[int]:
        """Steps of every complete checkpoint, in increasing order."""
        if self._staging is not None:
            return committed_steps(self.location)
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """Step of the newest complete checkpoint, or ``None``."""
        if self._staging is not None:
            return max(self.all_steps(), default=None)
        return self._manager.latest_step()

    def save(self, step: int, state: dict[str, Any], meta: dict[str, Any]) -> None:
        """Write ``state`` (one member, no member axis) and JSON ``meta`` at ``step``."""
        tree = _to_tree(state)
        if self._solo:
            if not is_writer():
                return
            tree = _to_tree(state, _host_copy)
        args = ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                  meta=ocp.args.JsonSave(meta))
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()
        if self._staging is not None and is_writer():  # process 0 holds every replica
            (self.location / str(step)).upload(self._staging / str(step))
            steps = self.all_steps()
            if self.max_to_keep is not None:
                for old in steps[:-self.max_to_keep]:
                    (self.location / str(old)).remove()

    def restore(self, step: int, like: dict[str, Any],
                sharding: jax.sharding.Sharding | None = None,
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The state at ``step``, structured like ``like`` (a member state or its
        ``jax.eval_shape``), and the saved ``meta``.

        Every array is restored with ``sharding`` (e.g. replicated over a group's mesh;
        default: this process's first device), whatever the sharding it was saved from.
        """
        if self._solo:  # restored on this process's device; the caller replicates it
            sharding = None
        target = _to_tree(like, lambda x: _abstract(x, sharding))
        if self._staging is not None:
            self._fetch(step)
        out = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
        tree, meta = out["state"], out["meta"]
        treedef = jax.tree.structure(like["opt_state"])
        opt = [tree["opt_state"][k] for k in sorted(tree["opt_state"])]
        state = {"params": dict(tree["params"]), "opt_state": jax.tree.unflatten(treedef, opt),
                 "step": tree["step"], "diverged_step": tree["diverged_step"]}
        return state, dict(meta)

    def _fetch(self, step: int) -> None:
        """Download a committed step into the staging folder and tell orbax about it."""
        if step not in self.all_steps():
            raise FileNotFoundError(f"{self.location}: no committed checkpoint at step {step}")
        assert self._staging is not None
        local = self._staging / str(step)
        shutil.rmtree(local, ignore_errors=True)
        (self.location / str(step)).download(local)
        (local / COMMIT_MARKER).unlink(missing_ok=True)
        self._manager.reload()

    def close(self) -> None:
        self._manager.close()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
