"""A sweep directory at a URL is resumed from its spec copy there (`sweep run --out URL`
without a spec): the executor, tracker and mesh blocks are read through the storage layer,
not as local paths (which raised "is a URL, not a local path")."""

from __future__ import annotations

import uuid

import pytest
import yaml
from _fake import TINY

from scalelaw.errors import ConfigError
from scalelaw.sweep.spec import load_executor, load_mesh, load_tracker
from scalelaw.train.mesh_config import MeshConfig

fsspec = pytest.importorskip("fsspec")


def test_blocks_of_a_spec_copy_at_a_url_are_read() -> None:
    bucket = f"b{uuid.uuid4().hex[:8]}"
    fsspec.filesystem("memory").mkdir(bucket)
    url = f"memory://{bucket}/sweep/sweep.yaml"
    spec = {**TINY, "executor": {"kind": "ray", "max_retries": 2},
            "tracker": {"kind": "tensorboard"}, "mesh": {"members": 2}}
    with fsspec.open(url, "w") as fh:
        fh.write(yaml.safe_dump(spec))
    assert load_executor(url).max_retries == 2
    tracker = load_tracker(url)
    assert tracker is not None and tracker.kind == "tensorboard"
    assert load_mesh(url) == MeshConfig(members=2)
    with pytest.raises(ConfigError, match="no such spec file"):
        load_mesh(f"memory://{bucket}/elsewhere/sweep.yaml")
