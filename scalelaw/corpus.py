"""Training data: byte-level text and nanoGPT-style token files, batches as pure functions.

Three sources, chosen by :class:`DataConfig` ``source``:

- ``"stdlib"`` (the default): the ``.py`` files of the running interpreter's standard
  library (``sysconfig.get_paths()["stdlib"]``), read as bytes (vocab 256). Present on
  every machine, no download; about 12 MB on CPython 3.11. ``site-packages``,
  ``dist-packages`` and ``__pycache__`` are never read; the test suites (directories named
  ``test``, ``tests`` or ``idle_test``) are excluded unless ``include_tests=True``, because
  they are large, repetitive and not representative prose-like code. The corpus depends
  on the Python version, so compare losses only between runs on the same interpreter.
- ``"text"``: byte-level text from ``paths`` (files, directories or ``glob`` patterns,
  ``**`` allowed; ``~`` expanded; relative paths are relative to the working directory).
- ``"tokens"``: a flat binary file of ``uint16`` or ``uint32`` token ids (nanoGPT's
  ``train.bin``), opened as a read-only memmap; validation is the last ``val_fraction``
  of the file or a separate ``val_path``. Every id is checked ``< vocab`` on load.

Text sources are split into train and validation **by file**: files are sorted, and a
file goes to validation when the SHA-256 of its path relative to the corpus root (the
stdlib directory, or the common parent of the matched files) falls in the lowest
``val_fraction`` (default 2%) of the hash range. The split is deterministic, stable
across machines, and adding a file never moves another one. If no file lands in
validation, the one with the smallest hash is moved there; a single file is split by its
last ``val_fraction`` of bytes instead. Files of a split are concatenated with a NUL
separator byte (``SEPARATOR``), which does not occur in source text.

Batches are a pure function of ``(seed, step)`` (:meth:`Corpus.train_batch`), so a
resumed run sees exactly the batches an uninterrupted run would, and
:meth:`Corpus.eval_batches` is the same fixed held-out set on every call. Loaded corpora
are cached per process (the data seed does not take part in the cache key).

Examples
--------
>>> corpus = load_corpus({"source": "stdlib"})
>>> corpus.vocab
256
>>> batch = corpus.train_batch(step=0, batch_size=4, context=32, seed=0)
>>> batch.shape, batch.dtype.name  # inputs = batch[:, :-1], targets = batch[:, 1:]
((4, 33), 'int32')
>>> bool((batch == corpus.train_batch(0, 4, 32, seed=0)).all())
True
"""

from __future__ import annotations

import functools
import glob
import hashlib
import math
import os
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, Strict, model_validator

from scalelaw._token_files import load_token_files
from scalelaw._validation import (
    Flag,
    NonEmptyStr,
    NonNegativeInt,
    Paths,
    PositiveInt,
    section,
    validate,
)
from scalelaw.errors import ConfigError, FieldError

__all__ = ["BYTE_VOCAB", "SEPARATOR", "SOURCES", "Corpus", "DataConfig", "load_corpus"]

BYTE_VOCAB = 256
SEPARATOR = 0  # NUL byte between files
SOURCES = ("stdlib", "text", "tokens")
TOKEN_DTYPES = ("uint16", "uint32")
DEFAULT_VAL_FRACTION = 0.02
_SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
_TEST_DIRS = frozenset({"test", "tests", "idle_test"})


