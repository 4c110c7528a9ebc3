"""GPAW under Slurm: a gpaw-fast relaxation runs in a Slurm job on the ranks its allocation gives
(the step's ``_queueadapter`` asks for 2 tasks; ``mpiexec`` inside the job starts them)."""

from __future__ import annotations

import time

import pytest

from tests.cluster.slurmtools import SLURM_GROUP

pytestmark = [pytest.mark.slurm, SLURM_GROUP, pytest.mark.gpaw, pytest.mark.slow]


def test_a_gpaw_fast_bulk_relaxation_runs_in_a_slurm_job_on_its_ranks(slurm, settings):
    pytest.importorskip("gpaw")
    from ase.build import bulk
    from fireworks import Firework, Workflow

    from screener.jobs.slurm import SlurmLauncher
    from screener.store import open_store
    from workflows.structures import atoms_to_dict
    from workflows.tasks import RelaxBulkTask

    key = "bulk:slurm-test-Cu:gpaw-fast"
    task = RelaxBulkTask(
        key=key, structure=atoms_to_dict(bulk("Cu", "fcc", a=3.6)), profile="gpaw-fast", ranks=1
    )
    spec = {"screener_key": key, "_queueadapter": {"nodes": 1, "ntasks": 2}}
    with open_store(settings) as store:
        launchpad = store.launchpad()
        [fw_id] = launchpad.add_wf(Workflow([Firework(task, spec=spec, name=key)])).values()
        launcher = SlurmLauncher(store)
        assert launcher.top_up(1).submitted == 1
        deadline = time.monotonic() + 900
        state = None
        while time.monotonic() < deadline:
            state = launchpad.fireworks.find_one({"fw_id": fw_id}, {"state": 1})["state"]
            if state in ("COMPLETED", "FIZZLED"):
                break
            launcher.reap()
            time.sleep(3)
        launch = launchpad.launches.find_one({"fw_id": fw_id, "state": state})
    assert state == "COMPLETED", launch and launch.get("action")
    result = launch["action"]["stored_data"]["screener"]["result"]
    assert result["ranks"] == 2  # the allocation's tasks, not the task's own default of 1
    assert result["profile"] == "gpaw-fast" and result["converged"]
    assert -10.0 < result["energy"] < 10.0  # GPAW's energy of Cu against its atomic reference
    reservation = [h for h in launch["state_history"] if h.get("reservation_id")]
    assert reservation  # it ran as a Slurm job of the launcher
