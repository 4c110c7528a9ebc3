"""The daemon's Slurm launcher: READY fireworks go to Slurm as jobs, one rocket each.

FireWorks' own queue launcher does the work (:func:`fireworks.queue.queue_launcher.
launch_rocket_to_queue` in reservation mode): it reserves a READY firework, applies the
``_queueadapter`` its spec carries (set by atomate's ``set_queue_adapter`` when the workflow was
submitted: gas, bulk and slab steps small, adsorbate+slab the full allocation) to the qadapter
built from the settings (:func:`screener.jobs.queue.qadapter_spec`), writes the job script and
``sbatch``es it; the job runs ``rlaunch singleshot --fw_id <id>``.  FireWorks hands out the
highest ``_priority`` first, which ``add_priority`` set from the site's rank.

Jobs that end without finishing their rocket are put back:

* a reservation whose Slurm job is gone (``scancel`` before it started, a node failure) is
  cancelled, and its firework is READY again;
* a RUNNING launch whose job is gone (``scancel``, walltime ``TIMEOUT``, a node failure) is a
  lost run: FireWorks' ``detect_lostruns`` reruns it at once, without waiting for its heartbeat
  to go stale.

Slurm is asked once per pass (``squeue``); its answer is read before the launches, so a rocket
that completes meanwhile is seen as completed, never as lost.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import warnings
from dataclasses import dataclass
from typing import Any

from screener.errors import ScreenerError
from screener.store import Store

log = logging.getLogger(__name__)

IN_FLIGHT = ("RESERVED", "RUNNING")


class SlurmError(ScreenerError):
    """Slurm's commands are missing or do not answer."""


def slurm_jobs() -> dict[str, str]:
    """Slurm job id -> state of every job Slurm still knows (pending, running, completing)."""
    if shutil.which("squeue") is None:
        raise SlurmError("squeue not found: is Slurm installed and on PATH?")
    try:
        proc = subprocess.run(
            ["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        raise SlurmError("squeue did not answer within 60 s") from None
    if proc.returncode != 0:
        raise SlurmError(f"squeue failed: {proc.stderr.strip().splitlines()[-1:]}")
    jobs = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            jobs[parts[0]] = parts[1]
    return jobs


def slurm_final_state(job_id: str) -> str:
    """How a finished Slurm job ended (``sacct -c``: TIMEOUT, CANCELLED, NODE_FAIL, ...), or
    ``unknown`` when Slurm keeps no record of it."""
    try:
        proc = subprocess.run(
            ["sacct", "-c", "-j", job_id, "-S", "now-30days", "-P", "-n", "-o", "JobID,State"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for line in proc.stdout.splitlines():
        fields = line.split("|")
        if len(fields) == 2 and fields[0] == job_id and fields[1]:
            return fields[1].split()[0]
    return "unknown"


ORPHAN_RESERVATION_S = 120.0  # a reservation is given its job id within a second of sbatch


def _age_s(launch: dict[str, Any]) -> float:
    """Seconds since the launch's last state change (FireWorks records ISO times in UTC)."""
    import datetime as dt

    history = launch.get("state_history") or [{}]
    stamp = history[-1].get("updated_on") or history[-1].get("created_on")
    if not stamp:
        return 0.0
    when = dt.datetime.fromisoformat(str(stamp))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return (dt.datetime.now(dt.timezone.utc) - when).total_seconds()


def reservation_id(launch: dict[str, Any]) -> str | None:
    """The Slurm job id FireWorks recorded for a launch's reservation, or None."""
    for entry in launch.get("state_history") or ():
        if entry.get("reservation_id") is not None:
            return str(entry["reservation_id"])
    return None


@dataclass
class Pass:
    """What one pass of the launcher did."""

    submitted: int = 0
    in_flight: int = 0
    unreserved: int = 0
    lost_reruns: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class SlurmLauncher:
    """Keeps up to ``limit`` screener fireworks queued or running as Slurm jobs."""

    def __init__(self, store: Store) -> None:
        from fireworks import FWorker

        from screener.jobs.queue import qadapter_spec, queue_logdir, write_deploy_files

        self.store = store
        self.settings = store.settings
        self.launchpad = store.launchpad()
        self.fworker = FWorker(name=f"screener-slurm@{socket.gethostname()}")
        self.directory = queue_logdir(self.settings)
        write_deploy_files(store, self.directory)  # the LaunchPad and worker files jobs read
        self.spec = qadapter_spec(self.settings, "full", directory=self.directory)

    def qadapter(self) -> Any:
        """A fresh qadapter of an adsorbate+slab job (a step's ``_queueadapter`` resizes it): the
        queue launcher edits the one it is given."""
        from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter

        return CommonAdapter.from_dict(self.spec)

    def reap(self) -> Pass:
        """Put back the fireworks whose Slurm job ended without finishing them."""
        done = Pass()
        alive = slurm_jobs()  # before the launches: see the module docstring
        for launch in self.launchpad.launches.find(
            {"state": {"$in": list(IN_FLIGHT)}},
            {"launch_id": 1, "fw_id": 1, "launch_dir": 1, "state": 1, "state_history": 1},
        ):
            job = reservation_id(launch)
            if job is None:
                # reserved, but no job id recorded: a launcher died between the two writes
                if launch["state"] == "RESERVED" and _age_s(launch) > ORPHAN_RESERVATION_S:
                    self.launchpad.cancel_reservation(launch["launch_id"])
                    done.unreserved += 1
                continue
            if job in alive:
                done.in_flight += 1
                continue
            if launch["state"] == "RESERVED":
                log.info("Slurm job %s ended before its rocket started: unreserved", job)
                self.launchpad.cancel_reservation(launch["launch_id"])
                done.unreserved += 1
            else:
                state = slurm_final_state(job)
                log.info("Slurm job %s ended (%s) with its rocket running: rerun", job, state)
                # the rerun goes on from the geometry the killed job reached (the retry ladder
                # of workflows.tasks reads this): after a walltime kill as from a time-out
                self.launchpad.fireworks.update_one(
                    {"fw_id": launch["fw_id"]},
                    {
                        "$set": {
                            "spec._screener_resume": {
                                "dir": launch.get("launch_dir"),
                                "reason": "walltime" if state == "TIMEOUT" else "crash",
                                "slurm_state": state,
                                "slurm_job": job,
                            }
                        }
                    },
                )
                rerun = self.launchpad.detect_lostruns(
                    expiration_secs=0, rerun=True, launch_query={"launch_id": launch["launch_id"]}
                )
                done.lost_reruns += len(rerun[0])
        return done

    def top_up(self, limit: int) -> Pass:
        """Reap, then submit READY fireworks until ``limit`` are queued or running."""
        from fireworks.queue.queue_launcher import launch_rocket_to_queue

        result = self.reap()
        if not self.launchpad.fireworks.count_documents({"state": "READY"}, limit=1):
            return result
        while result.in_flight + result.submitted < limit:
            with warnings.catch_warnings():
                # FireWorks' launcher uses monty's cd, deprecated in favour of contextlib.chdir
                warnings.filterwarnings("ignore", "cd is deprecated", FutureWarning)
                ok = launch_rocket_to_queue(
                    self.launchpad,
                    self.fworker,
                    self.qadapter(),
                    launcher_dir=str(self.directory),
                    reserve=True,
                    strm_lvl="ERROR",
                    create_launcher_dir=True,
                )
            if not ok:
                break
            result.submitted += 1
        return result
