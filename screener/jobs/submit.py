"""Submit a site to DFT: one FireWorks workflow per (site, profile), exactly once.

The ledger entry (:class:`~screener.store.documents.Job`, state ``submitting``) is journaled
before the workflow goes to the LaunchPad, and every firework of the workflow carries the job key.
A submitter that dies between the two is reconciled on the next submit: the LaunchPad is searched
for the key, and only if nothing is there is the workflow added.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from fireworks import Firework, Workflow
from mongoengine import NotUniqueError

from screener.errors import InputError
from screener.faults import crash_point
from screener.profiles import current_identity
from screener.store import Bulk, Site, Store, Surface
from screener.store.documents import Job, _now
from workflows.adsorption import references
from workflows.dupefinder import DupeFinderKey
from workflows.structures import atoms_from_dict
from workflows.tasks import (
    AdsorptionEnergyTask,
    GasReferenceTask,
    RelaxBulkTask,
    RelaxSlabTask,
)

log = logging.getLogger(__name__)


@dataclass
class Submission:
    key: str
    state: str
    new: bool
    fw_ids: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.key, "state": self.state, "new": self.new, "fw_ids": self.fw_ids}


def step_keys(site: Site, surface: Surface, bulk: Bulk, profile: str) -> dict[str, Any]:
    """Calculation keys of every step of a site's workflow (see Calculation)."""
    return {
        "gas": {m: f"gas:{m}:{profile}" for m, _ in references(site.adsorbate)},
        "bulk": f"bulk:{bulk.key}:{profile}",
        "slab": f"slab:{surface.key}:{profile}",
        "adslab": f"adslab:{site.id}:{profile}",
    }


#: spec key on every firework of a job's workflow: the job whose submission added it
SUBMISSION_KEY = "screener_submission"
#: states of a firework that never ran (safe to delete)
UNSTARTED = ("WAITING", "READY")


def build_workflow(
    site: Site,
    profile: str,
    *,
    job_key: str,
    ranks: int,
    max_tries: int,
    inject: dict[str, list[str]] | None = None,
    prerelax: bool = False,
    small_ranks: int | None = None,
) -> Workflow:
    """gas(es) + bulk -> slab -> adslab for one site; shared steps carry identical specs.

    ``small_ranks`` (when set): MPI ranks of the gas, bulk and slab steps, which then run in
    small allocations of their own; the adsorbate+slab step gets ``ranks``."""
    surface = Surface.objects.get(id=site.surface.id)
    bulk = Bulk.objects.get(id=site.bulk.id)
    keys = step_keys(site, surface, bulk, profile)
    inject = inject or {}

    def options(kind: str) -> dict[str, Any]:
        extra = {"inject_failures": inject[kind]} if kind in inject else {}
        return {
            "profile": profile,
            "ranks": ranks if kind == "adslab" or small_ranks is None else small_ranks,
            "max_tries": max_tries,
            "prerelax": prerelax,
            **extra,
        }

    def shared_spec(key: str) -> dict[str, Any]:
        return {"screener_key": key, "_dupefinder": DupeFinderKey()}

    gas = [
        Firework(
            GasReferenceTask(key=key, molecule=molecule, **options("gas")),
            spec=shared_spec(key),
            name=key,
        )
        for molecule, key in keys["gas"].items()
    ]
    bulk_fw = Firework(
        RelaxBulkTask(key=keys["bulk"], structure=bulk.structure, **options("bulk")),
        spec=shared_spec(keys["bulk"]),
        name=keys["bulk"],
    )
    slab_fw = Firework(
        RelaxSlabTask(key=keys["slab"], structure=surface.structure, **options("slab")),
        spec=shared_spec(keys["slab"]),
        name=keys["slab"],
        parents=[bulk_fw],
    )
    site_spec = {
        "id": str(site.id),
        "adsorbate": site.adsorbate,
        "adsorbate_position": list(site.adsorbate_position),
        "binding_atoms": list(site.binding_atoms),
    }
    adslab_fw = Firework(
        AdsorptionEnergyTask(key=keys["adslab"], site=site_spec, **options("adslab")),
        spec={"screener_key": keys["adslab"], "screener_job": job_key},
        name=keys["adslab"],
        parents=[slab_fw, *gas],
    )
    for fw in (*gas, bulk_fw, slab_fw, adslab_fw):  # whose add this firework came from
        fw.spec[SUBMISSION_KEY] = job_key
    name = (
        f"{site.bulk_formula} {''.join(map(str, site.miller))} {site.site_type} "
        f"{site.adsorbate} {profile}"
    )
    return Workflow(
        [*gas, bulk_fw, slab_fw, adslab_fw], name=name, metadata={"screener_job": job_key}
    )


