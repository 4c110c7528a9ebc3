"""Faults the scheduler brings, on the local Slurm: a walltime kill and an scancel.

The adsorbate+slab steps are slowed (``SCREENER_TEST_SLOW_STEPS``: seconds after each EMT ionic
step) so that their job is still running when Slurm ends it.  Each test then checks the kill -9
test's invariants: every job done once, every calculation stored once, and the killed step
finished from the geometry its killed job reached (its retry history says so).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

import pytest

from tests.cluster.slurmtools import SLURM_GROUP, daemon_command
from tests.conftest import env_of
from tests.test_cli import run

pytestmark = [pytest.mark.slurm, SLURM_GROUP, pytest.mark.slow]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _states(since: str) -> Counter:
    out = subprocess.run(
        ["sacct", "-c", "-S", since, "-P", "-n", "-o", "JobID,JobName,State"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return Counter(line.split("|")[2].split()[0] for line in out.splitlines() if line)


def _daemon(env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        daemon_command(1, *extra),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_once_and_resumed(settings, reason: str) -> None:
    from screener.store import open_store
    from screener.store.documents import Calculation, Job

    with open_store(settings, readonly=True):
        assert Counter(j.state for j in Job.objects) == {"done": 1}
        calcs = list(Calculation._get_collection().find({}, {"key": 1, "kind": 1, "history": 1}))
        keys = [c["key"] for c in calcs]
        assert len(keys) == len(set(keys))
        [adslab] = [c for c in calcs if c["kind"] == "adslab"]
    first = (adslab.get("history") or [{}])[0]
    assert first.get("reason") == reason, adslab.get("history")
    assert first.get("action") == "continue from last geometry", adslab.get("history")


def _seed(settings) -> dict[str, str]:
    env = env_of(settings)
    run(env, "seed", "--elements", "Cu", "--adsorbates", "H", "--max-miller", "1")
    return env


def test_a_job_killed_at_its_walltime_resumes_from_its_last_geometry(slurm, settings):
    env = _seed(settings)
    env.update(SCREENER_QUEUE_WALLTIME="00:01:00", SCREENER_TEST_SLOW_STEPS="adslab:7")
    since = _now()
    proc = _daemon(env)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    drained = [json.loads(line) for line in out.splitlines() if '"drained"' in line]
    assert drained and drained[0]["complete"], out[-2000:]
    assert _states(since)["TIMEOUT"] >= 1  # Slurm did end a job at its time limit
    _check_once_and_resumed(settings, "walltime")


def test_an_scancelled_running_job_is_rerun_from_its_last_geometry(slurm, settings):
    env = _seed(settings)
    env.update(SCREENER_TEST_SLOW_STEPS="adslab:3")
    since = _now()
    proc = _daemon(env)
    cancelled = _own_running_adslab_job(settings, ran_for="0:15")
    if cancelled:
        subprocess.run(["scancel", cancelled], check=True, timeout=30)
    assert cancelled, "no adsorbate+slab job ran long enough to be cancelled"
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert _states(since)["CANCELLED"] >= 1
    _check_once_and_resumed(settings, "crash")


def test_node_down_and_back_with_the_daemon_killed_meanwhile(slurm, settings):
    """The node goes DOWN with jobs queued and running, the daemon is killed -9 meanwhile; the
    node returns, a new daemon drains: every job done once, every calculation stored once."""
    import os
    import signal

    from screener.store import open_store
    from screener.store.documents import Calculation, Job

    env = _seed(settings)
    env.update(SCREENER_TEST_SLOW_STEPS="adslab:2")
    since = _now()
    first = subprocess.Popen(
        daemon_command(3),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if _own_running_adslab_job(settings) is None:
        first.kill()
        raise AssertionError("no adsorbate+slab job started")
    scontrol = ["scontrol", "update", f"NodeName={slurm.node}"]
    subprocess.run([*scontrol, "State=DOWN", "Reason=screener-test"], check=True, timeout=30)
    try:
        time.sleep(3)
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    finally:  # back (with ReturnToService=2 Slurm may already have returned it)
        state = subprocess.run(
            ["sinfo", "-h", "-N", "-n", slurm.node, "-o", "%T"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        if "down" in state or "drain" in state:
            subprocess.run([*scontrol, "State=RESUME"], check=True, timeout=30)
    # the lease of a killed daemon is taken over once its process is gone
    second = subprocess.run(
        daemon_command(1),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    with open_store(settings, readonly=True):
        states = Counter(j.state for j in Job.objects)
        reasons = [(j.key, j.state, j.reason) for j in Job.objects if j.state != "done"]
        keys = [c["key"] for c in Calculation._get_collection().find({}, {"key": 1})]
        failed = list(
            Calculation._get_collection().find(
                {"state": "failed"}, {"key": 1, "reason": 1, "history": 1}
            )
        )
    jobs = subprocess.run(
        ["sacct", "-c", "-S", since, "-P", "-n", "-o", "JobID,JobName,State,ExitCode"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    # enough to tell from a CI log which job did not finish, and how Slurm ended it
    assert set(states) == {"done"} and states["done"] >= 3, (states, reasons, failed, jobs)
    assert len(keys) == len(set(keys))


def _own_adslab_jobs(launchpad) -> set[str]:
    """Slurm job ids of this test's adsorbate+slab rockets, from its own launchpad's
    reservations: a job that another test left on the shared Slurm is not one of them."""
    from screener.jobs.slurm import reservation_id

    fw_ids = [
        fw["fw_id"]
        for fw in launchpad.fireworks.find(
            {"spec.screener_key": {"$regex": "^adslab:"}}, {"fw_id": 1}
        )
    ]
    launches = launchpad.launches.find({"fw_id": {"$in": fw_ids}}, {"state_history": 1})
    return {job for launch in launches if (job := reservation_id(launch)) is not None}


def _own_running_adslab_job(settings, *, ran_for: str = "0:00", timeout_s: float = 300):
    """The Slurm id of one of this test's adsorbate+slab jobs once it has been RUNNING for
    ``ran_for`` (squeue's elapsed time), or None after ``timeout_s``."""
    from screener.store import open_store

    deadline = time.monotonic() + timeout_s
    with open_store(settings, readonly=True) as store:
        launchpad = store.launchpad()
        while time.monotonic() < deadline:
            own = _own_adslab_jobs(launchpad)
            listed = subprocess.run(
                ["squeue", "-h", "-o", "%i|%T|%M"], capture_output=True, text=True, timeout=30
            ).stdout
            for line in listed.splitlines():
                job, state, elapsed = line.split("|")
                if job in own and state == "RUNNING" and elapsed >= ran_for:
                    return job
            time.sleep(1)
    return None
