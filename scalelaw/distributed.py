"""Several processes, one JAX runtime: a sweep over the hosts of a TPU pod or GPU cluster.

The same ``scalelaw sweep run SPEC --out URL`` runs on every host. Before JAX touches a
device, :func:`initialize` starts JAX's distributed runtime
(:func:`jax.distributed.initialize`) when :func:`launch_environment` finds a
multi-process launch:

- explicit ``--coordinator HOST:PORT --num-processes N --process-id I`` (any cluster);
- SLURM (``srun``: ``SLURM_JOB_ID`` with ``SLURM_NTASKS`` > 1);
- a Cloud TPU VM (``libtpu`` installed, e.g. by ``scalelaw[tpu]``), whose workers JAX finds
  from the TPU metadata.

For SLURM and TPU, scalelaw calls ``jax.distributed.initialize()`` without arguments and
JAX reads the coordinator, process count and id from the environment itself. On CPU the
processes talk through gloo collectives (``jax_cpu_collectives_implementation``).

Afterwards ``jax.devices()`` lists every host's devices, each group's mesh spans them
(:mod:`scalelaw.train.mesh`), and every process runs the same groups in the same order.
Process 0 alone writes the sweep's files (index, lock, ``config.json``, ``metrics.jsonl``,
``summary.json``); orbax writes checkpoints collectively. :func:`is_writer`,
:func:`barrier` and :func:`agree` are the three helpers the sweep and training layers use
for that; with one process they are trivial.

Examples
--------
>>> launch_environment(environ={}) is None
True
>>> srun_step = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_PROCID": "2",
...              "SLURM_STEP_NODELIST": "node[1-2]"}
>>> launch_environment(environ=srun_step)
Launch(source='slurm', num_processes=4, process_id=2, coordinator=None)
>>> launch_environment(environ={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}) is None  # sbatch
True
>>> launch_environment(coordinator="10.0.0.1:1234", num_processes=2, process_id=0,
...                    environ={}).source
'flags'
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Launch", "agree", "any_process", "barrier", "initialize", "is_writer",
           "launch_environment", "process_count"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    """A multi-process launch: where it was found and what it says (``None``: JAX reads
    it from the environment)."""

    source: str  # "flags", "slurm" or "tpu"
    num_processes: int | None
    process_id: int | None
    coordinator: str | None = None


def _int(environ: Mapping[str, str], name: str) -> int | None:
    try:
        return int(environ[name])
    except (KeyError, ValueError):
        return None


def launch_environment(*, coordinator: str | None = None, num_processes: int | None = None,
                       process_id: int | None = None,
                       environ: Mapping[str, str] | None = None) -> Launch | None:
    """The multi-process launch this process belongs to, or ``None`` (one process).

    Parameters
    ----------
    coordinator, num_processes, process_id : optional
        Explicit values (the CLI's ``--coordinator/--num-processes/--process-id``); all
        three or none.
    environ : mapping, optional
        Default ``os.environ``.

    Raises
    ------
    ValueError
        Naming ``coordinator``, ``num_processes`` or ``process_id`` when only some are
        given or a value is out of range.
    """
    given = {"coordinator": coordinator, "num_processes": num_processes,
             "process_id": process_id}
    if any(v is not None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise ValueError(f"{missing[0]}: required with the other launch settings (the "
                             f"coordinator's address, the number of processes, this "
                             f"process's id)")
        assert num_processes is not None and process_id is not None
        if not str(coordinator).strip() or ":" not in str(coordinator):
            raise ValueError(f"coordinator: must be HOST:PORT, got {coordinator!r}")
        if num_processes < 1:
            raise ValueError(f"num_processes: must be >= 1, got {num_processes}")
        if not 0 <= process_id < num_processes:
            raise ValueError(f"process_id: must be in 0..{num_processes - 1}, got {process_id}")
        return Launch("flags", num_processes, process_id, coordinator)
    env = os.environ if environ is None else environ
    # An srun step, not the shell of an sbatch/salloc allocation (which has SLURM_NTASKS
    # too but runs one process): JAX's own SLURM detection needs the step's node list.
    tasks = _int(env, "SLURM_STEP_NUM_TASKS") or _int(env, "SLURM_NTASKS")
    if "SLURM_JOB_ID" in env and "SLURM_STEP_NODELIST" in env and tasks is not None \
            and tasks > 1:
        return Launch("slurm", tasks, _int(env, "SLURM_PROCID"))
    hosts = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()]
    if len(hosts) > 1:
        return Launch("tpu", len(hosts), _int(env, "TPU_WORKER_ID"))
    if environ is None and "TPU_SKIP_MDS_QUERY" not in env \
            and importlib.util.find_spec("libtpu") is not None:
        return Launch("tpu", None, None)  # a Cloud TPU VM: JAX asks the metadata server
    return None


def initialize(launch: Launch | None) -> bool:
    """Start JAX's distributed runtime for ``launch`` (no-op for ``None`` or if started).

    Call it before anything uses a JAX device. Returns whether several processes run.
    """
    if launch is None:
        return False
    import jax

    if not jax.distributed.is_initialized():
        try:  # CPU processes need a collectives implementation (GPU/TPU ignore it)
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        except (AttributeError, ValueError):  # pragma: no cover - older/newer JAX
            pass
        if launch.source == "flags":
            jax.distributed.initialize(launch.coordinator, launch.num_processes,
                                       launch.process_id)
        elif launch.num_processes is None:  # a TPU VM, maybe one host: let JAX decide
            try:
                jax.distributed.initialize()
            except (ValueError, RuntimeError) as exc:
                log.warning("jax.distributed.initialize() found no TPU pod (%s); "
                            "running as one process", exc)
                return False
        else:
            jax.distributed.initialize()  # JAX reads SLURM / TPU settings itself
    return jax.process_count() > 1


def process_count() -> int:
    """JAX's process count (1 when JAX is not even imported)."""
    if "jax" not in sys.modules:
        return 1
    import jax

    return jax.process_count() if jax.distributed.is_initialized() else 1


def is_writer() -> bool:
    """Whether this process writes the sweep's files (process 0, or the only one)."""
    if process_count() == 1:
        return True
    import jax

    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process gets here (no-op with one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def agree(value: Any) -> np.ndarray:
    """Process 0's ``value`` (a number or NumPy array of the same shape everywhere) on
    every process, so that all of them decide the same thing from files they read."""
    if process_count() == 1:
        return np.asarray(value)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(value)))


def any_process(flag: bool) -> bool:
    """True on every process when ``flag`` is true on any of them (a collective: every
    process must call it at the same point; plain ``flag`` with one process)."""
    if process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, dtype=np.int32))))