def resolve_site(site_id: str) -> Site:
    try:
        oid = ObjectId(site_id)
    except (InvalidId, TypeError):
        raise InputError(f"not a site id: '{site_id}' (24 hex characters)") from None
    site = Site.objects(id=oid).first()
    if site is None:
        raise InputError(f"unknown site id '{site_id}'")
    return site


def validate_profile(name: str, site: Site) -> str:
    """This code's identity of profile ``name`` if it covers the site's elements; InputError
    otherwise."""
    surface = Surface.objects.get(id=site.surface.id)
    elements = atoms_from_dict(surface.structure).get_chemical_symbols()
    return current_identity(name, elements)


def submit(
    site_id: str,
    profile: str,
    store: Store,
    *,
    inject: dict[str, list[str]] | None = None,
    context: dict[str, Any] | None = None,
) -> Submission:
    """Queue the adsorption-energy workflow of a site unless it was queued before."""
    return submit_batch([site_id], profile, store, inject=inject, context=[context or {}])[0]


def submit_batch(
    site_ids: list[str],
    profile: str,
    store: Store,
    *,
    inject: dict[str, list[str]] | None = None,
    context: list[dict[str, Any]] | None = None,
) -> list[Submission]:
    """Queue several sites: every ledger entry first, then the workflows and the states.

    ``context`` (one dict per site: ``predicted``, ``space``, ``cycle``) is stored on new jobs.
    A crash anywhere leaves jobs in ``submitting``, which :func:`reconcile` (or submitting the
    site again) completes without adding a second workflow.
    """
    sites = [resolve_site(i) for i in site_ids]
    for site in sites:
        profile = validate_profile(profile, site)
    context = context or [{} for _ in sites]
    results: dict[int, Submission] = {}
    pending: list[tuple[int, Site, Job]] = []
    for number, (site, extra) in enumerate(zip(sites, context, strict=True)):
        key = f"{site.id}:{profile}"
        job = Job.objects(key=key).first()
        if job is not None and job.state != "submitting":
            results[number] = Submission(key, job.state, False, list(job.fw_ids))
            continue
        if job is None:
            job = Job(
                key=key,
                site=site.id,
                bulk=site.bulk.id,
                adsorbate=site.adsorbate,
                profile=profile,
                state="submitting",
                predicted=extra.get("predicted") or {},
                space=extra.get("space"),
                cycle=extra.get("cycle"),
            )
            try:
                job.save(force_insert=True)
            except NotUniqueError:  # another submitter ledgered this site a moment ago
                results[number] = Submission(key, "submitting", False, [])
                continue
        pending.append((number, site, job))
    crash_point("after-ledger")
    for number, site, job in pending:
        results[number] = _launch(site, job, profile, store, inject, rank=number)
    return [results[n] for n in range(len(sites))]


PRIORITY_TOP = 1000  # FireWorks runs the highest _priority first: the batch's best site gets this