@section
class DataConfig:
    """Where the tokens come from and the data-order seed.

    Unset fields are filled in on construction (``vocab`` = 256 for byte sources,
    ``dtype`` = ``"uint16"`` for token files, ``val_fraction`` = 0.02 unless ``val_path``
    is given), so two configs that load the same data compare equal.

    Parameters
    ----------
    source : {"stdlib", "text", "tokens"}
    seed : int
        Data-order seed: batches are drawn from ``default_rng((seed, step))``. Members of
        one training group share it (their init seed is ``train.seed``).
    paths : tuple of str
        ``"text"`` only: files, directories or glob patterns.
    path : str
        ``"tokens"`` only: the token file.
    vocab : int
        Vocabulary size; 256 for byte sources, required for ``"tokens"``.
    dtype : {"uint16", "uint32"}
        ``"tokens"`` only: the element type of the token file(s).
    val_path : str or None
        ``"tokens"`` only: a separate validation token file.
    val_fraction : float
        Fraction in (0, 1) held out: of the files (text) or the file's tail (tokens).
    include_tests : bool
        ``"stdlib"`` only: also read the standard library's test suites.

    Raises
    ------
    ConfigError
        With a message ``"<field>: <problem>"`` naming the offending field.

    Examples
    --------
    >>> DataConfig("tokens", path="train.bin", vocab=50304).val_fraction
    0.02
    >>> DataConfig("stdlib", vocab=512)
    Traceback (most recent call last):
    ...
    scalelaw.errors.FieldError: vocab: byte-level sources have vocab 256, got 512
    """

    source: Literal["stdlib", "text", "tokens"] = "stdlib"
    seed: NonNegativeInt = 0
    paths: Paths = ()
    path: NonEmptyStr | None = None
    vocab: PositiveInt | None = None
    dtype: Literal["uint16", "uint32"] | None = None
    val_path: NonEmptyStr | None = None
    val_fraction: Annotated[float, Strict(), Field(gt=0, lt=1)] | None = None
    include_tests: Flag = False

    @model_validator(mode="after")
    def _per_source(self) -> DataConfig:
        only = {"paths": "text", "path": "tokens", "dtype": "tokens", "val_path": "tokens",
                "include_tests": "stdlib"}
        for name, source in only.items():
            if self.source != source and getattr(self, name) not in (None, (), False):
                raise FieldError(name, f"only allowed with source {source!r}")
        if self.source == "tokens":
            self._check_tokens()
        else:
            if self.vocab not in (None, BYTE_VOCAB):
                raise FieldError("vocab", f"byte-level sources have vocab 256, got {self.vocab}")
            object.__setattr__(self, "vocab", BYTE_VOCAB)
            if self.source == "text" and not self.paths:
                raise FieldError("paths", "required for source 'text': a non-empty list of "
                                          "files, directories or glob patterns")
        if self.val_fraction is not None and self.val_path is not None:
            raise FieldError("val_fraction", "give val_fraction or val_path, not both")
        if self.val_fraction is None and self.val_path is None:
            object.__setattr__(self, "val_fraction", DEFAULT_VAL_FRACTION)
        return self

    def _check_tokens(self) -> None:
        if self.path is None:
            raise FieldError("path", "required for source 'tokens' (the token file)")
        if self.vocab is None:
            raise FieldError("vocab", "required for source 'tokens' (a positive integer)")
        dtype = "uint16" if self.dtype is None else self.dtype
        object.__setattr__(self, "dtype", dtype)
        limit = 1 << (8 * np.dtype(dtype).itemsize)
        if self.vocab > limit:
            raise FieldError("vocab", f"must be <= {limit} for dtype {dtype}, got {self.vocab}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "data") -> DataConfig:
        """Build from a mapping (e.g. parsed YAML), raising :class:`ConfigError`.

        Examples
        --------
        >>> DataConfig.from_mapping({"source": "text", "paths": ["*.txt"]}).paths
        ('*.txt',)
        >>> DataConfig.from_mapping({"sorce": "text"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        scalelaw.errors.FieldError: data.sorce: unknown key (allowed: source, seed, ...)
        """
        return validate(cls, data, prefix)


@dataclass(frozen=True, eq=False)
class Corpus:
    """A tokenised train/validation pair with deterministic batch sampling.

    Attributes
    ----------
    train, val : np.ndarray
        1-D read-only token arrays (``uint8`` for bytes, or a memmap of the token file).
    vocab : int
        Every id is ``< vocab``.
    description : str
        Human-readable origin, e.g. ``"stdlib (734 files: 719 train, 15 val)"``.
    """

    train: np.ndarray
    val: np.ndarray
    vocab: int
    description: str = ""

    def train_batch(self, step: int, batch_size: int, context: int, seed: int) -> np.ndarray:
        """Training windows for one step: ``int32[B, T+1]``, a pure function of its args.

        Offsets are drawn uniformly from ``np.random.default_rng((seed, step))``, so
        resuming at ``step`` reproduces the uninterrupted run's batches exactly.

        Examples
        --------
        >>> corpus = Corpus(np.arange(100, dtype=np.uint8), np.arange(10, dtype=np.uint8), 256)
        >>> b = corpus.train_batch(step=3, batch_size=2, context=4, seed=0)
        >>> b.shape, bool((np.diff(b, axis=1) == 1).all())
        ((2, 5), True)
        """
        _check_sizes(batch_size=batch_size, context=context, step=step, seed=seed)
        high = _window_count(self.train, context, "train")
        offsets = np.random.default_rng((seed, step)).integers(0, high, size=batch_size)
        return _windows(self.train, offsets, context)

    def train_batches(
        self, start_step: int, num_steps: int, batch_size: int, context: int, seed: int
    ) -> np.ndarray:
        """``int32[S, B, T+1]``: :meth:`train_batch` for ``num_steps`` steps (for a scan)."""
        _check_sizes(num_steps=num_steps)
        steps = range(start_step, start_step + num_steps)
        return np.stack([self.train_batch(s, batch_size, context, seed) for s in steps])

    def eval_batches(self, eval_tokens: int, batch_size: int, context: int) -> np.ndarray:
        """The fixed held-out set: ``int32[N, B, T+1]`` with ``N*B*T >= eval_tokens``.

        ``N = ceil(eval_tokens / (B*T))`` batches of windows at evenly spaced offsets
        over the whole validation split (overlapping if it is short); identical on every
        call and independent of any seed.

        Examples
        --------
        >>> corpus = Corpus(np.zeros(10, np.uint8), np.arange(50, dtype=np.uint8), 256)
        >>> corpus.eval_batches(eval_tokens=20, batch_size=2, context=4).shape
        (3, 2, 5)
        """
        _check_sizes(eval_tokens=eval_tokens, batch_size=batch_size, context=context)
        n_batches = math.ceil(eval_tokens / (batch_size * context))
        high = _window_count(self.val, context, "validation")
        offsets = np.linspace(0, high - 1, n_batches * batch_size).round().astype(np.int64)
        return _windows(self.val, offsets, context).reshape(n_batches, batch_size, context + 1)


def load_corpus(config: DataConfig | Mapping[str, Any]) -> Corpus:
    """The single entry point: load (or fetch from the per-process cache) a corpus.

    Parameters
    ----------
    config : DataConfig or mapping
        E.g. ``{"source": "tokens", "path": "train.bin", "vocab": 50304}``.

    Raises
    ------
    ConfigError
        On a malformed config, a missing or unreadable file, a token file whose size is
        not a multiple of its element size, or an id ``>= vocab`` (the message names the
        field and the file).
    """
    if not isinstance(config, DataConfig):
        config = DataConfig.from_mapping(config)
    if config.source == "tokens":
        path, dtype, vocab = config.path, config.dtype, config.vocab
        assert path is not None and dtype is not None and vocab is not None  # _check_tokens
        train, val = load_token_files(path, dtype, vocab, config.val_path, config.val_fraction)
        where = config.val_path or f"last {config.val_fraction:g} of the file"
        return Corpus(train, val, vocab, f"tokens {path} (val: {where})")
    if config.source == "stdlib":
        root = sysconfig.get_paths()["stdlib"]
        files = _stdlib_files(root, config.include_tests)
    else:
        files = _expand_paths(config.paths)
        root = os.path.commonpath(files) if len(files) > 1 else os.path.dirname(files[0])
    return _load_bytes(config.source, tuple(files), root, config.val_fraction)


# ----------------------------------------------------------------------------- bytes
def _stdlib_files(root: str, include_tests: bool) -> list[str]:
    skip = _SKIP_DIRS if include_tests else _SKIP_DIRS | _TEST_DIRS
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        found += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    return sorted(found)


def _expand_paths(patterns: tuple[str, ...]) -> list[str]:
    files: set[str] = set()
    for i, pattern in enumerate(patterns):
        expanded = os.path.expanduser(pattern)
        if os.path.isdir(expanded):
            matched = [str(p) for p in Path(expanded).rglob("*") if p.is_file()]
        elif glob.has_magic(expanded):
            matched = [p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p)]
        elif os.path.isfile(expanded):
            matched = [expanded]
        else:
            raise ConfigError(f"data.paths[{i}]: no such file or directory: {pattern}")
        if not matched:
            raise ConfigError(f"data.paths[{i}]: pattern matches no files: {pattern}")
        files.update(os.path.abspath(p) for p in matched)
    return sorted(files)


