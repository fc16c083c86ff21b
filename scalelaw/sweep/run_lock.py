"""The run lock of a sweep directory: one live ``run`` at a time.

``OUT/run.lock`` holds ``{pid, host, started}`` while a run holds the directory. It is
taken by an exclusive create (of two racing runs exactly one creates it). Locally a lock
whose process on this host is gone is stale and taken over; one from another host must be
removed by hand. On a URL (object stores have no rename and no liveness check) the lock is
a lease: the run rewrites its ``heartbeat`` every :data:`HEARTBEAT_SECONDS`, and a lock
whose heartbeat is older than :data:`LEASE_SECONDS` is stale.

Examples
--------
>>> import tempfile
>>> from scalelaw.storage import as_location
>>> root = as_location(tempfile.mkdtemp())
>>> with hold(root, "run.lock"):
...     lock_holder(root / "run.lock")["pid"] == os.getpid()
True
>>> lock_holder(root / "run.lock") is None
True
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from scalelaw.errors import ConfigError
from scalelaw.storage import Location, read_json

__all__ = ["HEARTBEAT_SECONDS", "LEASE_SECONDS", "hold", "lock_holder"]

LEASE_SECONDS = 120.0
"""A lock on a URL whose heartbeat is older than this is stale (its run is gone)."""
HEARTBEAT_SECONDS = 20.0
"""How often a run holding a lock on a URL rewrites its heartbeat."""


def lock_holder(lock: Location) -> dict[str, Any] | None:
    """The lock's ``{pid, host, started}`` if a live process (or another host) holds it.

    A lock of a process on this host that is gone is stale; so is one on a URL whose
    ``heartbeat`` is older than :data:`LEASE_SECONDS`.
    """
    info = read_json(lock)
    if not isinstance(info, dict):
        return None
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
        return None
    beat = info.get("heartbeat")
    if isinstance(beat, int | float) and time.time() - beat > LEASE_SECONDS:
        return None
    return info


@contextlib.contextmanager
def hold(root: Location, name: str) -> Iterator[None]:
    """Hold ``root / name`` for a run; refuses (``ConfigError``) if another live run holds
    it, takes a stale one over, and on a URL renews the lease while the run lasts."""
    lock = root / name
    info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(),
                            "started": now()}
    if not root.is_local:
        info["heartbeat"] = time.time()
    for attempt in range(2):
        # exclusive create: of two runs racing for the lock exactly one creates it
        if lock.create(json.dumps(info)):
            break
        if read_json(lock) is None:
            time.sleep(0.5)  # a racing run may be between creating and writing it
        holder = lock_holder(lock)
        if holder is not None:
            raise ConfigError(
                f"{root}: already being run by process {holder.get('pid')} on "
                f"{holder.get('host')} since {holder.get('started')} (if that run is "
                f"gone, delete {lock})")
        if attempt == 0:  # stale (its process is gone): take it over once
            lock.remove()
            continue
        raise ConfigError(f"{root}: could not take {name}; try again")
    stop = threading.Event()
    beat = None
    if "heartbeat" in info:
        beat = threading.Thread(target=_heartbeat, args=(lock, info, stop), daemon=True)
        beat.start()
    try:
        yield
    finally:
        stop.set()
        if beat is not None:
            beat.join()
        if _same_lock(read_json(lock), info):
            lock.remove()


def _heartbeat(lock: Location, info: dict[str, Any], stop: threading.Event) -> None:
    """Renew the lease until ``stop``; gives up quietly if the lock is no longer ours."""
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(Exception):  # a failed renewal is retried next beat
            if not _same_lock(read_json(lock), info):
                return
            info["heartbeat"] = time.time()
            lock.write_text(json.dumps(info))


def _same_lock(found: Any, info: dict[str, Any]) -> bool:
    keys = ("pid", "host", "started")
    return isinstance(found, dict) and all(found.get(k) == info[k] for k in keys)


def now() -> str:
    """The current UTC time, to the second, in ISO format."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
