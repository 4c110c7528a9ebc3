"""Write and read costs of the store: one SecantusDB server, screener's paths against raw pymongo.

Everything runs on one SecantusDB server started in a temporary data directory
(:mod:`screener.store.server`), stopped and removed at the end, also on Ctrl-C or SIGTERM.

1. Seeding.  A real :func:`screener.enumerate.seed.seed` of a small space (``--elements``, default
   Cu,Pd; CO,H; Miller <= 1; in-process enumeration) is timed and its sites per second reported
   (enumeration CPU included).  Its stored site rows are then inserted again, ``--insert-sites``
   of them (default 10000), in per-surface batches as seeding inserts them, through
   :func:`screener.enumerate.seed._insert_sites` (mongoengine's client, write concern j=True),
   and with raw pymongo ``insert_many`` of the same documents, same batches, into a scratch
   collection that has the ``sites`` collection's indexes, with j=True (the baseline of the
   ratio) and with the default write concern (for information).  ``--repeats`` rounds, the order
   alternated; the medians are reported.  The inserted copies are deleted afterwards.
2. Reads at ``--sizes`` sites (default 10000,100000,1000000).  A synthetic space is grown to each
   size by replicating the seeded bulks, surfaces and sites with new ObjectIds (schema kept:
   surfaces reference their bulk, sites their surface and bulk, bulks carry exact ``n_surfaces``
   and ``n_sites`` counters, the space lists its bulks; ``--sites-per-surface`` 100 and
   ``--surfaces-per-bulk`` 12, Tran & Ulissi 2018's proportions), inserted with raw
   ``insert_many``.  Each size then gets a new model version per adsorbate with random predictions
   stored by :func:`screener.learning._store_predictions` at both levels, and ``--jobs`` (300) jobs
   on random sites, two thirds done with a finished adslab calculation, one third submitted.
   Timed, ``--repeats`` calls each (best and median; every call reads the store, nothing is
   cached): :func:`screener.queries.status`, :func:`screener.candidates.candidates` (CO, limit
   20), :func:`screener.learning.select` (n 20), :func:`screener.learning.space_sites` (CO: the
   fingerprints scoring reads) and, on the same server, raw pymongo: ``find_one``
   of a site by ``_id`` (mean over 20 random sites), projected ``find`` streams of site ``_id``
   (every site of the collection with no filter; the space's, one ``{bulk: id}`` query per bulk;
   the space's, one ``{bulk: {$in: bulks}}`` query) and ``count_documents`` of the space's sites
   (``bulk $in``); the two ``bulk $in`` reads only up to ``--in-scans-up-to`` sites (100k).  A
   full scan is not repeated once its calls took ``--scan-budget`` s (60).
3. After each size: the server's resident memory (``VmRSS``, peak ``VmHWM`` of its pid) and the
   size of ``<data_dir>/db``.

``--json`` prints one JSON object with every number; the default is tables on stdout.  Progress
goes to stderr.  The 1M build inserts about a million documents (~17 minutes at ~1k
documents/s on 2 cores); on SecantusDB 0.7.0b3 the two ``bulk $in`` scans of 1M sites would take
25 and 53 minutes (the cost of ``$in`` grows with the length of its list), hence their limit.

    .venv/bin/python bench/store.py --sizes 10000            # about a minute
    .venv/bin/python bench/store.py                          # 10k, 100k, 1M: about 35 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workflows.profiles import PROFILES

PROFILE = PROFILES["emt"].identity  # the synthetic results are stored under it
SPACE = "bench-synthetic"
SCRATCH = "bench_scratch_sites"
# environment that would point the bench at something other than its own fresh server
FOREIGN_SETTINGS = ("SCREENER_MONGO_URI", "SCREENER_DASK_SCHEDULER", "SCREENER_CONFIG_FILE")
# fields _insert_sites adds to an enumerated site row (the rest is what enumeration produced)
ADDED_BY_INSERT = ("_id", "surface", "bulk", "miller", "bulk_formula", "state", "created")


def log(message: str) -> None:
    """Progress line on stderr (stdout carries the results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------------------------
# the server process
# --------------------------------------------------------------------------------------------


def server_memory(pid: int | None) -> dict[str, float | None]:
    """Resident and peak resident memory of a process, in MB (``/proc/<pid>/status``).

    Parameters
    ----------
    pid : int or None
        The server's pid.

    Returns
    -------
    dict
        ``rss_mb`` (VmRSS) and ``peak_rss_mb`` (VmHWM); None where unreadable.
    """
    out: dict[str, float | None] = {"rss_mb": None, "peak_rss_mb": None}
    if pid is None:
        return out
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                kb = float(value.split()[0])
                out["rss_mb" if name == "VmRSS" else "peak_rss_mb"] = round(kb / 1024, 1)
    return out


def disk_mb(path: Path) -> dict[str, float]:
    """Apparent and allocated size of the files under ``path``, in MB."""
    apparent = allocated = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(root, name))
                apparent += st.st_size
                allocated += st.st_blocks * 512
    return {"apparent_mb": round(apparent / 2**20, 1), "allocated_mb": round(allocated / 2**20, 1)}


