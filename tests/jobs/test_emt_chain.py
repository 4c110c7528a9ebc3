"""The DFT workflow chain end to end with the EMT profile (fast oracle): submit, run, ingest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from screener.enumerate.seed import plan_seed, seed
from screener.errors import InputError
from screener.jobs.ingest import ingest, pending, record
from screener.jobs.submit import submit
from screener.jobs.workers import run_workers
from screener.queries import list_results
from screener.store import Site, open_store
from screener.store.documents import Calculation, Job
from workflows.profiles import PROFILES

EMT = PROFILES["emt"].identity  # what jobs and calculations are keyed by

SCREENER = str(Path(sys.executable).with_name("screener"))


def _seed(store, elements="Cu,Pd"):
    plan = plan_seed(elements, "CO,H", max_miller=1, settings=store.settings)
    seed(plan, store)


def _site(bulk_formula, miller, site_type, adsorbate) -> str:
    site = Site.objects(
        bulk_formula=bulk_formula, miller=list(miller), site_type=site_type, adsorbate=adsorbate
    ).first()
    assert site is not None, (bulk_formula, miller, site_type, adsorbate)
    return str(site.id)


@pytest.fixture
def seeded(settings):
    with open_store(settings) as store:
        _seed(store)
    return settings


def test_emt_chain_gives_adsorption_energies_with_provenance(seeded):
    with open_store(seeded) as store:
        co_top = _site("Cu", (1, 1, 1), "ontop", "CO")
        co_fcc = _site("Cu", (1, 1, 1), "fcc", "CO")
        h_fcc = _site("Cu", (1, 1, 1), "fcc", "H")
        for site_id in (co_top, co_fcc, h_fcc):
            assert submit(site_id, "emt", store).new
        counts = run_workers(store)
        assert counts["rockets"] >= 5
        rows = {(r["site_id"], r["adsorbate"]): r for r in list_results(profile="emt")}
    assert {r["state"] for r in rows.values()} == {"done"}
    e_top, e_fcc = rows[(co_top, "CO")]["energy"], rows[(co_fcc, "CO")]["energy"]
    e_h = rows[(h_fcc, "H")]["energy"]
    # EMT on Cu(111) (shared/domain.md, 2x2x3 slab): CO top -0.32, CO fcc -0.48, H fcc -0.49 eV
    assert e_top == pytest.approx(-0.32, abs=0.05)
    assert e_fcc == pytest.approx(-0.48, abs=0.05)
    assert e_h == pytest.approx(-0.49, abs=0.05)
    assert e_fcc < e_top

    with open_store(seeded, readonly=True) as store:
        calcs = list(Calculation.objects)
        kinds = sorted(c.kind for c in calcs)
        # shared steps ran once: one bulk, one slab, CO and H2 gas; three adsorbate+slab runs
        assert kinds == ["adslab"] * 3 + ["bulk", "gas", "gas", "slab"]
        for calc in calcs:
            assert calc.state == "done" and calc.profile == EMT and calc.settings_hash
            assert calc.wall_time > 0 and "ase" in calc.code_versions
            assert calc.ionic_steps >= (1 if calc.kind == "adslab" else 0), calc.kind
            assert calc.fw_id > 0
        adslab = Calculation.objects(kind="adslab", site=co_top).get()
        assert adslab.references["slab"].startswith("slab:") and "gas_CO" in adslab.references
        slab = Calculation.objects(kind="slab").get()
        assert adslab.adsorption_energy == pytest.approx(
            adslab.energy - slab.energy - Calculation.objects(key=f"gas:CO:{EMT}").get().energy
        )
        assert Site.objects(id=co_top).get().state == "done"
        launches = store.launchpad().launches.count_documents({})
        assert launches == 7  # duplicates linked, not rerun


def test_o_and_oh_chains_use_the_water_references(settings):
    """O and OH end to end: dE against H2O and H2 (O = H2O - H2, OH = H2O - 1/2 H2), the two
    gas molecules computed once for both."""
    with open_store(settings) as store:
        seed(plan_seed("Cu", "O,OH", max_miller=1, settings=settings), store)
        o_fcc = _site("Cu", (1, 1, 1), "fcc", "O")
        oh_top = _site("Cu", (1, 1, 1), "ontop", "OH")
        for site_id in (o_fcc, oh_top):
            assert submit(site_id, "emt", store).new
        run_workers(store)
        rows = {r["adsorbate"]: r for r in list_results(profile="emt")}
        assert {r["state"] for r in rows.values()} == {"done"} and set(rows) == {"O", "OH"}
        gas = {c.key: c.energy for c in Calculation.objects(kind="gas")}
        assert set(gas) == {f"gas:H2O:{EMT}", f"gas:H2:{EMT}"}
        h2o, h2 = gas[f"gas:H2O:{EMT}"], gas[f"gas:H2:{EMT}"]
        slab = Calculation.objects(kind="slab").get().energy
        for adsorbate, site_id, h2_share in (("O", o_fcc, 1.0), ("OH", oh_top, 0.5)):
            adslab = Calculation.objects(kind="adslab", site=site_id).get()
            expected = adslab.energy - slab - (h2o - h2_share * h2)
            assert adslab.adsorption_energy == pytest.approx(expected)
            assert rows[adsorbate]["energy"] == pytest.approx(expected)
            assert {"gas_H2O", "gas_H2"} <= set(adslab.references)


def test_resubmitting_queues_nothing(seeded):
    with open_store(seeded) as store:
        site_id = _site("Pd", (1, 0, 0), "4-fold", "H")
        first = submit(site_id, "emt", store)
        again = submit(site_id, "emt", store)
        assert first.new and not again.new and again.state == "submitted"
        assert again.fw_ids == first.fw_ids
        assert store.launchpad().fireworks.count_documents({}) == len(first.fw_ids) == 4
        run_workers(store)
        done = submit(site_id, "emt", store)
        assert not done.new and done.state == "done"
        assert Job.objects.count() == 1


@pytest.mark.parametrize(
    "inject,state,tries",
    [
        ({"adslab": ["scf"]}, "done", 1),
        ({"slab": ["steps", "walltime"]}, "done", 2),
        ({"adslab": ["crash"]}, "done", 1),
        ({"bulk": ["scf", "scf", "scf"]}, "failed", 3),
    ],
)
def test_retry_ladder_by_injected_failures(seeded, inject, state, tries):
    kind = next(iter(inject))
    with open_store(seeded) as store:
        site_id = _site("Cu", (1, 0, 0), "ontop", "CO")
        submit(site_id, "emt", store, inject=inject)
        run_workers(store)
        job = Job.objects.get()
        assert job.state == state
        calc = Calculation.objects(kind=kind).get()
        assert len(calc.history) == tries
        assert [h["reason"] for h in calc.history] == inject[kind][:tries]
        if state == "failed":
            assert calc.state == "failed" and calc.reason == "scf"
            assert "bulk:" in job.reason and "scf" in job.reason
            fizzled = store.launchpad().fireworks.count_documents({"state": "FIZZLED"})
            assert fizzled == 1
            assert list_results()[0]["state"] == "failed"


def test_bad_submissions_are_input_errors(seeded):
    with open_store(seeded) as store:
        site_id = _site("Cu", (1, 0, 0), "ontop", "CO")
        with pytest.raises(InputError, match="unknown calculator profile 'vasp'"):
            submit(site_id, "vasp", store)
        with pytest.raises(InputError, match="unknown site id"):
            submit("0123456789abcdef01234567", "emt", store)
        with pytest.raises(InputError, match="not a site id"):
            submit("42", "emt", store)
        assert Job.objects.count() == 0


def _cli(env, *args, check=True):
    proc = subprocess.run([SCREENER, *args], env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-ledger", "after-add-wf"])
def test_killed_between_submitting_and_recording(seeded, cli_env, point):
    with open_store(seeded, readonly=True):
        site_id = _site("Cu", (1, 0, 0), "bridge", "H")
    crashed = _cli(
        dict(cli_env, SCREENER_FAULT_POINT=point),
        "submit",
        "--site",
        site_id,
        "-c",
        "emt",
        check=False,
    )
    assert crashed.returncode == -9
    again = json.loads(_cli(cli_env, "submit", "--site", site_id, "-c", "emt", "--json").stdout)
    assert again["state"] == "submitted"
    _cli(cli_env, "workers", "--until-empty")
    with open_store(seeded, readonly=True) as store:
        fireworks = store.launchpad().fireworks
        assert fireworks.count_documents({"spec.screener_job": f"{site_id}:{EMT}"}) == 1
        assert fireworks.count_documents({}) == 4
        assert Job.objects.get().state == "done"


def test_a_submitter_killed_inside_add_wf_leaves_no_firework_waiting_forever(seeded):
    """FireWorks' ``add_wf`` writes the fireworks, then the workflow.  A kill between the two
    leaves fireworks of no workflow: recovering the job deletes them and adds the workflow
    again, and the job runs to the end."""
    from screener.jobs.submit import build_workflow, reconcile

    with open_store(seeded) as store:
        site = Site.objects.get(id=_site("Cu", (1, 1, 1), "bridge", "CO"))
        key = f"{site.id}:{EMT}"
        job = Job(key=key, site=site.id, bulk=site.bulk.id, adsorbate="CO", profile=EMT)
        job.state = "submitting"  # the ledger entry, written before the workflow
        job.save(force_insert=True)
        workflow = build_workflow(site, EMT, job_key=key, ranks=1, max_tries=2)
        for fw_id in workflow.root_fw_ids:  # add_wf's first half, as FireWorks writes it
            workflow.id_fw[fw_id].state = "READY"
        launchpad = store.launchpad()
        launchpad._upsert_fws(list(workflow.id_fw.values()))
        n = len(workflow.fws)
        assert launchpad.fireworks.count_documents({}) == n
        assert launchpad.workflows.count_documents({}) == 0

        assert reconcile(store) == 1
        nodes = launchpad.workflows.find_one({})["nodes"]
        assert launchpad.fireworks.count_documents({}) == len(nodes) == n  # the strays are gone
        assert sorted(Job.objects.get(key=key).fw_ids) == sorted(nodes)
        run_workers(store)
        assert Job.objects.get(key=key).state == "done"
        assert launchpad.fireworks.count_documents({"state": {"$ne": "COMPLETED"}}) == 0


@pytest.mark.slow
def test_result_survives_a_kill_before_recording(seeded, cli_env):
    with open_store(seeded, readonly=True):
        site_id = _site("Pd", (1, 1, 1), "hcp", "H")
    _cli(cli_env, "submit", "--site", site_id, "-c", "emt")
    crashed = _cli(dict(cli_env, SCREENER_FAULT_POINT="after-rocket"), "workers", check=False)
    assert crashed.returncode == -9
    with open_store(seeded, readonly=True) as store:
        completed = store.launchpad().fireworks.count_documents({"state": "COMPLETED"})
        assert completed == 1 and Calculation.objects.count() == 0  # ran, not recorded
    _cli(cli_env, "workers")
    rows = json.loads(_cli(cli_env, "results", "--space", "Cu-Pd", "--json").stdout)
    assert len(rows) == 1 and rows[0]["state"] == "done"
    assert set(rows[0]) >= {"site_id", "adsorbate", "energy", "profile", "flags", "state"}
    assert rows[0]["site_id"] == site_id and isinstance(rows[0]["energy"], float)
    with open_store(seeded, readonly=True):
        keys = [c.key for c in Calculation.objects]
        assert len(keys) == len(set(keys)) == 4


def test_ingest_is_idempotent(seeded):
    with open_store(seeded) as store:
        submit(_site("Cu", (1, 1, 1), "hcp", "CO"), "emt", store)
        run_workers(store)
        before = Calculation.objects.count()
        assert ingest(store).get("jobs_settled", 0) == 0
        assert Calculation.objects.count() == before


def test_edited_settings_compute_anew_and_a_worker_of_other_settings_refuses(seeded, monkeypatch):
    """Calculations are keyed by the profile's identity: after an edit of the emt profile every
    step of a site runs again under the new key, the old results stay under theirs, and a worker
    whose code has the old settings will not run a step submitted under the new ones."""
    from dataclasses import replace

    with open_store(seeded) as store:
        site_id = _site("Cu", (1, 1, 1), "fcc", "H")
        first = submit(site_id, "emt", store)
        run_workers(store)
        old = {c.key: c.energy for c in Calculation.objects}
        assert len(old) == 4 and all(k.endswith(f":{EMT}") for k in old)

        edited = replace(PROFILES["emt"], fmax=0.04)
        monkeypatch.setitem(PROFILES, "emt", edited)
        assert edited.identity != EMT
        second = submit(site_id, "emt", store)
        assert second.new and second.key == f"{site_id}:{edited.identity}" != first.key
        launches = store.launchpad().launches.count_documents({})
        run_workers(store)
        assert store.launchpad().launches.count_documents({}) == launches + 4  # nothing reused
        now = {c.key: c for c in Calculation.objects}
        assert {k: now[k].energy for k in old} == old
        fresh = [c for k, c in now.items() if k not in old]
        assert len(fresh) == 4 and {c.profile for c in fresh} == {edited.identity}
        assert {c.state for c in fresh} == {"done"}
        assert list_results(profile="emt")[0]["profile"] == edited.identity
        assert [r["profile"] for r in list_results(profile=EMT)] == [EMT]

        # the submitter runs the edited code, the worker the original one
        other = _site("Cu", (1, 1, 1), "ontop", "H")
        third = submit(other, "emt", store)
        monkeypatch.setitem(PROFILES, "emt", replace(edited, fmax=0.05))
        run_workers(store)
        job = Job.objects(key=third.key).get()
        assert job.state == "failed" and "is not this code's emt" in job.reason
        with pytest.raises(InputError, match="not this code's emt"):
            submit(other, third.key.split(":")[1], store)


def test_a_calculation_another_ingester_recorded_first_is_skipped(seeded):
    """Two ingesters (the daemon and `screener workers`) read the same finished fireworks; the
    one that inserts second leaves the first one's record alone and counts nothing."""
    with open_store(seeded) as store:
        submit(_site("Cu", (1, 1, 1), "fcc", "CO"), "emt", store)
        run_workers(store)
        recorded = {c.key: c.id for c in Calculation.objects}
        Calculation.objects.delete()
        launchpad = store.launchpad()
        late = list(pending(launchpad))  # read before the other ingester records
        assert {d["key"] for d in late} == set(recorded)
        first = ingest(store)
        assert sum(v for k, v in first.items() if k != "jobs_settled") == len(recorded)
        assert [record(d) for d in late] == [False] * len(late)
        assert Calculation.objects.count() == len(recorded)
        assert ingest(store) == {"jobs_settled": 0}
