"""The admin CLI as a user runs it: seed, status, sites; bad input; crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ase.build import bulk
from ase.io import write

from tests.conftest import env_of

SCREENER = str(Path(sys.executable).with_name("screener"))


def run(env, *args, check=True):
    proc = subprocess.run([SCREENER, *args], env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"screener {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def status(env):
    return json.loads(run(env, "status", "--json").stdout)


def database_dump(settings, db_name=None):
    """Every document of the test's database, by collection (what "nothing written" compares)."""
    import pymongo

    client = pymongo.MongoClient(settings.mongo_uri)
    try:
        db = client[db_name or settings.db_name]
        return {
            name: sorted(repr(sorted(d.items())) for d in db[name].find())
            for name in sorted(db.list_collection_names())
        }
    finally:
        client.close()


def database_names(settings):
    import pymongo

    client = pymongo.MongoClient(settings.mongo_uri)
    try:
        return client.list_database_names()
    finally:
        client.close()


def test_seed_twice_adds_nothing_the_second_time(cli_env):
    first = json.loads(run(cli_env, "seed", "-e", "Cu,Pd", "-a", "CO,H", "--json").stdout)
    assert first["added"]["bulks"] == 6
    assert first["added"]["surfaces"] > 20
    assert first["added"]["sites"]["CO"] > 100 and first["added"]["sites"]["H"] > 100
    counts = status(cli_env)
    again = run(cli_env, "seed", "-e", "Cu,Pd", "-a", "CO,H")
    assert "nothing new" in again.stdout
    assert status(cli_env) == counts
    space = counts["spaces"]["Cu-Pd"]
    assert space["bulks"] == 6
    assert space["surfaces"] == first["added"]["surfaces"]
    assert space["sites"] == first["added"]["sites"]
    assert counts["total"]["sites"] == space["sites"]


def test_sites_json_lists_what_was_stored(cli_env):
    run(cli_env, "seed", "-e", "Cu,Pd", "-a", "CO,H", "--max-miller", "1")
    rows = json.loads(
        run(
            cli_env, "sites", "--space", "Cu-Pd", "--adsorbate", "CO", "--limit", "5", "--json"
        ).stdout
    )
    assert len(rows) == 5
    for row in rows:
        assert isinstance(row["id"], str) and len(row["id"]) == 24
        assert row["space"] == "Cu-Pd" and row["adsorbate"] == "CO"
        assert row["site_type"] in {"ontop", "bridge", "fcc", "hcp", "4-fold"}
        assert len(row["miller"]) == 3 and all(isinstance(i, int) for i in row["miller"])
        assert row["bulk_formula"] in {"Cu", "Pd", "CuPd", "Cu3Pd", "CuPd3"}
    everything = json.loads(
        run(cli_env, "sites", "--space", "Cu-Pd", "--limit", "0", "--json").stdout
    )
    assert len(everything) == sum(status(cli_env)["spaces"]["Cu-Pd"]["sites"].values())
    assert len({r["id"] for r in everything}) == len(everything)
    types = {
        r["site_type"] for r in everything if r["miller"] == [1, 1, 1] and r["bulk_formula"] == "Cu"
    }
    assert types == {"ontop", "bridge", "fcc", "hcp"}


def test_overlapping_spaces_share_bulks_and_sites(cli_env):
    run(cli_env, "seed", "-e", "Cu,Pd", "--max-miller", "1")
    before = status(cli_env)
    report = json.loads(
        run(cli_env, "seed", "-e", "Cu,Pd,Ni", "--max-miller", "1", "--json").stdout
    )
    assert report["already_enumerated_bulks"] == 6
    assert report["enumerated_bulks"] == 15 - 6
    after = status(cli_env)
    assert after["total"]["bulks"] == 15
    assert after["spaces"]["Cu-Pd"] == before["spaces"]["Cu-Pd"]
    cu_pd_sites = before["total"]["sites"]["CO"]
    assert after["total"]["sites"]["CO"] == cu_pd_sites + report["added"]["sites"]["CO"]
    assert after["spaces"]["Cu-Ni-Pd"]["sites"] == after["total"]["sites"]


