"""`sweep plan` reports the devices, hosts, mode and mesh it assumes (issue 9 §6)."""

from __future__ import annotations

import json

import pytest
from _fake import write_spec

from scalelaw.cli import main
from scalelaw.sweep import load_spec
from scalelaw.sweep.plan import plan

SPEC = {"name": "p", "train": {"tokens": 8192, "batch_size": 4, "eval_every": 8,
                               "eval_tokens": 256},
        "model": {"width": 32, "head_dim": 16, "context": 32},
        "sweep": {"optimizer.lr": [1e-3, 2e-3, 4e-3]}}


def run(argv: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_plan_spreads_a_group_over_the_devices_it_assumes() -> None:
    one = plan(load_spec(SPEC), peak=100e9)
    assert (one.devices, one.hosts, one.mode, one.groups[0].mesh) == (1, 1, "sequential",
                                                                      "1 device")
    gpus = plan(load_spec(SPEC), peak=100e9, backend="gpu", devices=8)
    g = gpus.groups[0]
    assert gpus.mode == "vmap" and g.mesh == "members 4 x data 2"  # K=3 -> 4, B=4 -> 2
    alone = plan(load_spec(SPEC), peak=100e9, backend="gpu", devices=1)
    assert g.seconds - 3.0 == pytest.approx((alone.groups[0].seconds - 3.0) / 8)
    pod = plan(load_spec({**SPEC, "mesh": {"members": 2}}), peak=100e9, devices=4, hosts=2)
    assert pod.mode == "vmap" and pod.groups[0].mesh.startswith("not here: mesh: members 2")
    with pytest.raises(ValueError, match="^mode: must be one of"):
        plan(load_spec(SPEC), peak=100e9, mode="fast")


def test_plan_cli_prints_devices_executor_and_mesh(tmp_path, peak_cache, capsys) -> None:
    path = write_spec(tmp_path / "m.yaml", mesh={"members": 2, "data": 1})
    code, out, err = run(["sweep", "plan", str(path)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert any(ln.startswith("devices: 1 cpu") and "members run vmap" in ln for ln in lines)
    assert "mesh: members 2 x data 1 (per group in the mesh column)" in lines
    code, out, err = run(["sweep", "plan", str(path), "--json"], capsys)
    data = json.loads(out)
    assert (data["devices"], data["hosts"], data["mode"]) == (1, 1, "vmap")
    assert data["mesh"] == {"members": 2, "data": 1}
    assert data["groups"][0]["mesh"].startswith("not here: mesh: members 2 x data 1 = 2")
