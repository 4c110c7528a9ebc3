"""What a killed worker or database server leaves in FireWorks, and how workers put it back."""

from __future__ import annotations

import datetime as dt
import threading

from fireworks import FWorker
from fireworks.core.firework import Launch

from screener.jobs.ingest import ingest
from screener.jobs.submit import submit
from screener.jobs.workers import RESERVE_GRACE_S, release_stale_locks, rerun_lost, run_workers
from screener.store import open_store
from screener.store.documents import Calculation, Job
from tests.jobs.test_emt_chain import _seed, _site


def _workflow(store, adsorbate="H") -> list[int]:
    return sorted(submit(_site("Cu", (1, 1, 1), "fcc", adsorbate), "emt", store).fw_ids)


def test_a_stale_workflow_lock_is_released_and_a_live_one_kept(settings):
    with open_store(settings) as store:
        _seed(store, "Cu")
        first, second = _workflow(store, "H"), _workflow(store, "CO")
        workflows = store.launchpad().workflows
        workflows.update_many({}, {"$set": {"locked": True}})

        # the second workflow's holder is alive: it writes the workflow while we watch
        def refresh_second():
            workflows.update_one(
                {"nodes": second[0]}, {"$set": {"updated_on": dt.datetime.now().isoformat()}}
            )

        timer = threading.Timer(0.2, refresh_second)
        timer.start()
        assert release_stale_locks(store.launchpad(), wait_s=0.6) == 1
        timer.join()
        assert "locked" not in workflows.find_one({"nodes": first[0]})
        assert workflows.find_one({"nodes": second[0]})["locked"] is True


def test_an_orphaned_reservation_and_a_lost_fizzle_are_rerun_not_recorded(settings):
    with open_store(settings) as store:
        _seed(store, "Cu")
        fw_ids = _workflow(store)
        launchpad = store.launchpad()
        ready = [fw["fw_id"] for fw in launchpad.fireworks.find({"state": "READY"}, {"fw_id": 1})]
        reserved, fizzled = ready[0], ready[1]
        # a checkout killed between reserving and writing its launch, long enough ago
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=RESERVE_GRACE_S + 5)
        launchpad.fireworks.update_one(
            {"fw_id": reserved}, {"$set": {"state": "RESERVED", "updated_on": old}}
        )
        # lost-run detection fizzled this one (a launch without an action), then died
        launch_id = launchpad.get_new_launch_id()
        lost = Launch("FIZZLED", "/nonexistent", FWorker("screener@elsewhere:1"))
        lost.launch_id, lost.fw_id = launch_id, fizzled
        launchpad.launches.insert_one(lost.to_db_dict())
        launchpad.fireworks.update_one(
            {"fw_id": fizzled}, {"$set": {"state": "FIZZLED", "launches": [launch_id]}}
        )
        ingest(store)
        assert Calculation.objects(state="failed").count() == 0  # lost, not failed
        assert Job.objects.get().state == "submitted"

        assert rerun_lost(launchpad, 4.0) == 2
        states = {
            fw["fw_id"]: fw["state"]
            for fw in launchpad.fireworks.find({"fw_id": {"$in": [reserved, fizzled]}})
        }
        assert set(states.values()) <= {"READY", "WAITING"}
        run_workers(store)
        assert Job.objects.get().state == "done"
        assert Calculation.objects(state="failed").count() == 0
        assert {fw["state"] for fw in launchpad.fireworks.find({"fw_id": {"$in": fw_ids}})} == {
            "COMPLETED"
        }


def test_a_workflow_whose_record_a_kill_left_stale_is_repaired(settings):
    """A firework linked to a finished launch but WAITING, under a workflow whose fw_states
    still holds an older state of its parent: what a kill between FireWorks' writes leaves."""
    with open_store(settings) as store:
        _seed(store, "Cu")
        fw_ids = _workflow(store)
        run_workers(store)
        launchpad = store.launchpad()
        slab = launchpad.fireworks.find_one(
            {"fw_id": {"$in": fw_ids}, "spec.screener_key": {"$regex": "^slab:"}}
        )
        bulk = launchpad.fireworks.find_one(
            {"fw_id": {"$in": fw_ids}, "spec.screener_key": {"$regex": "^bulk:"}}
        )
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=RESERVE_GRACE_S + 5)
        launchpad.fireworks.update_one(
            {"fw_id": slab["fw_id"]}, {"$set": {"state": "WAITING", "updated_on": old}}
        )
        launchpad.workflows.update_one(
            {"nodes": slab["fw_id"]},
            {
                "$set": {
                    f"fw_states.{bulk['fw_id']}": "READY",
                    f"fw_states.{slab['fw_id']}": "WAITING",
                }
            },
        )
        assert rerun_lost(launchpad, 4.0) == 1
        assert launchpad.fireworks.find_one({"fw_id": slab["fw_id"]})["state"] == "COMPLETED"
        states = launchpad.workflows.find_one({"nodes": slab["fw_id"]})["fw_states"]
        assert set(states.values()) == {"COMPLETED"}


