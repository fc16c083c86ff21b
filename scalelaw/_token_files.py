"""nanoGPT-style token files: flat ``uint16``/``uint32`` arrays, memory-mapped and checked.

Every token id is checked against the vocabulary once per process (in chunks, so a large
file is never loaded whole); :func:`load_token_files` is what :mod:`scalelaw.corpus` uses
for ``data: {source: tokens}``.

``data.path`` and ``data.val_path`` may be URLs (``s3://``, ``gs://``, any fsspec URL): the
file is downloaded once into ``cache_dir() / "tokens"`` by fsspec's ``filecache`` (which
fetches it again only when the object changes) and memory-mapped from there, so training
reads local pages, not ranges over the network.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from scalelaw.errors import ConfigError
from scalelaw.storage import Location, is_url

_CHUNK = 1 << 26  # tokens scanned at a time by the vocabulary check


def _local_copy(url: str, field: str) -> str:
    """The local cached copy of the token file at ``url`` (downloaded on first use)."""
    import fsspec

    from scalelaw.cache import cache_dir

    Location(url, f"data.{field}")  # a missing backend: one line naming the field
    options = {"cache_storage": str(cache_dir() / "tokens"), "check_files": True}
    try:
        return str(fsspec.open_local(f"filecache::{url}", filecache=options))
    except FileNotFoundError:
        raise ConfigError(f"data.{field}: no such file: {url}") from None
    except Exception as exc:  # noqa: BLE001 - any backend error, in one line
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"data.{field}: cannot read {url}: {text}") from None


def _open_tokens(path: str, field: str, dtype: str, vocab: int) -> np.ndarray:
    file = _local_copy(path, field) if is_url(path) else os.path.expanduser(path)
    if not os.path.isfile(file):
        raise ConfigError(f"data.{field}: no such file: {path}")
    size, itemsize = os.path.getsize(file), np.dtype(dtype).itemsize
    if size == 0 or size % itemsize:
        raise ConfigError(
            f"data.{field}: {path} has {size} bytes, not a positive multiple of {itemsize} "
            f"(dtype {dtype})"
        )
    tokens = np.memmap(file, dtype=dtype, mode="r")
    for start in range(0, len(tokens), _CHUNK):
        chunk = tokens[start : start + _CHUNK]
        if int(chunk.max()) >= vocab:
            where = start + int(np.argmax(chunk >= vocab))
            raise ConfigError(
                f"data.{field}: {path} contains token id {int(tokens[where])} >= vocab {vocab} "
                f"at position {where} (check data.vocab and data.dtype)"
            )
    return tokens


def load_token_files(
    path: str, dtype: str, vocab: int, val_path: str | None, val_fraction: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) token arrays of a nanoGPT-style file, memory-mapped.

    Validation is ``val_path`` if given, else the last ``val_fraction`` of ``path``.
    Cached per process, keyed also on the files' modification times.
    """
    files = [os.path.expanduser(p) for p in (path, val_path) if p is not None]
    stamp = tuple(os.path.getmtime(f) if os.path.exists(f) else -1.0 for f in files)
    return _load_tokens_cached(path, dtype, vocab, val_path, val_fraction, stamp)


@functools.lru_cache(maxsize=8)
def _load_tokens_cached(
    path: str, dtype: str, vocab: int, val_path: str | None, val_fraction: float | None,
    stamp: tuple[float, ...],
) -> tuple[np.ndarray, np.ndarray]:
    tokens = _open_tokens(path, "path", dtype, vocab)
    if val_path is not None:
        return tokens, _open_tokens(val_path, "val_path", dtype, vocab)
    assert val_fraction is not None, "val_fraction is needed without val_path"
    n_val = max(1, round(len(tokens) * val_fraction))
    if n_val >= len(tokens):
        raise ConfigError(f"data.path: {path} has {len(tokens)} tokens, too few to split")
    return tokens[:-n_val], tokens[-n_val:]
