"""Rockets through Slurm against rockets in-process (EMT), the daemon's overhead per cycle, and
the delay from a job's submission to its start.

One fresh SecantusDB server (bench/store.py's :func:`bench_store`) gets a seeded space (Cu,
CO and H, Miller <= 1).  Then, on the same machine and in the same run:

1. in-process: ``--sites`` sites on half of the surfaces are submitted (EMT) and
   :func:`screener.jobs.workers.run_workers` runs every rocket; rockets per minute is the
   baseline;
2. Slurm: as many sites on the other surfaces (their own slab steps) are submitted and
   :class:`screener.jobs.slurm.SlurmLauncher` keeps ``--max-queued`` of their fireworks in
   Slurm jobs until all are done (each rocket its own job, ``rlaunch singleshot``), ingesting
   as they finish; rockets per minute and its ratio to 1;
3. the delay from submitting a job to its rocket starting, from FireWorks' launch records
   (RESERVED, just before ``sbatch``, to RUNNING, inside the job);
4. the daemon's overhead: one :class:`screener.daemon.Daemon` cycle with the external launcher
   (reconcile, ingest, train, score, select, submit: everything but the rockets), against the
   mean in-process rocket.

Needs a Slurm (``scripts/local-slurm.sh start``).  EMT is a toy oracle: rockets take well under a
second, so this measures the machinery, not DFT.

    .venv/bin/python bench/cluster.py [--sites 6] [--max-queued 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from typing import Any

from store import bench_store, log

from workflows.profiles import PROFILES

SPACE = "Cu"


def _sites(n: int, half: int) -> list[str]:
    """``n`` H sites on one half of the surfaces (``half`` 0 or 1), one per surface where they
    suffice: the two halves share only the gas and bulk steps."""
    from screener.store import Site

    by_surface: dict[str, list[str]] = {}
    for site in Site.objects(adsorbate="H").order_by("id").only("id", "surface"):
        by_surface.setdefault(str(site.surface.id), []).append(str(site.id))
    surfaces = sorted(by_surface)[half::2]
    rounds = [by_surface[s][i] for i in range(100) for s in surfaces if i < len(by_surface[s])]
    return rounds[:n]


def in_process(store: Any, sites: list[str]) -> dict[str, Any]:
    from screener.jobs.submit import submit_batch
    from screener.jobs.workers import run_workers

    submit_batch(sites, "emt", store)
    started = time.perf_counter()
    counts = run_workers(store)
    seconds = time.perf_counter() - started
    rockets = counts.get("rockets", 0)
    return {
        "sites": len(sites),
        "rockets": rockets,
        "seconds": round(seconds, 2),
        "rockets_per_min": round(60 * rockets / seconds, 1),
    }


def through_slurm(store: Any, sites: list[str], max_queued: int) -> dict[str, Any]:
    from screener.jobs.ingest import ingest
    from screener.jobs.slurm import SlurmLauncher
    from screener.jobs.submit import submit_batch
    from screener.queries import job_counts

    launchpad = store.launchpad()
    before = {doc["launch_id"] for doc in launchpad.launches.find({}, {"launch_id": 1})}
    submit_batch(sites, "emt", store)
    launcher = SlurmLauncher(store)
    started = time.perf_counter()
    jobs = 0
    while True:
        jobs += launcher.top_up(max_queued).submitted
        ingest(store)
        if job_counts(SPACE, PROFILES["emt"].identity)["queued"] == 0:
            break
        time.sleep(1.0)
    seconds = time.perf_counter() - started
    launches = {d["launch_id"] for d in launchpad.launches.find({}, {"launch_id": 1})} - before
    return {
        "sites": len(sites),
        "rockets": len(launches),  # one rocket per Slurm job
        "slurm_jobs": jobs,
        "seconds": round(seconds, 2),
        "rockets_per_min": round(60 * len(launches) / seconds, 1),
        "delays_s": submit_to_start(launchpad, launches),
    }


def submit_to_start(launchpad: Any, launch_ids: set[int]) -> dict[str, Any]:
    """Seconds from a firework's reservation (its job is submitted right after) to its rocket
    starting inside the job (the launch going RUNNING), from FireWorks' launch records."""
    delays = []
    for launch in launchpad.launches.find(
        {"launch_id": {"$in": sorted(launch_ids)}}, {"state_history": 1}
    ):
        times = {h["state"]: h.get("created_on") for h in launch.get("state_history") or ()}
        if times.get("RESERVED") and times.get("RUNNING"):
            reserved, running = (
                datetime.fromisoformat(str(times[k])) for k in ("RESERVED", "RUNNING")
            )
            delays.append((running - reserved).total_seconds())
    if not delays:
        return {"jobs": 0}
    return {
        "jobs": len(delays),
        "median": round(statistics.median(delays), 2),
        "max": round(max(delays), 2),
    }


def daemon_cycle(store: Any) -> dict[str, Any]:
    from screener.daemon import Daemon

    records: list[dict] = []
    daemon = Daemon(
        store, SPACE, "emt", batch=2, cycles=1, interval=0, launcher="external", emit=records.append
    )
    daemon.run()
    cycle = next(r for r in records if r["event"] == "cycle")
    return {"seconds": cycle["seconds"], "timings": cycle["timings"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from screener.enumerate.seed import plan_seed, seed

    result: dict[str, Any] = {"options": vars(args)}
    with bench_store(False) as (store, _):
        log("seeding Cu (CO, H; Miller <= 1)")
        seed(plan_seed("Cu", "CO,H", max_miller=1, settings=store.settings), store)
        log(f"in-process: {args.sites} sites")
        result["in_process"] = in_process(store, _sites(args.sites, 0))
        log(f"in-process: {result['in_process']}")
        log(f"Slurm: {args.sites} other sites, {args.max_queued} queued at most")
        result["slurm"] = through_slurm(store, _sites(args.sites, 1), args.max_queued)
        log(f"Slurm: {result['slurm']}")
        result["ratio_slurm_over_in_process"] = round(
            result["slurm"]["rockets_per_min"] / result["in_process"]["rockets_per_min"], 3
        )
        result["daemon_cycle"] = daemon_cycle(store)
        per_rocket = result["in_process"]["seconds"] / max(1, result["in_process"]["rockets"])
        result["cycle_over_in_process_rocket"] = round(
            result["daemon_cycle"]["seconds"] / per_rocket, 2
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=6)
    parser.add_argument("--max-queued", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    ip, sl = result["in_process"], result["slurm"]
    print(f"in-process: {ip['rockets']} rockets in {ip['seconds']} s: {ip['rockets_per_min']}/min")
    print(
        f"Slurm:      {sl['rockets']} rockets in {sl['seconds']} s ({sl['slurm_jobs']} jobs): "
        f"{sl['rockets_per_min']}/min, {result['ratio_slurm_over_in_process']} x in-process"
    )
    print(f"submission to start: {sl['delays_s']}")
    cycle = result["daemon_cycle"]
    print(
        f"daemon cycle without rockets: {cycle['seconds']} s "
        f"({result['cycle_over_in_process_rocket']} x an in-process rocket): {cycle['timings']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
