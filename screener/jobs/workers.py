"""Local FireWorks workers inside a screener process (the daemon, ``screener workers``).

Rockets run one after another in ``<data_dir>/launches/``; after each one its result is ingested,
so a crash loses at most the rocket in flight.  Each worker names itself
``screener@<host>:<pid>`` in FireWorks, so a rocket left RUNNING by a local worker whose process
is gone is known at once and rerun; any other RUNNING firework is rerun by FireWorks' own lost-run
detection once it has been silent for ``lostrun_hours``.  Several workers may run side by side:
FireWorks hands each READY firework to one of them.  On a cluster, ``qlaunch`` with the templates
in ``deploy/`` runs rockets instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from screener.faults import crash_point
from screener.jobs.ingest import ingest, lost_fizzle
from screener.store import Store
from screener.store.server import pid_alive

WORKER_PREFIX = "screener@"
RESERVE_GRACE_S = 30.0  # a checkout reserves and writes its launch within milliseconds
LOCK_CHECK_S = 5.0  # a workflow lock unchanged this long has lost its holder

log = logging.getLogger(__name__)


@contextmanager
def _inside(directory: Path):
    previous = Path.cwd()
    directory.mkdir(parents=True, exist_ok=True)
    os.chdir(directory)
    try:
        yield directory
    finally:
        os.chdir(previous)


def run_workers(
    store: Store,
    *,
    max_rockets: int | None = None,
    on_rocket: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Run READY fireworks until none is left (or ``max_rockets``, or ``should_stop()`` says so
    between rockets); returns counts."""
    import fireworks.core.rocket
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import launch_rocket

    # rockets log to stdout at INFO by default; keep stdout for results (-v shows them on stderr)
    fireworks.core.rocket.ROCKET_STREAM_LOGLEVEL = "CRITICAL"
    launchpad = store.launchpad()
    counts: Counter[str] = Counter(lost_reruns=rerun_lost(launchpad, store.settings.lostrun_hours))
    fworker = FWorker(name=f"{WORKER_PREFIX}{socket.gethostname()}:{os.getpid()}")
    root = store.settings.data_dir.resolve() / "launches"
    while max_rockets is None or counts["rockets"] < max_rockets:
        if should_stop is not None and should_stop():
            break
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        with _inside(root / f"launcher_{stamp}"):
            ran = launch_rocket(launchpad, fworker, strm_lvl="CRITICAL")
        if not ran:
            break
        counts["rockets"] += 1
        crash_point("after-rocket")
        counts.update(ingest(store))
        if on_rocket:
            on_rocket(counts["rockets"])
    counts.update(ingest(store))
    return dict(counts)


def _dead_local_workers(launchpad: Any) -> list[str]:
    """Names of this host's screener workers that hold RUNNING launches but are gone."""
    host = socket.gethostname()
    names = launchpad.launches.distinct(
        "fworker.name", {"state": "RUNNING", "fworker.name": {"$regex": f"^{WORKER_PREFIX}"}}
    )
    dead = []
    for name in names:
        where, _, pid = name.removeprefix(WORKER_PREFIX).rpartition(":")
        if where == host and pid.isdigit() and not pid_alive(int(pid)):
            dead.append(name)
    return dead