def test_a_child_left_waiting_by_a_completion_cut_short_is_released(settings):
    """The bulk COMPLETED, its slab never told: FireWorks writes each firework of a refresh
    separately, and a kill (of the worker or of the server) between the writes leaves the child
    WAITING with no launch.  Nothing else would ever move it; the lost-run pass makes it READY
    and the workflow then runs to the end."""
    with open_store(settings) as store:
        _seed(store, "Cu")
        fw_ids = _workflow(store)
        launchpad = store.launchpad()
        bulk = launchpad.fireworks.find_one(
            {"fw_id": {"$in": fw_ids}, "spec.screener_key": {"$regex": "^bulk:"}}
        )
        slab = launchpad.fireworks.find_one(
            {"fw_id": {"$in": fw_ids}, "spec.screener_key": {"$regex": "^slab:"}}
        )
        assert run_workers(store, max_rockets=1)["rockets"] == 1
        ran = launchpad.fireworks.find_one({"state": "COMPLETED"}, {"fw_id": 1})["fw_id"]
        if ran != bulk["fw_id"]:  # the gas reference ran first: run until the bulk has
            while launchpad.fireworks.find_one({"fw_id": bulk["fw_id"]})["state"] != "COMPLETED":
                assert run_workers(store, max_rockets=1)["rockets"] == 1
        assert launchpad.fireworks.find_one({"fw_id": slab["fw_id"]})["state"] == "READY"
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=RESERVE_GRACE_S + 5)
        launchpad.fireworks.update_one(
            {"fw_id": slab["fw_id"]}, {"$set": {"state": "WAITING", "updated_on": old}}
        )
        launchpad.workflows.update_one(
            {"nodes": slab["fw_id"]}, {"$set": {f"fw_states.{slab['fw_id']}": "WAITING"}}
        )
        recent = launchpad.fireworks.find_one({"fw_id": slab["fw_id"]})
        assert recent["state"] == "WAITING" and not recent.get("launches")
        assert rerun_lost(launchpad, 4.0) == 1
        assert launchpad.fireworks.find_one({"fw_id": slab["fw_id"]})["state"] == "READY"
        run_workers(store)
        assert Job.objects.get().state == "done"
        assert {fw["state"] for fw in launchpad.fireworks.find({"fw_id": {"$in": fw_ids}})} == {
            "COMPLETED"
        }


def test_a_rerun_cut_short_under_a_workflow_recorded_completed_is_released(settings, tmp_path):
    """Every step ran but nothing was ingested yet; then a rerun of the slab (a lost run of a
    duplicate, say) wrote the adslab and the slab back to WAITING and died before writing the
    bulk and the workflow document, which still says COMPLETED.  The slab's parent is COMPLETED,
    so the lost-run pass releases it, and the site's job ends once."""
    from fireworks.core.rocket_launcher import rapidfire

    with open_store(settings) as store:
        _seed(store, "Cu")
        fw_ids = _workflow(store)
        launchpad = store.launchpad()
        rapidfire(launchpad, FWorker(name="elsewhere"), m_dir=str(tmp_path), strm_lvl="ERROR")
        assert {fw["state"] for fw in launchpad.fireworks.find({"fw_id": {"$in": fw_ids}})} == {
            "COMPLETED"
        }
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=RESERVE_GRACE_S + 5)
        for kind in ("slab", "adslab"):
            fw = launchpad.fireworks.find_one(
                {"fw_id": {"$in": fw_ids}, "spec.screener_key": {"$regex": f"^{kind}:"}}
            )
            launchpad.fireworks.update_one(
                {"fw_id": fw["fw_id"]},
                {
                    "$set": {
                        "state": "WAITING",
                        "updated_on": old,
                        "launches": [],
                        "archived_launches": fw["launches"],
                    }
                },
            )
        assert launchpad.workflows.find_one({"nodes": fw_ids[0]})["state"] == "COMPLETED"
        assert rerun_lost(launchpad, 4.0) == 1
        run_workers(store)
        assert Job.objects.get().state == "done"
        keys = [c.key for c in Calculation.objects]
        assert len(keys) == len(set(keys)) == len(fw_ids)
        assert {fw["state"] for fw in launchpad.fireworks.find({"fw_id": {"$in": fw_ids}})} == {
            "COMPLETED"
        }
