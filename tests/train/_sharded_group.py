"""Run by test_mesh.py in a subprocess with 4 forced CPU devices (XLA_FLAGS).

One group of 3 muP members trained (a) on one device, (b) sharded over a 2 x 2 mesh
(members x data; K padded to 4), (c) in sequence with each batch over 4 devices, (d)
sharded, interrupted after a checkpoint, and resumed on a 4 x 1 mesh. Prints one JSON
line: every member's losses from each run, and what the shardings of the stacked state
and the restored checkpoint were.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
from jax.sharding import PartitionSpec as P

from scalelaw.sweep import TrialConfig
from scalelaw.train import read_metrics, train_group
from scalelaw.train.checkpoint import Checkpointer
from scalelaw.train.mesh import MeshConfig, group_mesh
from scalelaw.train.step import step_fns

B, T, STEPS = 8, 16, 16


def trial(lr: float, seed: int = 0, output_mult: float = 1.0) -> TrialConfig:
    return TrialConfig.from_dict({
        "model": {"width": 32, "depth": 1, "head_dim": 16, "context": T},
        "parametrization": {"name": "mup", "base_width": 16, "output_mult": output_mult},
        "optimizer": {"lr": lr, "grad_clip": 1.0, "weight_decay": 0.1},
        "schedule": {"name": "wsd", "warmup_tokens": 256, "decay_fraction": 0.25},
        "train": {"tokens": STEPS * B * T, "batch_size": B, "eval_every": 8,
                  "eval_tokens": 256, "log_every": 2, "seed": seed, "checkpoint_every": 4},
    })


MEMBERS = [trial(3e-3), trial(1e-2, seed=1, output_mult=2.0), trial(2e-2, seed=2)]


def losses(dirs: list[Path]) -> list[list[list[float | None]]]:
    return [[[r["step"], r["train_loss"], r["eval_loss"]] for r in read_metrics(d)]
            for d in dirs]


def run(root: Path, mesh: MeshConfig, mode: str = "vmap", **kw: object) -> list[Path]:
    dirs = [root / t.trial_id for t in MEMBERS]
    train_group(MEMBERS, dirs, mode=mode, mesh=mesh, **kw)
    return dirs


def main() -> None:
    assert jax.device_count() == 4, jax.devices()
    root = Path(sys.argv[1])
    out: dict[str, object] = {}
    out["auto_cpu_is_one_device"] = group_mesh(MeshConfig(), n_members=3, batch_size=B,
                                               vmapped=True) is None
    out["single"] = losses(run(root / "single", MeshConfig(members=1, data=1)))
    out["sharded"] = losses(run(root / "sharded", MeshConfig(members=2, data=2)))
    # members one after another, each one's batch over 4 devices (data parallel)
    out["sequential_data"] = losses(run(root / "seq", MeshConfig(data=4), mode="sequential"))

    # the stacked state really is split over the member axis (K = 3 padded to 4)
    gm = group_mesh(MeshConfig(members=2, data=2), n_members=3, batch_size=B, vmapped=True)
    assert gm is not None
    t = MEMBERS[0]
    fns = step_fns(t.model, t.parametrization, grad_clip=1.0, vmapped=True, mesh=gm)
    state = gm.stack([fns.init(jax.random.key(i)) for i in range(3)])
    wq = state["params"]["wq"]
    out["stacked_spec"] = str(wq.sharding.spec)
    out["stacked_split"] = wq.sharding.spec == P("members")
    out["shard_rows"] = wq.addressable_shards[0].data.shape[0]
    out["opt_split"] = all(x.sharding.spec == P("members")
                           for x in jax.tree.leaves(state["opt_state"]))

    # interrupted after the checkpoint at step 8 (chunks end at 4, 8, 12, 16) ...
    seen: list[int] = []

    def interrupt(k: int) -> None:
        seen.append(k)
        if sum(seen) >= 3 * 8:
            raise KeyboardInterrupt

    try:
        run(root / "resumed", MeshConfig(members=2, data=2), progress=interrupt)
        out["interrupted"] = False
    except KeyboardInterrupt:
        out["interrupted"] = True
    dirs = [root / "resumed" / t.trial_id for t in MEMBERS]
    out["cut_steps"] = [[r["step"] for r in read_metrics(d)][-1] for d in dirs]
    ckpt = Checkpointer(dirs[1] / "ckpt")
    out["ckpt_step"] = ckpt.latest_step()
    like = jax.eval_shape(fns.init, jax.random.key(0))
    restored, _ = ckpt.restore(8, like, gm.replicated)
    ckpt.close()
    out["restored_on_mesh"] = restored["params"]["wq"].sharding == gm.replicated
    # ... and resumed on another layout (members 4 x data 1)
    total: list[int] = []
    run(root / "resumed", MeshConfig(members=4, data=1), progress=total.append)
    out["resume_first_report"] = total[0] if total else None
    out["resumed"] = losses(dirs)
    print(json.dumps(out))


if __name__ == "__main__":  # not on import (pytest --doctest-modules imports it)
    main()
