"""Where a sweep lives: a local folder or a URL (``s3://``, ``gs://``, any fsspec URL).

Every file a sweep writes or reads (the index, the lock, per-trial files, checkpoints,
``results.parquet``) is reached through a :class:`Location`, the one path type of the
sweep and training layers. A local path behaves exactly as before (``pathlib`` and the
atomic rename of :mod:`scalelaw._io`); a URL goes through `fsspec`_.

Why fsspec: it is the file layer pandas, pyarrow and Dask already use, it reads any URL
scheme with a registered backend (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``,
``adlfs``, ``memory://`` ...), and those backends take their credentials and endpoints
from their own usual configuration (the AWS variables and files, including
``AWS_ENDPOINT_URL`` for an S3-compatible server; Google's application default
credentials and ``STORAGE_EMULATOR_HOST``; fsspec's ``FSSPEC_<PROTOCOL>_<OPTION>``
variables). ``etils.epath``, which orbax uses, knows four schemes only and delegates them
to fsspec anyway; scalelaw adds no settings of its own.

Object stores have no rename, so on a URL:

- a single file is written with one PUT (S3 and GCS objects are replaced whole: a reader
  sees the old object or the new one, never half of either);
- appending (``metrics.jsonl``) rewrites the object with one PUT;
- a folder (a checkpoint step) is uploaded first and its :data:`COMMIT_MARKER` written
  last; readers ignore a step without it (:func:`committed_steps`), as orbax does on GCS;
- :meth:`Location.create` is a conditional create (``If-None-Match`` on S3,
  ``ifGenerationMatch=0`` on GCS), which the run lock uses with a heartbeat lease.

Examples
--------
>>> import tempfile
>>> root = Location(tempfile.mkdtemp())
>>> (root / "a.json").write_text('{"ok": true}')
>>> (root / "a.json").read_text(), [p.name for p in root.iterdir()], root.is_local
('{"ok": true}', ['a.json'], True)
>>> (root / "lock").create("me"), (root / "lock").create("you")
(True, False)
>>> Location("memory://bucket/sweeps/a").parent.url, Location("memory://bucket/x").name
('memory://bucket/sweeps', 'x')

.. _fsspec: https://filesystem-spec.readthedocs.io
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from scalelaw._io import atomic_write
from scalelaw.errors import ConfigError

__all__ = ["COMMIT_MARKER", "Location", "as_location", "committed_steps", "is_url", "read_json"]

COMMIT_MARKER = "commit_success.txt"
"""Written last into a folder uploaded to an object store (orbax's name for it on GCS)."""


def is_url(where: object) -> bool:
    """True for ``scheme://...`` other than ``file://`` (those are local paths).

    >>> is_url("s3://b/x"), is_url("runs/sweep"), is_url("file:///tmp/x")
    (True, False, False)
    """
    text = str(where)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isidentifier() and scheme != "file"


class Location:
    """A file or folder on the local disk or behind a URL, with the operations scalelaw
    needs: join, read, write, append, exclusive create, list, remove, upload a folder.

    Parameters
    ----------
    where : str, PathLike or Location
        A local path (``~`` is not expanded, as before) or a URL.
    field : str
        The argument named in errors (``root`` becomes ``--out`` on the command line).

    Raises
    ------
    ConfigError
        A URL whose backend is not installed or whose scheme is unknown (one line naming
        ``field`` and the package to install); it never falls back to a local folder.
    """

    url: str
    fs: Any  # an fsspec filesystem, or None for a local path
    _path: str
    field: str

    def __init__(self, where: str | os.PathLike[str] | Location, field: str = "root") -> None:
        if isinstance(where, Location):
            self.url, self.fs, self._path, self.field = where.url, where.fs, where._path, field
            return
        self.field = field
        text = os.fspath(where)
        if text.startswith("file://"):
            text = text[len("file://"):]
        if not is_url(text):
            self.url, self.fs, self._path = str(Path(text)), None, str(Path(text))
            return
        self.url = text.rstrip("/")
        self.fs, self._path = _filesystem(self.url, field)

    # ------------------------------------------------------------------ naming
    @property
    def is_local(self) -> bool:
        return self.fs is None

    @property
    def local(self) -> Path:
        """The local path (only for a local location)."""
        if self.fs is not None:
            raise ValueError(f"{self.field}: {self.url} is not a local path")
        return Path(self._path)

    def __truediv__(self, name: str) -> Location:
        if self.fs is None:
            return Location(Path(self._path) / name, self.field)
        out = Location(self)
        out.url, out._path = f"{self.url}/{name}", f"{self._path}/{name}"
        return out

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1] if self.fs else Path(self._path).name

    @property
    def parent(self) -> Location:
        if self.fs is None:
            return Location(Path(self._path).parent, self.field)
        out = Location(self)
        out.url, out._path = self.url.rsplit("/", 1)[0], self._path.rsplit("/", 1)[0]
        return out

    def __str__(self) -> str:
        return self.url

    def __fspath__(self) -> str:
        """The local path, so ``open()`` and ``Path()`` take a local location as before; a
        URL raises ``TypeError`` rather than turning into a local folder."""
        if self.fs is not None:
            raise TypeError(f"{self.url} is a URL, not a local path")
        return self._path

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Location):
            return self.url == other.url
        if isinstance(other, str | os.PathLike):
            return self.url == str(Location(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.url)

    # ------------------------------------------------------------------ queries
    def exists(self) -> bool:
        return Path(self._path).exists() if self.fs is None else bool(self.fs.exists(self._path))

    def is_dir(self) -> bool:
        return Path(self._path).is_dir() if self.fs is None else bool(self.fs.isdir(self._path))

    def is_file(self) -> bool:
        return Path(self._path).is_file() if self.fs is None else bool(self.fs.isfile(self._path))

    def iterdir(self) -> list[Location]:
        """The entries of a folder, sorted by name (``[]`` if it does not exist)."""
        if self.fs is None:
            folder = Path(self._path)
            return [self / p.name for p in sorted(folder.iterdir())] if folder.is_dir() else []
        try:
            names = self.fs.ls(self._path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        out = {str(n).rstrip("/").rsplit("/", 1)[-1] for n in names}
        return [self / n for n in sorted(out) if n]

    def check(self) -> None:
        """Fail at once, naming ``field`` (the flag), if a URL's store cannot be reached or its
        bucket does not exist (a local path: nothing to check)."""
        if self.fs is None:
            return
        top = self._path.strip("/").split("/", 1)[0]
        self.fs.invalidate_cache()  # listings cached in this process may be stale
        try:
            found = self.fs.exists(top) or self.fs.exists(self._path)
        except Exception as exc:  # noqa: BLE001 - any backend error, reported in one line
            raise ConfigError(f"{self.field}: cannot reach {self.url}: {_one_line(exc)}") from None
        if not found:
            raise ConfigError(f"{self.field}: {self.url}: bucket {top!r} does not exist or "
                              "is not visible with these credentials")

    # ------------------------------------------------------------------ reading
    def read_bytes(self) -> bytes:
        if self.fs is None:
            return Path(self._path).read_bytes()
        return bytes(self.fs.cat_file(self._path))

    def read_text(self) -> str:
        return self.read_bytes().decode()

    # ------------------------------------------------------------------ writing
    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        """Create a local folder (as ``Path.mkdir``, but with its parents and no error if it
        exists, by default); a URL needs none (object stores have prefixes, not folders)."""
        if self.fs is None:
            Path(self._path).mkdir(parents=parents, exist_ok=exist_ok)

    def write_bytes(self, data: bytes) -> None:
        """Replace the file whole: atomic rename locally, one PUT on an object store."""
        if self.fs is None:
            atomic_write(self._path, data)
        else:
            self.fs.pipe_file(self._path, data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def append_text(self, text: str) -> None:
        """Append and fsync locally; on a URL, rewrite the object with the text added."""
        if self.fs is None:
            with open(self._path, "a") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            return
        old = self.read_bytes() if self.fs.exists(self._path) else b""
        self.fs.pipe_file(self._path, old + text.encode())

    def create(self, text: str) -> bool:
        """Create the file with ``text`` only if it does not exist; False if it did.

        Locally ``O_EXCL``; on a URL the backend's exclusive create (fsspec mode ``"xb"``),
        a conditional PUT on S3 and GCS.
        """
        if self.fs is None:
            try:
                fd = os.open(self._path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            return True
        try:
            with self.fs.open(self._path, "xb") as fh:
                fh.write(text.encode())
        except FileExistsError:
            return False
        return True

    def remove(self) -> None:
        """Remove a file or a folder tree; nothing if it is missing."""
        with contextlib.suppress(FileNotFoundError):
            if self.fs is not None:
                self.fs.rm(self._path, recursive=True)
            elif Path(self._path).is_dir():
                shutil.rmtree(self._path)
            else:
                Path(self._path).unlink()

    # ------------------------------------------------------------------ folders
    def upload(self, folder: str | os.PathLike[str]) -> None:
        """Copy the local ``folder`` here, then write :data:`COMMIT_MARKER` last."""
        if self.fs is None:
            raise ValueError(f"{self.field}: upload() is for URLs; {self.url} is local")
        self.remove()
        self.fs.put(os.fspath(folder).rstrip("/") + "/", self._path + "/", recursive=True)
        self.fs.pipe_file(f"{self._path}/{COMMIT_MARKER}", b"")

    def download(self, folder: str | os.PathLike[str]) -> None:
        """Copy this (committed) folder into the local ``folder``."""
        if self.fs is None:
            raise ValueError(f"{self.field}: download() is for URLs; {self.url} is local")
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.fs.get(self._path + "/", os.fspath(folder).rstrip("/") + "/", recursive=True)


def as_location(where: str | os.PathLike[str] | Location, field: str = "root") -> Location:
    """``where`` as a :class:`Location` (returned as is if it already is one)."""
    return where if isinstance(where, Location) else Location(where, field)


def committed_steps(folder: str | os.PathLike[str] | Location) -> list[int]:
    """Steps of the complete checkpoints under ``folder`` (``<step>/`` folders), sorted.

    Locally orbax renames a finished step into place, so every ``<digits>`` folder is
    complete; on a URL only those holding :data:`COMMIT_MARKER`.
    """
    folder = as_location(folder)
    steps = []
    for entry in folder.iterdir():
        if not entry.name.isdigit():
            continue
        if folder.is_local and entry.is_dir():
            steps.append(int(entry.name))
        elif not folder.is_local and (entry / COMMIT_MARKER).exists():
            steps.append(int(entry.name))
    return sorted(steps)


def _filesystem(url: str, field: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path)`` of a URL, or a one-line ``ConfigError``."""
    try:
        import fsspec
    except ImportError:
        raise ConfigError(f"{field}: {url} needs fsspec and its backend "
                          "(pip install 'scalelaw[cloud]')") from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:  # fsspec's message names the backend package to install
        raise ConfigError(f"{field}: {url}: {_one_line(exc)}") from None
    except (ValueError, TypeError) as exc:  # an unknown protocol
        raise ConfigError(f"{field}: {url}: {_one_line(exc)}") from None
    return fs, str(path).rstrip("/")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def read_json(where: str | os.PathLike[str] | Location) -> Any:
    """Parsed JSON of the file at ``where``, or ``None`` if it is missing or unreadable."""
    import json

    try:
        return json.loads(as_location(where).read_text())
    except (OSError, ValueError):
        return None
