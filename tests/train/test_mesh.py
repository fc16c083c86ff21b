"""One group over several devices (issue 9 §3): the mesh section, its sizes, and a group
sharded over 4 forced CPU devices equal to the single-device run, through a resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalelaw.errors import ConfigError
from scalelaw.train.mesh import MeshConfig, parse_mesh, plan_mesh

SCRIPT = Path(__file__).with_name("_sharded_group.py")


def test_mesh_section_is_validated() -> None:
    assert parse_mesh(None).automatic
    assert parse_mesh({"members": 4, "data": 2.0}) == MeshConfig(members=4, data=2)
    with pytest.raises(ConfigError,
                       match=r"^mesh\.members: must be a positive integer \(or null\), got 0"):
        parse_mesh({"members": 0})
    with pytest.raises(ConfigError, match=r"mesh\.model: unknown key"):
        parse_mesh({"model": 2})


@pytest.mark.parametrize(("config", "k", "batch", "vmapped", "devices", "backend", "want"), [
    (MeshConfig(), 8, 8, True, 4, "cpu", (1, 1)),          # one CPU process: today's choice
    (MeshConfig(), 8, 8, True, 4, "gpu", (4, 1)),          # accelerators: members on devices
    (MeshConfig(), 2, 8, True, 8, "tpu", (2, 4)),          # few members: the rest on data
    (MeshConfig(), 3, 2, True, 8, "gpu", (4, 2)),          # data must divide the batch
    (MeshConfig(), 10, 256, True, 16, "tpu", (2, 8)),      # no padding: 10 = 2 x 5
    (MeshConfig(), 3, 8, True, 8, "gpu", (1, 8)),          # 3 pads to 4 on 2+ members
    (MeshConfig(), 3, 8, False, 4, "gpu", (1, 4)),         # sequential: data parallel
    (MeshConfig(), 3, 12, False, 8, "gpu", (1, 6)),        # ... over the most that divide B
    (MeshConfig(members=2), 5, 8, True, 4, "cpu", (2, 1)),  # a missing size is 1
    (MeshConfig(members=2, data=2), 3, 8, True, 4, "cpu", (2, 2)),
])
def test_plan_mesh_sizes(config, k, batch, vmapped, devices, backend, want) -> None:
    assert plan_mesh(config, n_members=k, batch_size=batch, vmapped=vmapped,
                     n_devices=devices, backend=backend, processes=1) == want


@pytest.mark.parametrize(("config", "vmapped", "processes", "message"), [
    (MeshConfig(members=4, data=2), True, 1, r"^mesh: members 4 x data 2 = 8 devices, but 4"),
    (MeshConfig(data=3), True, 1, r"^mesh\.data: 3 does not divide the batch size 8"),
    (MeshConfig(members=2), False, 1, r"^mesh\.members: 2 needs the vmapped program"),
    (MeshConfig(members=2), True, 2, r"^mesh: .* must use all 4 devices of the 2 processes"),
])
def test_plan_mesh_refuses(config, vmapped, processes, message) -> None:
    with pytest.raises(ValueError, match=message):
        plan_mesh(config, n_members=4, batch_size=8, vmapped=vmapped, n_devices=4,
                  backend="cpu", processes=processes)


def test_sequential_batch_that_no_slice_divides_is_refused_with_a_way_out() -> None:
    with pytest.raises(ValueError, match=r"^mesh: batch size 6 .* 8 devices of the 2 processes; "
                                         r"run the members vmapped"):
        plan_mesh(MeshConfig(), n_members=3, batch_size=6, vmapped=False, n_devices=8,
                  backend="gpu", processes=2)


def _close(a: list, b: list, rel: float = 1e-5) -> bool:
    for ma, mb in zip(a, b, strict=True):
        for ra, rb in zip(ma, mb, strict=True):
            if ra[0] != rb[0] or (ra[2] is None) != (rb[2] is None):
                return False
            for x, y in zip(ra[1:], rb[1:], strict=True):
                if x is not None and abs(x - y) > rel * abs(y):
                    return False
    return len(a) == len(b)


@pytest.mark.slow
def test_sharded_group_equals_single_device_through_a_resume(tmp_path: Path) -> None:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["auto_cpu_is_one_device"]
    # the stacked params and optimizer state are split over the members axis
    assert out["stacked_split"] and out["opt_split"] and out["shard_rows"] == 2, out
    single = out["single"]
    assert [len(m) for m in single] == [8, 8, 8] and single[0] != single[1]
    assert _close(out["sharded"], single), (out["sharded"], single)
    assert _close(out["sequential_data"], single), (out["sequential_data"], single)
    # the interrupted sharded run left a checkpoint at step 8, restored onto the mesh,
    # and resuming on another layout (4 x 1) ends with the single-device numbers
    assert out["interrupted"] and out["cut_steps"] == [8, 8, 8] and out["ckpt_step"] == 8
    assert out["restored_on_mesh"] and out["resume_first_report"] == 8
    assert _close(out["resumed"], single), (out["resumed"], single)
