"""Where scalelaw keeps per-machine state (matmul peak, JAX and exported-program caches).

Standard library only, so the CLI can find it before importing JAX or the sweep package.

>>> cache_dir().name
'scalelaw'
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/scalelaw`` (default ``~/.cache/scalelaw``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scalelaw"
