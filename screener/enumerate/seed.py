"""Seed an element space: validate everything, enumerate on dask, store each bulk as one step.

Idempotent: bulks, surfaces and sites are looked up by their keys before anything is inserted
(unique indexes stop a concurrent seed's duplicates), and a bulk already enumerated with the same
parameters for an adsorbate is not enumerated again.  A bulk is marked enumerated, with its
surface and site counters, only after its surfaces and sites are stored, so a seed killed midway
redoes that bulk on the next run and the counters stay exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bson import ObjectId
from mongoengine import Document, NotUniqueError

from screener.enumerate.bulks import BulkSpec, parse_elements, prototype_bulks, read_bulk_file
from screener.enumerate.fingerprint import FINGERPRINT_VERSION
from screener.enumerate.pipeline import Enumerator, enumeration_hash, slab_params
from screener.errors import InputError
from screener.names import SITE_TYPES
from screener.queries import by_ids, of_space
from screener.settings import ScreenerSettings
from screener.store import Bulk, ElementSpace, Site, Store, Surface
from screener.store.documents import Calculation, _now
from workflows.adsorbates import ADSORBATES


@dataclass
class SeedPlan:
    """A validated seed request: nothing is written while building it."""

    space: str
    elements: list[str]
    adsorbates: list[str]
    bulks: list[BulkSpec]
    max_miller: int


@dataclass
class SeedReport:
    space: str
    elements: list[str]
    adsorbates: list[str]
    added: dict[str, Any] = field(default_factory=dict)
    enumerated_bulks: int = 0
    reused_bulks: int = 0
    upgraded_fingerprints: int = 0
    upgraded_results: int = 0
    skipped_surfaces: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    @property
    def added_anything(self) -> bool:
        return bool(
            self.added["bulks"] or self.added["surfaces"] or any(self.added["sites"].values())
        )


def plan_seed(
    elements: str | list[str] | None,
    adsorbates: str | list[str],
    *,
    bulk_files: list[str | Path] | None = None,
    prototypes: bool = True,
    name: str | None = None,
    max_miller: int | None = None,
    settings: ScreenerSettings,
) -> SeedPlan:
    """Validate a seed request (raises :class:`InputError`); reads bulk files, writes nothing."""
    if max_miller is not None and not 1 <= max_miller <= 4:
        raise InputError(f"the largest Miller index must be between 1 and 4 (got {max_miller})")
    ads_items = adsorbates.split(",") if isinstance(adsorbates, str) else list(adsorbates)
    ads = [a.strip() for a in ads_items if a.strip()]
    if not ads:
        raise InputError("no adsorbates given")
    for a in ads:
        if a not in ADSORBATES:
            raise InputError(f"unsupported adsorbate '{a}' (supported: {', '.join(ADSORBATES)})")
    imported = [read_bulk_file(path) for path in bulk_files or []]
    if elements:
        symbols = parse_elements(elements)
        for spec in imported:
            extra = sorted(set(spec.elements) - set(symbols))
            if extra:
                raise InputError(
                    f"bulk file {spec.source.removeprefix('file:')} contains {','.join(extra)}, "
                    f"outside the space's elements {','.join(symbols)}"
                )
    elif imported:
        symbols = sorted({e for spec in imported for e in spec.elements})
        prototypes = False
    else:
        raise InputError("no elements and no bulk files given")
    specs = (prototype_bulks(symbols) if prototypes else []) + imported
    unique: dict[str, BulkSpec] = {}
    for spec in specs:
        unique.setdefault(spec.key, spec)
    if name is not None and not name.strip():
        raise InputError("a space name must not be empty")
    return SeedPlan(
        space=name.strip() if name else "-".join(symbols),
        elements=symbols,
        adsorbates=sorted(set(ads), key=list(ADSORBATES).index),
        bulks=list(unique.values()),
        max_miller=max_miller if max_miller is not None else settings.max_miller,
    )


def seed(
    plan: SeedPlan,
    store: Store,
    *,
    on_start: Callable[[int], None] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> SeedReport:
    """Store the plan's bulks, enumerate those not yet enumerated, store surfaces and sites."""
    settings = store.settings
    space = ElementSpace.objects(name=plan.space).first()
    if space is not None and sorted(space.elements) != plan.elements:
        raise InputError(
            f"space '{plan.space}' already exists with elements {','.join(space.elements)}; "
            "choose another --name"
        )
    params = slab_params(settings, plan.max_miller)
    digest = enumeration_hash(params)
    report = SeedReport(plan.space, plan.elements, plan.adsorbates)
    report.added = {"bulks": 0, "surfaces": 0, "sites": {a: 0 for a in plan.adsorbates}}

    done = {
        spec.key: set(getattr(Bulk.objects(key=spec.key).first(), "enumerated", []))
        for spec in plan.bulks
    }
    wanted = {
        key: missing
        for key in done
        if (missing := [a for a in plan.adsorbates if f"{digest}:{a}" not in done[key]])
    }
    report.reused_bulks = len(plan.bulks) - len(wanted)
    if on_start:
        on_start(len(wanted))
    with Enumerator(settings, len(wanted)) as enumerator:  # connects before anything is written
        if space is None:
            space, _ = _get_or_insert(
                ElementSpace,
                {"name": plan.space},
                partial(
                    ElementSpace,
                    name=plan.space,
                    elements=plan.elements,
                    adsorbates=plan.adsorbates,
                ),
            )
        bulk_ids: dict[str, ObjectId] = {}
        tasks = []
        for spec in plan.bulks:
            bulk, created = _get_or_insert(
                Bulk, {"key": spec.key}, partial(Bulk, **spec.document_fields())
            )
            report.added["bulks"] += int(created)
            bulk_ids[spec.key] = bulk.id
            if spec.key in wanted:
                tasks.append((spec.key, bulk.structure))
        _add_to_space(space, plan, list(bulk_ids.values()))
        for bulk_id in _uncounted(list(bulk_ids.values())):  # stored before counters existed
            Bulk.objects(id=bulk_id).update_one(**_counters(bulk_id))

        for key, result, error in enumerator.run(tasks, plan.adsorbates, params):
            if error is not None or result is None:
                report.failed.append({"bulk": key, "error": error or "no result"})
            else:
                bulk = Bulk.objects(id=bulk_ids[key]).first()
                _store_enumeration(bulk, result, wanted[key], digest, report)
                report.enumerated_bulks += 1
            if on_step:
                on_step(key)
    report.upgraded_results = _upgrade_result_fingerprints(plan.space, list(bulk_ids.values()))
    return report


