"""A space's finished results as files: extxyz, CSV or JSON (``screener export``, the dashboard).

One :class:`ExportRecord` per finished adsorbate+slab calculation (kind ``adslab``, state
``done``) of one calculator profile on the space's bulks, or imported into the space: the relaxed
structure (adsorbate tagged 0, surface layers 1, 2, ...), the adsorption energy dE (eV), the
anomaly flags (flagged results are exported too), the prediction the loop made when it chose the
site (the :class:`~screener.store.documents.Job` whose key the calculation's key carries:
``adslab:<job key>``) and the provenance (profile, settings hash, code versions, timings, bulk,
Miller index, termination, site, surface, space, cycle, source).

The writers make files that the usual readers take back:

* extxyz (:func:`write_extxyz`): one frame per result, dE in ``info["E_ads"]`` and the surface
  key in ``info["slab"]``, so ``screener import``, ``screener model evaluate --data
  ... --group-by slab`` and ``screener backtest`` read it; ``initial_binding`` (the site's binding
  atoms, as a JSON list) makes an imported row known by the site it was calculated from, as the
  loop knows its own results.  Values ase cannot write (nested dicts, lists of text, None) are
  JSON text or left out;
* CSV (:func:`write_csv`): one row per result, no structure but its formula and size;
* JSON (:func:`write_json`): a list of objects with every field, the structure as the dict
  :func:`workflows.structures.atoms_from_dict` rebuilds.

Reads go through pymongo: one indexed equality query for the calculations of the profile (kept
by bulk or space here, as :func:`screener.queries.of_space` does), the jobs of the profile by
(state, profile), and the few sites, surfaces and bulks by ``_id``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from ase import Atoms

from screener.errors import InputError
from screener.files import write_text_atomic
from screener.learning import default_profile
from screener.queries import by_ids, get_space, of_space
from screener.store import Bulk, ElementSpace, Site, Surface
from screener.store.documents import Calculation, Job
from workflows.structures import atoms_from_dict

FORMATS = ("extxyz", "csv", "json")
ENERGY_KEY = "E_ads"  # info key of dE in extxyz: the default --energy-key of import and model
GROUP_KEY = "slab"  # info key of the surface key in extxyz: `--group-by slab`
ADSLAB_PREFIX = "adslab:"
FEW_JOBS = 10  # up to this many calculations, their jobs are read one by one by key

# what a calculation contributes to a record (an inclusion projection: no history or settings)
CALC_FIELDS = {
    "key": 1,
    "kind": 1,
    "state": 1,
    "profile": 1,
    "energy": 1,
    "structure": 1,
    "max_force": 1,
    "ionic_steps": 1,
    "wall_time": 1,
    "converged": 1,
    "settings_hash": 1,
    "code_versions": 1,
    "fw_id": 1,
    "bulk": 1,
    "surface": 1,
    "site": 1,
    "adsorbate": 1,
    "adsorption_energy": 1,
    "references": 1,
    "flags": 1,
    "final_site": 1,
    "initial_binding": 1,
    "group": 1,
    "space": 1,
    "source": 1,
    "created": 1,
}
JOB_FIELDS = {"key": 1, "predicted": 1, "space": 1, "cycle": 1}


@dataclass(frozen=True)
class ExportRecord:
    """One finished adsorbate+slab result, as every export format writes it.

    Fields that do not apply are None (an imported result has no site, job or prediction; a
    site chosen by hand or at random has no predicted mean).  The dict fields hold JSON types
    only; records are not hashable.

    Attributes
    ----------
    key : str
        The calculation key (``adslab:<site id>:<profile>``,
        ``import:<file sha>:<space>:<profile>:<i>``).
    space : str or None
        The space whose loop chose the site, or that the result was imported into; else the
        space exported (or, for :func:`calculation_record`, the first space holding the bulk).
    adsorbate : str
        CO, H, O or OH.
    profile : str
        Calculator profile (gpaw, gpaw-fast, emt).
    adsorption_energy : float
        dE (eV).
    flags : tuple of str
        Anomaly flags (desorbed, dissociated, migrated, reconstructed, high_force); empty when
        the result is usable for training.
    structure : dict
        The relaxed adsorbate+slab in :func:`workflows.structures.atoms_to_dict` form.
    formula : str
        Chemical formula of the relaxed structure (metals first).
    natoms : int
        Its number of atoms.
    adslab_energy : float or None
        Total energy of the relaxed adsorbate+slab (eV).
    max_force : float or None
        Largest force on a free atom at the end (eV/A).
    converged : bool or None
        Whether the relaxation converged.
    predicted_mean, predicted_std : float or None
        The surrogate's dE and std (eV) when the loop chose the site.
    model_version : int or None
        The model version that predicted it.
    strategy : str or None
        The acquisition strategy that chose the site (``random`` without a model).
    target : float or None
        The target dE (eV) the strategy aimed at.
    settings_hash : str or None
        Hash of the calculator settings.
    code_versions : dict
        Versions of the codes that ran it (ase, gpaw, ...).
    wall_time : float or None
        Seconds the relaxation took.
    ionic_steps : int or None
        Ionic steps of the relaxation.
    references : dict
        Gas reference energies used in dE and the keys of the slab and gas calculations.
    bulk_formula : str or None
        Formula of the bulk the surface was cut from.
    miller : tuple of int or None
        Miller index of the surface.
    termination : str or None
        ``"<shift>/<side>"`` of the surface.
    site_id : str or None
        Id of the site the relaxation started from.
    site_type : str or None
        Its type (ontop, bridge, fcc, hcp, 4-fold).
    initial_binding : tuple of int or None
        The surface atoms (indices among the atoms tagged >= 1) the adsorbate was placed on.
    final_site : dict
        Where the adsorbate ended (the anomaly checks' view: site type, binding atoms, ...).
    surface_key : str or None
        The surface's key (``<bulk key>|<hkl>|<termination>``); for an imported result its CV
        group.
    cycle : int or None
        The loop cycle that submitted it.
    source : str
        ``workflow`` for a result of this store's FireWorks workflows, else the imported file
        and its sha256.
    fw_id : int or None
        The firework that computed it.
    created : str or None
        When it was recorded (ISO 8601, UTC).
    """

    key: str
    space: str | None
    adsorbate: str
    profile: str
    adsorption_energy: float
    flags: tuple[str, ...]
    structure: dict[str, Any]
    formula: str
    natoms: int
    adslab_energy: float | None
    max_force: float | None
    converged: bool | None
    predicted_mean: float | None
    predicted_std: float | None
    model_version: int | None
    strategy: str | None
    target: float | None
    settings_hash: str | None
    code_versions: dict[str, Any]
    wall_time: float | None
    ionic_steps: int | None
    references: dict[str, Any]
    bulk_formula: str | None
    miller: tuple[int, ...] | None
    termination: str | None
    site_id: str | None
    site_type: str | None
    initial_binding: tuple[int, ...] | None
    final_site: dict[str, Any]
    surface_key: str | None
    cycle: int | None
    source: str
    fw_id: int | None
    created: str | None

    @property
    def flagged(self) -> bool:
        """Whether the result carries anomaly flags (left out of training)."""
        return bool(self.flags)

    def values(self) -> dict[str, Any]:
        """Every field and ``flagged``, by name, as they are (tuples stay tuples)."""
        out = {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}
        out["flagged"] = self.flagged
        return out

    def as_dict(self) -> dict[str, Any]:
        """Every field (and ``flagged``) as JSON types, the structure included."""
        return json.loads(json.dumps(self.values()))  # deep copy, JSON types (tuples as lists)


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export` wrote.

    Attributes
    ----------
    space : str
        The space exported.
    profile : str
        The calculator profile of the results.
    format : str
        extxyz, csv or json.
    records : int
        Results written.
    adsorbates : dict
        Results per adsorbate.
    flagged : int
        Results with anomaly flags among them.
    output : str or None
        The file written; None for a stream (stdout).
    """

    space: str
    profile: str
    format: str
    records: int
    adsorbates: dict[str, int]
    flagged: int
    output: str | None


# -- records ------------------------------------------------------------------------------------
def export_records(
    space: str, adsorbate: str | None = None, profile: str | None = None
) -> list[ExportRecord]:
    """Every finished adsorbate+slab result of a space for one profile, flagged ones included.

    Parameters
    ----------
    space : str
        Element space name.
    adsorbate : str, optional
        Only this adsorbate's results (default: all of the space's).
    profile : str, optional
        Calculator profile (default: the one with the most finished results,
        :func:`screener.learning.default_profile`).

    Returns
    -------
    list of ExportRecord
        Sorted by adsorbate, surface key, site type and calculation key.

    Raises
    ------
    InputError
        Unknown space or profile, an adsorbate the space has no sites of, or no finished
        results to export.
    """

    doc = get_space(space)
    if adsorbate is not None and adsorbate not in doc.adsorbates:
        have = ", ".join(doc.adsorbates) or "none"
        raise InputError(f"space '{space}' has no {adsorbate} sites (its adsorbates: {have})")
    profile = default_profile(space, profile)
    query = {"kind": "adslab", "profile": profile, "state": "done"}
    calcs = [
        calc
        for calc in of_space(
            Calculation._get_collection(), list(doc.bulks), space, query, CALC_FIELDS
        )
        if adsorbate is None or calc.get("adsorbate") == adsorbate
    ]
    if not calcs:
        raise InputError(_nothing_to_export(doc, adsorbate, profile))
    return _records(calcs, space)


def calculation_record(calc_key: str) -> ExportRecord | None:
    """The record of one finished adsorbate+slab calculation (the dashboard's per-site download).

    Parameters
    ----------
    calc_key : str
        The calculation key: ``adslab:<site id>:<profile>`` for a site's result.

    Returns
    -------
    ExportRecord or None
        None when no such calculation exists or it is not a finished adsorbate+slab result.
    """
    doc = Calculation._get_collection().find_one({"key": calc_key}, CALC_FIELDS)
    if doc is None or doc.get("kind") != "adslab" or doc.get("state") != "done":
        return None
    return _records([doc], None)[0]


def record_atoms(record: ExportRecord) -> Atoms:
    """The relaxed structure of a record, its fields in ``info`` as an extxyz frame carries them.

    ``info`` holds dE as ``E_ads``, the surface key as ``slab`` and every other field that is
    set as a number, a bool, a Miller index array or text (flags, initial_binding and the dict
    fields as JSON text); fields that are None are left out.
    """
    atoms = atoms_from_dict(record.structure)
    atoms.info.update(_frame_info(record))
    return atoms


def _nothing_to_export(doc: ElementSpace, adsorbate: str | None, profile: str) -> str:
    """The one line that says a space has nothing to export, and what it does have."""
    counts: Counter[str] = Counter()
    query = {"kind": "adslab", "state": "done"}
    projection = {"profile": 1, "adsorbate": 1}
    for calc in of_space(
        Calculation._get_collection(), list(doc.bulks), doc.name, query, projection
    ):
        if adsorbate is None or calc.get("adsorbate") == adsorbate:
            counts[calc["profile"]] += 1
    what = f"{adsorbate} " if adsorbate else ""
    have = ", ".join(f"{n} {p}" for p, n in counts.most_common())
    tail = f" (finished {what}results: {have})" if have else ""
    return f"space '{doc.name}' has no finished {what}results of profile '{profile}'{tail}"


def _records(calcs: list[dict[str, Any]], space: str | None) -> list[ExportRecord]:
    """Records of finished adslab calculation documents, with their jobs, sites and surfaces."""
    jobs = _jobs_of(calcs)
    sites = _by_id(Site, [c.get("site") for c in calcs], {"site_type": 1, "binding_atoms": 1})
    surfaces = _by_id(
        Surface,
        [c.get("surface") for c in calcs],
        {"key": 1, "miller": 1, "termination": 1, "bulk_formula": 1},
    )
    bulks = _by_id(Bulk, [c.get("bulk") for c in calcs], {"formula": 1})
    spaces: dict[Any, str | None] = {}
    records = []
    for calc in calcs:
        job = jobs.get(calc["key"][len(ADSLAB_PREFIX) :], {})
        site = sites.get(calc.get("site"), {})
        surface = surfaces.get(calc.get("surface"), {})
        bulk = bulks.get(calc.get("bulk"), {})
        owner = job.get("space") or calc.get("space") or space
        if owner is None and calc.get("bulk") is not None:
            if calc["bulk"] not in spaces:
                spaces[calc["bulk"]] = _space_of_bulk(calc["bulk"])
            owner = spaces[calc["bulk"]]
        records.append(_record(calc, job, site, surface, bulk, owner))
    records.sort(key=lambda r: (r.adsorbate, r.surface_key or "", r.site_type or "", r.key))
    return records


def _record(
    calc: dict[str, Any],
    job: dict[str, Any],
    site: dict[str, Any],
    surface: dict[str, Any],
    bulk: dict[str, Any],
    space: str | None,
) -> ExportRecord:
    structure = calc.get("structure") or {}
    numbers = structure.get("numbers") or []
    predicted = job.get("predicted") or {}
    binding = calc.get("initial_binding") or site.get("binding_atoms")
    miller = surface.get("miller")
    created = calc.get("created")
    return ExportRecord(
        key=calc["key"],
        space=space,
        adsorbate=calc["adsorbate"],
        profile=calc["profile"],
        adsorption_energy=float(calc["adsorption_energy"]),
        flags=tuple(str(f) for f in calc.get("flags") or ()),
        structure=structure,
        formula=Atoms(numbers=numbers).get_chemical_formula(mode="metal"),
        natoms=len(numbers),
        adslab_energy=_float(calc.get("energy")),
        max_force=_float(calc.get("max_force")),
        converged=None if calc.get("converged") is None else bool(calc["converged"]),
        predicted_mean=_float(predicted.get("mean")),
        predicted_std=_float(predicted.get("std")),
        model_version=_int(predicted.get("model_version")),
        strategy=predicted.get("strategy"),
        target=_float(predicted.get("target")),
        settings_hash=calc.get("settings_hash"),
        code_versions=dict(calc.get("code_versions") or {}),
        wall_time=_float(calc.get("wall_time")),
        ionic_steps=_int(calc.get("ionic_steps")),
        references=dict(calc.get("references") or {}),
        bulk_formula=bulk.get("formula") or surface.get("bulk_formula"),
        miller=None if miller is None else tuple(int(i) for i in miller),
        termination=surface.get("termination"),
        site_id=None if calc.get("site") is None else str(calc["site"]),
        site_type=site.get("site_type"),
        initial_binding=tuple(int(i) for i in binding) if binding else None,
        final_site=dict(calc.get("final_site") or {}),
        surface_key=surface.get("key") or calc.get("group"),
        cycle=_int(job.get("cycle")),
        source=calc.get("source") or "workflow",
        fw_id=_int(calc.get("fw_id")),
        created=created.isoformat() if created is not None else None,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _jobs_of(calcs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Job key -> job of the calculations that have one (``adslab:<job key>``).

    Many: the finished jobs of each profile in one indexed (state, profile) query, kept here;
    a few, or one a job left in another state: one equality query on the unique key each.
    """
    wanted = {
        c["key"][len(ADSLAB_PREFIX) :]: c["profile"]
        for c in calcs
        if c["key"].startswith(ADSLAB_PREFIX)
    }
    found: dict[str, dict[str, Any]] = {}
    collection = Job._get_collection()
    if len(wanted) > FEW_JOBS:
        for profile in sorted(set(wanted.values())):
            for job in collection.find({"state": "done", "profile": profile}, JOB_FIELDS):
                if job["key"] in wanted:
                    found[job["key"]] = job
    for key in wanted.keys() - found.keys():
        job = collection.find_one({"key": key}, JOB_FIELDS)
        if job is not None:
            found[key] = job
    return found


def _by_id(document: Any, ids: Iterable[Any], projection: dict[str, int]) -> dict[Any, dict]:
    """``_id`` -> projected document of a collection, for the ids that are set."""
    wanted = [i for i in dict.fromkeys(ids) if i is not None]
    return {d["_id"]: d for d in by_ids(document._get_collection(), wanted, projection)}


def _space_of_bulk(bulk_id: Any) -> str | None:
    """The first space (by name) that holds a bulk (spaces are few: read here)."""
    for doc in ElementSpace._get_collection().find({}, {"name": 1, "bulks": 1}).sort("name", 1):
        if bulk_id in (doc.get("bulks") or ()):
            return doc["name"]
    return None


# -- writers ------------------------------------------------------------------------------------
def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def _frame_info(record: ExportRecord) -> dict[str, Any]:
    """A record's fields as extxyz info values ase writes and reads back (no None, no "")."""
    info: dict[str, Any] = {ENERGY_KEY: record.adsorption_energy}
    if record.surface_key:
        info[GROUP_KEY] = record.surface_key
    for item in dataclasses.fields(record):
        name, value = item.name, getattr(record, item.name)
        if name in ("structure", "adsorption_energy", "surface_key"):
            continue
        if name == "flags":
            info["flags"] = _json_text(list(value))  # what `screener import` parses
        elif name == "miller":
            if value is not None:
                info["miller"] = np.array(value, dtype=int)
        elif isinstance(value, dict | tuple):
            if value:
                info[name] = _json_text(list(value) if isinstance(value, tuple) else value)
        elif value is not None and value != "":
            info[name] = value
    info["flagged"] = record.flagged
    return info


def write_extxyz(records: Iterable[ExportRecord], fh: IO[str]) -> None:
    """Write records as extended XYZ frames (one per record) to a text stream.

    Parameters
    ----------
    records : iterable of ExportRecord
        What to write, in order.
    fh : text stream
        Where to write.
    """
    from ase.io import write

    frames = [record_atoms(r) for r in records]
    if frames:
        write(fh, frames, format="extxyz")


def csv_columns() -> list[str]:
    """The CSV columns: every record field but the structure, in declared order, and flagged."""
    names = [f.name for f in dataclasses.fields(ExportRecord) if f.name != "structure"]
    return [*names, "flagged"]


def _csv_value(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name == "flags":
        return ",".join(value)
    if isinstance(value, dict | tuple | list):
        return _json_text(list(value) if isinstance(value, tuple) else value)
    return value


def write_csv(records: Iterable[ExportRecord], fh: IO[str]) -> None:
    """Write records as CSV rows (a header, then one row per record) to a text stream.

    Flags are comma-joined, the Miller index, initial binding and dict fields are JSON text and
    None is an empty cell; the structure is represented by ``formula`` and ``natoms`` only.

    Parameters
    ----------
    records : iterable of ExportRecord
        What to write, in order.
    fh : text stream
        Where to write.
    """
    columns = csv_columns()
    writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = record.values()
        writer.writerow({name: _csv_value(name, row[name]) for name in columns})


def write_json(records: Iterable[ExportRecord], fh: IO[str]) -> None:
    """Write records as one JSON list of objects with every field, the structure included.

    Parameters
    ----------
    records : iterable of ExportRecord
        What to write, in order.
    fh : text stream
        Where to write.
    """
    json.dump([r.as_dict() for r in records], fh, indent=1)
    fh.write("\n")


WRITERS: dict[str, Callable[[Iterable[ExportRecord], IO[str]], None]] = {
    "extxyz": write_extxyz,
    "csv": write_csv,
    "json": write_json,
}


def export(
    space: str,
    fmt: str,
    *,
    adsorbate: str | None = None,
    profile: str | None = None,
    output: str | Path | None = None,
    stream: IO[str] | None = None,
) -> ExportSummary:
    """Write a space's results in one format to a file (atomically) or a stream.

    Everything is read and rendered before anything is written: bad input writes nothing, and
    a file is written to a temporary file beside it and renamed, so a failure leaves no
    half-written file (and an existing file as it was).

    Parameters
    ----------
    space : str
        Element space name.
    fmt : str
        extxyz, csv or json.
    adsorbate : str, optional
        Only this adsorbate's results.
    profile : str, optional
        Calculator profile (default: the one with the most finished results).
    output : str or Path, optional
        File to write; without it, ``stream``.
    stream : text stream, optional
        Where to write without ``output`` (default: stdout).

    Returns
    -------
    ExportSummary
        What was written.

    Raises
    ------
    InputError
        As :func:`export_records`; an unknown format; an output path that is a directory or
        whose directory does not exist.
    """
    if fmt not in WRITERS:
        raise InputError(f"unknown export format '{fmt}' (one of: {', '.join(FORMATS)})")
    path = None if output is None else Path(output)
    if path is not None:
        if path.is_dir():
            raise InputError(f"{path} is a directory, not a file to write")
        if not path.parent.is_dir():
            raise InputError(f"{path.parent}: no such directory")
    records = export_records(space, adsorbate, profile)
    buffer = io.StringIO()
    WRITERS[fmt](records, buffer)
    if path is None:
        (stream or sys.stdout).write(buffer.getvalue())
    else:
        write_text_atomic(path, buffer.getvalue())
    return ExportSummary(
        space=space,
        profile=records[0].profile,
        format=fmt,
        records=len(records),
        adsorbates=dict(sorted(Counter(r.adsorbate for r in records).items())),
        flagged=sum(r.flagged for r in records),
        output=None if path is None else str(path),
    )
