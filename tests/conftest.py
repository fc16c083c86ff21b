"""Shared test set-up: JAX's persistent compilation cache and the anchors folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Reuse compiled programs across test processes (set before JAX is imported).
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache" / "scalelaw" / "jax")
)
os.environ.setdefault("MPLBACKEND", "Agg")

ANCHORS = Path(__file__).resolve().parents[1].parent / "shared" / "anchors"


@pytest.fixture(scope="session")
def anchors() -> Path:
    """``../shared/anchors`` beside the repository; skips the test where it is absent."""
    if not ANCHORS.is_dir():
        pytest.skip("../shared/anchors is not present")
    return ANCHORS
