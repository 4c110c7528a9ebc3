"""Small helpers of the cluster tests: the Slurm they run on, sbatch, and ``sacct -c`` records.

``probe`` finds a node ready for jobs through ``sinfo``; :class:`Slurm` submits batch jobs and
waits for their record in the completion log (``JobCompType=jobcomp/filetxt``, so ``sacct -c``
works without slurmdbd, as ``scripts/local-slurm.sh`` configures it).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

#: states of a job that has ended, as ``sacct -c`` records them
FINISHED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "OUT_OF_MEMORY",
}
#: node states a job can start on
READY_NODE = {"idle", "mixed"}
#: node states worth waiting for (its jobs end)
BUSY_NODE = {"allocated", "completing"}
#: under pytest-xdist (``make test`` runs 2 workers, ``--dist loadgroup``) the Slurm tests share
#: one worker, one test at a time: they take the one node down, cancel jobs and drain the
#: queue, which would disturb another Slurm test's jobs
SLURM_GROUP = pytest.mark.xdist_group("slurm")
SKIP_REASON = "Slurm is not up: run scripts/local-slurm.sh start"


def daemon_command(batch: int, *extra: str) -> list[str]:
    """``screener run`` for one EMT cycle of space Cu with the slurm launcher, drained."""
    from tests.test_cli import SCREENER

    cycle = ["--space", "Cu", "--calculator", "emt", "--cycles", "1", "--batch", str(batch)]
    return [SCREENER, "run", *cycle, "--launcher", "slurm", "--drain", "--interval", "0", *extra]


def _run(*command: str, timeout: float = 30.0) -> str:
    """Run a Slurm command and return its stdout (raises on a nonzero exit)."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class JobRecord:
    """One finished job as ``sacct -c`` lists it."""

    job_id: str
    name: str
    state: str
    exit_code: str
    node_list: str


@dataclass(frozen=True)
class Slurm:
    """The Slurm a test runs on: a node ready for jobs and its partition."""

    node: str
    partition: str

    def sbatch(self, *args: str, cwd: Path | None = None) -> str:
        """Submit a batch job (``sbatch --parsable ARGS``) and return its job id."""
        out = subprocess.run(
            ["sbatch", "--parsable", f"--partition={self.partition}", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=30,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"sbatch {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout.strip().split(";")[0]

    def completion(self, job_id: str) -> JobRecord | None:
        """The job's record in the completion log (``sacct -c``); None while it has not ended."""
        out = _run(
            "sacct", "-c", "-S", "now-7days", "-j", job_id, "-P", "-n",
            "-o", "JobID,JobName,State,ExitCode,NodeList",
        )  # fmt: skip
        for line in out.splitlines():
            fields = line.split("|")
            if len(fields) == 5 and fields[0] == job_id:
                return JobRecord(*fields)
        return None

    def wait(self, job_id: str, timeout: float = 60.0) -> JobRecord:
        """Wait until the job has ended and return its ``sacct -c`` record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.completion(job_id)
            if record is not None and record.state.split()[0] in FINISHED:
                return record
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} did not end within {timeout:.0f} s")

    def queued(self, job_id: str) -> str | None:
        """The job's state in ``squeue`` (PENDING, RUNNING, ...), None once it has left it."""
        out = _run("squeue", "-h", "-j", job_id, "-o", "%T")
        return out.strip() or None


def probe(wait_s: float = 30.0) -> tuple[Slurm | None, str]:
    """Find a node ready for jobs.

    Parameters
    ----------
    wait_s
        How long to wait for a node that is busy (allocated, completing), e.g. with the jobs of
        an earlier test; a Slurm that does not answer is given up at once.

    Returns
    -------
    tuple
        (a :class:`Slurm` on a node idle or mixed, or None; why not, as a skip reason).
    """
    if shutil.which("sinfo") is None:
        return None, f"{SKIP_REASON} (sinfo not found)"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            out = _run("sinfo", "-h", "-N", "-o", "%N|%T|%P", timeout=10)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
            said = str(error).splitlines()[0] if str(error) else type(error).__name__
            return None, f"{SKIP_REASON} ({said})"
        nodes = [(line.split("|") + ["", "", ""])[:3] for line in out.splitlines()]
        for node, state, partition in nodes:
            if state in READY_NODE:
                return Slurm(node=node, partition=partition.rstrip("*")), ""
        seen = ", ".join(f"{node} {state}" for node, state, _ in nodes) or "no nodes"
        if not any(state in BUSY_NODE for _, state, _ in nodes):
            return None, f"{SKIP_REASON} (sinfo: {seen})"
        if time.monotonic() >= deadline:
            return None, f"Slurm is up, but no node idle within {wait_s:.0f} s (sinfo: {seen})"
        time.sleep(1.0)
