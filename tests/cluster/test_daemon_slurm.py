"""The daemon in cluster mode on the local Slurm: it submits, Slurm runs the rockets."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest

from tests.cluster.slurmtools import SLURM_GROUP, daemon_command
from tests.conftest import env_of
from tests.test_cli import run

pytestmark = [pytest.mark.slurm, SLURM_GROUP, pytest.mark.slow]


def _sacct_states(since: str) -> dict[str, str]:
    """Slurm job id -> state of the jobs that ended since ``since`` (``sacct -c``)."""
    out = subprocess.run(
        ["sacct", "-c", "-S", since, "-P", "-n", "-o", "JobID,State"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return {line.split("|")[0]: line.split("|")[1].split()[0] for line in out.splitlines() if line}


def test_run_with_the_slurm_launcher_runs_rockets_as_slurm_jobs(slurm, settings):
    from screener.jobs.slurm import reservation_id
    from screener.store import open_store
    from screener.store.documents import Calculation, Job

    env = env_of(settings)
    run(env, "seed", "--elements", "Cu", "--adsorbates", "CO", "--max-miller", "1")
    since = subprocess.run(
        ["date", "+%Y-%m-%dT%H:%M:%S"], capture_output=True, text=True, check=True
    ).stdout.strip()
    proc = subprocess.run(
        daemon_command(2),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    cycle = next(e for e in events if e["event"] == "cycle")
    assert cycle["counts"]["submitted"] == 2
    assert "rockets" not in cycle["counts"]  # nothing ran in the daemon's process
    drained = next(e for e in events if e["event"] == "drained")
    assert drained["complete"] and drained["jobs"]["done"] == 2

    with open_store(settings, readonly=True) as store:
        assert Counter(j.state for j in Job.objects) == {"done": 2}
        keys = [c["key"] for c in Calculation._get_collection().find({}, {"key": 1})]
        assert len(keys) == len(set(keys))  # every result stored once
        kinds = Counter(k.split(":")[0] for k in keys)
        assert kinds["adslab"] == 2 and kinds["gas"] == 1 and kinds["bulk"] == 1
        fireworks = list(store.launchpad().fireworks.find({}, {"spec": 1, "name": 1}))
        launches = list(store.launchpad().launches.find({}, {"fw_id": 1, "state_history": 1}))
    # every step ran once (a shared step's duplicate reuses its launch), each as its own Slurm
    # job, and sacct -c lists that job as completed
    assert len(launches) == len({fw["name"] for fw in fireworks})
    job_ids = [reservation_id(launch) for launch in launches]
    assert None not in job_ids and len(set(job_ids)) == len(job_ids), job_ids
    states = _sacct_states(since)
    assert all(states.get(job) == "COMPLETED" for job in job_ids), (states, job_ids)
    # routing through atomate's powerups: allocations, priority, tags
    for fw in fireworks:
        spec = fw["spec"]
        want = settings.mpi_ranks if fw["name"].startswith("adslab:") else 1
        assert spec["_queueadapter"]["ntasks"] == want, fw["name"]
        assert spec["_priority"] >= 1
        assert "space:Cu" in spec["tags"] and any(t.startswith("cycle:") for t in spec["tags"])
