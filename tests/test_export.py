"""`screener export`: a space's results as extxyz, CSV and JSON, read back by ase, pandas, JSON
and `screener import`, against a store with real EMT results."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from screener.enumerate.seed import plan_seed, seed
from screener.errors import InputError
from screener.export import (
    ExportRecord,
    calculation_record,
    csv_columns,
    export,
    export_records,
    record_atoms,
    write_csv,
    write_extxyz,
    write_json,
)
from screener.jobs.submit import submit
from screener.jobs.workers import run_workers
from screener.settings import use_settings
from screener.store import ElementSpace, Site, Surface, open_store
from screener.store.documents import Calculation, Job
from screener.surrogate.data import read_labelled
from tests.conftest import env_of
from workflows.profiles import PROFILES
from workflows.structures import atoms_from_dict

EMT = PROFILES["emt"].identity

SCREENER = str(Path(sys.executable).with_name("screener"))
PREDICTED = {
    "mean": -0.41,
    "std": 0.12,
    "model_version": 3,
    "strategy": "target-window",
    "target": -0.67,
}
# Cu(111): three sites chosen as the loop chooses them (with a prediction), one by hand
CHOSEN = (("ontop", "CO"), ("fcc", "CO"), ("fcc", "H"))
BY_HAND = ("ontop", "H")


def _site(site_type: str, adsorbate: str) -> str:
    site = Site.objects(miller=[1, 1, 1], site_type=site_type, adsorbate=adsorbate).first()
    assert site is not None, (site_type, adsorbate)
    return str(site.id)


@pytest.fixture(scope="module")
def store_values(tmp_path_factory, mongo_uri) -> dict:
    """A Cu space (CO, H; Miller <= 1) with four finished EMT results on Cu(111).

    Three were submitted as the loop submits (prediction, space, cycle), one by hand.  The
    anomaly checks flag none of them on Cu(111), so one is given a flag here, as they would
    record it, to show that flagged results are exported with their flags.
    """
    values = {
        "data_dir": tmp_path_factory.mktemp("export") / "data",
        "dask_workers": 0,
        "mongo_uri": mongo_uri,
        "db_name": f"screener_export_{uuid.uuid4().hex[:10]}",
    }
    with use_settings(**values) as settings, open_store(settings) as store:
        seed(plan_seed("Cu", "CO,H", max_miller=1, settings=settings), store)
        for cycle, (site_type, adsorbate) in enumerate(CHOSEN, start=1):
            context = {"predicted": PREDICTED, "space": "Cu", "cycle": cycle}
            submit(_site(site_type, adsorbate), "emt", store, context=context)
        submit(_site(*BY_HAND), "emt", store)
        counts = run_workers(store)
        assert counts["adslab_done"] == 4
        Calculation._get_collection().update_one(
            {"key": f"adslab:{_site('fcc', 'H')}:{EMT}"}, {"$set": {"flags": ["migrated"]}}
        )
    yield values
    import pymongo

    client = pymongo.MongoClient(mongo_uri)
    try:
        client.drop_database(values["db_name"])
    finally:
        client.close()


@pytest.fixture
def cu(store_values):
    """The Cu store, open read-only (what export needs)."""
    with use_settings(**store_values) as settings, open_store(settings, readonly=True):
        yield settings


def run(env, *args):
    return subprocess.run([SCREENER, *args], env=env, capture_output=True, text=True, timeout=300)


def test_records_carry_results_predictions_and_provenance(cu):
    records = export_records("Cu")
    assert len(records) == 4 and all(isinstance(r, ExportRecord) for r in records)
    calcs = {c["key"]: c for c in Calculation._get_collection().find({"kind": "adslab"})}
    assert {r.key for r in records} == set(calcs)
    assert [r.adsorbate for r in records] == ["CO", "CO", "H", "H"]  # sorted
    surface = Surface.objects(bulk_formula="Cu", miller=[1, 1, 1]).get()
    for record in records:
        calc = calcs[record.key]
        job = Job.objects(key=record.key.removeprefix("adslab:")).get()
        assert record.adsorption_energy == calc["adsorption_energy"]
        assert record.structure == calc["structure"]
        assert record.profile == EMT and record.space == "Cu" and record.source == "workflow"
        assert record.settings_hash == calc["settings_hash"] and "ase" in record.code_versions
        assert record.wall_time > 0 and record.ionic_steps >= 1 and record.fw_id == calc["fw_id"]
        assert record.adslab_energy == calc["energy"] and record.converged is True
        assert record.references["slab"].startswith("slab:")
        assert record.bulk_formula == "Cu" and record.miller == (1, 1, 1)
        assert record.termination == surface.termination and record.surface_key == surface.key
        site = Site.objects(id=record.site_id).get()
        assert record.site_type == site.site_type
        assert record.initial_binding == tuple(site.binding_atoms)
        assert record.final_site == calc["final_site"] and record.created
        assert record.natoms == len(calc["structure"]["numbers"])
        assert record.formula.startswith("Cu") and record.formula.endswith(
            "CO" if record.adsorbate == "CO" else "H"
        )
        if job.predicted:
            assert record.predicted_mean == PREDICTED["mean"]
            assert record.predicted_std == PREDICTED["std"]
            assert record.model_version == 3 and record.strategy == "target-window"
            assert record.target == -0.67 and record.cycle == job.cycle
        else:  # submitted by hand: no prediction, no cycle
            assert (record.site_type, record.adsorbate) == BY_HAND
            assert record.predicted_mean is record.model_version is record.cycle is None
    flagged = [r for r in records if r.flagged]
    assert [(r.site_type, r.adsorbate, r.flags) for r in flagged] == [("fcc", "H", ("migrated",))]

    assert [r.key for r in export_records("Cu", adsorbate="H")] == [
        r.key for r in records if r.adsorbate == "H"
    ]
    assert export_records("Cu", profile="emt") == records
    one = records[0]
    assert calculation_record(one.key) == one
    assert calculation_record(f"adslab:000000000000000000000000:{EMT}") is None
    slab_key = Calculation._get_collection().find_one({"kind": "slab"})["key"]
    assert calculation_record(slab_key) is None
    json.dumps(one.as_dict())  # JSON types only


def test_extxyz_reads_back_with_ase_and_as_labelled_data(cu, tmp_path):
    records = export_records("Cu")
    path = tmp_path / "cu.extxyz"
    with path.open("w") as fh:
        write_extxyz(records, fh)
    frames = read(path, ":")
    assert len(frames) == len(records)
    for frame, record in zip(frames, records, strict=True):
        assert frame.info["E_ads"] == pytest.approx(record.adsorption_energy, abs=1e-9)
        assert frame.info["slab"] == record.surface_key
        assert frame.info["key"] == record.key and frame.info["profile"] == EMT
        assert json.loads(frame.info["flags"]) == list(record.flags)
        assert frame.info["flagged"] is record.flagged
        assert list(frame.info["miller"]) == [1, 1, 1]
        assert json.loads(frame.info["code_versions"]) == record.code_versions
        assert json.loads(frame.info["initial_binding"]) == list(record.initial_binding)
        assert len(frame) == record.natoms
        assert list(frame.get_tags()) == record.structure["tags"]
        assert np.allclose(frame.positions, record.structure["positions"])
        assert np.allclose(frame.cell.array, record.structure["cell"])
        if record.predicted_mean is not None:
            assert frame.info["predicted_mean"] == pytest.approx(record.predicted_mean)
        else:
            assert "predicted_mean" not in frame.info  # None is left out, never written empty
    # what `screener import` and `model evaluate --data` read: tag-0 atoms name the adsorbate
    data = read_labelled(path)
    assert data.adsorbates == [r.adsorbate for r in records]
    assert np.allclose(data.energies, [r.adsorption_energy for r in records])
    assert data.initial_binding == [list(r.initial_binding) for r in records]
    assert len(data.select("CO")) == 2
    grouped = read_labelled(path, group_by="slab")
    assert set(grouped.groups) == {records[0].surface_key}
    # one record, as the dashboard's download writes it
    buffer = io.StringIO()
    write_extxyz([records[0]], buffer)
    (single,) = read(io.StringIO(buffer.getvalue()), ":", format="extxyz")
    assert single.info["E_ads"] == pytest.approx(records[0].adsorption_energy)
    atoms = record_atoms(records[0])
    assert len(atoms) == records[0].natoms and atoms.info["slab"] == records[0].surface_key


def test_csv_reads_back_with_pandas(cu, tmp_path):
    pandas = pytest.importorskip("pandas")
    records = export_records("Cu")
    path = tmp_path / "cu.csv"
    with path.open("w", newline="") as fh:
        write_csv(records, fh)
    frame = pandas.read_csv(path)
    assert list(frame.columns) == csv_columns() and "structure" not in frame.columns
    assert len(frame) == len(records)
    assert list(frame["key"]) == [r.key for r in records]
    assert np.allclose(frame["adsorption_energy"], [r.adsorption_energy for r in records])
    assert list(frame["natoms"]) == [r.natoms for r in records]
    assert list(frame["flagged"]) == [r.flagged for r in records]
    assert list(frame["flags"].fillna("")) == [",".join(r.flags) for r in records]
    assert [json.loads(m) for m in frame["miller"]] == [[1, 1, 1]] * len(records)
    means = [None if np.isnan(m) else m for m in frame["predicted_mean"]]
    assert means == [r.predicted_mean for r in records]


def test_json_rebuilds_the_structures(cu, tmp_path):
    records = export_records("Cu")
    buffer = io.StringIO()
    write_json(records, buffer)
    rows = json.loads(buffer.getvalue())
    assert [row["key"] for row in rows] == [r.key for r in records]
    for row, record in zip(rows, records, strict=True):
        assert row == record.as_dict()
        assert row["flags"] == list(record.flags) and row["miller"] == [1, 1, 1]
        atoms = atoms_from_dict(row["structure"])
        assert len(atoms) == record.natoms
        assert list(atoms.get_tags()) == record.structure["tags"]
        assert atoms.constraints  # the fixed bottom layers come back as FixAtoms


def test_cli_writes_files_atomically_and_import_reads_them(cu, settings, tmp_path):
    """Export from the Cu store with the CLI, import the file into a space of another store."""
    env = env_of(cu)
    exported = export_records("Cu")
    path = tmp_path / "out" / "cu.extxyz"
    path.parent.mkdir()
    done = run(env, "export", "--space", "Cu", "--format", "extxyz", "-o", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and f"wrote 4 {EMT} results" in done.stderr
    assert [p.name for p in path.parent.iterdir()] == ["cu.extxyz"]  # no temporary file left
    assert len(read(path, ":")) == 4

    listed = run(env, "export", "--space", "Cu", "--format", "json", "--adsorbate", "CO")
    assert listed.returncode == 0, listed.stderr
    assert [row["adsorbate"] for row in json.loads(listed.stdout)] == ["CO", "CO"]

    with open_store(settings):  # the other store (replaces the Cu store's connection)
        ElementSpace(name="elsewhere", elements=["Cu"], adsorbates=["CO", "H"]).save()
    imported = run(
        env_of(settings), "import", str(path), "--space", "elsewhere", "-c", "emt", "--json"
    )
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["added"] == {"CO": 2, "H": 2}
    with open_store(settings, readonly=True):
        again = export_records("elsewhere")
        flags = {c["key"]: c["flags"] for c in Calculation._get_collection().find()}
    # the imported results export again, known by their file and carrying their flags
    assert sorted(r.adsorption_energy for r in again) == pytest.approx(
        sorted(r.adsorption_energy for r in exported)
    )
    assert all(r.source.startswith("file:cu.extxyz") and r.site_id is None for r in again)
    assert sorted(map(tuple, flags.values())) == [(), (), (), ("migrated",)]
    assert [r.flags for r in again if r.flagged] == [("migrated",)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "Nope"], "unknown space 'Nope' (known: Cu)"),
        (["--space", "Cu", "--adsorbate", "OH"], "space 'Cu' has no OH sites"),
        (
            ["--space", "Cu", "--calculator", "gpaw"],
            f"space 'Cu' has no finished results of profile '{PROFILES['gpaw'].identity}' "
            f"(finished results: 4 {EMT})",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cu, tmp_path, args, message):
    path = tmp_path / "out.csv"
    failed = run(env_of(cu), "export", "--format", "csv", "-o", str(path), *args)
    assert failed.returncode == 2
    assert failed.stdout == "" and len(failed.stderr.strip().splitlines()) == 1
    assert failed.stderr.startswith("error: ") and message in failed.stderr
    assert list(tmp_path.iterdir()) == []


def test_failures_leave_an_existing_file_as_it_was(cu, tmp_path):
    path = tmp_path / "cu.csv"
    path.write_text("before\n")
    with pytest.raises(InputError, match="no finished results of profile .gpaw."):
        export("Cu", "csv", profile="gpaw", output=path)
    with pytest.raises(InputError, match="is a directory"):
        export("Cu", "csv", output=tmp_path)
    with pytest.raises(InputError, match="no such directory"):
        export("Cu", "csv", output=tmp_path / "missing" / "cu.csv")
    with pytest.raises(InputError, match="unknown export format"):
        export("Cu", "xlsx", output=path)
    assert path.read_text() == "before\n" and [p.name for p in tmp_path.iterdir()] == ["cu.csv"]
    summary = export("Cu", "csv", output=path)
    assert summary.records == 4 and summary.adsorbates == {"CO": 2, "H": 2}
    assert summary.flagged == 1 and summary.profile == EMT and summary.output == str(path)
    assert path.read_text().startswith("key,space,adsorbate,profile,adsorption_energy,")
