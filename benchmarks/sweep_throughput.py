"""Benchmark: member-steps per second of one group, vmapped versus one member after another.

For K = 1, 2, 4, 8, 16 members of one group (default shape: width 64, depth 2, head_dim
16, context 64, batch 8; muP with base width 64, AdamW, grad clip 1.0; members differ in
their learning rate) it times the real training path, :func:`scalelaw.train.step.step_fns`
``chunk`` (``lax.scan`` over ``--steps-per-call`` steps, state donated), as
:func:`scalelaw.train.loop.train_group` runs it:

- vmapped: one call of the vmapped chunk for all K members, on the group's automatic
  mesh (:func:`scalelaw.train.mesh.group_mesh`: every device on accelerators, members
  on the ``members`` axis; one device on a CPU), or on ``--members-axis`` devices;
- sequential: K calls of the one-member chunk (the same compiled program for each).

Member-steps per second are ``K x steps_per_call`` over the median wall time of one round
(after a warm-up round, each call blocked with ``block_until_ready``; vmapped and
sequential rounds alternate, so a change in the machine's load hits both alike); the
table's ratio is vmapped / sequential, measured in the same run. On a CPU it documents why ``mode:
auto`` runs members in sequence there; on a GPU or TPU it is the check that vmapping
members (and spreading them over the devices) pays. It measures and prints; it asserts
nothing. Other processes on the machine distort the numbers: the load average is printed
before and after.

The script re-executes itself once with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``
(:mod:`scalelaw.train.runtime`; ``SCALELAW_MALLOC=system`` keeps glibc's malloc).

Run: ``python benchmarks/sweep_throughput.py`` (``--help`` for options; e.g.
``--members 1 2 4`` for a quick look).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from _table import print_table  # benchmarks/_table.py (this script's folder)

from scalelaw.models.config import TransformerConfig
from scalelaw.mup.rules import Parametrization
from scalelaw.train.mesh import GroupMesh, MeshConfig, group_mesh
from scalelaw.train.runtime import reexec_with_fast_malloc
from scalelaw.train.step import member_hyper, stack, step_fns

BASE_WIDTH = 64
B1, B2, EPS, GRAD_CLIP = 0.9, 0.95, 1e-8, 1.0


def _timed(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def _interleaved(calls: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Median seconds of one round of each call, rounds alternating between them (so a
    change in the machine's load hits both alike)."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for i, call in enumerate(calls):
            times[i].append(_timed(call))
    return [statistics.median(t) for t in times]


def _lrs(k: int, s: int) -> np.ndarray:
    """``f32[K, S]``: member i's LR 1e-3 * 2^(i/2), constant over the chunk."""
    return np.repeat((1e-3 * 2.0 ** (np.arange(k) / 2))[:, None], s, 1).astype(np.float32)


def vmapped_round(cfg: TransformerConfig, p: Parametrization, k: int,
                  args: argparse.Namespace, batches: np.ndarray) -> tuple[Callable[[], Any], str]:
    """One call of the vmapped chunk for ``k`` members (warmed up), and its mesh."""
    S = args.steps_per_call
    config = MeshConfig(members=args.members_axis) if args.members_axis else MeshConfig()
    gm: GroupMesh | None = group_mesh(config, n_members=k, batch_size=args.batch, vmapped=True)
    fns = step_fns(cfg, p, grad_clip=GRAD_CLIP, vmapped=True, mesh=gm)
    hypers = [member_hyper(weight_decay=0.0, b1=B1, b2=B2, eps=EPS, output_mult=1.0)] * k
    states = [fns.init(jax.random.key(i)) for i in range(k)]
    active = np.ones(S, bool)
    lrs: Any = _lrs(k, S)
    data: Any = batches
    if gm is None:
        state, hyper = stack(states), stack(hypers)
        where = "1 device"
    else:
        state, hyper = gm.stack(states), gm.stack_host(hypers)
        kp = gm.padded(k)
        lrs = gm.put(np.concatenate([lrs, np.repeat(lrs[-1:], kp - k, 0)]), gm.stacked)
        data = gm.put(batches, gm.batch)
        where = f"members {gm.members} x data {gm.data}"
    holder = {"state": state}

    def call() -> Any:
        holder["state"], out = fns.chunk(holder["state"], hyper, lrs, data, active)
        return jax.block_until_ready(out)

    for _ in range(1 + args.warmup):
        call()
    return call, where


def sequential_round(cfg: TransformerConfig, p: Parametrization, k: int,
                     args: argparse.Namespace, batches: np.ndarray) -> Callable[[], Any]:
    """``k`` members trained one after another with one compiled chunk (warmed up)."""
    S = args.steps_per_call
    fns = step_fns(cfg, p, grad_clip=GRAD_CLIP, vmapped=False)
    hyper = member_hyper(weight_decay=0.0, b1=B1, b2=B2, eps=EPS, output_mult=1.0)
    states = [fns.init(jax.random.key(i)) for i in range(k)]
    lrs, active = _lrs(k, S), np.ones(S, bool)

    def call() -> None:
        for i in range(k):
            states[i], out = fns.chunk(states[i], hyper, lrs[i], batches, active)
            jax.block_until_ready(out)

    for _ in range(1 + args.warmup):
        call()
    return call


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                    help="group sizes K")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=16)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps-per-call", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1, help="rounds after the first one")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed rounds of each, alternating (median)")
    ap.add_argument("--members-axis", type=int, default=None,
                    help="devices on the members axis for the vmapped runs (default: the "
                         "automatic mesh)")
    args = ap.parse_args(argv)

    load0 = os.getloadavg()
    devices = jax.devices()
    print(f"jax {jax.__version__} on {jax.default_backend()}: {len(devices)} device(s) "
          f"({devices[0].device_kind}), {os.cpu_count()} CPUs; "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r} "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; load average before: "
          f"{load0[0]:.2f}", flush=True)
    cfg = TransformerConfig(width=args.width, depth=args.depth, head_dim=args.head_dim,
                            context=args.context)
    p = Parametrization("mup", base_width=BASE_WIDTH)
    batches = np.random.default_rng(0).integers(
        0, cfg.vocab, (args.steps_per_call, args.batch, cfg.context + 1)).astype(np.int32)

    rows = []
    for k in args.members:
        seq_call = sequential_round(cfg, p, k, args, batches)
        vm_call, where = vmapped_round(cfg, p, k, args, batches)
        seq_s, vm_s = _interleaved([seq_call, vm_call], args.repeats)
        seq, vm = k * args.steps_per_call / seq_s, k * args.steps_per_call / vm_s
        rows.append([str(k), f"{vm:,.1f}", where, f"{seq:,.1f}", f"{vm / seq:.2f}"])
        print(f"  K={k}: vmapped {vm:,.1f}, sequential {seq:,.1f} member-steps/s",
              flush=True)

    head = ["K", "vmapped member-steps/s", "vmapped on", "sequential member-steps/s",
            "ratio vmap/seq"]
    print(f"\nwidth {args.width}, depth {args.depth}, head_dim {args.head_dim}, context "
          f"{args.context}, batch {args.batch}, {args.steps_per_call} steps per call, median "
          f"of {args.repeats} rounds; muP base width {BASE_WIDTH}, AdamW, clip {GRAD_CLIP}")
    print_table(head, rows)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    reexec_with_fast_malloc()  # SCALELAW_MALLOC=system for glibc's default malloc
    main()
