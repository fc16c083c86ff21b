"""``scalelaw coord-check`` exit codes, JSON and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scalelaw.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_mup_stable_exits_0_with_json_and_plot(tmp_path: Path) -> None:
    plot = tmp_path / "cc.png"
    out = run("coord-check", "--model", "mlp", "--parametrization", "mup", "--widths", "128,512",
              "--json", "--plot", str(plot))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["stable"] is True
    assert {m["verdict"] for m in result["modules"]} == {"stable"}
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_sp_blows_up_exits_1_with_table() -> None:
    out = run("coord-check", "--model", "mlp", "--parametrization", "sp", "--widths", "64,256")
    assert out.returncode == 1, out.stderr
    assert "blows up" in out.stdout and "readout" in out.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--widths", "64,abc"], "widths"), (["--widths", "64"], "widths"),
     (["--model", "cnn"], "model"), (["--parametrization", "ntk"], "--parametrization"),
     (["--optimizer", "lion"], "optimizer"), (["--steps", "zero"], "--steps"),
     (["--plot", "out.gif"], "plot"), (["--no-such-flag"], "no-such-flag")],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "scalelaw.cli", "coord-check", "--model", "mlp",
                          "--widths", "64,128", *args] if "--model" not in args else
                         [sys.executable, "-m", "scalelaw.cli", "coord-check", "--widths",
                          "64,128", *args], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], out.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_help_documents_the_exit_codes() -> None:
    out = run("coord-check", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "Exit codes: 0 every module stable; 1 a module flagged" in text
    assert "2 bad input" in text and "--seeds" in text
