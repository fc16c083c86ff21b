"""Where scalelaw keeps per-machine state, and JAX's persistent compilation cache.

Standard library only, so the CLI can call it before JAX is imported (JAX reads the
cache settings from the environment when it is imported).

>>> cache_dir().name
'scalelaw'
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "enable_compilation_cache"]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/scalelaw`` (default ``~/.cache/scalelaw``): the matmul peak, JAX's
    compilation cache and the fit CLI's exported programs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scalelaw"


def enable_compilation_cache(min_compile_secs: float | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache, unless the user chose one or none.

    The folder is ``$JAX_COMPILATION_CACHE_DIR`` if set (the empty string turns the cache
    off: returns ``None``), a folder already set in ``jax.config``, else
    :func:`cache_dir` ``/ "jax"``. ``min_compile_secs`` lowers JAX's threshold (1 s) for
    which programs are written, unless ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` is
    set. Works before JAX is imported (through the environment, which JAX reads on
    import) and after (through ``jax.config``). Returns the folder in use.
    """
    chosen = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if chosen == "":
        return None
    jax = sys.modules.get("jax")
    if jax is None:  # JAX reads these when it is imported
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_dir() / "jax"))
        if min_compile_secs is not None:
            os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                                  str(min_compile_secs))
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    folder = chosen or jax.config.jax_compilation_cache_dir or str(cache_dir() / "jax")
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", folder)
    if min_compile_secs is not None and "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in \
            os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_secs)
    return Path(folder)
