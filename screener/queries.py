"""Read side: what the store holds, for the CLI and (later) the dashboard.

Nothing here writes, and nothing here imports the loop: the daemon reads through this module.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, TypedDict

from screener.errors import InputError
from screener.profiles import identity
from screener.store import Bulk, ElementSpace, Site, Store, Surface
from screener.store.documents import Cycle, Job, Lease, ModelVersion

QUEUED_STATES = ("submitting", "submitted")


# -- the shapes of what this module returns (JSON-ready: the CLI prints them as they are) --------
class DaemonLease(TypedDict):
    """The daemon that holds a space's lease."""

    owner: str
    state: str | None
    heartbeat: str | None  # ISO 8601, UTC
    heartbeat_age_s: float | None
    running: bool  # False once it released the lease


class LastCycle(TypedDict):
    number: int
    profile: str
    started: str | None  # ISO 8601, UTC
    seconds: float | None
    submitted: int | None
    jobs: dict[str, int]  # the space's jobs of the profile by state, after the cycle


class ModelSummary(TypedDict):
    version: int
    n_train: int
    cv: dict[str, Any]  # the model's grouped-CV metrics (ModelVersion.cv)


class LoopStatus(TypedDict):
    daemon: DaemonLease | None
    paused: bool
    queued: int  # jobs submitting or submitted
    last_cycle: LastCycle | None
    models: dict[str, ModelSummary]  # by "<adsorbate>:<profile>"


class SpaceStatus(LoopStatus):
    elements: list[str]
    adsorbates: list[str]
    bulks: int
    surfaces: int
    sites: dict[str, int]  # by adsorbate


class StoreInfo(TypedDict):
    kind: str
    location: str


class StoreTotals(TypedDict):
    spaces: int
    bulks: int
    surfaces: int
    sites: dict[str, int]  # by adsorbate


class StatusReport(TypedDict):
    store: StoreInfo
    spaces: dict[str, SpaceStatus]  # by name
    total: StoreTotals


class SiteRow(TypedDict):
    """One stored adsorption site."""

    id: str
    space: str | None
    adsorbate: str
    site_type: str
    miller: list[int]
    bulk_formula: str
    surface_id: str
    termination: str | None  # "<shift>/<side>"
    position: list[float]  # the binding point, Cartesian, Angstrom
    adsorbate_position: list[float] | None
    composition: dict[str, int]  # the binding atoms by element
    multiplicity: int | None
    fingerprint: dict[str, Any] | None  # screener.enumerate.fingerprint's dict
    state: str


class ResultRow(TypedDict):
    """One submitted (site, profile): dE when done, the reason when failed."""

    site_id: str
    adsorbate: str
    profile: str
    state: str
    energy: float | None  # dE, eV
    flags: list[str]
    reason: str | None
    site_type: str
    miller: list[int]
    bulk_formula: str
    final_site: dict[str, Any] | None  # where the adsorbate ended up (workflows.anomalies)
    settings_hash: str | None
    ionic_steps: int | None
    wall_time: float | None  # s
    fw_ids: list[int]


def _bulk_docs(bulk_ids: list | None, fields: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Projected bulk documents of some bulks (all when None).

    Every bulk is read and the wanted ones kept here: bulks number in the thousands at most,
    and an `_id $in` of a space's bulk ids is quadratic on SecantusDB (1,000 ids: 1.8 s, all
    bulks: 0.03 s).
    """
    wanted = None if bulk_ids is None else set(bulk_ids)
    for doc in Bulk._get_collection().find({}, fields):
        if wanted is None or doc["_id"] in wanted:
            yield doc


def bulk_counters(bulk_ids: list | None = None) -> tuple[int, dict[str, int]]:
    """Surfaces and sites per adsorbate over some bulks (all when None), from their counters."""
    surfaces, sites = 0, Counter()
    for doc in _bulk_docs(bulk_ids, {"n_surfaces": 1, "n_sites": 1}):
        surfaces += int(doc.get("n_surfaces") or 0)
        sites.update({a: int(n) for a, n in (doc.get("n_sites") or {}).items()})
    return surfaces, dict(sorted(sites.items()))


def oldest_fingerprint(bulk_ids: list, adsorbate: str) -> int:
    """The oldest fingerprint version of an adsorbate's sites over some bulks, from the bulks'
    records (0 where a bulk does not say: seeded before the version was kept)."""
    oldest = None
    for doc in _bulk_docs(list(bulk_ids), {"fingerprint_versions": 1, "n_sites": 1}):
        if not (doc.get("n_sites") or {}).get(adsorbate):
            continue
        version = int((doc.get("fingerprint_versions") or {}).get(adsorbate, 0))
        oldest = version if oldest is None else min(oldest, version)
    return 0 if oldest is None else oldest


def by_bulk(
    collection: Any,
    bulk_ids: list,
    query: dict[str, Any],
    projection: dict[str, int] | None = None,
    *,
    sort: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Documents of ``collection`` on some bulks matching ``query``, one indexed query per bulk.

    SecantusDB answers a ``bulk`` equality from the index, but examines every document of the
    collection for a ``bulk $in`` (10 ids per query: 46k sites of a 100k-site store streamed at
    710/s, against 10k/s one bulk at a time).  Documents come bulk by bulk, sorted by ``sort``
    within a bulk.
    """
    for bulk in dict.fromkeys(bulk_ids):
        found = collection.find({**query, "bulk": bulk}, projection)
        yield from found.sort(sort, 1) if sort else found