def _leftover_servers(storage: Path) -> list[int]:
    """Pids of SecantusDB processes serving ``storage`` (ours: the path is a fresh temp dir)."""
    from screener.store.server import EXECUTABLE

    found = []
    target = str(storage.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [
                a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0")
            ]
        except OSError:
            continue
        if any(EXECUTABLE in a for a in argv) and target in argv:
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def bench_store(keep: bool) -> Iterator[tuple[Any, Path]]:
    """A fresh data directory, its server and an open :class:`~screener.store.Store`.

    The server is stopped and the directory removed on leaving, however the bench ends (a server
    that a Ctrl-C caught between its start and its record is found by its storage path).

    Parameters
    ----------
    keep : bool
        Keep the data directory (the server is stopped all the same).

    Yields
    ------
    tuple
        The store and the data directory.
    """
    from screener.settings import use_settings
    from screener.store import open_store, server

    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    data_dir = tmp / "data"
    try:
        with use_settings(
            data_dir=data_dir, dask_workers=0, mongo_uri=None, db_port=None, db_name="screener"
        ) as settings:
            with server.stopped_after(data_dir):
                server.start(data_dir)
                with open_store(settings) as store:
                    yield store, data_dir
    finally:
        for pid in _leftover_servers(data_dir / "db"):
            log(f"stopping leftover server pid {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if keep:
            log(f"data directory kept: {data_dir}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------


def timed(
    function: Callable[[], Any], repeats: int, budget: float | None = None
) -> tuple[dict[str, Any], Any]:
    """Call ``function`` ``repeats`` times, or fewer once the calls took ``budget`` s in all.

    Parameters
    ----------
    function : callable
        The measured call (no arguments).
    repeats : int
        Most calls.
    budget : float, optional
        No further call once the calls so far took this long (at least one call is made).

    Returns
    -------
    tuple
        ``{"runs_s", "best_s", "median_s"}`` and the last call's result.
    """
    runs, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        runs.append(time.perf_counter() - started)
        if budget is not None and sum(runs) > budget:
            break
    return {
        "runs_s": [round(r, 4) for r in runs],
        "best_s": round(min(runs), 4),
        "median_s": round(statistics.median(runs), 4),
    }, result


# --------------------------------------------------------------------------------------------
# part 1: seeding
# --------------------------------------------------------------------------------------------


@dataclass
class Template:
    """The seeded space as plain documents: what the synthetic space replicates.

    Attributes
    ----------
    bulks : list of dict
        Bulk documents that have surfaces with sites.
    surfaces : dict
        Bulk id -> its surface documents that have sites.
    sites : dict
        Surface id -> its site documents.
    """

    bulks: list[dict]
    surfaces: dict[Any, list[dict]]
    sites: dict[Any, list[dict]]

    @property
    def n_sites(self) -> int:
        return sum(len(s) for s in self.sites.values())

    @property
    def n_surfaces(self) -> int:
        return sum(len(s) for s in self.surfaces.values())


def real_seed(store: Any, elements: str, adsorbates: str, max_miller: int) -> dict[str, Any]:
    """Time one :func:`screener.enumerate.seed.seed` of a small space in the fresh store."""
    from screener.enumerate.seed import plan_seed, seed

    started = time.perf_counter()
    plan = plan_seed(elements, adsorbates, max_miller=max_miller, settings=store.settings)
    report = seed(plan, store)
    seconds = time.perf_counter() - started
    sites = sum(report.added["sites"].values())
    return {
        "space": plan.space,
        "elements": plan.elements,
        "adsorbates": plan.adsorbates,
        "max_miller": max_miller,
        "seconds": round(seconds, 2),
        "bulks": report.added["bulks"],
        "surfaces": report.added["surfaces"],
        "sites": dict(report.added["sites"]),
        "sites_per_s": round(sites / seconds, 1),
        "failed": report.failed,
    }


def load_template(db: Any, space: str) -> Template:
    """The seeded space's bulks, surfaces and sites, read back once."""
    doc = db.spaces.find_one({"name": space})
    bulks = list(db.bulks.find({"_id": {"$in": doc["bulks"]}}).sort("_id", 1))
    sites: dict[Any, list[dict]] = {}
    for site in db.sites.find({"bulk": {"$in": doc["bulks"]}}).sort("_id", 1):
        sites.setdefault(site["surface"], []).append(site)
    surfaces: dict[Any, list[dict]] = {}
    for surface in db.surfaces.find({"_id": {"$in": list(sites)}}).sort("_id", 1):
        surfaces.setdefault(surface["bulk"], []).append(surface)
    bulks = [b for b in bulks if b["_id"] in surfaces]
    return Template(bulks, surfaces, sites)


def _copy_indexes(source: Any, target: Any) -> None:
    for name, spec in source.index_information().items():
        if name == "_id_":
            continue
        target.create_index(spec["key"], name=name, unique=bool(spec.get("unique")))


def insert_throughput(
    store: Any, raw_j: Any, raw_w1: Any, template: Template, n_sites: int, repeats: int
) -> dict[str, Any]:
    """Sites per second: ``seed._insert_sites`` against raw ``insert_many``, same batches.

    Each round inserts ``n_sites`` site rows (the seeded ones, cycled), one batch per surface
    (a new surface id per batch, as new surfaces are seeded), by each of the three paths.

    Parameters
    ----------
    store : Store
        The open store (``_insert_sites`` writes through mongoengine's client, j=True).
    raw_j, raw_w1 : pymongo.database.Database
        The same database through raw pymongo clients with j=True and the default write concern.
    template : Template
        The seeded space.
    n_sites : int
        Sites per round and path.
    repeats : int
        Rounds (the order of the paths alternates).

    Returns
    -------
    dict
        Rates per path (median and all rounds), the ratio screener/raw (j=True), batch sizes.
    """
    from bson import ObjectId

    from screener.enumerate.seed import SeedReport, _insert_sites, site_document
    from screener.store import Bulk, Surface

    bulks = {b["_id"]: b for b in template.bulks}
    units = []  # (template surface, its enumerated rows), in seeding order
    for bulk in template.bulks:
        for surface in template.surfaces[bulk["_id"]]:
            rows = [
                {k: v for k, v in site.items() if k not in ADDED_BY_INSERT}
                for site in template.sites[surface["_id"]]
            ]
            units.append((surface, rows))

    def batches() -> list[tuple[Any, Any, list[dict]]]:
        """New surfaces and bulks (not stored; only their ids are written) with their rows."""
        fake_bulks = {key: Bulk(id=ObjectId(), formula=b["formula"]) for key, b in bulks.items()}
        out, total, i = [], 0, 0
        while total < n_sites:
            surface, rows = units[i % len(units)]
            rows = rows[: n_sites - total]
            fake = Surface(id=ObjectId(), miller=list(surface["miller"]))
            out.append((fake, fake_bulks[surface["bulk"]], rows))
            total += len(rows)
            i += 1
        return out

    def raw_documents(plan: list[tuple[Any, Any, list[dict]]]) -> list[list[dict]]:
        created = _now()
        return [
            [site_document(row, surface, bulk, created) for row in rows]
            for surface, bulk, rows in plan
        ]

    def screener_path() -> float:
        plan = batches()
        report = SeedReport("bench", [], [])
        report.added = {"bulks": 0, "surfaces": 0, "sites": Counter()}
        started = time.perf_counter()
        for surface, bulk, rows in plan:
            _insert_sites(surface, bulk, rows, report, surface_is_new=True)
        seconds = time.perf_counter() - started
        assert sum(report.added["sites"].values()) == n_sites, report.added
        screener_bulks.update(b.id for _, b, _ in plan)
        return n_sites / seconds

    def raw_path(db: Any) -> Callable[[], float]:
        def run() -> float:
            documents = raw_documents(batches())  # built outside the clock
            collection = db[SCRATCH]
            started = time.perf_counter()
            for batch in documents:
                collection.insert_many(batch, ordered=False)
            return n_sites / (time.perf_counter() - started)

        return run

    sites = store.db.sites
    _copy_indexes(sites, store.db[SCRATCH])
    screener_bulks: set = set()
    paths = {"screener": screener_path, "raw_j": raw_path(raw_j), "raw_w1": raw_path(raw_w1)}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(repeats):
        order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
        for name in order:
            rates[name].append(paths[name]())
        log(
            f"insert round {round_ + 1}/{repeats}: "
            + ", ".join(f"{n} {rates[n][-1]:.0f} sites/s" for n in paths)
        )
    started = time.perf_counter()
    deleted = sites.delete_many({"bulk": {"$in": list(screener_bulks)}}).deleted_count
    store.db.drop_collection(SCRATCH)
    cleanup = time.perf_counter() - started
    log(f"deleted the {deleted} inserted sites and the scratch collection in {cleanup:.1f} s")
    sizes = [len(rows) for _, rows in units]
    median = {name: statistics.median(r) for name, r in rates.items()}
    return {
        "sites_per_round": n_sites,
        "rounds": repeats,
        "batch_sites_mean": round(sum(sizes) / len(sizes), 1),
        "batch_sites_range": [min(sizes), max(sizes)],
        "sites_per_s": {name: round(v, 1) for name, v in median.items()},
        "sites_per_s_runs": {name: [round(v, 1) for v in r] for name, r in rates.items()},
        "ratio_screener_raw_j": round(median["screener"] / median["raw_j"], 3),
        "ratio_raw_j_raw_w1": round(median["raw_j"] / median["raw_w1"], 3),
        "cleanup_s": round(cleanup, 1),
    }


# --------------------------------------------------------------------------------------------
# part 2: a synthetic space of N sites
# --------------------------------------------------------------------------------------------


@dataclass
class Synthetic:
    """A space grown by replicating the seeded bulks, surfaces and sites (raw ``insert_many``).

    Attributes
    ----------
    db : pymongo.database.Database
        Where to write (raw client).
    template : Template
        What is replicated.
    sites_per_surface, surfaces_per_bulk : int
        Mean sites per synthetic surface, surfaces per synthetic bulk.
    batch : int
        Documents per ``insert_many``.
    """

    db: Any
    template: Template
    sites_per_surface: int
    surfaces_per_bulk: int
    batch: int
    adsorbates: list[str]
    bulk_ids: list = field(default_factory=list)
    n_surfaces: int = 0
    n_sites: int = 0
    site_ids: dict[str, list[str]] = field(default_factory=dict)
    site_surfaces: dict[str, list[str]] = field(default_factory=dict)
    copies: int = 0

    def __post_init__(self) -> None:
        self.site_ids = {a: [] for a in self.adsorbates}
        self.site_surfaces = {a: [] for a in self.adsorbates}
        self.scale = self.sites_per_surface / (self.template.n_sites / self.template.n_surfaces)

    def grow(self, target: int) -> dict[str, Any]:
        """Insert bulks, surfaces and sites until the space has ``target`` sites."""
        from bson import ObjectId

        started = time.perf_counter()
        pending: dict[str, list[dict]] = {"bulks": [], "surfaces": [], "sites": []}
        inserted = Counter()
        new_bulks = []
        last_log = started

        def flush(name: str, force: bool = False) -> None:
            while pending[name] and (force or len(pending[name]) >= self.batch):
                chunk, pending[name] = pending[name][: self.batch], pending[name][self.batch :]
                self.db[name].insert_many(chunk, ordered=False)
                inserted[name] += len(chunk)

        template = self.template
        while self.n_sites < target:
            source = template.bulks[self.copies % len(template.bulks)]
            copy, self.copies = self.copies, self.copies + 1
            bulk_id, created = ObjectId(), _now()
            bulk_key = f"{source['key']}#{copy}"
            counts: Counter[str] = Counter()
            surfaces = template.surfaces[source["_id"]]
            n_surfaces = 0
            for k in range(self.surfaces_per_bulk):
                if self.n_sites >= target:
                    break
                surface = surfaces[k % len(surfaces)]
                surface_id = ObjectId()
                surface_str = str(surface_id)
                suffix = f"~{k // len(surfaces)}" if k >= len(surfaces) else ""
                pending["surfaces"].append(
                    {
                        **surface,
                        "_id": surface_id,
                        "bulk": bulk_id,
                        "key": surface["key"].replace(source["key"], bulk_key, 1) + suffix,
                        "created": created,
                    }
                )
                n_surfaces += 1
                rows = template.sites[surface["_id"]]
                count = min(max(1, round(len(rows) * self.scale)), target - self.n_sites)
                for j in range(count):
                    row = rows[j % len(rows)]
                    site_id = ObjectId()
                    repeat = j // len(rows)
                    pending["sites"].append(
                        {
                            **row,
                            "_id": site_id,
                            "surface": surface_id,
                            "bulk": bulk_id,
                            "position_key": row["position_key"] + (f"~{repeat}" if repeat else ""),
                            "created": created,
                        }
                    )
                    counts[row["adsorbate"]] += 1
                    self.site_ids[row["adsorbate"]].append(str(site_id))
                    self.site_surfaces[row["adsorbate"]].append(surface_str)
                self.n_sites += count
                flush("sites")
                flush("surfaces")
            pending["bulks"].append(
                {
                    **source,
                    "_id": bulk_id,
                    "key": bulk_key,
                    "n_surfaces": n_surfaces,
                    "n_sites": dict(sorted(counts.items())),
                    "created": created,
                }
            )
            new_bulks.append(bulk_id)
            self.n_surfaces += n_surfaces
            flush("bulks")
            if time.perf_counter() - last_log > 30:
                last_log = time.perf_counter()
                rate = sum(inserted.values()) / (last_log - started)
                log(f"  {self.n_sites}/{target} sites, {rate:.0f} docs/s")
        for name in pending:
            flush(name, force=True)
        if self.bulk_ids:
            self.db.spaces.update_one(
                {"name": SPACE},
                {"$push": {"bulks": {"$each": new_bulks}}, "$set": {"updated": _now()}},
            )
        else:
            self.db.spaces.insert_one(
                {
                    "name": SPACE,
                    "elements": sorted({e for b in template.bulks for e in b["elements"]}),
                    "adsorbates": list(self.adsorbates),
                    "bulks": new_bulks,
                    "created": _now(),
                    "updated": _now(),
                }
            )
        self.bulk_ids.extend(new_bulks)
        seconds = time.perf_counter() - started
        docs = sum(inserted.values())
        return {
            "seconds": round(seconds, 1),
            "documents": dict(inserted),
            "docs_per_s": round(docs / seconds, 1) if seconds else None,
        }


def store_predictions(synthetic: Synthetic, version: int, rng: np.random.Generator) -> dict:
    """A new model version per adsorbate with random predictions of every site, stored at both
    levels by screener's own code (older versions' chunks dropped as ``score`` drops them)."""
    from screener.learning import (
        KEEP_PREDICTIONS,
        Predictions,
        _store_predictions,
        lowest_per_surface,
    )
    from screener.store.documents import ModelVersion, PredictionChunk
    from workflows.adsorbates import ADSORBATES

    started = time.perf_counter()
    chunks = 0
    for adsorbate in synthetic.adsorbates:
        ids = synthetic.site_ids[adsorbate]
        model = ModelVersion(
            space=SPACE,
            adsorbate=adsorbate,
            profile=PROFILE,
            version=version,
            n_train=200,
            data_key=f"bench-{version}",
            model="bench (not a model: nothing loads it)",
            feature_set="tu+stats",
            cv={},
            info={},
            file=f"{SPACE}/{adsorbate}-{PROFILE}-v{version}.pkl",
            sha256="0" * 64,
            fit_seconds=0.0,
        )
        model.save(force_insert=True)
        mean = rng.normal(ADSORBATES[adsorbate].target, 0.5, len(ids))
        std = rng.uniform(0.02, 0.3, len(ids))
        predictions = Predictions(
            version, list(ids), list(synthetic.site_surfaces[adsorbate]), mean, std
        )
        _store_predictions(model, "site", predictions)
        _store_predictions(model, "surface", lowest_per_surface(predictions))
        scope = {"space": SPACE, "adsorbate": adsorbate, "profile": PROFILE}
        PredictionChunk.objects(**scope, version__lte=version - KEEP_PREDICTIONS).delete()
        ModelVersion.objects(id=model.id).update_one(set__scored_sites=len(ids), set__scored=_now())
        chunks += PredictionChunk.objects(**scope, version=version).count()
    return {"seconds": round(time.perf_counter() - started, 1), "chunks": chunks}


def make_jobs(db: Any, synthetic: Synthetic, n_jobs: int, rng: np.random.Generator) -> dict:
    """Replace the bench's jobs: ``n_jobs`` on random sites of the space, two thirds done with a
    finished adslab calculation, one third submitted (sites marked done and queued)."""
    from bson import ObjectId

    from workflows.adsorbates import ADSORBATES

    started = time.perf_counter()
    old = [j["site"] for j in db.jobs.find({"space": SPACE}, {"site": 1})]
    db.jobs.delete_many({"space": SPACE})
    db.calculations.delete_many({"kind": "adslab", "site": {"$in": old}})
    db.sites.update_many({"_id": {"$in": old}}, {"$set": {"state": "open"}})
    every = [i for a in synthetic.adsorbates for i in synthetic.site_ids[a]]
    picks = rng.choice(len(every), size=min(n_jobs, len(every)), replace=False)
    chosen = [ObjectId(every[int(p)]) for p in picks]
    sites = {s["_id"]: s for s in db.sites.find({"_id": {"$in": chosen}})}
    surfaces = {
        s["_id"]: s
        for s in db.surfaces.find(
            {"_id": {"$in": list({s["surface"] for s in sites.values()})}},
            {"key": 1, "structure": 1},
        )
    }
    jobs, calcs, done, queued = [], [], [], []
    now = _now()
    for number, site_id in enumerate(chosen):
        site = sites[site_id]
        state = "done" if number % 3 else "submitted"
        key = f"{site_id}:{PROFILE}"
        jobs.append(
            {
                "key": key,
                "site": site_id,
                "bulk": site["bulk"],
                "adsorbate": site["adsorbate"],
                "profile": PROFILE,
                "state": state,
                "fw_ids": [3 * number + 1, 3 * number + 2, 3 * number + 3],
                "predicted": {},
                "space": SPACE,
                "cycle": 1 + number // 20,
                "created": now,
                "updated": now,
            }
        )
        if state == "submitted":
            queued.append(site_id)
            continue
        done.append(site_id)
        surface = surfaces[site["surface"]]
        elements = site.get("binding_elements") or []
        calcs.append(
            {
                "key": f"adslab:{key}",
                "kind": "adslab",
                "profile": PROFILE,
                "state": "done",
                "energy": float(rng.normal(-100, 10)),
                "structure": surface.get("structure", {}),
                "max_force": 0.03,
                "ionic_steps": 40,
                "converged": True,
                "site": site_id,
                "surface": site["surface"],
                "bulk": site["bulk"],
                "adsorbate": site["adsorbate"],
                "adsorption_energy": float(rng.normal(ADSORBATES[site["adsorbate"]].target, 0.4)),
                "flags": [],
                "final_site": {},
                "fingerprint": site.get("fingerprint", {}),
                "group": surface["key"],
                "pure": elements[0] if len(set(elements)) == 1 else None,
                "created": now,
            }
        )
    db.jobs.insert_many(jobs)
    if calcs:
        db.calculations.insert_many(calcs)
    db.sites.update_many({"_id": {"$in": done}}, {"$set": {"state": "done"}})
    db.sites.update_many({"_id": {"$in": queued}}, {"$set": {"state": "queued"}})
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "jobs": len(jobs),
        "done": len(done),
        "submitted": len(queued),
        "calculations": len(calcs),
    }


def measure_reads(
    store: Any,
    raw: Any,
    synthetic: Synthetic,
    repeats: int,
    rng: np.random.Generator,
    scan_budget: float,
    *,
    in_scans: bool = True,
) -> dict[str, Any]:
    """Time screener's read calls and raw pymongo reads of the synthetic space.

    The raw reads that stream or count every site are repeated only while their calls took
    less than ``scan_budget`` s in all; the two ``bulk $in`` scans run only when ``in_scans``
    (one of 1M sites takes many minutes).
    """
    from bson import ObjectId

    from screener import candidates, learning, queries

    out: dict[str, Any] = {}
    timing, status = timed(lambda: queries.status(store), repeats)
    mine = status["spaces"][SPACE]
    out["status"] = {
        **timing,
        "check": {
            "sites": mine["sites"],
            "surfaces": mine["surfaces"],
            "bulks": mine["bulks"],
            "counters_exact": sum(mine["sites"].values()) == synthetic.n_sites
            and mine["surfaces"] == synthetic.n_surfaces,
        },
    }
    log(f"  status: {timing['runs_s']} s")
    timing, rows = timed(
        lambda: candidates.candidates(SPACE, "CO", profile=PROFILE, limit=20), repeats
    )
    sources = Counter(r["source"] for r in rows)
    out["candidates"] = {**timing, "check": {"rows": len(rows), "sources": dict(sources)}}
    log(f"  candidates: {timing['runs_s']} s")
    timing, picked = timed(lambda: learning.select(store, SPACE, 20, profile=PROFILE), repeats)
    strategies = Counter(p["strategy"] for p in picked)
    out["select"] = {**timing, "check": {"rows": len(picked), "strategies": dict(strategies)}}
    log(f"  select: {timing['runs_s']} s")
    timing, read = timed(lambda: learning.space_sites(SPACE, "CO"), repeats, scan_budget)
    out["space_sites"] = {
        **timing,
        "check": {"sites": len(read), "expected": len(synthetic.site_ids["CO"])},
        "median_docs_per_s": round(len(read) / timing["median_s"]),
    }
    log(f"  space_sites CO: {timing['runs_s']} s ({len(read)} sites)")

    sites = raw.sites
    every = [i for a in synthetic.adsorbates for i in synthetic.site_ids[a]]
    lookups = 20

    def find_one() -> int:
        ids = [ObjectId(every[int(i)]) for i in rng.integers(0, len(every), lookups)]
        found = sum(sites.find_one({"_id": i}, {"_id": 1}) is not None for i in ids)
        assert found == lookups
        return found

    timing, _ = timed(find_one, repeats)
    out["raw_find_one_by_id"] = {
        **timing,
        "lookups_per_call": lookups,
        "best_ms_per_lookup": round(1000 * timing["best_s"] / lookups, 3),
        "median_ms_per_lookup": round(1000 * timing["median_s"] / lookups, 3),
    }
    log(f"  raw find_one x{lookups}: {timing['runs_s']} s")

    def stream(name: str, run: Callable[[], int]) -> None:
        timing, streamed = timed(run, repeats, scan_budget)
        out[name] = {
            **timing,
            "docs": streamed,
            "best_docs_per_s": round(streamed / timing["best_s"]),
            "median_docs_per_s": round(streamed / timing["median_s"]),
        }
        log(f"  {name}: {timing['runs_s']} s ({streamed} docs)")

    stream("raw_find_collection_ids", lambda: sum(1 for _ in sites.find({}, {"_id": 1})))
    stream(
        "raw_find_ids_per_bulk",
        lambda: sum(
            sum(1 for _ in sites.find({"bulk": bulk}, {"_id": 1})) for bulk in synthetic.bulk_ids
        ),
    )
    if not in_scans:
        return out
    query = {"bulk": {"$in": list(synthetic.bulk_ids)}}
    stream("raw_find_all_ids", lambda: sum(1 for _ in sites.find(query, {"_id": 1})))
    timing, counted = timed(lambda: sites.count_documents(query), repeats, scan_budget)
    out["raw_count_documents"] = {**timing, "count": counted}
    log(f"  raw count_documents: {timing['runs_s']} s ({counted})")
    return out


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def print_report(result: dict[str, Any]) -> None:
    """Human-readable tables.

    Parameters
    ----------
    result : dict
        What :func:`main` collected.
    """
    print(f"machine: {result['machine']}")
    print(f"load average at start: {result['load_start']}, at end: {result.get('load_end')}")
    s = result["seed"]
    total = sum(s["sites"].values())
    print(
        f"== seeding ({result['server']})\n"
        f"real seed() {','.join(s['elements'])} {','.join(s['adsorbates'])} max Miller "
        f"{s['max_miller']}, in-process enumeration: {total} sites ({_counts(s['sites'])}), "
        f"{s['surfaces']} surfaces, {s['bulks']} bulks in {s['seconds']:.2f} s: "
        f"{s['sites_per_s']:.0f} sites/s (enumeration included)"
    )
    t = result.get("insert")
    if t:
        print(
            f"site insertion: {t['sites_per_round']} sites per path and round, one insert_many "
            f"per surface (mean {t['batch_sites_mean']} sites, {t['batch_sites_range'][0]}-"
            f"{t['batch_sites_range'][1]}), median of {t['rounds']} rounds, order alternated"
        )
        names = {
            "screener": "seed._insert_sites (mongoengine client, j=True)",
            "raw_j": "raw pymongo insert_many, j=True",
            "raw_w1": "raw pymongo insert_many, default write concern",
        }
        for key, label in names.items():
            runs = ", ".join(f"{v:.0f}" for v in t["sites_per_s_runs"][key])
            print(f"  {label:50s} {t['sites_per_s'][key]:8.0f} sites/s  (rounds: {runs})")
        ratio = t["ratio_screener_raw_j"]
        verdict = "met" if ratio >= 0.8 else "NOT met"
        print(f"  ratio screener/raw (j=True): {ratio:.2f} (target >= 0.80: {verdict})")
        print(f"  ratio raw j=True / raw default: {t['ratio_raw_j_raw_w1']:.2f}")
    for size in result["sizes"]:
        build = size["build"]
        print(
            f"== {size['sites']} sites: space {SPACE}, {size['bulks']} bulks, "
            f"{size['surfaces']} surfaces ({size['sites_per_surface']:.0f} sites/surface); "
            f"this step inserted {_counts(build['documents'])} in {build['seconds']:.0f} s "
            f"({build['docs_per_s']:.0f} docs/s); predictions stored in "
            f"{size['predictions']['seconds']:.1f} s ({size['predictions']['chunks']} chunks); "
            f"{size['jobs']['jobs']} jobs, {size['jobs']['calculations']} calculations; "
            f"load {size['load']}"
        )
        reads = size["reads"]
        print(f"  {'call':44s} {'best s':>9s} {'median s':>9s}  runs s / notes")
        labels = [
            ("status", "queries.status(store)"),
            ("candidates", "candidates.candidates(CO, limit=20)"),
            ("select", "learning.select(n=20)"),
            ("space_sites", "learning.space_sites(CO) (scoring's read)"),
            ("raw_find_one_by_id", "raw find_one by _id (20 lookups)"),
            ("raw_find_collection_ids", "raw find every _id of sites (no filter)"),
            ("raw_find_ids_per_bulk", "raw find space's site _ids, bulk by bulk"),
            ("raw_find_all_ids", "raw find space's site _ids (bulk $in)"),
            ("raw_count_documents", "raw count_documents (bulk $in)"),
        ]
        for key, label in labels:
            if key not in reads:
                continue  # the bulk $in scans, skipped at this size
            row = reads[key]
            note = ", ".join(f"{r:.3f}" for r in row["runs_s"])
            if key == "raw_find_one_by_id":
                note += f"; {row['median_ms_per_lookup']:.2f} ms per lookup"
            if key in ("raw_find_collection_ids", "raw_find_ids_per_bulk", "raw_find_all_ids"):
                note += f"; {row['docs']} docs, {row['median_docs_per_s']} docs/s"
            if key == "raw_count_documents":
                note += f"; count {row['count']}"
            if key == "space_sites":
                note += f"; {row['check']['sites']} sites, {row['median_docs_per_s']} docs/s"
            if key in ("status", "candidates"):
                verdict = "met" if row["median_s"] < 2 else "NOT met"
                note += f"; < 2 s: {verdict}"
            print(f"  {label:44s} {row['best_s']:9.4f} {row['median_s']:9.4f}  {note}")
        print(
            f"  checks: status sites {_counts(reads['status']['check']['sites'])} (counters "
            f"exact: {reads['status']['check']['counters_exact']}); candidates "
            f"{reads['candidates']['check']['rows']} rows "
            f"({_counts(reads['candidates']['check']['sources'])}); select "
            f"{reads['select']['check']['rows']} rows "
            f"({_counts(reads['select']['check']['strategies'])})"
        )
        memory, disk = size["server_memory"], size["disk"]
        print(
            f"  server RSS {memory['rss_mb']} MB (peak {memory['peak_rss_mb']} MB); "
            f"db/ on disk {disk['apparent_mb']} MB (allocated {disk['allocated_mb']} MB)"
        )


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the bench.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="sites per read step")
    parser.add_argument("--elements", default="Cu,Pd", help="seeded space (Cu,Pd)")
    parser.add_argument("--adsorbates", default="CO,H", help="seeded adsorbates (CO,H)")
    parser.add_argument("--max-miller", type=int, default=1, help="seeded Miller index (1)")
    parser.add_argument("--insert-sites", type=int, default=10000, help="sites per insert round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds and calls per timing (3)")
    parser.add_argument("--sites-per-surface", type=int, default=100, help="synthetic (100)")
    parser.add_argument("--surfaces-per-bulk", type=int, default=12, help="synthetic (12)")
    parser.add_argument("--batch", type=int, default=1000, help="documents per insert_many")
    parser.add_argument("--jobs", type=int, default=300, help="jobs per size (300)")
    parser.add_argument(
        "--scan-budget",
        type=float,
        default=60.0,
        help="s after which a raw full scan is not repeated (60)",
    )
    parser.add_argument(
        "--in-scans-up-to",
        type=int,
        default=100_000,
        help="largest size at which the raw bulk $in scans run (100000)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the data directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    try:
        args.size_list = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error("--sizes: comma-separated integers")
    if not args.size_list or args.size_list[0] < 1:
        parser.error("--sizes must be positive")
    if args.repeats < 1 or args.insert_sites < 1 or args.batch < 1:
        parser.error("--repeats, --insert-sites and --batch must be at least 1")
    return args


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Seed, time insertion, grow the synthetic space size by size and time the reads."""
    from importlib.metadata import version

    import pymongo

    from screener.store import server

    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "server": f"SecantusDB {version('SecantusDB')}, pymongo {version('pymongo')}, "
        f"mongoengine {version('mongoengine')}",
        "load_start": _load(),
        "options": {k: v for k, v in vars(args).items() if k != "size_list"},
    }
    rng = np.random.default_rng(0)
    with bench_store(args.keep_data) as (store, data_dir):
        pid = server.status(data_dir).pid
        log(f"server pid {pid} at {store.uri}, data {data_dir}")
        raw_j = pymongo.MongoClient(store.uri, journal=True)
        raw_w1 = pymongo.MongoClient(store.uri)
        try:
            name = store.settings.db_name
            log(f"seeding {args.elements} {args.adsorbates} (Miller <= {args.max_miller})")
            result["seed"] = real_seed(store, args.elements, args.adsorbates, args.max_miller)
            log(f"seed: {result['seed']}")
            template = load_template(raw_j[name], result["seed"]["space"])
            log(
                f"site insertion: {args.insert_sites} sites x {args.repeats} rounds x 3 paths "
                "(screener, raw j=True, raw default)"
            )
            result["insert"] = insert_throughput(
                store, raw_j[name], raw_w1[name], template, args.insert_sites, args.repeats
            )
            synthetic = Synthetic(
                raw_w1[name],
                template,
                args.sites_per_surface,
                args.surfaces_per_bulk,
                args.batch,
                list(result["seed"]["adsorbates"]),
            )
            result["sizes"] = []
            for number, size in enumerate(args.size_list, start=1):
                log(f"growing {SPACE} to {size} sites")
                build = synthetic.grow(size)
                log(f"built in {build['seconds']} s ({build['docs_per_s']} docs/s)")
                predictions = store_predictions(synthetic, number, rng)
                log(f"predictions v{number} stored: {predictions}")
                jobs = make_jobs(raw_w1[name], synthetic, args.jobs, rng)
                log(f"jobs: {jobs}")
                row: dict[str, Any] = {
                    "sites": synthetic.n_sites,
                    "bulks": len(synthetic.bulk_ids),
                    "surfaces": synthetic.n_surfaces,
                    "sites_per_surface": synthetic.n_sites / synthetic.n_surfaces,
                    "build": build,
                    "predictions": predictions,
                    "jobs": jobs,
                    "load": _load(),
                }
                log(f"timing reads at {size} sites (load {row['load']})")
                row["reads"] = measure_reads(
                    store,
                    raw_j[name],
                    synthetic,
                    args.repeats,
                    rng,
                    args.scan_budget,
                    in_scans=size <= args.in_scans_up_to,
                )
                row["server_memory"] = server_memory(server.status(data_dir).pid)
                row["disk"] = disk_mb(data_dir / "db")
                log(f"server memory {row['server_memory']}, disk {row['disk']}")
                result["sizes"].append(row)
        finally:
            raw_j.close()
            raw_w1.close()
    result["load_end"] = _load()
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print the report.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments.

    Returns
    -------
    int
        Exit status: 0, or 130 when interrupted (the server is stopped and its directory removed
        all the same).
    """
    args = parse_args(argv)
    for name in FOREIGN_SETTINGS:
        if os.environ.get(name):
            log(f"ignoring {name} (the bench uses its own server)")
            os.environ.pop(name)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    started = time.perf_counter()
    try:
        result = run(args)
    except KeyboardInterrupt:
        log("interrupted: server stopped, data directory removed")
        return 130
    result["wall_s"] = round(time.perf_counter() - started, 1)
    log(f"done in {result['wall_s']} s")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
