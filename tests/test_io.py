"""Atomic writes: all or nothing, and ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from scalelaw._io import _umask, atomic_path, atomic_write


def test_written_file_has_umask_permissions(tmp_path):
    path = tmp_path / "results.json"
    atomic_write(path, "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_overwriting_keeps_the_existing_permissions(tmp_path):
    path = tmp_path / "private.json"
    atomic_write(path, "{}")
    path.chmod(0o600)
    atomic_write(path, '{"new": 1}')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == '{"new": 1}'