ID_CHUNK = 100  # ids per `_id $in`: on SecantusDB 100 take 0.01 s, 5,000 take 40 s


def by_ids(
    collection: Any, ids: list, projection: dict[str, int] | None = None
) -> Iterator[dict[str, Any]]:
    """The documents with these ``_id``s, a hundred ids per query."""
    ids = list(dict.fromkeys(ids))
    for start in range(0, len(ids), ID_CHUNK):
        yield from collection.find({"_id": {"$in": ids[start : start + ID_CHUNK]}}, projection)


def of_space(
    collection: Any,
    bulk_ids: list,
    space: str,
    query: dict[str, Any],
    projection: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Documents matching ``query`` on a space's bulks or recorded with its name (imports).

    For the small collections (calculations: one per job), read with one query and kept
    here: on SecantusDB every query costs ~20 ms however few documents it returns, so
    bulk chunks would cost more than they save.
    """
    bulks = set(bulk_ids)
    fields = None if projection is None else {**projection, "bulk": 1, "space": 1}
    return [
        doc
        for doc in collection.find(query, fields)
        if doc.get("bulk") in bulks or doc.get("space") == space
    ]


def status(store: Store) -> StatusReport:
    """Counts per space and in total (spaces may share bulks, so totals are not their sum).

    Reads the spaces, the bulks' counters, the space's jobs and its last cycle: no site or
    surface is read.
    """
    spaces = {}
    for space in ElementSpace.objects.order_by("name"):
        ids = list(space.bulks)
        surfaces, sites = bulk_counters(ids)
        spaces[space.name] = SpaceStatus(
            elements=list(space.elements),
            adsorbates=list(space.adsorbates),
            bulks=len(ids),
            surfaces=surfaces,
            sites=sites,
            **loop_status(space),
        )
    surfaces, sites = bulk_counters()
    return StatusReport(
        store=StoreInfo(kind=store.kind, location=store.location),
        spaces=spaces,
        total=StoreTotals(
            spaces=len(spaces),
            bulks=Bulk._get_collection().estimated_document_count(),
            surfaces=surfaces,
            sites=sites,
        ),
    )


def is_paused(space: str) -> bool:
    doc = Lease._get_collection().find_one({"space": space}, {"paused": 1})
    return bool(doc and doc.get("paused"))


def space_jobs(space: ElementSpace, fields: dict[str, int], **query: Any) -> list[dict[str, Any]]:
    """The space's jobs (those on its bulks' sites) matching ``query``, projected to ``fields``.

    Jobs are few beside sites (one per calculation), so they are selected by ``query`` and kept
    by bulk here: a ``$in`` of a large space's thousand bulk ids costs SecantusDB seconds.
    """
    bulks = set(space.bulks)
    found = Job._get_collection().find(query, {**fields, "bulk": 1})
    return [job for job in found if job.get("bulk") in bulks]


def job_counts(space: str, profile: str | None = None) -> dict[str, int]:
    """A space's jobs (of one profile, or all) by state, the total and how many are queued."""
    query = {} if profile is None else {"profile": identity(profile)}
    counts: Counter[str] = Counter(
        job["state"] for job in space_jobs(get_space(space), {"state": 1}, **query)
    )
    result = {"total": sum(counts.values()), **counts}
    result["queued"] = sum(counts.get(s, 0) for s in QUEUED_STATES)
    return result


def loop_status(space: ElementSpace) -> LoopStatus:
    """The daemon's lease (heartbeat age, state), the space's job queue and its last cycle."""
    lease = Lease._get_collection().find_one({"space": space.name})
    daemon: DaemonLease | None = None
    if lease and lease.get("owner"):
        beat = lease.get("heartbeat")
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        daemon = DaemonLease(
            owner=lease["owner"],
            state=lease.get("state"),
            heartbeat=beat.isoformat() if beat else None,
            heartbeat_age_s=round((now - beat).total_seconds(), 1) if beat else None,
            running=not lease.get("released", False),
        )
    last = Cycle.objects(space=space.name).order_by("-number").first()
    cycle: LastCycle | None = None
    if last is not None:
        cycle = LastCycle(
            number=last.number,
            profile=last.profile,
            started=last.started.isoformat() if last.started else None,
            seconds=last.seconds,
            submitted=(last.counts or {}).get("submitted"),
            jobs=dict(last.jobs or {}),
        )
    queued = len(space_jobs(space, {"_id": 1}, state={"$in": list(QUEUED_STATES)}))
    models: dict[str, ModelSummary] = {}
    for model in (
        ModelVersion.objects(space=space.name)
        .only("adsorbate", "profile", "version", "n_train", "cv")
        .order_by("version")
    ):
        models[f"{model.adsorbate}:{model.profile}"] = ModelSummary(
            version=model.version, n_train=model.n_train, cv=dict(model.cv or {})
        )
    return LoopStatus(
        daemon=daemon,
        paused=bool(lease and lease.get("paused")),
        queued=queued,
        last_cycle=cycle,
        models=models,
    )


