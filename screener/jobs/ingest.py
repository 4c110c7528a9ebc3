"""FireWorks -> store: every finished or failed screener firework becomes one Calculation.

Idempotent and restartable: a calculation key is ingested once; whatever FireWorks holds that the
store does not is picked up on the next call (so a crash between a firework finishing and its
recording loses nothing).  Duplicate fireworks (linked by the duplicate finder) share their
original's launch and key, and are not recorded twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from bson import ObjectId
from mongoengine.errors import NotUniqueError

from screener.store import Bulk, Site, Store, Surface
from screener.store.documents import Calculation, Job, _now
from workflows.structures import atoms_from_dict

RESULT_FIELDS = (
    "energy",
    "max_force",
    "ionic_steps",
    "wall_time",
    "converged",
    "settings_hash",
    "settings",
    "code_versions",
)


def ingest(store: Store) -> dict[str, int]:
    """Record newly finished/failed fireworks and settle the jobs they end; returns counts.

    Several processes may ingest at once (the daemon, ``screener workers``, a second daemon): a
    calculation another one recorded first is left as it is and not counted here.
    """
    launchpad = store.launchpad()
    counts: Counter[str] = Counter()
    for document in pending(launchpad):
        if record(document):
            counts[f"{document['kind']}_{document['state']}"] += 1
    counts["jobs_settled"] = _settle_jobs(launchpad)
    return dict(counts)


def pending(launchpad: Any) -> Iterator[dict[str, Any]]:
    """The Calculation documents of finished or failed fireworks the store does not hold yet."""
    known = {doc["key"] for doc in Calculation._get_collection().find({}, {"key": 1})}
    query = {"state": {"$in": ["COMPLETED", "FIZZLED"]}, "spec.screener_key": {"$exists": True}}
    fields = {"fw_id": 1, "state": 1, "spec.screener_key": 1, "spec._tasks.profile": 1}
    for fw in launchpad.fireworks.find(query, {**fields, "launches": 1}):
        key = fw["spec"]["screener_key"]
        if key in known or not fw.get("launches"):
            continue
        launch = launchpad.launches.find_one({"launch_id": fw["launches"][-1]})
        if fw["state"] == "FIZZLED" and launch is not None and launch.get("action") is None:
            continue  # lost, not failed: the workers rerun it
        stored = ((launch or {}).get("action") or {}).get("stored_data") or {}
        if fw["state"] == "COMPLETED" and "screener" in stored:
            document = _calculation_done(key, stored["screener"])
        else:
            document = _calculation_failed(key, fw["spec"], stored)
        document.update(fw_id=fw["fw_id"], launch_id=(launch or {}).get("launch_id"))
        known.add(key)
        yield document


def record(document: dict[str, Any]) -> bool:
    """Insert one calculation; False when its key is already recorded (by another ingester)."""
    try:
        Calculation(**document).save(force_insert=True)
    except NotUniqueError:
        return False
    return True


def lost_fizzle(launchpad: Any, fw: dict[str, Any]) -> bool:
    """A FIZZLED firework whose last launch recorded no action: FireWorks' lost-run detection
    fizzled it (its worker died), no task failed."""
    if not fw.get("launches"):
        return False
    launch = launchpad.launches.find_one({"launch_id": fw["launches"][-1]}, {"action": 1})
    return launch is not None and launch.get("action") is None


def _refs(key: str) -> dict[str, Any]:
    kind, _, rest = key.partition(":")
    ident = rest.rsplit(":", 1)[0]
    if kind == "bulk":
        bulk = Bulk.objects(key=ident).only("id").first()
        return {"bulk": bulk.id if bulk else None}
    if kind == "slab":
        surface = Surface.objects(key=ident).only("id", "bulk").first()
        return {"surface": surface.id, "bulk": surface.bulk.id} if surface else {}
    if kind == "adslab":
        site = Site.objects(id=ObjectId(ident)).only("id", "surface", "bulk").first()
        if site:
            return {"site": site.id, "surface": site.surface.id, "bulk": site.bulk.id}
    return {}


def _calculation_done(key: str, record: dict[str, Any]) -> dict[str, Any]:
    result = record["result"]
    document = {
        "key": key,
        "kind": record["kind"],
        "profile": record["profile"],
        "state": "done",
        "structure": result["atoms"],
        "history": record.get("history", []),
        **{f: result.get(f) for f in RESULT_FIELDS},
        **_refs(key),
    }
    if record["kind"] == "slab":
        document["flags"] = record.get("flags", [])
    if record["kind"] == "adslab":
        document.update(
            adsorbate=record["adsorbate"],
            adsorption_energy=record["adsorption_energy"],
            references={
                **record["references"],
                "slab": record["slab_key"],
                **{f"gas_{m}": k for m, k in record["gas_keys"].items()},
            },
            flags=record["flags"],
            final_site=record.get("final_site", {}),
            **surrogate_view(result["atoms"], document.get("surface")),
        )
    return document


def surrogate_view(structure: dict[str, Any], surface_id: Any) -> dict[str, Any]:
    """What the surrogate trains on: the relaxed structure's fingerprint, the CV group (surface
    key) and the element of a pure-element slab (for the median references)."""
    from screener.enumerate.fingerprint import fingerprint_of_adslab

    atoms = atoms_from_dict(structure)
    symbols = {
        s for s, t in zip(atoms.get_chemical_symbols(), atoms.get_tags(), strict=True) if t > 0
    }
    surface = Surface.objects(id=surface_id).only("key").first() if surface_id else None
    return {
        "fingerprint": fingerprint_of_adslab(atoms),
        "group": surface.key if surface else None,
        "pure": symbols.pop() if len(symbols) == 1 else None,
    }


def _calculation_failed(key: str, spec: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    exception = stored.get("_exception") or {}
    details = exception.get("_details") or {}
    trace = (exception.get("_stacktrace") or "").strip().splitlines()
    reason = details.get("reason") or (trace[-1] if trace else "unknown failure")
    task = (spec.get("_tasks") or [{}])[0]
    return {
        "key": key,
        "kind": key.partition(":")[0],
        "profile": task.get("profile", key.rsplit(":", 1)[-1]),
        "state": "failed",
        "reason": reason,
        "history": details.get("history", []),
        **_refs(key),
    }


def _settle_jobs(launchpad: Any) -> int:
    """Mark submitted jobs done or failed from their calculations; returns how many changed."""
    settled = 0
    for job in Job.objects(state="submitted"):
        site_key = f"adslab:{job.key}"
        calc = Calculation.objects(key=site_key).first()
        if calc is not None:
            state, reason = calc.state, calc.reason
        else:  # an upstream step failed: the adslab firework will never run
            failed = [
                fw["spec"]["screener_key"]
                for fw in launchpad.fireworks.find(
                    {"fw_id": {"$in": list(job.fw_ids)}, "state": "FIZZLED"},
                    {"spec.screener_key": 1, "launches": 1},
                )
                if not lost_fizzle(launchpad, fw)
            ]
            if not failed:
                continue
            upstream = Calculation.objects(key=failed[0]).first()
            state = "failed"
            reason = f"{failed[0]} failed: {upstream.reason if upstream else 'unknown'}"
        changed = Job.objects(id=job.id, state="submitted").update_one(
            set__state=state, set__reason=reason, set__updated=_now()
        )
        if changed:  # not settled meanwhile by another ingester
            Site.objects(id=job.site.id).update_one(set__state=state)
            settled += 1
    return settled
