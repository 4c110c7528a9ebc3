"""The closed loop: one daemon per space, unattended, crash-safe.

A cycle: reconcile half-submitted jobs -> ingest finished and failed fireworks -> retrain when
there is new data -> score every site -> select a batch that tops the queue up to
``max_queued`` -> submit -> (``launcher=local``: run the FireWorks rockets here) -> record the cycle
-> sleep ``interval``.  It stops on ``cycles``, ``budget`` (adsorption-energy jobs of the profile
in the space), SIGTERM/SIGINT (after the step in flight), or when nothing is left to do.

Leadership: a :class:`~screener.store.documents.Lease` per space with a heartbeat.  A second
daemon on a space whose lease is fresh exits with :class:`LeaseHeldError`; a stale lease (no
heartbeat for ``lease_stale_s``, or its process is gone from this host) is taken over.  Taking
a lease is one atomic ``find_one_and_update`` (or an insert against the unique index), so of two
daemons starting at once one wins.

Crash safety rests on the steps' own guarantees and on every write being journaled before it is
acknowledged: the job ledger entry is written before a workflow is added and reconciled after a
crash (:mod:`screener.jobs.submit`); a firework's outcome is in FireWorks before it is recorded
and ingestion is idempotent (:mod:`screener.jobs.ingest`); rockets left RUNNING by a dead local
worker are rerun (:mod:`screener.jobs.workers`).  A kill -9 of the daemon, or of the database
server, loses at most the step in flight, which the next start redoes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from screener.errors import InputError, ScreenerError
from screener.faults import crash_point
from screener.queries import get_space, is_paused, job_counts
from screener.store import Store
from screener.store.documents import Cycle, Lease, ModelVersion, _now
from screener.store.server import pid_alive

log = logging.getLogger(__name__)

LAUNCHERS = ("local", "external", "slurm")
SIGNALS = ("SIGTERM", "SIGINT")


class LeaseHeldError(ScreenerError):
    exit_code = 3


# -- pause / resume ----------------------------------------------------------------------------
def set_paused(store: Store, space: str, paused: bool) -> None:
    """Pause or resume a space's daemon: a flag on the space's lease, read before every cycle."""
    name = get_space(space).name  # unknown space: InputError, nothing written
    Lease._get_collection().update_one(
        {"space": name},
        {"$set": {"paused": paused}, "$setOnInsert": {"owner": "", "released": False}},
        upsert=True,
    )


# -- the lease ---------------------------------------------------------------------------------
def _owner_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


class LeaseKeeper:
    """Acquire, refresh and release one space's lease."""

    def __init__(self, store: Store, space: str) -> None:
        self.store = store
        self.space = space
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.took_over: str | None = None
        self.collection = Lease._get_collection()

    def acquire(self) -> None:
        now = _now()
        stale = now - dt.timedelta(seconds=self.store.settings.lease_stale_s)
        current = self.collection.find_one({"space": self.space})
        takeable = (
            current is None
            or not current.get("owner")
            or current.get("released")
            or current.get("heartbeat") is None
            or current["heartbeat"] < stale
            or _owner_dead(current["owner"])
        )
        if not takeable:
            age = (now - current["heartbeat"]).total_seconds()
            raise LeaseHeldError(
                f"space '{self.space}' is run by daemon {current['owner']} (heartbeat {age:.0f} s "
                f"ago); stop it first, or wait {self.store.settings.lease_stale_s:.0f} s after "
                "it died"
            )
        fields = {
            "owner": self.owner,
            "acquired": now,
            "heartbeat": now,
            "state": "starting",
            "released": False,
        }
        if current is None:
            try:
                self.collection.insert_one({"space": self.space, **fields})
            except DuplicateKeyError:  # another daemon inserted first (real MongoDB)
                raise LeaseHeldError(
                    f"space '{self.space}' was just taken by another daemon"
                ) from None
        else:
            previous = current.get("owner")
            won = self.collection.find_one_and_update(
                {"_id": current["_id"], "owner": previous, "heartbeat": current.get("heartbeat")},
                {"$set": fields},
                return_document=ReturnDocument.AFTER,
            )
            if won is None:
                raise LeaseHeldError(f"space '{self.space}' was just taken by another daemon")
            if previous and not current.get("released"):
                self.took_over = previous

    def beat(self, state: str) -> None:
        """Refresh the heartbeat; raises LeaseHeldError if another daemon took the lease."""
        done = self.collection.update_one(
            {"space": self.space, "owner": self.owner},
            {"$set": {"heartbeat": _now(), "state": state}},
        )
        if done.matched_count == 0:
            raise LeaseHeldError(f"lost the lease of space '{self.space}' to another daemon")

    def release(self) -> None:
        self.collection.update_one(
            {"space": self.space, "owner": self.owner},
            {"$set": {"released": True, "state": "stopped", "heartbeat": _now()}},
        )