def _add_to_space(space: ElementSpace, plan: SeedPlan, bulk_ids: list[ObjectId]) -> None:
    ElementSpace.objects(id=space.id).update_one(
        add_to_set__bulks=bulk_ids,
        add_to_set__adsorbates=plan.adsorbates,
        set__updated=_now(),
    )


def _store_enumeration(
    bulk: Bulk, result: dict[str, Any], adsorbates: list[str], digest: str, report: SeedReport
) -> None:
    existing = {(tuple(s.miller), s.termination): s for s in Surface.objects(bulk=bulk.id)}
    for row in result["surfaces"]:
        sites = [s for s in row.pop("sites") if s["adsorbate"] in adsorbates]
        key = (tuple(row["miller"]), row["termination"])
        surface, created = existing.get(key), False
        if surface is None:
            surface_key = f"{bulk.key}|{''.join(map(str, row['miller']))}|{row['termination']}"
            surface, created = _get_or_insert(
                Surface,
                {"key": surface_key},
                partial(
                    Surface,
                    key=surface_key,
                    bulk=bulk.id,
                    bulk_formula=bulk.formula,
                    adsorbates=[],
                    **row,
                ),
            )
            report.added["surfaces"] += int(created)
        new_ads = [a for a in adsorbates if a not in surface.adsorbates]
        fresh = [s for s in sites if s["adsorbate"] in new_ads]
        _insert_sites(surface, bulk, fresh, report, surface_is_new=created)
        if not created:
            known = [s for s in sites if s["adsorbate"] not in new_ads]
            report.upgraded_fingerprints += _upgrade_fingerprints(surface, known)
        if new_ads:
            Surface.objects(id=surface.id).update_one(add_to_set__adsorbates=new_ads)
    for skipped in result["skipped"]:
        report.skipped_surfaces.append({"bulk": bulk.key, **skipped})
    versions = {f"set__fingerprint_versions__{a}": FINGERPRINT_VERSION for a in adsorbates}
    Bulk.objects(id=bulk.id).update_one(
        add_to_set__enumerated=[f"{digest}:{a}" for a in adsorbates],
        **_counters(bulk.id),
        **versions,
    )


def _counters(bulk_id: ObjectId) -> dict[str, Any]:
    """The bulk's surface and per-adsorbate site counts, as mongoengine ``set__`` updates
    (indexed counts of one bulk's documents)."""
    sites = Site._get_collection()
    per_adsorbate = {
        a: sites.count_documents({"bulk": bulk_id, "adsorbate": a}) for a in ADSORBATES
    }
    return {
        "set__n_surfaces": Surface._get_collection().count_documents({"bulk": bulk_id}),
        "set__n_sites": {a: n for a, n in per_adsorbate.items() if n},
    }


def _uncounted(bulk_ids: list[ObjectId]) -> list[ObjectId]:
    found = by_ids(Bulk._get_collection(), bulk_ids, {"n_sites": 1})
    return [doc["_id"] for doc in found if "n_sites" not in doc]


