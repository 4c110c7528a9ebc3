"""Read side: what the store holds, for the CLI and (later) the dashboard."""

from __future__ import annotations

from collections import Counter
from typing import Any

from screener.errors import InputError
from screener.store import Bulk, ElementSpace, Site, Store, Surface


def site_counts_by_bulk(store: Store) -> dict[tuple[Any, str], int]:
    """Number of sites per (bulk id, adsorbate), in one pass over the sites.

    MongoDB groups on the server; on the embedded store a projected scan counted here is about
    four times faster than mongomock's aggregation (measured on 22k sites).
    """
    collection = Site._get_collection()
    if store.embedded:
        projected = collection.find({}, {"bulk": 1, "adsorbate": 1, "_id": 0})
        return dict(Counter((doc["bulk"], doc["adsorbate"]) for doc in projected))
    pipeline = [{"$group": {"_id": {"bulk": "$bulk", "ads": "$adsorbate"}, "n": {"$sum": 1}}}]
    return {
        (row["_id"]["bulk"], row["_id"]["ads"]): int(row["n"])
        for row in collection.aggregate(pipeline)
    }


def _by_adsorbate(counts: dict[tuple[Any, str], int], bulks: set | None = None) -> dict[str, int]:
    total: Counter[str] = Counter()
    for (bulk, adsorbate), n in counts.items():
        if bulks is None or bulk in bulks:
            total[adsorbate] += n
    return dict(sorted(total.items()))


def status(store: Store) -> dict[str, Any]:
    """Counts per space and in total (spaces may share bulks, so totals are not their sum)."""
    counts = site_counts_by_bulk(store)
    spaces = {}
    for space in ElementSpace.objects.order_by("name"):
        ids = list(space.bulks)
        spaces[space.name] = {
            "elements": list(space.elements),
            "adsorbates": list(space.adsorbates),
            "bulks": len(ids),
            "surfaces": Surface.objects(bulk__in=ids).count(),
            "sites": _by_adsorbate(counts, set(ids)),
            **loop_status(store, space.name),
        }
    return {
        "store": {"kind": "embedded" if store.embedded else "mongodb", "location": store.location},
        "spaces": spaces,
        "total": {
            "spaces": len(spaces),
            "bulks": Bulk.objects.count(),
            "surfaces": Surface.objects.count(),
            "sites": _by_adsorbate(counts),
        },
    }


def loop_status(store: Store, space: str) -> dict[str, Any]:
    """The daemon's lease (heartbeat age, state), the space's job queue and its last cycle."""
    import datetime as dt

    from screener.daemon import is_paused
    from screener.store.documents import Cycle, Lease, ModelVersion

    lease = Lease._get_collection().find_one({"space": space})
    daemon = None
    if lease and lease.get("owner"):
        beat = lease.get("heartbeat")
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        daemon = {
            "owner": lease["owner"],
            "state": lease.get("state"),
            "heartbeat": beat.isoformat() if beat else None,
            "heartbeat_age_s": round((now - beat).total_seconds(), 1) if beat else None,
            "running": not lease.get("released", False),
        }
    last = Cycle.objects(space=space).order_by("-number").first()
    cycle = None
    if last is not None:
        cycle = {
            "number": last.number,
            "profile": last.profile,
            "started": last.started.isoformat() if last.started else None,
            "seconds": last.seconds,
            "submitted": (last.counts or {}).get("submitted"),
            "jobs": dict(last.jobs or {}),
        }
    from screener.daemon import space_site_ids
    from screener.store.documents import Job

    ids = space_site_ids(space)
    queued = sum(
        1
        for job in Job._get_collection().find(
            {"state": {"$in": ["submitting", "submitted"]}}, {"site": 1}
        )
        if job["site"] in ids
    )
    models = {}
    for model in ModelVersion.objects(space=space).order_by("version"):
        models[f"{model.adsorbate}:{model.profile}"] = {
            "version": model.version,
            "n_train": model.n_train,
            "cv": dict(model.cv or {}),
        }
    return {
        "daemon": daemon,
        "paused": is_paused(store, space),
        "queued": queued,
        "last_cycle": cycle,
        "models": models,
    }


def get_space(name: str) -> ElementSpace:
    space = ElementSpace.objects(name=name).first()
    if space is None:
        known = ", ".join(s.name for s in ElementSpace.objects.only("name")) or "none"
        raise InputError(f"unknown space '{name}' (known: {known})")
    return space


def list_sites(
    space: str | None = None,
    adsorbate: str | None = None,
    site_type: str | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Sites as JSON-ready dicts, in storage order."""
    if limit < 0:
        raise InputError("--limit must be >= 0")
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
    out = []
    for doc in cursor:
        if doc["surface"] not in surfaces:
            surface = Surface._get_collection().find_one(
                {"_id": doc["surface"]}, {"termination": 1}
            )
            surfaces[doc["surface"]] = surface or {}
        out.append(
            {
                "id": str(doc["_id"]),
                "space": names.get(doc["bulk"]),
                "adsorbate": doc["adsorbate"],
                "site_type": doc["site_type"],
                "miller": list(doc["miller"]),
                "bulk_formula": doc["bulk_formula"],
                "surface_id": str(doc["surface"]),
                "termination": surfaces[doc["surface"]].get("termination"),
                "position": doc["position"],
                "adsorbate_position": doc.get("adsorbate_position"),
                "composition": doc.get("composition", {}),
                "multiplicity": doc.get("multiplicity"),
                "fingerprint": doc.get("fingerprint"),
                "state": doc.get("state", "open"),
            }
        )
    return out


def list_results(
    space: str | None = None, adsorbate: str | None = None, profile: str | None = None
) -> list[dict[str, Any]]:
    """One row per submitted (site, profile): dE when done, the reason when failed."""
    from screener.store.documents import Calculation, Job

    query: dict[str, Any] = {}
    if profile is not None:
        query["profile"] = profile
    if adsorbate is not None:
        query["adsorbate"] = adsorbate
    allowed = set(get_space(space).bulks) if space is not None else None
    calculations = {
        doc["key"]: doc
        for doc in Calculation._get_collection().find({"kind": "adslab"}, {"structure": 0})
    }
    rows = []
    for job in Job._get_collection().find(query).sort("_id", 1):
        site = Site._get_collection().find_one(
            {"_id": job["site"]}, {"bulk": 1, "site_type": 1, "miller": 1, "bulk_formula": 1}
        )
        if site is None or (allowed is not None and site["bulk"] not in allowed):
            continue
        calc = calculations.get(f"adslab:{job['key']}", {})
        rows.append(
            {
                "site_id": str(job["site"]),
                "adsorbate": job["adsorbate"],
                "profile": job["profile"],
                "state": job["state"],
                "energy": calc.get("adsorption_energy"),
                "flags": calc.get("flags", []),
                "reason": job.get("reason"),
                "site_type": site["site_type"],
                "miller": site["miller"],
                "bulk_formula": site["bulk_formula"],
                "final_site": calc.get("final_site"),
                "settings_hash": calc.get("settings_hash"),
                "ionic_steps": calc.get("ionic_steps"),
                "wall_time": calc.get("wall_time"),
                "fw_ids": job.get("fw_ids", []),
            }
        )
    return rows
