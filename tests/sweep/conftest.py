"""Fixtures shared by the sweep tests."""

from __future__ import annotations

import json
import os
import socket

import pytest


@pytest.fixture
def peak_cache(tmp_path, monkeypatch) -> float:  # noqa: ANN001
    """A cached matmul peak of 100 GFLOP/s, so `plan` measures nothing; returns the peak."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "cache" / "scalelaw").mkdir(parents=True)
    key = f"{socket.gethostname()}-{os.cpu_count()}"
    (tmp_path / "cache" / "scalelaw" / "matmul_peak.json").write_text(
        json.dumps({key: {"flops": 100e9, "backend": "cpu", "device": "cpu", "n": 1024}}))
    return 100e9
