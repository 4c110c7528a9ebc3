"""The daemon: cycles with EMT, lease, pause, SIGTERM, and kill -9 at random points."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from screener.daemon import Daemon, LeaseHeldError, LeaseKeeper, set_paused
from screener.enumerate.seed import plan_seed, seed
from screener.errors import InputError
from screener.jobs.workers import RESERVE_GRACE_S
from screener.learning import MIN_TRAIN, training_rows
from screener.queries import is_paused
from screener.store import Site, open_store
from screener.store.documents import Calculation, Cycle, Job, Lease, _now
from screener.store.server import ServerPaths, pid_alive
from tests.conftest import env_of

SCREENER = str(Path(sys.executable).with_name("screener"))


def _seed(settings, elements: str) -> None:
    with open_store(settings) as store:
        seed(plan_seed(elements, "CO,H", max_miller=1, settings=settings), store)


@pytest.fixture
def cu(settings):
    _seed(settings, "Cu")
    return settings


def _invariants(settings) -> dict[str, int]:
    """No job submitted twice; every finished firework recorded once; ledger consistent."""
    with open_store(settings) as store:
        from screener.jobs.ingest import ingest

        ingest(store)  # what a restart would pick up must already be in FireWorks
        launchpad = store.launchpad()
        jobs = list(Job._get_collection().find({}, {"key": 1, "state": 1}))
        keys = Counter(j["key"] for j in jobs)
        assert max(keys.values(), default=1) == 1, "a (site, profile) has two jobs"
        adslab_fws = Counter(
            fw["spec"]["screener_job"]
            for fw in launchpad.fireworks.find({"spec.screener_job": {"$exists": True}})
        )
        assert max(adslab_fws.values(), default=1) == 1, "a workflow was added twice"
        assert set(adslab_fws) <= set(keys), "a workflow without a ledger entry"
        calc_keys = Counter(c["key"] for c in Calculation._get_collection().find({}, {"key": 1}))
        assert max(calc_keys.values(), default=1) == 1, "a calculation recorded twice"
        completed = {
            fw["spec"]["screener_key"]
            for fw in launchpad.fireworks.find(
                {"state": "COMPLETED", "spec.screener_key": {"$exists": True}}
            )
        }
        assert completed <= set(calc_keys), "a finished firework is missing from the store"
        done = [j for j in jobs if j["state"] == "done"]
        for job in done:
            assert calc_keys[f"adslab:{job['key']}"] == 1
        return {"jobs": len(jobs), "done": len(done), "calculations": len(calc_keys)}


def test_cycles_submit_train_and_record(settings):
    _seed(settings, "Cu,Pd")
    lines: list[dict] = []
    with open_store(settings) as store:
        daemon = Daemon(store, "Cu-Pd", "emt", cycles=5, batch=8, interval=0, emit=lines.append)
        summary = daemon.run()
    assert summary["reason"] == "cycles" and summary["cycles"] == 5
    cycles = [line for line in lines if line["event"] == "cycle"]
    assert [c["cycle"] for c in cycles] == [1, 2, 3, 4, 5]
    assert all(c["counts"]["submitted"] == 8 for c in cycles)
    assert cycles[-1]["jobs"] == {"total": 40, "done": 40, "queued": 0}
    # an adsorbate trains in a cycle once the earlier cycles gave it >= MIN_TRAIN unflagged
    # results (before that its batches are random); EMT flags some CO (dissociated) and many H
    # (migrated) results, so which cycle that is depends on the sites drawn
    with open_store(settings, readonly=True):
        clean_by_cycle: dict[int, Counter] = {}
        for job in Job._get_collection().find({}, {"key": 1, "adsorbate": 1, "cycle": 1}):
            calc = Calculation._get_collection().find_one({"key": f"adslab:{job['key']}"})
            ok = calc["state"] == "done" and not calc["flags"]
            clean_by_cycle.setdefault(job["cycle"], Counter())[job["adsorbate"]] += int(ok)
    versions: Counter = Counter()
    for cycle in cycles:
        before = sum(
            (clean_by_cycle.get(k, Counter()) for k in range(1, cycle["cycle"])), Counter()
        )
        due = sorted(a for a, n in before.items() if n >= MIN_TRAIN)
        versions.update(due)
        assert cycle["counts"]["trained"] == {a: versions[a] for a in due}, cycle["cycle"]
        assert cycle["models"] == dict(versions), cycle["cycle"]
    assert not cycles[0]["counts"]["trained"] and versions, "nothing trained in 5 cycles"
    for cycle in cycles:
        assert set(cycle["timings"]) == {"ingest", "train", "score_select", "submit", "workers"}
    with open_store(settings, readonly=True):
        assert Cycle.objects(space="Cu-Pd").count() == 5
        lease = Lease.objects(space="Cu-Pd").get()
        assert lease.released and lease.state == "stopped"
        # jobs chosen by a model carry what it predicted, for the parity plot
        chosen = [j for j in Job.objects if j.predicted.get("model_version")]
        assert chosen and all(j.predicted["std"] > 0 for j in chosen)
        # own results train as the site they calculated (the fingerprint sites are scored by)
        rows = training_rows("Cu-Pd", "H", "emt")
        assert rows.sites and all(rows.sites)
        for site_id, fp in zip(rows.sites, rows.fps, strict=True):
            assert fp == Site.objects(id=site_id).get().fingerprint
    counts = _invariants(settings)
    assert counts["jobs"] == 40 and counts["done"] == 40


def test_budget_stops_the_loop(cu):
    lines: list[dict] = []
    with open_store(cu) as store:
        summary = Daemon(store, "Cu", "emt", budget=5, batch=3, interval=0, emit=lines.append).run()
    assert summary["reason"] == "budget"
    assert [c["counts"]["submitted"] for c in lines if c["event"] == "cycle"] == [3, 2]


def test_bad_settings_are_input_errors(cu):
    with open_store(cu) as store:
        with pytest.raises(InputError, match="unknown space"):
            Daemon(store, "Fe-Ni", "emt")
        with pytest.raises(InputError, match="calculator profile"):
            Daemon(store, "Cu", "vasp")
        with pytest.raises(InputError, match=r"sites submitted per cycle must be >= 1 \(got 0\)"):
            Daemon(store, "Cu", "emt", batch=0)
        for interval in (-1.0, float("inf"), float("nan"), 86_401.0):  # Event.wait(inf) overflows
            with pytest.raises(InputError, match=r"seconds between cycles must be between 0 and"):
                Daemon(store, "Cu", "emt", interval=interval)
        with pytest.raises(InputError, match="strategy"):
            Daemon(store, "Cu", "emt", strategy="greedy")


def test_lease_refuses_a_live_owner_and_takes_over_a_stale_one(cu):
    with open_store(cu) as store:
        leases = Lease._get_collection()
        leases.insert_one(
            {"space": "Cu", "owner": "elsewhere:1:abc", "heartbeat": _now(), "released": False}
        )
        with pytest.raises(LeaseHeldError, match="run by daemon elsewhere:1:abc"):
            LeaseKeeper(store, "Cu").acquire()
        leases.update_one({"space": "Cu"}, {"$set": {"heartbeat": _now().replace(year=2020)}})
        keeper = LeaseKeeper(store, "Cu")
        keeper.acquire()
        assert keeper.took_over == "elsewhere:1:abc"
        keeper.beat("cycle")
        # a daemon that lost its lease notices at its next heartbeat
        leases.update_one({"space": "Cu"}, {"$set": {"owner": "thief:2:x"}})
        with pytest.raises(LeaseHeldError, match="lost the lease"):
            keeper.beat("cycle")


def test_pause_holds_cycles_until_resume(cu):
    lines: list[dict] = []
    with open_store(cu) as store:
        set_paused(store, "Cu", True)
        # the flag is a declared field of the lease: the document loads through mongoengine
        assert Lease.objects(space="Cu").get().paused is True
        assert is_paused("Cu")
        daemon = Daemon(store, "Cu", "emt", cycles=1, batch=2, interval=0.05, emit=lines.append)
        thread = threading.Thread(target=daemon.run)
        thread.start()
        time.sleep(1.0)
        assert Cycle.objects.count() == 0
        assert Lease.objects(space="Cu").get().state == "paused"
        daemon.request_stop("test")
        thread.join(10)
        assert not thread.is_alive()
    with open_store(cu) as store:
        set_paused(store, "Cu", False)
        assert not is_paused("Cu")
        Daemon(store, "Cu", "emt", cycles=1, batch=2, interval=0, emit=lines.append).run()
        assert Cycle.objects.count() == 1
        assert Lease.objects(space="Cu").get().paused is False
        with pytest.raises(InputError, match="unknown space"):
            set_paused(store, "Nope", True)
        assert Lease.objects(space="Nope").count() == 0


def _start(cli_env, *args: str) -> subprocess.Popen:
    space = () if "--space" in args else ("--space", "Cu")
    return subprocess.Popen(
        [SCREENER, "run", *space, "--calculator", "emt", *args],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigterm_stops_after_the_step_and_a_second_daemon_is_refused(cu, cli_env):
    first = _start(cli_env, "--batch", "2", "--interval", "60")
    line = json.loads(first.stdout.readline())  # the first cycle is recorded
    assert line["event"] == "cycle"
    second = subprocess.run(
        [SCREENER, "run", "--space", "Cu", "--calculator", "emt", "--cycles", "1"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 3
    assert second.stderr.startswith("error: ") and "space 'Cu' is run by daemon" in second.stderr
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0
    assert json.loads(out.strip().splitlines()[-1]) == {
        "event": "stopped",
        "space": "Cu",
        "reason": "SIGTERM",
        "cycles": 1,
    }


def _kill_server(settings) -> None:
    record = json.loads(ServerPaths(settings.data_dir).record.read_text())
    os.kill(record["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(record["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)


def _reported_done(stdout: str) -> int:
    """The most finished jobs any cycle line printed (acknowledged by the database)."""
    done = 0
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "cycle":
            done = max(done, int(record["jobs"].get("done", 0)))
    return done


@pytest.mark.slow
def test_kill_9_at_random_points_never_duplicates_or_loses(local_settings):
    """Daemon or database server killed with SIGKILL at random moments (12 kills), then one run
    to the end, on the data directory's own server.

    The kill times are spread over the length of an uninterrupted run measured first (start-up,
    ingest, training, selection, submission and rockets all take their share), so the kills land
    across the whole cycle whatever the machine's speed.  Beyond no duplicate and nothing
    unrecorded: every result a daemon reported, and every calculation read back after an earlier
    trial, is still there after later kills of the server.  The narrowest window these kills
    found (inside FireWorks' add_wf) has its own deterministic test in
    tests/jobs/test_emt_chain.py.
    """
    settings, env = local_settings, env_of(local_settings)
    _seed(settings, "Cu,Pd")
    rng = random.Random(20261201)
    args = ("--space", "Cu-Pd", "--batch", "2", "--cycles", "2", "--interval", "0")
    started = time.monotonic()
    calibration = _start(env, *args)
    out, _ = calibration.communicate(timeout=900)
    assert calibration.returncode == 0
    full = time.monotonic() - started
    seen_done, seen_keys = _reported_done(out), set()
    trials, killed = 0, Counter()
    while sum(killed.values()) < 12 and trials < 24:
        trials += 1
        proc = _start(env, *args)
        victim = "server" if trials % 2 == 0 else "daemon"
        try:
            out, _ = proc.communicate(timeout=rng.uniform(0.1, 1.0) * full)
        except subprocess.TimeoutExpired:
            if victim == "server":
                _kill_server(settings)
                try:  # the daemon fails on its next database call
                    out, _ = proc.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, _ = proc.communicate()
            else:
                os.kill(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
            killed[victim] += 1
        seen_done = max(seen_done, _reported_done(out))
        counts = _invariants(settings)  # opening the store restarts a killed server
        assert counts["done"] >= seen_done, "a result a daemon reported was lost"
        keys = _calculation_keys(settings)
        assert seen_keys <= keys, f"acknowledged calculations lost: {sorted(seen_keys - keys)}"
        seen_keys = keys
    assert killed["daemon"] >= 5 and killed["server"] >= 5, killed
    time.sleep(RESERVE_GRACE_S)  # a checkout cut short by a server kill is reclaimed after this
    final = subprocess.run(
        [SCREENER, "run", "--space", "Cu-Pd", "--calculator", "emt", "--cycles", "1"]
        + ["--batch", "1", "--interval", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert final.returncode == 0, final.stderr
    counts = _invariants(settings)
    assert seen_keys <= _calculation_keys(settings)
    with open_store(settings, readonly=True) as store:
        states = Counter(j.state for j in Job.objects)
        stuck = [
            (
                j.key,
                [
                    (fw["fw_id"], fw["state"])
                    for fw in store.client[settings.db_name].fireworks.find(
                        {"fw_id": {"$in": list(j.fw_ids)}}, {"fw_id": 1, "state": 1}
                    )
                ],
            )
            for j in Job.objects(state__in=["submitting", "submitted"])
        ]
    assert states["submitting"] == 0 and states["submitted"] == 0, (states, stuck)
    assert counts["done"] >= 4  # the calibration run alone finished four


def _calculation_keys(settings) -> set[str]:
    with open_store(settings, readonly=True):
        return {c["key"] for c in Calculation._get_collection().find({}, {"key": 1})}