def test_imported_bulk_beside_prototypes(cli_env, tmp_path):
    path = tmp_path / "Cu3Pd_conventional.cif"
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms[0].symbol = "Pd"
    write(path, atoms)
    report = json.loads(
        run(
            cli_env,
            "seed",
            "-e",
            "Cu,Pd",
            "--no-prototypes",
            "--bulks",
            str(path),
            "--name",
            "mine",
            "--max-miller",
            "1",
            "--json",
        ).stdout
    )
    assert report["space"] == "mine" and report["added"]["bulks"] == 1
    assert status(cli_env)["spaces"]["mine"]["bulks"] == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["-e", "Cu,Xx"], "unknown element 'Xx'"),
        (["-e", "Cu", "-a", "CO,NH3"], "unsupported adsorbate 'NH3'"),
        (["-e", "Cu", "--max-miller", "0"], "'--max-miller': Input should be greater than or"),
        (["-e", "Cu", "--max-miller", "5"], "'--max-miller': Input should be less than or"),
        (["-e", ""], "give --elements, --bulks FILE, or both"),
        (["-e", "Cu", "--bogus"], "No such option: --bogus"),
        (["-e", "Cu", "--bulks", "/nonexistent/x.cif"], "no such file"),
        (["-e", "Cu", "--bulks", "{junk}"], "cannot read bulk file"),
        (["-e", "Cu", "--bulks", "{pd}"], "contains Pd, outside the space's elements Cu"),
    ],
)
def test_bad_input_is_refused_without_writes(cli_env, settings, tmp_path, args, message):
    junk = tmp_path / "junk.cif"
    junk.write_text("data_nothing\n_cell_length_a oops\n")
    pd = tmp_path / "pd.extxyz"
    write(pd, bulk("Pd"))
    args = [a.format(junk=junk, pd=pd) for a in args]
    run(cli_env, "seed", "-e", "Pd", "--max-miller", "1")
    before = database_dump(settings), status(cli_env)
    proc = run(cli_env, "seed", *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert (database_dump(settings), status(cli_env)) == before


def test_bad_input_on_a_fresh_machine_creates_nothing(cli_env, settings, local_settings):
    proc = run(cli_env, "seed", "-e", "Unobtainium", check=False)
    assert proc.returncode == 2 and "unknown element 'Unobtainium'" in proc.stderr
    assert settings.db_name not in database_names(settings)
    # without a URI: no data directory, no server started
    proc = run(env_of(local_settings), "seed", "-e", "Cu", "-a", "NO3", check=False)
    assert proc.returncode == 2 and "unsupported adsorbate 'NO3'" in proc.stderr
    assert not local_settings.data_dir.exists()
    # the commands on stored data refuse a data directory with no database, and start nothing
    for args in (
        ["sites", "--space", "Cu"],
        ["pause", "--space", "Cu"],
        ["train", "--space", "Cu"],
        ["submit", "--site", "0123456789abcdef01234567"],
        ["results"],
    ):
        proc = run(env_of(local_settings), *args, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (args, proc.stderr)
        assert lines[0].startswith("error: no screener database in "), lines
        assert not local_settings.data_dir.exists(), args
    # a seeded data directory is not refused: its server is started again when it is down
    run(env_of(local_settings), "seed", "-e", "Cu", "--max-miller", "1")
    run(env_of(local_settings), "db", "stop")
    proc = run(env_of(local_settings), "sites", "--space", "Cu", "--json")
    assert json.loads(proc.stdout)


def test_query_errors(cli_env):
    run(cli_env, "seed", "-e", "Pd", "--max-miller", "1")
    proc = run(cli_env, "sites", "--space", "Nope", "--json", check=False)
    assert proc.returncode == 2 and "unknown space 'Nope' (known: Pd)" in proc.stderr
    proc = run(cli_env, "sites", "--type", "hollow", check=False)
    assert proc.returncode == 2 and "'hollow' is not one of 'ontop', 'bridge'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    fcc = json.loads(run(cli_env, "sites", "--type", "fcc", "--limit", "0", "--json").stdout)
    assert fcc and {row["site_type"] for row in fcc} == {"fcc"}


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_store(cli_env, tmp_path):
    run(cli_env, "seed", "-e", "Cu,Pd", "--max-miller", "1")
    serial = status(cli_env)["spaces"]["Cu-Pd"]
    env = dict(
        cli_env,
        SCREENER_DASK_WORKERS="2",
        SCREENER_DATA_DIR=str(tmp_path / "dask"),
        SCREENER_DB_NAME=cli_env["SCREENER_DB_NAME"] + "_dask",
    )
    report = json.loads(run(env, "seed", "-e", "Cu,Pd", "--max-miller", "1", "--json").stdout)
    assert report["enumerated_bulks"] == 6
    assert status(env)["spaces"]["Cu-Pd"] == serial


@pytest.mark.slow
def test_seed_on_a_running_dask_scheduler(cli_env, settings, tmp_path):
    from dask.distributed import LocalCluster

    run(cli_env, "seed", "-e", "Pd", "--max-miller", "1")
    serial = status(cli_env)["spaces"]["Pd"]
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        env = dict(
            cli_env,
            SCREENER_DASK_SCHEDULER=cluster.scheduler_address,
            SCREENER_DATA_DIR=str(tmp_path / "remote"),
            SCREENER_DB_NAME=cli_env["SCREENER_DB_NAME"] + "_remote",
        )
        run(env, "seed", "-e", "Pd", "--max-miller", "1")
        executed = sum(w.state.executed_count for w in cluster.workers.values())
    assert executed == 1  # the one bulk, Pd, was enumerated there
    assert status(env)["spaces"]["Pd"] == serial
    proc = run(
        dict(
            env,
            SCREENER_DASK_SCHEDULER="tcp://127.0.0.1:9",
            SCREENER_DATA_DIR=str(tmp_path / "unreachable"),
            SCREENER_DB_NAME=cli_env["SCREENER_DB_NAME"] + "_unreachable",
        ),
        "seed",
        "-e",
        "Cu",
        "--max-miller",
        "1",
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot reach the dask scheduler at tcp://127.0.0.1:9")
    # the store was opened (its indexes exist) but not one document was written
    written = database_dump(settings, cli_env["SCREENER_DB_NAME"] + "_unreachable")
    assert not any(written.values()), written


@pytest.mark.slow
def test_kill_9_mid_seed_leaves_a_consistent_store_and_a_rerun_completes_it(cli_env, settings):
    """kill -9 in the middle of a seed: what is stored is consistent, the counters are exact and
    a rerun completes the space to what a clean seed stores."""
    import pymongo

    args = ["seed", "-e", "Cu,Ni,Pd", "--max-miller", "1"]
    proc = subprocess.Popen(
        [SCREENER, *args], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    client = pymongo.MongoClient(settings.mongo_uri)
    bulks = client[settings.db_name]["bulks"]
    deadline = time.time() + 120
    while time.time() < deadline and bulks.count_documents({"enumerated.0": {"$exists": 1}}) < 4:
        time.sleep(0.1)  # a few bulks stored
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    client.close()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished

    partial = status(cli_env)
    assert 0 < partial["total"]["surfaces"]
    _assert_consistent(settings)
    report = json.loads(run(cli_env, *args, "--json").stdout)
    assert report["already_enumerated_bulks"] + report["enumerated_bulks"] == 15
    assert report["enumerated_bulks"] >= 1 and report["already_enumerated_bulks"] >= 4
    resumed = status(cli_env)
    _assert_consistent(settings)

    clean_env = dict(cli_env, SCREENER_DB_NAME=settings.db_name + "_clean")
    run(clean_env, *args)
    assert resumed["spaces"] == status(clean_env)["spaces"]


def _assert_consistent(settings):
    from screener.store import Bulk, Site, Surface, open_store

    with open_store(settings, readonly=True):
        bulks = {b.id: b for b in Bulk.objects}
        surfaces = {s.id: s for s in Surface.objects}
        assert all(s.bulk.id in bulks for s in surfaces.values())
        for site in Site._get_collection().find({}, {"surface": 1, "bulk": 1}):
            assert site["surface"] in surfaces and site["bulk"] in bulks
        for bulk_doc in bulks.values():
            if bulk_doc.enumerated:  # marked only after all of its surfaces and sites are stored
                assert bulk_doc.n_surfaces == Surface.objects(bulk=bulk_doc.id).count() > 0
                for adsorbate, n in bulk_doc.n_sites.items():
                    assert n == Site.objects(bulk=bulk_doc.id, adsorbate=adsorbate).count()


def test_stored_documents_follow_the_schema(cli_env, settings):
    """Sites are inserted as plain documents for speed: every one must load and validate."""
    from screener.store import Bulk, ElementSpace, Site, Surface, open_store

    run(cli_env, "seed", "-e", "Cu,Pd", "--max-miller", "1")
    with open_store(settings, readonly=True):
        for document in (ElementSpace, Bulk, Surface, Site):
            stored = list(document.objects)
            assert stored
            for item in stored:
                item.validate()
        site = Site.objects.first()
        assert site.surface.bulk.id == site.bulk.id and site.state == "open"
        assert site.miller == site.surface.miller and site.bulk_formula == site.bulk.formula
