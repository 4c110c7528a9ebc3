"""Several processes on one data directory at once: a daemon, status, workers, lpad and a seed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from screener.enumerate.seed import plan_seed, seed
from screener.store import open_store
from tests.conftest import env_of
from tests.loop.test_daemon import _invariants

SCREENER = str(Path(sys.executable).with_name("screener"))


class _Lines:
    """The daemon's JSON lines, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[dict] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for text in proc.stdout:
            if text.strip():
                self.lines.append(json.loads(text))

    def wait_for(self, done, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while not done(self.lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        return list(self.lines)


@pytest.mark.slow
def test_daemon_status_workers_lpad_and_a_seed_side_by_side(local_settings):
    settings, env = local_settings, env_of(local_settings)
    with open_store(settings) as store:
        seed(plan_seed("Cu", "CO,H", max_miller=1, settings=settings), store)
    daemon = subprocess.Popen(
        # at most 4 queued: the daemon keeps running (it never runs out of sites here)
        [SCREENER, "run", "--space", "Cu", "--calculator", "emt", "--batch", "4"]
        + ["--max-queued", "4", "--interval", "1", "--no-workers"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _Lines(daemon)
        first = lines.wait_for(lambda ls: any(x["event"] == "cycle" for x in ls), 120)
        assert first and first[0]["counts"]["submitted"] == 4

        commands = {
            "status": ["status", "--json"],
            "workers": ["workers", "--json"],
            "lpad": ["lpad", "get_fws", "-d", "count"],
            "seed": ["seed", "-e", "Pd", "--max-miller", "1", "--json"],
        }
        procs = {
            name: subprocess.Popen(
                [SCREENER, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, args in commands.items()
        }
        outputs = {name: p.communicate(timeout=600) for name, p in procs.items()}
        for name, proc in procs.items():
            assert proc.returncode == 0, f"{name}: {outputs[name][1]}"

        status = json.loads(outputs["status"][0])
        cu = status["spaces"]["Cu"]
        assert cu["daemon"]["running"] and cu["daemon"]["heartbeat_age_s"] < 60
        assert cu["last_cycle"]["jobs"]["total"] >= 4  # the daemon's latest cycle, read live
        # the daemon's workflows (gas, bulk, slab and adslab steps), seen by FireWorks' own lpad
        assert int(outputs["lpad"][0].strip()) >= 4
        assert json.loads(outputs["workers"][0])["rockets"] >= 4  # it ran what the daemon queued
        assert json.loads(outputs["seed"][0])["added"]["surfaces"] == 3

        # the daemon sees the workers' results in its next cycles
        def settled(ls):
            jobs = [x["jobs"] for x in ls if x.get("event") == "cycle"]
            return any(j.get("done", 0) + j.get("failed", 0) >= 4 for j in jobs)

        later = lines.wait_for(settled, 300)
        assert settled(later), later
        assert later[-1]["jobs"].get("done", 0) >= 1, later[-1]
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, err
    final = json.loads(
        subprocess.run(
            [SCREENER, "status", "--json"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    assert set(final["spaces"]) == {"Cu", "Pd"}
    assert final["spaces"]["Cu"]["daemon"]["running"] is False
    counts = _invariants(settings)
    assert counts["done"] >= 1