def _upgrade_fingerprints(surface: Surface, rows: list[dict]) -> int:
    """Rewrite the fingerprints of stored sites that an older fingerprint version computed.

    The site keys (surface, adsorbate, position_key) do not change; only the fingerprint does.
    Returns how many sites were upgraded.
    """
    collection = Site._get_collection()
    # the version is compared here, not in the filter: SecantusDB scans the whole collection
    # for a filter on a field outside the index
    stale = {
        (doc["adsorbate"], doc["position_key"]): doc["_id"]
        for doc in collection.find(
            {"surface": surface.id}, {"adsorbate": 1, "position_key": 1, "fingerprint.version": 1}
        )
        if (doc.get("fingerprint") or {}).get("version", 0) < FINGERPRINT_VERSION
    }
    upgraded = 0
    for row in rows:
        site_id = stale.get((row["adsorbate"], row["position_key"]))
        if site_id is not None and row.get("fingerprint"):
            collection.update_one({"_id": site_id}, {"$set": {"fingerprint": row["fingerprint"]}})
            upgraded += 1
    return upgraded


def _upgrade_result_fingerprints(space: str, bulk_ids: list[ObjectId]) -> int:
    """Recompute the fingerprints of the space's finished adsorption results that an older
    fingerprint version computed, from their stored structures (and ``initial_binding``).
    Returns how many were rewritten."""
    from screener.enumerate.fingerprint import fingerprint_of_adslab
    from workflows.structures import atoms_from_dict

    collection = Calculation._get_collection()
    query = {
        "kind": "adslab",
        "state": "done",
        "fingerprint.version": {"$lt": FINGERPRINT_VERSION},
    }
    upgraded = 0
    for doc in of_space(collection, bulk_ids, space, query, {"structure": 1, "initial_binding": 1}):
        if not doc.get("structure"):
            continue
        binding = doc.get("initial_binding") or None  # an import known by its starting site
        fingerprint = fingerprint_of_adslab(atoms_from_dict(doc["structure"]), binding=binding)
        collection.update_one({"_id": doc["_id"]}, {"$set": {"fingerprint": fingerprint}})
        upgraded += 1
    return upgraded


def _get_or_insert(
    document_cls: type[Document], query: dict[str, Any], make: Callable[[], Document]
) -> tuple[Document, bool]:
    """The stored document matching ``query`` or a newly inserted one; True when inserted."""
    found = document_cls.objects(**query).first()
    if found is not None:
        return found, False
    document = make()
    try:
        document.save(force_insert=True)
    except NotUniqueError:  # a concurrent seed on a real MongoDB stored it first
        return document_cls.objects(**query).get(), False
    return document, True


def _insert_sites(
    surface: Surface, bulk: Bulk, rows: list[dict], report: SeedReport, *, surface_is_new: bool
) -> None:
    """Insert sites whose (surface, adsorbate, position_key) is not stored yet."""
    if not rows:
        return
    known: set[tuple[str, str]] = set()
    if not surface_is_new:  # an interrupted earlier seed may have stored some of them
        known = {
            (doc["adsorbate"], doc["position_key"])
            for doc in Site._get_collection().find(
                {"surface": surface.id}, {"adsorbate": 1, "position_key": 1}
            )
        }
    # Plain documents in the Site schema: building a mongoengine Document per site cost 2 ms
    # each (most of a seed's main-process time); the tests load every stored site through Site.
    created = _now()
    documents = []
    for row in rows:
        if (row["adsorbate"], row["position_key"]) in known:
            continue
        known.add((row["adsorbate"], row["position_key"]))
        if row["site_type"] not in SITE_TYPES:
            raise ValueError(f"unknown site type {row['site_type']!r}")
        documents.append(site_document(row, surface, bulk, created))
    for doc in _insert_many(Site._get_collection(), documents):
        report.added["sites"][doc["adsorbate"]] += 1


def site_document(row: dict, surface: Surface, bulk: Bulk, created: Any) -> dict[str, Any]:
    """A plain document in the Site schema for one enumerated site row of ``surface``."""
    return {
        **row,
        "surface": surface.id,
        "bulk": bulk.id,
        "miller": list(surface.miller),
        "bulk_formula": bulk.formula,
        "state": "open",
        "created": created,
    }


def _insert_many(collection: Any, documents: list[dict]) -> list[dict]:
    """Insert and return the documents that went in; duplicates of keys stored meanwhile by a
    concurrent seed (possible on a real MongoDB, where unique indexes stop them) are left out."""
    from pymongo.errors import BulkWriteError

    if not documents:
        return []
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        rejected = {e["index"] for e in errors}
        return [d for i, d in enumerate(documents) if i not in rejected]
    return documents