def _age_s(value: Any) -> float:
    """Seconds since a FireWorks timestamp (a datetime or an ISO string)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return 0.0
    if not isinstance(value, dt.datetime):
        return 0.0
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return (dt.datetime.now(dt.timezone.utc) - value).total_seconds()


def _repair_workflow(launchpad: Any, fw_id: int) -> None:
    """Bring a workflow's record of its fireworks' states back in line with the fireworks, then
    let FireWorks refresh the firework (and its children) from its launches."""
    wf = launchpad.workflows.find_one({"nodes": fw_id}, {"nodes": 1})
    if wf is None:
        return
    states = {
        str(doc["fw_id"]): doc["state"]
        for doc in launchpad.fireworks.find(
            {"fw_id": {"$in": wf["nodes"]}}, {"fw_id": 1, "state": 1}
        )
    }
    launchpad.workflows.update_one({"_id": wf["_id"]}, {"$set": {"fw_states": states}})
    launchpad._refresh_wf(fw_id)


def _stalled_children(launchpad: Any) -> list[int]:
    """WAITING fireworks never launched, untouched for ``RESERVE_GRACE_S``, whose parents are
    all COMPLETED, in unlocked workflows.

    The fireworks' own documents are the truth here, not their workflow's record: a refresh or
    a rerun cut short between its writes can leave the workflow document claiming any state,
    COMPLETED included, over fireworks that say otherwise.
    """
    waiting = {
        doc["fw_id"]
        for doc in launchpad.fireworks.find(
            {"state": "WAITING"}, {"fw_id": 1, "launches": 1, "updated_on": 1}
        )
        if not doc.get("launches") and _age_s(doc.get("updated_on")) >= RESERVE_GRACE_S
    }
    if not waiting:
        return []
    parents: dict[int, list[int]] = {}
    for wf in launchpad.workflows.find(
        {"nodes": {"$in": sorted(waiting)}, "state": {"$ne": "ARCHIVED"}},
        {"links": 1, "locked": 1},
    ):
        if wf.get("locked"):  # a live refresh holds it (stale locks were released before)
            continue
        for parent, children in (wf.get("links") or {}).items():
            for child in children:
                if int(child) in waiting:
                    parents.setdefault(int(child), []).append(int(parent))
    wanted = sorted({p for ps in parents.values() for p in ps})
    states = {
        doc["fw_id"]: doc["state"]
        for doc in launchpad.fireworks.find({"fw_id": {"$in": wanted}}, {"fw_id": 1, "state": 1})
    }
    return sorted(
        fw_id for fw_id, ps in parents.items() if all(states.get(p) == "COMPLETED" for p in ps)
    )


def release_stale_locks(launchpad: Any, wait_s: float = LOCK_CHECK_S) -> int:
    """Unlock workflows whose FireWorks lock outlived its holder; returns how many.

    A ``WFLock`` is held for one refresh of a workflow (milliseconds here), which ends by writing
    the workflow's ``updated_on``.  A workflow still locked after ``wait_s`` with the same
    ``updated_on`` lost its holder; without this, every later refresh of it waits five minutes
    and fails (FireWorks' ``WFLOCK_EXPIRATION_SECS``).
    """
    locked = {
        w["_id"]: w.get("updated_on")
        for w in launchpad.workflows.find({"locked": True}, {"updated_on": 1})
    }
    if not locked:
        return 0
    time.sleep(wait_s)
    released = 0
    for wf in launchpad.workflows.find(
        {"_id": {"$in": list(locked)}, "locked": True}, {"updated_on": 1}
    ):
        if wf.get("updated_on") == locked[wf["_id"]]:
            done = launchpad.workflows.update_one(
                {"_id": wf["_id"], "locked": True, "updated_on": wf.get("updated_on")},
                {"$unset": {"locked": True}},
            )
            released += done.modified_count
    if released:
        log.warning("released %d workflow locks left by dead workers", released)
    return released


def rerun_lost(launchpad: Any, lostrun_hours: float) -> int:
    """Put back what dead workers left behind; returns how many fireworks were rerun.

    FireWorks changes a firework, its launch and its workflow in separate writes, so a worker, or
    the database server, killed in between leaves states no live process will move on:

    * RUNNING launches of a dead local worker (at once) or silent for ``lostrun_hours``: rerun
      (FireWorks' ``detect_lostruns``, which also refreshes fireworks left RUNNING over a
      finished launch);
    * fireworks FIZZLED by that detection (their last launch has no recorded action) whose rerun
      was cut short: rerun;
    * fireworks not yet run on the record (WAITING, READY, RESERVED) that a checkout or a
      duplicate link cut short left behind, untouched for ``RESERVE_GRACE_S``: reserved with no
      launch -> READY; linked to a finished launch -> their workflow is repaired and refreshed
      from it;
    * fireworks left WAITING, untouched for ``RESERVE_GRACE_S``, whose parents have all
      COMPLETED: a completion or a rerun cut short between the writes of its fireworks
      (FireWorks writes each firework of a refresh separately, then the workflow document, which
      may still say COMPLETED); their workflow is repaired and refreshed;
    * workflow locks (FireWorks' ``WFLock``) whose holder died: released
      (:func:`release_stale_locks`), before anything here needs them.
    """
    release_stale_locks(launchpad)
    rerun: set[int] = set()
    dead = _dead_local_workers(launchpad)
    if dead:
        lost = launchpad.detect_lostruns(
            expiration_secs=0,
            rerun=True,
            refresh=True,
            launch_query={"fworker.name": {"$in": dead}},
        )
        rerun.update(lost[1])
    lost = launchpad.detect_lostruns(
        expiration_secs=int(lostrun_hours * 3600), rerun=True, refresh=True
    )
    rerun.update(lost[1])
    for fw in launchpad.fireworks.find({"state": "FIZZLED"}, {"fw_id": 1, "launches": 1}):
        if lost_fizzle(launchpad, fw):
            rerun.update(launchpad.rerun_fw(fw["fw_id"], rerun_duplicates=False))
    for fw_id in _stalled_children(launchpad):
        _repair_workflow(launchpad, fw_id)
        rerun.add(fw_id)
    for fw in launchpad.fireworks.find(
        {"state": {"$in": ["WAITING", "READY", "RESERVED"]}},
        {"fw_id": 1, "state": 1, "launches": 1, "updated_on": 1},
    ):
        if not fw.get("launches") and fw["state"] != "RESERVED":
            continue  # not run yet: as it should be
        live = launchpad.launches.count_documents(
            {
                "launch_id": {"$in": fw.get("launches", [])},
                "state": {"$in": ["RESERVED", "RUNNING"]},
            }
        )
        if live or _age_s(fw.get("updated_on")) < RESERVE_GRACE_S:
            continue
        if fw.get("launches"):  # linked to a duplicate's launch: its state follows that launch
            _repair_workflow(launchpad, fw["fw_id"])
        else:
            launchpad.fireworks.update_one(
                {"fw_id": fw["fw_id"], "state": "RESERVED"}, {"$set": {"state": "READY"}}
            )
        rerun.add(fw["fw_id"])
    return len(rerun)