def _split_key(path: str, root: str) -> float:
    """Position of a file in [0, 1) from the hash of its path relative to ``root``."""
    rel = Path(os.path.relpath(path, root)).as_posix()
    return int(hashlib.sha256(rel.encode()).hexdigest()[:12], 16) / 16**12


@functools.lru_cache(maxsize=8)
def _load_bytes(source: str, files: tuple[str, ...], root: str, val_fraction: float) -> Corpus:
    contents = {}
    for f in files:
        try:
            data = Path(f).read_bytes()
        except OSError as exc:
            raise ConfigError(f"data.paths: cannot read {f}: {exc.strerror}") from None
        if data:
            contents[f] = data
    if not contents:
        raise ConfigError(f"data.{'paths' if source == 'text' else 'source'}: no non-empty files")
    keys = {f: _split_key(f, root) for f in contents}
    val_files = [f for f in contents if keys[f] < val_fraction]
    if len(contents) == 1:  # one file: hold out its tail
        (data,) = contents.values()
        cut = len(data) - max(1, round(len(data) * val_fraction))
        train_bytes, val_bytes, n_val = data[:cut], data[cut:], 0
    else:
        if not val_files:
            val_files = [min(contents, key=keys.__getitem__)]
        if len(val_files) == len(contents):
            val_files.remove(max(val_files, key=keys.__getitem__))
        sep = bytes([SEPARATOR])
        train_bytes = sep.join(d for f, d in contents.items() if f not in val_files)
        val_bytes = sep.join(contents[f] for f in val_files)
        n_val = len(val_files)
    train, val = (_readonly(np.frombuffer(b, dtype=np.uint8)) for b in (train_bytes, val_bytes))
    desc = f"{source} ({len(contents)} files: {len(contents) - n_val} train, {n_val} val)"
    return Corpus(train, val, BYTE_VOCAB, desc)


# ----------------------------------------------------------------------------- batches
def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _check_sizes(**values: Any) -> None:
    for name, value in values.items():
        minimum = 0 if name in ("step", "seed") else 1
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            kind = "non-negative" if minimum == 0 else "positive"
            raise ValueError(f"{name}: must be a {kind} integer, got {value!r}")


def _window_count(tokens: np.ndarray, context: int, split: str) -> int:
    """Number of valid window starts for windows of ``context + 1`` tokens."""
    count = len(tokens) - context
    if count < 1:
        raise ValueError(
            f"context: the {split} split has {len(tokens)} tokens, fewer than context + 1 = "
            f"{context + 1}"
        )
    return count


def _windows(tokens: np.ndarray, offsets: np.ndarray, context: int) -> np.ndarray:
    index = offsets[:, None] + np.arange(context + 1)  # [B, T+1]
    return np.asarray(tokens[index], dtype=np.int32)
