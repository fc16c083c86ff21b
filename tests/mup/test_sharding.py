"""The muP optimizer on FSDP-sharded parameters equals the unsharded one, across an orbax
save and restore of the sharded arrays (4 forced CPU devices, in a subprocess so that this
process keeps its own device count)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("orbax.checkpoint")

SCRIPT = Path(__file__).with_name("_sharded_mup.py")


@pytest.mark.slow
def test_sharded_updates_equal_unsharded_through_an_orbax_round_trip(tmp_path: Path) -> None:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["roles_parallel"] and out["hidden_lr_mult"] == 0.5
    assert out["kept"] and out["restored_kept"], out  # still FSDP-sharded after each step
    assert out["wq_shard"] == [2, 16, 64]  # (layers, fan_in / 4 devices, fan_out)
    assert out["moved"] > 1e-3  # it trained
    # float32 reductions split over devices round differently; a wrong multiplier would
    # be off by about lr = 1e-2 per step
    assert out["after3"] < 1e-4 and out["after5"] < 1e-4, out
