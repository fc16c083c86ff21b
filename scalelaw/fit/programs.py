"""The fit's compiled programs, and an optional on-disk cache of them as exported StableHLO.

:func:`compiled` returns the ``jax.jit`` of a solver program that its caller passes in
(:mod:`scalelaw.fit.solver`'s multi-start fit, bootstrap refits and full-data whitening),
cached per process. This module imports no solver code: the programs come to it.

A cold ``scalelaw fit`` spends most of its time before the first iteration: importing
optimistix, *tracing* the vmapped solvers (about 1 s), lowering them (0.4 s) and XLA
compilation (3-4 s). JAX's persistent compilation cache removes only the last, since its
key is computed from the lowered program. Within :func:`export_cache` (the CLI uses
it) a program of a built-in law is also written once as a serialised
:mod:`jax.export` artifact, keyed by the program, its static settings, argument shapes and
dtypes, the backend, the versions of JAX and the solver libraries and a hash of the fit's
own source; a later process deserialises it (milliseconds) instead of importing
optimistix and tracing, and its compilation then hits JAX's persistent cache.
The key includes the objective (:attr:`~scalelaw.fit.objective.Objective.name`, which
determines a built-in objective's code) and the fixed and bounded parameters, so a program
exported for one objective is never loaded for another. User-defined laws and user
objective functions (whose code may change between runs without the key noticing) are
never exported: they are traced and jitted in each process. Each version of the fit's code
and libraries writes into its own folder (named by that fingerprint); starting a new one
removes the others, so upgrades do not pile up stale programs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scalelaw.fit.laws import Law

_COMPILED: dict[tuple[Any, ...], Any] = {}
_EXPORT_DIR: Path | None = None
_SOURCES = ("programs.py", "objective.py", "coords.py", "solver.py", "laws.py")
_LIBRARIES = ("jax", "jaxlib", "optimistix", "equinox", "lineax")
_TRACE_CONFIG = ("jax_debug_nans", "jax_debug_infs", "jax_default_matmul_precision",
                 "jax_numpy_dtype_promotion", "jax_numpy_rank_promotion")


@contextlib.contextmanager
def export_cache(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Within the block, keep exported fit programs in ``path`` (``None``: no disk cache).

    >>> with export_cache(None):
    ...     export_cache_dir() is None
    True
    """
    global _EXPORT_DIR
    before, _EXPORT_DIR = _EXPORT_DIR, None if path is None else Path(path)
    try:
        yield
    finally:
        _EXPORT_DIR = before


@contextlib.contextmanager
def machine_cache() -> Iterator[None]:
    """Within the block, use the machine's caches unless a caller chose already: JAX's
    persistent compilation cache (:func:`scalelaw.cache.enable_compilation_cache`) and,
    inside it, the exported fit programs. So a fit in a fresh Python process or Jupyter
    kernel loads its programs as the CLI does instead of tracing and compiling them again.
    ``JAX_COMPILATION_CACHE_DIR=""`` turns both off.
    """
    if _EXPORT_DIR is not None:
        yield
        return
    from scalelaw.cache import enable_compilation_cache

    folder = enable_compilation_cache(min_compile_secs=0.0)
    with export_cache(None if folder is None else folder / "scalelaw-exported"):
        yield


def export_cache_dir() -> Path | None:
    """The directory of exported programs, or ``None`` when the disk cache is off."""
    return _EXPORT_DIR


def compiled(kind: str, program: Callable[..., Any], law: Law, **static: Any) -> Any:
    """A cached ``jax.jit`` of ``program`` with ``law`` and ``static`` bound.

    ``kind`` names the program in the export cache (``"multistart"``, ``"refits"``,
    ``"whitening"``: :func:`~scalelaw.fit.solver.multistart`,
    :func:`~scalelaw.fit.solver.refits`, :func:`~scalelaw.fit.solver.full_data_whitening`):
    with the cache on and ``law`` built in, a program found on disk under its kind, law,
    settings and argument shapes is loaded instead of traced (see the module docstring).
    ``static`` values must be hashable; one with ``exportable`` false (a user objective
    function) keeps the program out of the disk cache.
    """
    key = (kind, program, id(law), law.name, tuple(sorted(static.items())), _EXPORT_DIR)
    if key not in _COMPILED:
        exportable = all(getattr(v, "exportable", True) for v in static.values())
        if _EXPORT_DIR is not None and exportable and _exportable(law):
            fn: Any = _ExportedProgram(kind, program, law, static, _EXPORT_DIR)
        else:
            import jax

            fn = jax.jit(functools.partial(program, law=law, **static))
        _COMPILED[key] = (law, fn)  # holding law keeps id(law) from being reused
    return _COMPILED[key][1]