# -- the loop ----------------------------------------------------------------------------------
class Daemon:
    """The loop for one space and profile (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        space: str,
        profile: str,
        *,
        batch: int | None = None,
        max_queued: int | None = None,
        interval: float | None = None,
        cycles: int | None = None,
        budget: int | None = None,
        strategy: str = "target-window",
        host_workers: bool | None = None,
        launcher: str | None = None,
        drain: bool = False,
        drain_poll_s: float = 5.0,
        seed: int = 0,
        emit: Callable[[dict], None] | None = None,
    ) -> None:
        from screener.profiles import current_identity
        from screener.settings import MAX_LOOP_INTERVAL
        from screener.surrogate.strategies import check_strategy

        settings = store.settings
        self.store = store
        doc = get_space(space)
        self.space = doc.name
        self.profile = current_identity(profile, list(doc.elements))
        self.batch = batch if batch is not None else settings.loop_batch
        self.max_queued = max_queued if max_queued is not None else settings.max_queued
        self.interval = interval if interval is not None else settings.loop_interval
        self.cycles = cycles
        self.budget = budget
        limits = (
            ("sites submitted per cycle", self.batch),
            ("jobs queued at once", self.max_queued),
            ("cycles", cycles),
            ("budget of DFT jobs", budget),
        )
        for name, value in limits:
            if value is not None and value < 1:
                raise InputError(f"{name} must be >= 1 (got {value})")
        if not 0 <= self.interval <= MAX_LOOP_INTERVAL:  # also NaN
            raise InputError(
                f"seconds between cycles must be between 0 and {MAX_LOOP_INTERVAL:.0f} "
                f"(got {self.interval})"
            )
        self.strategy = check_strategy(strategy)
        self.launcher = launcher or settings.launcher
        if self.launcher not in LAUNCHERS:
            raise InputError(f"unknown launcher '{self.launcher}' (one of: {', '.join(LAUNCHERS)})")
        if host_workers and self.launcher == "slurm":
            raise InputError("rockets run in Slurm jobs with the slurm launcher, not in the daemon")
        if host_workers is None:
            host_workers = self.launcher == "local"
        self.host_workers = host_workers
        self.slurm = None
        if self.launcher == "slurm":
            from screener.jobs.slurm import SlurmLauncher, slurm_jobs

            slurm_jobs()  # fails now, with a clear message, when Slurm does not answer
            self.slurm = SlurmLauncher(store)
        self.drain = drain
        self.drain_poll_s = drain_poll_s
        self.seed = seed
        self.emit = emit or _print_line
        self.stop_reason: str | None = None
        self._wake = threading.Event()
        self.lease = LeaseKeeper(store, self.space)

    # signals -----------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._wake.set()

    def _install_signals(self) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        previous = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous.append((sig, signal.getsignal(sig)))
            signal.signal(sig, lambda number, frame: self.request_stop(signal.Signals(number).name))
        return previous

    # the loop ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        previous = self._install_signals()
        self.lease.acquire()
        if self.lease.took_over:
            self.emit(
                {"event": "lease", "space": self.space, "took_over_from": self.lease.took_over}
            )
        done = 0
        try:
            while self.stop_reason is None:
                if is_paused(self.space):
                    self.lease.beat("paused")
                    self._sleep(min(self.interval, 5.0) or 1.0)
                    continue
                record = self.cycle()
                done += 1
                if self.cycles is not None and done >= self.cycles:
                    self.request_stop("cycles")
                elif record["finished_reason"]:
                    self.request_stop(record["finished_reason"])
                else:
                    self.lease.beat("sleeping")
                    self._sleep(self.interval)
            if self.drain and self.stop_reason not in SIGNALS:
                self._drain()
        finally:
            self.lease.release()
            for sig, handler in previous:
                signal.signal(sig, handler)
        summary = {"event": "stopped", "space": self.space, "reason": self.stop_reason}
        summary["cycles"] = done
        self.emit(summary)
        return summary

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)

    def _drain(self) -> None:
        """After the last cycle: run, or wait for, the submitted jobs until each is done or
        failed, ingesting as they finish (a signal stops the wait)."""
        from screener.jobs.ingest import ingest
        from screener.jobs.submit import reconcile
        from screener.jobs.workers import rerun_lost, run_workers

        started, passes, ingested = time.perf_counter(), 0, 0
        reason = self.stop_reason
        self.stop_reason = None
        while self.stop_reason is None:
            self.lease.beat("draining")
            reconcile(self.store)
            if self.host_workers:
                run_workers(
                    self.store,
                    on_rocket=lambda n: self.lease.beat("draining"),
                    should_stop=lambda: self.stop_reason is not None,
                )
            else:
                rerun_lost(self.store.launchpad(), self.store.settings.lostrun_hours)
            if self.slurm is not None:
                self.slurm.top_up(self.max_queued)
            ingested += sum(ingest(self.store).values())
            passes += 1
            if job_counts(self.space, self.profile)["queued"] == 0:
                break
            self._sleep(self.drain_poll_s)
        jobs = job_counts(self.space, self.profile)
        self.emit(
            {
                "event": "drained",
                "space": self.space,
                "seconds": round(time.perf_counter() - started, 1),
                "passes": passes,
                "jobs": jobs,
                "complete": jobs["queued"] == 0,
            }
        )
        self.stop_reason = self.stop_reason or reason

    def cycle(self) -> dict[str, Any]:
        """One cycle; returns its record (also stored as a Cycle document and emitted)."""
        from screener.jobs.ingest import ingest
        from screener.jobs.submit import reconcile, submit_batch
        from screener.jobs.workers import rerun_lost, run_workers
        from screener.learning import select, train

        store, timings, counts = self.store, {}, {}
        number = (Cycle.objects(space=self.space).order_by("-number").first() or Cycle()).number
        number = (number or 0) + 1
        started = time.perf_counter()
        wall_start = _now()

        def step(name: str) -> None:
            timings[name] = round(time.perf_counter() - step.mark, 3)
            step.mark = time.perf_counter()
            self.lease.beat(name)

        step.mark = started
        self.lease.beat("cycle")
        counts["reconciled"] = reconcile(store)
        if not self.host_workers:  # rockets run elsewhere: their lost runs are put back here
            counts["lost_reruns"] = rerun_lost(store.launchpad(), store.settings.lostrun_hours)
        counts["ingested"] = ingest(store)
        step("ingest")
        crash_point("after-ingest")

        trained = train(store, self.space, profile=self.profile, seed=self.seed)
        counts["trained"] = {t.adsorbate: t.version for t in trained if t.trained}
        step("train")
        crash_point("after-train")

        jobs = job_counts(self.space, self.profile)
        room = self.max_queued - jobs["queued"]
        if self.budget is not None:
            room = min(room, self.budget - jobs["total"])
        wanted = max(0, min(self.batch, room))
        chosen = []
        if wanted and self.stop_reason is None:
            chosen = select(
                store,
                self.space,
                wanted,
                profile=self.profile,
                strategy=self.strategy,
                seed=self.seed + number,
            )
        counts["selected"] = len(chosen)
        step("score_select")
        crash_point("after-select")

        if chosen:
            context = [
                {
                    "predicted": {
                        k: row[k] for k in ("mean", "std", "model_version", "strategy", "target")
                    },
                    "space": self.space,
                    "cycle": number,
                }
                for row in chosen
            ]
            results = submit_batch(
                [row["site_id"] for row in chosen], self.profile, store, context=context
            )
            counts["submitted"] = sum(1 for r in results if r.new)
        else:
            counts["submitted"] = 0
        step("submit")
        crash_point("after-submit")

        if self.host_workers and self.stop_reason is None:
            worked = run_workers(
                store,
                on_rocket=lambda n: self.lease.beat("workers"),
                should_stop=lambda: self.stop_reason is not None,
            )
            counts["rockets"] = worked.get("rockets", 0)
            counts["worker_ingested"] = {
                k: v for k, v in worked.items() if k not in ("rockets", "lost_reruns")
            }
            counts["lost_reruns"] = worked.get("lost_reruns", 0)
        if self.slurm is not None and self.stop_reason is None:
            counts["slurm"] = self.slurm.top_up(self.max_queued).as_dict()
        step("workers")

        jobs = job_counts(self.space, self.profile)
        models = {
            m.adsorbate: {"version": m.version, "n_train": m.n_train, "cv": dict(m.cv)}
            for adsorbate in get_space(self.space).adsorbates
            if (m := _latest(self.space, adsorbate, self.profile)) is not None
        }
        finished_reason = None
        if self.budget is not None and jobs["total"] >= self.budget and jobs["queued"] == 0:
            finished_reason = "budget"
        elif not chosen and jobs["queued"] == 0 and wanted > 0:
            finished_reason = "no sites left to select"
        seconds = round(time.perf_counter() - started, 3)
        Cycle(
            space=self.space,
            profile=self.profile,
            number=number,
            owner=self.lease.owner,
            started=wall_start,
            seconds=seconds,
            timings=timings,
            counts=_jsonable(counts),
            models=models,
            queued=jobs["queued"],
            jobs=jobs,
        ).save(force_insert=True)
        self.lease.beat("recorded")
        record = {
            "event": "cycle",
            "space": self.space,
            "profile": self.profile,
            "cycle": number,
            "seconds": seconds,
            "timings": timings,
            "counts": _jsonable(counts),
            "jobs": jobs,
            "models": {a: m["version"] for a, m in models.items()},
            "finished_reason": finished_reason,
        }
        self.emit(record)
        return record


def _latest(space: str, adsorbate: str, profile: str) -> ModelVersion | None:
    return (
        ModelVersion.objects(space=space, adsorbate=adsorbate, profile=profile)
        .order_by("-version")
        .first()
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _print_line(record: dict) -> None:
    sys.stdout.write(json.dumps(record, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()
