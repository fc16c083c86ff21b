"""The spec's ``mesh:`` section and the sizes it gives (no JAX import at load time).

The devices themselves, the shardings and the rules are in :mod:`scalelaw.train.mesh`;
this half is what the sweep layer reads when it loads a spec (``scalelaw sweep plan``
does not import JAX).

Examples
--------
>>> parse_mesh({"members": 4, "data": 2}).describe()
'members 4 x data 2'
"""

from __future__ import annotations

import dataclasses
from typing import Any

from scalelaw._validation import PositiveInt, section, validate

__all__ = ["AXES", "MeshConfig", "parse_mesh", "plan_mesh"]

AXES = ("members", "data")
"""The mesh's axis names: the stacked member axis and the batch axis."""


@section
class MeshConfig:
    """The spec's ``mesh:`` section: devices on the member axis and on the batch axis.

    ``None`` (unset) everywhere means automatic; see the module notes.

    Examples
    --------
    >>> MeshConfig(members=2).data is None
    True
    """

    members: PositiveInt | None = None
    data: PositiveInt | None = None

    @property
    def automatic(self) -> bool:
        """Neither size given."""
        return self.members is None and self.data is None

    def describe(self) -> str:
        """``"members M x data D"``, or ``"automatic"``."""
        if self.automatic:
            return "automatic"
        return f"members {self.members or 1} x data {self.data or 1}"

    def to_dict(self) -> dict[str, Any]:
        """The section as plain values (for JSON)."""
        return dataclasses.asdict(self)


def parse_mesh(block: Any) -> MeshConfig:
    """Validate a spec's ``mesh:`` block (``None``: automatic); errors name ``mesh.<field>``."""
    if block is None:
        return MeshConfig()
    return validate(MeshConfig, block, prefix="mesh")


def plan_mesh(config: MeshConfig | None, *, n_members: int, batch_size: int, vmapped: bool,
              n_devices: int | None = None, backend: str | None = None,
              processes: int | None = None) -> tuple[int, int]:
    """``(members, data)``: the mesh a group of ``n_members`` uses (see the module notes).

    Parameters
    ----------
    config : MeshConfig or None
        ``None`` or an automatic one: chosen from the devices.
    n_members, batch_size : int
        The group's K and batch size in sequences.
    vmapped : bool
        Whether the members run as one vmapped program (else ``members`` is 1).
    n_devices, backend, processes : optional
        Default: ``jax.device_count()``, ``jax.default_backend()``, ``jax.process_count()``.

    Raises
    ------
    ValueError
        Naming ``mesh``, ``mesh.members`` or ``mesh.data``.
    """
    if n_devices is None or backend is None or processes is None:
        import jax

        n_devices = jax.device_count() if n_devices is None else n_devices
        backend = jax.default_backend() if backend is None else backend
        processes = jax.process_count() if processes is None else processes
    n = n_devices
    config = config or MeshConfig()
    if config.automatic:
        if backend == "cpu" and processes == 1:
            return 1, 1
        if not vmapped:  # members one after another: the batch over as many as divide it
            if batch_size % n == 0:
                return 1, n
            if processes > 1:
                raise ValueError(f"mesh: batch size {batch_size} is not divisible by the {n} "
                                 f"devices of the {processes} processes; run the members "
                                 f"vmapped (mode auto or vmap) or choose such a batch size")
            return 1, max(k for k in range(1, n + 1) if batch_size % k == 0)
        # least padded work per device, then the most devices on members (no all-reduce)
        fits = [m for m in range(1, n + 1) if n % m == 0 and batch_size % (n // m) == 0]
        m = min(fits, key=lambda m: (-(-n_members // m) * m, -m))
        return m, n // m
    members, data = config.members or 1, config.data or 1
    if members > 1 and not vmapped:
        raise ValueError(f"mesh.members: {members} needs the vmapped program (mode vmap or "
                         f"auto), not sequential")
    if members * data > n:
        raise ValueError(f"mesh: members {members} x data {data} = {members * data} devices, "
                         f"but {n} are present")
    if processes > 1 and members * data != n:
        raise ValueError(f"mesh: members {members} x data {data} must use all {n} devices of "
                         f"the {processes} processes")
    if batch_size % data:
        raise ValueError(f"mesh.data: {data} does not divide the batch size {batch_size}")
    return members, data