def _exportable(law: Law) -> bool:
    """Registered built-in laws only (the very objects of the registry, whose code is
    covered by the source hash of the key; not a ``dataclasses.replace`` of one), and only
    where JAX can serialise (it needs the ``flatbuffers`` package)."""
    from importlib.util import find_spec

    from scalelaw.fit.laws import get_law

    builtin = getattr(law.formula, "__module__", "") == "scalelaw.fit.laws"
    try:
        registered = get_law(law.name) is law
    except (KeyError, ValueError):
        registered = False
    return builtin and registered and find_spec("flatbuffers") is not None


@functools.lru_cache(maxsize=1)
def _fingerprint() -> str:
    """Versions of the libraries in a program and a hash of the fit's own source."""
    from importlib import metadata

    h = hashlib.sha256()
    for name in _LIBRARIES:
        try:
            h.update(f"{name}={metadata.version(name)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=?;".encode())
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    return h.hexdigest()


class _ExportedProgram:
    """One fit program, specialised per argument signature and kept on disk."""

    def __init__(self, kind: str, program: Callable[..., Any], law: Law, static: dict[str, Any],
                 folder: Path) -> None:
        self.kind, self.program, self.law = kind, program, law
        self.static, self.folder = static, folder
        self.calls: dict[str, Any] = {}

    def _key(self, args: tuple[Any, ...]) -> str:
        import jax
        import numpy as np

        leaves, tree = jax.tree.flatten(args)
        sig = [(np.shape(a), str(getattr(a, "dtype", type(a).__name__))) for a in leaves]
        law = self.law
        config = [str(getattr(jax.config, name, None)) for name in _TRACE_CONFIG]
        # jax sets its options on jax.config at run time; its Config class does not declare them
        x64 = bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]
        parts = (self.kind, law.name, law.params, law.inputs, sorted(law.bounds.items()),
                 law.formula.__qualname__, sorted(self.static.items()), str(tree), sig,
                 jax.default_backend(), x64, config,
                 os.environ.get("EQX_ON_ERROR", ""), _fingerprint())
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:40]

    def __call__(self, *args: Any) -> Any:
        key = self._key(args)
        if key not in self.calls:
            self.calls[key] = self._load_or_export(key, args)
        return self.calls[key](*args)

    def _load_or_export(self, key: str, args: tuple[Any, ...]) -> Any:
        import jax
        from jax import export

        folder = self.folder / _fingerprint()[:16]
        path = folder / f"{self.kind}-{key}.jaxexport"
        if not folder.is_dir():
            _prune(self.folder)
        fn = jax.jit(functools.partial(self.program, law=self.law, **self.static))
        exp = None
        if path.is_file():
            try:
                exp = export.deserialize(bytearray(path.read_bytes()))
            except Exception:  # a truncated or foreign file: export afresh
                exp = None
        try:
            if exp is None:
                exp = export.export(fn)(*args)
                _write_atomic(path, exp.serialize())
            # compiled once here (hitting JAX's persistent cache), so an artifact that
            # cannot run fails now, not mid-fit; this key has exactly these shapes
            return jax.jit(exp.call).lower(*args).compile()
        except Exception:  # the disk cache is only a cache: fall back to the plain program
            with contextlib.suppress(OSError):
                path.unlink()
            return fn


def _prune(root: Path) -> None:
    """Remove programs exported by other versions of the code or libraries (each version
    writes into its own fingerprint-named folder), so the cache does not grow with every
    upgrade; a program still in use elsewhere is simply exported again."""
    import shutil

    if root.is_dir():
        for old in root.iterdir():
            if old.is_dir() and len(old.name) == 16:
                shutil.rmtree(old, ignore_errors=True)


def _write_atomic(path: Path, data: bytes | bytearray) -> None:
    """Write ``data`` to ``path`` through :func:`scalelaw._io.atomic_write` (a unique
    temporary file, fsync'd, renamed into place); an unwritable cache is skipped silently
    (it is only a cache)."""
    from scalelaw._io import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, bytes(data))
    except OSError:
        pass
