"""One group over several devices: the spec's ``mesh:`` section and the group's device mesh.

::

    mesh: {members: 4, data: 2}

A group's members (its vmapped, stacked axis K) are split over the ``members`` axis of
a :class:`jax.sharding.Mesh` and each member's batch over its ``data`` axis. Sharding is
JAX's own: the compiled chunk is a :func:`jax.jit` with
:class:`~jax.sharding.NamedSharding` s, ``P("members")`` on the stacked state (params,
optimizer state, per-member scalars), the member hyperparameters and learning rates, and
``P(None, "data")`` on the batches; XLA inserts the collectives (the batch mean's
all-reduce). A member's parameters are not split: along ``data`` they are replicated
(data parallelism), so one member lives on the ``data`` devices of its ``members`` index.

Sizes (:func:`plan_mesh`):

- both fields unset (no ``mesh:`` block): automatic. On one CPU process, one device
  (today's choice: the CPU is saturated by one member, so members run in sequence). On
  accelerators, or when several processes form one JAX runtime, every device is used:
  among the splits ``members x data = devices`` whose ``data`` divides the batch size, the
  one with the fewest padded members (K rounded up to a multiple of ``members``), and of
  those the most devices on ``members`` (members need no communication; a batch split
  all-reduces the gradients). E.g. K = 10 on 16 chips: 2 x 8; K = 16: 16 x 1.
- one or both given: a missing one is 1. ``members x data`` devices are used (at most the
  devices present; all of them when several processes run together), and ``data`` must
  divide the batch size.

When K is not a multiple of ``members``, the stacked axis is padded with copies of the
last member whose results are dropped. ``members > 1`` needs the vmapped program (mode
``auto`` chooses it then). The block is not part of any trial's configuration, so it
never changes trial ids.

Checkpoints stay per member (``trial_dir/ckpt``): a member's state is sliced out of the
sharded group on the devices (one jitted gather) and written by orbax from the global
:class:`jax.Array` s (collectively, on several hosts); a resume restores them onto the
mesh (a replicated :class:`~jax.sharding.NamedSharding`) and re-shards the stack.

Examples
--------
>>> MeshConfig(members=4, data=2).describe()
'members 4 x data 2'
>>> MeshConfig().describe()
'automatic'
>>> plan_mesh(MeshConfig(members=2), n_members=3, batch_size=8, vmapped=True,
...           n_devices=4, backend="cpu")
(2, 1)
>>> plan_mesh(MeshConfig(), n_members=4, batch_size=8, vmapped=True, n_devices=8,
...           backend="gpu")
(4, 2)
>>> plan_mesh(MeshConfig(), n_members=3, batch_size=8, vmapped=False, n_devices=8,
...           backend="cpu")
(1, 1)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from scalelaw.train.mesh_config import AXES, MeshConfig, parse_mesh, plan_mesh

__all__ = ["AXES", "GroupMesh", "MeshConfig", "group_mesh", "parse_mesh", "plan_mesh",
           "to_host"]

@dataclasses.dataclass(frozen=True)
class GroupMesh:
    """A group's :class:`~jax.sharding.Mesh` (axes :data:`AXES`) and its shardings."""

    mesh: Mesh

    @property
    def members(self) -> int:
        return int(self.mesh.shape["members"])

    @property
    def data(self) -> int:
        return int(self.mesh.shape["data"])

    def sharding(self, *spec: str | None) -> NamedSharding:
        """``NamedSharding(mesh, P(*spec))``."""
        return NamedSharding(self.mesh, P(*spec))

    @property
    def replicated(self) -> NamedSharding:
        return self.sharding()

    @property
    def stacked(self) -> NamedSharding:
        """Leading (member) axis over ``members``."""
        return self.sharding("members")

    @property
    def batch(self) -> NamedSharding:
        """``[S or N, B, T+1]`` batches: B over ``data``."""
        return self.sharding(None, "data")

    def padded(self, k: int) -> int:
        """K rounded up to a multiple of ``members``."""
        return math.ceil(k / self.members) * self.members

    def put(self, x: Any, sharding: NamedSharding) -> jax.Array:
        """A global array from a host value that every process holds in full."""
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    def replicate(self, tree: Any) -> Any:
        """Every leaf as a replicated global array (leaves already on the mesh are kept)."""
        def one(x: Any) -> Any:
            if isinstance(x, jax.Array) and isinstance(x.sharding, NamedSharding) \
                    and x.sharding.mesh == self.mesh:
                return x
            return self.put(to_host(x), self.replicated)

        return jax.tree.map(one, tree)

    def stack(self, states: Sequence[Any]) -> Any:
        """Stack member states (padded to a multiple of ``members``) over ``members``."""
        padded = list(states) + [states[-1]] * (self.padded(len(states)) - len(states))
        return _stacker(self)([self.replicate(s) for s in padded])

    def stack_host(self, values: Sequence[Any]) -> Any:
        """Stack host pytrees (hyperparameters, LRs), padded, over ``members``."""
        padded = list(values) + [values[-1]] * (self.padded(len(values)) - len(values))
        host = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *padded)
        return jax.tree.map(lambda x: self.put(x, self.stacked), host)

    def unstack(self, state: Any, k: int) -> list[Any]:
        """The first ``k`` members of a stacked state, each replicated over the mesh."""
        return _unstacker(self, k)(state)


@functools.lru_cache(maxsize=32)
def _stacker(gm: GroupMesh) -> Any:
    return jax.jit(lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs),
                   out_shardings=gm.stacked)


@functools.lru_cache(maxsize=32)
def _unstacker(gm: GroupMesh, k: int) -> Any:
    return jax.jit(lambda s: [jax.tree.map(lambda x, i=i: x[i], s) for i in range(k)],
                   out_shardings=gm.replicated)


def group_mesh(config: MeshConfig | None, *, n_members: int, batch_size: int,
               vmapped: bool) -> GroupMesh | None:
    """The group's mesh, or ``None`` for one device in one process (today's single-device
    path, unchanged). Uses the first ``members x data`` devices of ``jax.devices()`` (all
    processes' devices on several hosts) laid out by :mod:`jax.experimental.mesh_utils`."""
    members, data = plan_mesh(config, n_members=n_members, batch_size=batch_size,
                              vmapped=vmapped)
    if members * data == 1 and jax.process_count() == 1:
        return None
    devices = jax.devices()[:members * data]
    try:
        from jax.experimental import mesh_utils

        grid = mesh_utils.create_device_mesh((members, data), devices)
    except (ValueError, NotImplementedError, AssertionError):
        grid = np.asarray(devices).reshape(members, data)
    return GroupMesh(Mesh(grid, AXES))


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy of ``x``, also of a global array that spans other processes' devices
    (gathered with :func:`jax.experimental.multihost_utils.process_allgather`)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
