"""The local Slurm itself: a batch job runs and is recorded, scancel ends a job."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster.slurmtools import SLURM_GROUP, Slurm

pytestmark = [pytest.mark.slurm, SLURM_GROUP]


def test_batch_job_runs_and_is_recorded_completed(slurm: Slurm, tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    job = slurm.sbatch(
        "--job-name=screener-test-ok",
        f"--output={tmp_path / 'job.out'}",
        "--time=1",
        f"--wrap=echo $SLURM_JOB_ID > {marker}",
    )
    record = slurm.wait(job, timeout=60)
    assert record.state == "COMPLETED", record
    assert record.exit_code == "0:0"
    assert record.name == "screener-test-ok"
    assert record.node_list == slurm.node
    assert marker.read_text().strip() == job


def test_scancel_ends_a_sleeping_job(slurm: Slurm, tmp_path: Path) -> None:
    job = slurm.sbatch(
        "--job-name=screener-test-cancel",
        f"--output={tmp_path / 'job.out'}",
        "--time=5",
        "--wrap=sleep 300",
    )
    deadline = time.monotonic() + 30
    while slurm.queued(job) not in ("RUNNING", None) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slurm.queued(job) == "RUNNING"
    subprocess.run(["scancel", job], check=True, timeout=30)
    record = slurm.wait(job, timeout=45)
    assert record.state.split()[0] == "CANCELLED", record
    assert slurm.queued(job) in (None, "CANCELLED", "COMPLETING")
