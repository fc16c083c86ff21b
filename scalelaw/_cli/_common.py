"""Small helpers shared by the CLI command modules."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer


def bad_input(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return an ``Exit(2)`` to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def jax_cache(min_compile_secs: float | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache; call before JAX is imported.

    The directory is ``$JAX_COMPILATION_CACHE_DIR`` if set, else
    :func:`scalelaw._paths.cache_dir` ``/ "jax"`` (default ``~/.cache/scalelaw/jax``).
    ``min_compile_secs`` lowers JAX's threshold (1 s) for which programs
    are written, unless ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` is set. Returns the
    directory, or ``None`` if the user turned the cache off (``JAX_COMPILATION_CACHE_DIR``
    set to the empty string).
    """
    from scalelaw._paths import cache_dir

    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_dir() / "jax"))
    if not os.environ["JAX_COMPILATION_CACHE_DIR"]:
        return None
    if min_compile_secs is not None:
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                              str(min_compile_secs))
    return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])


def check_output_path(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output file whose directory is missing or read-only."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"{option}: {path} is a directory")
    if not parent.is_dir():
        raise ValueError(f"{option}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{option}: directory {parent} is not writable")


def parse_int_list(text: str, field: str) -> list[int]:
    """Parse ``"64,256,1024"`` into positive ints, or raise ``ValueError`` naming ``field``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{field}: expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{field}: expected positive integers, got {text!r}")
    return values


def print_json(obj: Any) -> None:
    """Print one strict JSON object on stdout (numpy scalars converted, NaN/inf -> null)."""
    def default(o: Any) -> Any:
        if hasattr(o, "item"):
            return o.item()
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    from scalelaw.fit.result import _nan_to_none

    plain = json.loads(json.dumps(obj, default=default))  # numpy -> Python, NaN kept
    sys.stdout.write(json.dumps(_nan_to_none(plain), allow_nan=False) + "\n")


def console(stderr: bool = False) -> Any:
    """A rich console; when the output is not a terminal (a pipe, a log file, CI), tables
    get 140 columns instead of rich's default 80 so that they are not truncated."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, soft_wrap=True, width=None if stream.isatty() else 140)


_FLAGS = {"n_params": "--params", "n_tokens": "--tokens", "laws": "--laws",
          "seq_len": "--seq-len", "source": "--source", "width": "--width",
          "parametrization": "--parametrization"}


def as_flags(message: str) -> str:
    """Rewrite the leading ``arg, arg:`` of an API error (e.g. :func:`scalelaw.recommend`)
    as the CLI options that set those arguments.

    >>> as_flags("n_params, n_tokens: too large")
    '--params, --tokens: too large'
    """
    head, sep, rest = message.partition(": ")
    names = [h.strip() for h in head.split(",")]
    if not sep or not all(h in _FLAGS for h in names):
        return message
    return ", ".join(_FLAGS[h] for h in names) + sep + rest