def route_workflow(workflow: Workflow, job: Job, settings: Any, rank: int | None) -> Workflow:
    """Decorate a site's workflow with atomate's powerups: queue allocations (gas, bulk and slab
    steps small, the adsorbate+slab step the full one), priority by the site's rank in its batch
    (the best first) and tags (space, cycle, model version) that ``lpad`` can select by."""
    from atomate.common.powerups import add_priority, add_tags, set_queue_adapter

    from screener.jobs.queue import allocation

    set_queue_adapter(workflow, allocation(settings, "small"))
    set_queue_adapter(workflow, allocation(settings, "full"), fw_name_constraint="adslab:")
    priority = PRIORITY_TOP - rank if rank is not None else PRIORITY_TOP // 2
    add_priority(workflow, max(1, priority))
    version = (job.predicted or {}).get("model_version")
    tags = [f"space:{job.space}", f"cycle:{job.cycle}", f"model:{job.adsorbate}-v{version}"]
    add_tags(workflow, tags if job.space else [f"job:{job.key}"])
    return workflow


def _launch(
    site: Site,
    job: Job,
    profile: str,
    store: Store,
    inject: dict[str, list[str]] | None,
    rank: int | None = None,
) -> Submission:
    """Add the workflow of a ledgered job unless FireWorks already has it; mark it submitted.

    FireWorks' ``add_wf`` writes the fireworks first and the workflow after them.  A submitter
    killed in between leaves fireworks that belong to no workflow, which would wait forever:
    those that never ran are deleted and the workflow is added again.
    """
    launchpad = store.launchpad()
    key = job.key
    found = _job_fireworks(launchpad, key)
    workflow_doc = None
    for fw_id in found:
        workflow_doc = launchpad.workflows.find_one({"nodes": fw_id}, {"nodes": 1})
        if workflow_doc is not None:
            break
    if found and workflow_doc is None:
        log.warning("%s: a submitter stopped before writing its workflow; adding it again", key)
        launchpad.fireworks.delete_many({"fw_id": {"$in": found}, "state": {"$in": UNSTARTED}})
        found = []
    new = not found
    if new:
        workflow = build_workflow(
            site,
            profile,
            job_key=key,
            ranks=store.settings.mpi_ranks,
            max_tries=store.settings.max_tries,
            inject=inject,
            prerelax=store.settings.prerelax,
            small_ranks=store.settings.queue_small_ranks
            if store.settings.launcher == "slurm"
            else None,
        )
        route_workflow(workflow, job, store.settings, rank)
        fw_ids = sorted(launchpad.add_wf(workflow).values())
    else:  # the previous submitter died after adding the workflow: record what is there
        fw_ids = sorted(workflow_doc["nodes"])
    crash_point("after-add-wf")
    Job.objects(id=job.id).update_one(
        set__state="submitted", set__fw_ids=fw_ids, set__updated=_now()
    )
    Site.objects(id=site.id).update_one(set__state="queued")
    return Submission(key, "submitted", new, fw_ids)


def _job_fireworks(launchpad: Any, key: str) -> list[int]:
    """The fw_ids a job's submissions added (before the submission key: its adsorbate+slab)."""
    for field in (SUBMISSION_KEY, "screener_job"):
        found = sorted(
            fw["fw_id"] for fw in launchpad.fireworks.find({f"spec.{field}": key}, {"fw_id": 1})
        )
        if found:
            return found
    return []


def reconcile(store: Store) -> int:
    """Complete jobs a dead submitter left in ``submitting``; returns how many.  A job of a
    profile whose settings have changed since is failed instead: this code cannot run it."""
    stuck = list(Job.objects(state="submitting"))
    for job in stuck:
        site = Site.objects(id=job.site.id).first()
        if site is None:
            continue
        try:
            current_identity(job.profile)
        except InputError as exc:
            reason = f"{exc}; not submitted"
            Job.objects(id=job.id).update_one(
                set__state="failed", set__reason=reason, set__updated=_now()
            )
            continue
        _launch(site, job, job.profile, store, None)
    return len(stuck)