def get_space(name: str, adsorbates: Iterable[str] = ()) -> ElementSpace:
    """The space named ``name``, which must have sites of every one of ``adsorbates``."""
    space = ElementSpace.objects(name=name).first()
    if space is None:
        known = ", ".join(s.name for s in ElementSpace.objects.only("name")) or "none"
        raise InputError(f"unknown space '{name}' (known: {known})")
    for adsorbate in adsorbates:
        if adsorbate not in space.adsorbates:
            raise InputError(f"space '{name}' has no {adsorbate} sites")
    return space


def list_sites(
    space: str | None = None,
    adsorbate: str | None = None,
    site_type: str | None = None,
    limit: int = 20,
) -> list[SiteRow]:
    """Sites as JSON-ready rows, in storage order."""
    if limit < 0:
        raise InputError(f"site limit must be >= 0 (got {limit})")
    query: dict[str, Any] = {}
    names: dict[Any, str] = {}
    if space is not None:
        doc = get_space(space)
        query["bulk"] = {"$in": list(doc.bulks)}
        names = {bulk_id: doc.name for bulk_id in doc.bulks}
    else:
        for doc in ElementSpace.objects.order_by("name"):
            for bulk_id in doc.bulks:
                names.setdefault(bulk_id, doc.name)
    if adsorbate is not None:
        query["adsorbate"] = adsorbate
    if site_type is not None:
        query["site_type"] = site_type
    cursor = Site._get_collection().find(query).sort("_id", 1)
    if limit:
        cursor = cursor.limit(limit)
    surfaces: dict[Any, dict] = {}
    out: list[SiteRow] = []
    for doc in cursor:
        if doc["surface"] not in surfaces:
            surface = Surface._get_collection().find_one(
                {"_id": doc["surface"]}, {"termination": 1}
            )
            surfaces[doc["surface"]] = surface or {}
        out.append(
            SiteRow(
                id=str(doc["_id"]),
                space=names.get(doc["bulk"]),
                adsorbate=doc["adsorbate"],
                site_type=doc["site_type"],
                miller=list(doc["miller"]),
                bulk_formula=doc["bulk_formula"],
                surface_id=str(doc["surface"]),
                termination=surfaces[doc["surface"]].get("termination"),
                position=doc["position"],
                adsorbate_position=doc.get("adsorbate_position"),
                composition=doc.get("composition", {}),
                multiplicity=doc.get("multiplicity"),
                fingerprint=doc.get("fingerprint"),
                state=doc.get("state", "open"),
            )
        )
    return out


def list_results(
    space: str | None = None, adsorbate: str | None = None, profile: str | None = None
) -> list[ResultRow]:
    """One row per submitted (site, profile): dE when done, the reason when failed."""
    from screener.store.documents import Calculation

    query: dict[str, Any] = {}
    if profile is not None:
        query["profile"] = identity(profile)
    if adsorbate is not None:
        query["adsorbate"] = adsorbate
    allowed = set(get_space(space).bulks) if space is not None else None
    calculations = {
        doc["key"]: doc
        for doc in Calculation._get_collection().find({"kind": "adslab"}, {"structure": 0})
    }
    rows: list[ResultRow] = []
    for job in Job._get_collection().find(query).sort("_id", 1):
        site = Site._get_collection().find_one(
            {"_id": job["site"]}, {"bulk": 1, "site_type": 1, "miller": 1, "bulk_formula": 1}
        )
        if site is None or (allowed is not None and site["bulk"] not in allowed):
            continue
        calc = calculations.get(f"adslab:{job['key']}", {})
        rows.append(
            ResultRow(
                site_id=str(job["site"]),
                adsorbate=job["adsorbate"],
                profile=job["profile"],
                state=job["state"],
                energy=calc.get("adsorption_energy"),
                flags=calc.get("flags", []),
                reason=job.get("reason"),
                site_type=site["site_type"],
                miller=site["miller"],
                bulk_formula=site["bulk_formula"],
                final_site=calc.get("final_site"),
                settings_hash=calc.get("settings_hash"),
                ionic_steps=calc.get("ionic_steps"),
                wall_time=calc.get("wall_time"),
                fw_ids=job.get("fw_ids", []),
            )
        )
    return rows
