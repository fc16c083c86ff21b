"""Planning a sweep: per-group cost (members, steps, tokens, FLOPs) and a wall-time estimate.

Two estimates, and :class:`Plan` says which one it holds:

``"model"`` (the default, no training)
    ``seconds = FLOPs / (peak x MFU(width)) + overhead per group + start-up``. ``peak``
    is an f32 matmul measured once with JAX on this machine and cached in
    ``~/.cache/scalelaw/matmul_peak.json`` (``$XDG_CACHE_HOME`` respected). ``MFU(width)``
    (:func:`assumed_mfu`) interpolates, in log2 width, the model-FLOP utilisation
    measured for scalelaw's training loop on a 2-core CPU (:data:`CPU_MFU`); accelerators
    get a flat :data:`ACCEL_MFU`. FLOPs count training (6 per weight per token plus
    attention) and evaluation (a third of that, per evaluated token).
``"calibrated"`` (``--calibrate``)
    Times a few steps of each distinct group shape with the real trainer in a temporary
    directory (compile time measured separately) and scales them to the full run.

Examples
--------
>>> from scalelaw.sweep import load_spec
>>> spec = load_spec({"name": "t", "train": {"tokens": 8192, "batch_size": 4,
...                   "eval_every": 8, "eval_tokens": 256},
...                   "model": {"width": 32, "head_dim": 16, "context": 32},
...                   "sweep": {"optimizer.lr": [1e-3, 2e-3]}})
>>> p = plan(spec, peak=100e9)
>>> g = p.groups[0]
>>> g.members, g.steps, g.tokens == 2 * 64 * 128, p.method
(2, 64, True, 'model')
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalelaw.cache import cache_dir
from scalelaw.sweep.spec import SweepSpec
from scalelaw.sweep.trial import Group, TrialConfig
from scalelaw.train.mesh_config import MeshConfig, plan_mesh

__all__ = ["ACCEL_MFU", "CPU_MFU", "GroupPlan", "Plan", "assumed_mfu", "cache_dir", "calibrate",
           "eval_tokens", "measure_peak", "plan", "present_devices"]

CPU_MFU: dict[int, float] = {32: 0.10, 64: 0.19, 128: 0.27, 256: 0.43, 512: 0.56}
"""Assumed model-FLOP utilisation by width on a CPU (fraction of the matmul peak)."""
ACCEL_MFU = 0.25
"""Assumed model-FLOP utilisation on an accelerator (GPU/TPU), at every width."""
GROUP_OVERHEAD_S = 3.0   # compile (train and eval step), corpus, checkpoints, per group
STARTUP_S = 4.0          # Python, JAX and the corpus, once per run


@dataclass(frozen=True)
class GroupPlan:
    """Cost of one group (all members together)."""

    group_id: str
    shape: str
    members: int
    steps: int
    tokens: int
    flops: float
    seconds: float
    varying: tuple[str, ...] = ()
    mesh: str = "1 device"


@dataclass(frozen=True)
class Plan:
    """A sweep's groups and totals; ``method`` is ``"model"`` or ``"calibrated"``.

    ``devices`` and ``hosts`` are what the plan assumes the run has (all hosts' devices
    together), ``mode`` how members run; each group's ``mesh`` says how it uses them.
    """

    name: str
    groups: tuple[GroupPlan, ...]
    method: str
    peak_flops: float
    backend: str
    note: str
    devices: int = 1
    hosts: int = 1
    device_kind: str = ""
    mode: str = "sequential"

    @property
    def trials(self) -> int:
        return sum(g.members for g in self.groups)

    @property
    def tokens(self) -> int:
        return sum(g.tokens for g in self.groups)

    @property
    def flops(self) -> float:
        return sum(g.flops for g in self.groups)

    @property
    def seconds(self) -> float:
        return STARTUP_S + sum(g.seconds for g in self.groups)


def assumed_mfu(width: int, backend: str = "cpu") -> float:
    """:data:`CPU_MFU` interpolated linearly in log2(width), clamped at the ends.

    Examples
    --------
    >>> assumed_mfu(64), round(assumed_mfu(90), 3), assumed_mfu(4096)
    (0.19, 0.229, 0.56)
    """
    if backend != "cpu":
        return ACCEL_MFU
    widths = sorted(CPU_MFU)
    x = math.log2(min(max(width, widths[0]), widths[-1]))
    for lo, hi in zip(widths, widths[1:], strict=False):
        if x <= math.log2(hi):
            t = (x - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
            return CPU_MFU[lo] + t * (CPU_MFU[hi] - CPU_MFU[lo])
    return CPU_MFU[widths[-1]]


def eval_tokens(trial: TrialConfig) -> int:
    """Tokens evaluated over the run: every ``eval_every`` steps and at the end."""
    batch = trial.tokens_per_step
    per_eval = math.ceil(trial.train.eval_tokens / batch) * batch
    return (trial.steps // trial.train.eval_every + 1) * per_eval


def _group_flops(group: Group) -> tuple[int, float]:
    tokens = sum(t.trained_tokens for t in group.trials)  # a branch trains only its decay
    flops = sum(t.flops_per_token * (t.trained_tokens + eval_tokens(t) / 3)
                for t in group.trials)
    return tokens, flops


def shape_label(trial: TrialConfig) -> str:
    """``"mup w64 d2 T64 B16"`` (transformer) or ``"mup mlp w64 d2 B16"``."""
    m, p = trial.model, trial.parametrization.name
    if trial.family == "mlp":
        return f"{p} mlp w{m.width} d{m.depth} B{trial.train.batch_size}"
    return f"{p} w{m.width} d{m.depth} T{trial.context} B{trial.train.batch_size}"


def plan(spec: SweepSpec, *, peak: float | None = None, backend: str | None = None,
         calibration: dict[str, float] | None = None, devices: int | None = None,
         hosts: int | None = None, mode: str = "auto") -> Plan:
    """Cost and time of every group of ``spec``, on the devices the run will have.

    Each group's mesh is the one the trainer picks (:func:`scalelaw.train.mesh_config.
    plan_mesh`, from the spec's ``mesh:`` block); the modelled time of a group spread
    over ``members x data`` devices is divided by that number (ideal scaling).

    Parameters
    ----------
    peak : float, optional
        Matmul peak in FLOP/s (measured, or read from the cache, if None).
    backend : str, optional
        ``"cpu"``, ``"gpu"``, ``"tpu"`` (default: the measured device's, else ``"cpu"``).
    calibration : dict, optional
        ``{group_id: seconds}`` from :func:`calibrate`; makes the plan ``"calibrated"``.
    devices, hosts : int, optional
        Devices of all hosts together, and hosts. Default: those JAX sees here when
        ``peak`` is measured (several hosts when the launcher's environment says so:
        :func:`scalelaw.distributed.launch_environment`), else 1 and 1.
    mode : {"auto", "vmap", "sequential"}
        How members run (``sweep run --mode``).
    """
    if mode not in ("auto", "vmap", "sequential"):
        raise ValueError(f"mode: must be one of auto, vmap, sequential; got {mode!r}")
    kind = ""
    if peak is None:
        measured = measure_peak()
        peak, backend = measured["flops"], backend or measured["backend"]
        kind = str(measured.get("device", ""))
        if devices is None or hosts is None:
            found = present_devices()
            devices = found["devices"] if devices is None else devices
            hosts = found["hosts"] if hosts is None else hosts
    backend = backend or "cpu"
    devices, hosts = devices or 1, hosts or 1
    vmapped = _vmapped(mode, spec.mesh, backend, hosts)
    rows = []
    for group in spec.groups():
        trial = group.config
        tokens, flops = _group_flops(group)
        label, used = _group_mesh(spec, group, vmapped, devices, backend, hosts)
        if calibration is not None:
            seconds = calibration[group.group_id]
        else:
            seconds = flops / (peak * used * assumed_mfu(trial.model.width, backend)) \
                + GROUP_OVERHEAD_S
        rows.append(GroupPlan(group.group_id, shape_label(trial), len(group), trial.steps, tokens,
                              flops, seconds, tuple(group.varying()), label))
    if calibration is not None:
        note = "calibrated: a few timed steps per group shape with the real trainer, scaled"
        method = "calibrated"
    else:
        note = (f"model: FLOPs / ({peak / 1e9:.0f} GFLOP/s measured f32 matmul x assumed MFU "
                f"by width) + {GROUP_OVERHEAD_S:g} s per group + {STARTUP_S:g} s start-up; "
                f"--calibrate times real steps")
        method = "model"
    return Plan(spec.name, tuple(rows), method, peak, backend, note, devices, hosts, kind,
                "vmap" if vmapped else "sequential")


def _vmapped(mode: str, mesh: MeshConfig, backend: str, hosts: int) -> bool:
    """:func:`scalelaw.train.loop.resolve_mode` without importing JAX."""
    if mode == "auto":
        return (mesh.members or 1) > 1 or backend != "cpu" or hosts > 1
    return mode == "vmap"


def _group_mesh(spec: SweepSpec, group: Group, vmapped: bool, devices: int, backend: str,
                hosts: int) -> tuple[str, int]:
    """``("members M x data D", devices used)``, or the reason it cannot run here."""
    try:
        m, d = plan_mesh(spec.mesh, n_members=len(group),
                         batch_size=group.config.train.batch_size, vmapped=vmapped,
                         n_devices=devices, backend=backend, processes=hosts)
    except ValueError as exc:
        return f"not here: {exc}", 1
    return ("1 device" if m * d == 1 else f"members {m} x data {d}"), m * d


def present_devices() -> dict[str, Any]:
    """``{"devices", "hosts", "backend"}``: what JAX sees in this process, and the hosts
    a multi-process launch announces (SLURM, explicit flags; JAX's own count once
    :func:`scalelaw.distributed.initialize` ran)."""
    import jax

    from scalelaw.distributed import launch_environment

    env = launch_environment()
    hosts = max(jax.process_count(), (env.num_processes or 1) if env else 1)  # TPU VM: None
    devices = jax.device_count()
    if hosts > jax.process_count():  # not yet initialised: the same devices on each host
        devices = jax.local_device_count() * hosts
    return {"devices": devices, "hosts": hosts, "backend": jax.default_backend()}


# ----------------------------------------------------------------------------- peak
def measure_peak(n: int = 1024, repeats: int = 20, use_cache: bool = True) -> dict[str, Any]:
    """f32 ``n x n`` matmul FLOP/s with JAX on the default device, cached per machine.

    Returns ``{"flops", "backend", "device", "n", "jax", "cached"}`` (best of
    ``repeats``). The cache is keyed by host name and CPU count; delete
    ``cache_dir() / "matmul_peak.json"`` to re-measure (e.g. if the machine was busy).
    """
    import socket

    key = f"{socket.gethostname()}-{os.cpu_count()}"
    path = cache_dir() / "matmul_peak.json"
    if use_cache:
        try:
            cached = json.loads(path.read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            cached = None
        if isinstance(cached, dict) and "flops" in cached:
            return {**cached, "cached": True}
    result = _time_matmul(n, repeats)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            table = json.loads(path.read_text())
        except (OSError, ValueError):
            table = {}
        table[key] = result
        path.write_text(json.dumps(table, indent=1))
    except OSError:
        pass  # an unwritable cache only costs a re-measurement
    return {**result, "cached": False}


def _time_matmul(n: int, repeats: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    device = jax.devices()[0]
    return {"flops": 2 * n**3 / best, "backend": device.platform, "device": str(device.device_kind),
            "n": n, "jax": jax.__version__}


def group_table(plan_: Plan) -> list[dict[str, Any]]:
    """The plan as plain rows (for ``--json``)."""
    return [dict(vars(g), varying=list(g.varying)) for g in plan_.groups]



# ----------------------------------------------------------------------------- calibrate
def calibrate(spec: SweepSpec, *, mode: str = "auto", steps: int = 20) -> dict[str, float]:
    """Time ``steps`` real steps of every group shape and scale them to the full run.

    Each group is trained, in a temporary directory, with copies of its trials cut to
    ``steps`` steps (constant schedule, one evaluation and one checkpoint at the end):
    all members if they run vmapped, else two (members then run one after another).
    The time to the first reported chunk gives the start-up cost (corpus, compilation);
    the rest gives member-steps per second, which is scaled to ``members x steps`` plus
    the real run's extra evaluations (a forward pass costs a third of a step per token).
    Groups with equal shapes (model, batch, members timed) are timed once.

    Returns
    -------
    dict
        ``{group_id: estimated seconds}``.
    """
    from scalelaw.train.loop import resolve_mode

    vmapped = resolve_mode(mode) == "vmap"
    timed: dict[tuple[Any, ...], tuple[float, float]] = {}
    out: dict[str, float] = {}
    for group in spec.groups():
        trial = group.config
        # members run one after another unless vmapped: two of them tell the step cost
        members = group.trials if vmapped else group.trials[:2]
        key = (repr(trial.model), trial.train.batch_size, len(members),
               trial.parametrization.name)
        if key not in timed:
            n = min(steps, trial.steps)
            timed[key] = _time_group([_shortened(t, n) for t in members], mode)
        overhead, per_step = timed[key]
        extra_evals = sum((t.steps // t.train.eval_every) * math.ceil(
            t.train.eval_tokens / t.tokens_per_step) / 3 for t in group.trials)
        member_steps = sum(t.trained_tokens // t.tokens_per_step for t in group.trials)
        out[group.group_id] = overhead + (member_steps + extra_evals) * per_step
    return out


def _time_group(trials: list[TrialConfig], mode: str) -> tuple[float, float]:
    """Train ``trials`` in a temporary directory; ``(start-up s, s per member-step)``."""
    import tempfile

    from scalelaw.train.loop import train_group

    stamps: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory(prefix="scalelaw-calibrate-") as tmp:
        dirs = [Path(tmp) / t.trial_id for t in trials]
        start = time.perf_counter()
        train_group(trials, dirs, mode=mode,
                    progress=lambda k: stamps.append((time.perf_counter(), k)))
        end = time.perf_counter()
    return _rates(stamps, start, end)


def _shortened(trial: TrialConfig, steps: int) -> TrialConfig:
    data = trial.to_dict()
    for key in ("trial_id", "group_id"):
        data.pop(key)
    data["train"] = {**data["train"], "tokens": steps * trial.tokens_per_step,
                     "tokens_per_param": None, "eval_every": steps, "checkpoint_every": None}
    data["schedule"] = {"name": "constant"}
    return TrialConfig.from_dict(data)


def _rates(stamps: list[tuple[float, int]], start: float, end: float) -> tuple[float, float]:
    """``(start-up seconds, seconds per member-step)`` from the progress time stamps."""
    chunks = [(t, k) for t, k in stamps if k > 0]
    if len(chunks) < 2:
        total = sum(k for _, k in chunks) or 1
        return 0.0, (end - start) / total
    first_t, first_k = chunks[0]
    per_step = (end - first_t) / sum(k for _, k in chunks[1:])
    return max(0.0, first_t - start - first_k * per_step), per_step
