"""Finding a multi-process launch (issue 9 §4); the two-process runs are in
tests/sweep/test_multihost.py."""

from __future__ import annotations

import pytest

from scalelaw.distributed import Launch, agree, is_writer, launch_environment, process_count


def test_one_process_by_default() -> None:
    assert launch_environment(environ={}) is None
    assert launch_environment(environ={"SLURM_JOB_ID": "1", "SLURM_NTASKS": "1"}) is None
    # the shell of `sbatch --ntasks=4` / `salloc -n 4` runs one process (no srun step)
    assert launch_environment(environ={"SLURM_JOB_ID": "1", "SLURM_NTASKS": "4"}) is None
    batch_step = {"SLURM_JOB_ID": "1", "SLURM_NTASKS": "4", "SLURM_STEP_NODELIST": "n1",
                  "SLURM_STEP_NUM_TASKS": "1"}
    assert launch_environment(environ=batch_step) is None
    assert process_count() == 1 and is_writer() and agree(3) == 3


def test_launchers_are_recognised() -> None:
    assert launch_environment(coordinator="h:1", num_processes=2, process_id=1,
                              environ={}) == Launch("flags", 2, 1, "h:1")
    slurm = {"SLURM_JOB_ID": "9", "SLURM_NTASKS": "16", "SLURM_PROCID": "3",
             "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_STEP_NUM_TASKS": "16"}
    assert launch_environment(environ=slurm) == Launch("slurm", 16, 3)
    gke = {"TPU_WORKER_HOSTNAMES": "a,b,c,d", "TPU_WORKER_ID": "2"}
    assert launch_environment(environ=gke) == Launch("tpu", 4, 2)


@pytest.mark.parametrize(("kw", "message"), [
    ({"coordinator": "h:1"}, r"^num_processes: required with"),
    ({"num_processes": 2, "process_id": 0}, r"^coordinator: required with"),
    ({"coordinator": "host", "num_processes": 2, "process_id": 0}, r"^coordinator: must be"),
    ({"coordinator": "h:1", "num_processes": 2, "process_id": 2}, r"^process_id: must be in"),
])
def test_incomplete_or_bad_flags_are_refused(kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        launch_environment(environ={}, **kw)
