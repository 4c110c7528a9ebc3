"""The embedded store: snapshots, the single-writer lock, read-only opening."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest
from bson import ObjectId

from screener.errors import StoreBusyError
from screener.store import ElementSpace, open_store
from screener.store.embedded import SNAPSHOT_NAME
from tests.conftest import MONGO_URI

pytestmark = pytest.mark.skipif(bool(MONGO_URI), reason="embedded store only")


def test_snapshot_round_trip_keeps_types(settings):
    with open_store(settings) as store:
        ElementSpace(name="Cu-Pd", elements=["Cu", "Pd"], bulks=[ObjectId()]).save()
        store.db["misc"].insert_one({"when": dt.datetime(2026, 1, 2, 3, 4, 5), "x": [1.5, None]})
        store.commit()
    with open_store(settings, readonly=True) as store:
        space = ElementSpace.objects.get(name="Cu-Pd")
        assert isinstance(space.bulks[0], ObjectId)
        doc = store.db["misc"].find_one({})
        assert doc["when"] == dt.datetime(2026, 1, 2, 3, 4, 5) and doc["x"] == [1.5, None]


def test_uncommitted_writes_are_not_persisted(settings):
    with open_store(settings) as store:
        ElementSpace(name="kept", elements=["Cu"]).save()
        store.commit()
        ElementSpace(name="lost", elements=["Pd"]).save()
    with open_store(settings, readonly=True):
        assert sorted(s.name for s in ElementSpace.objects) == ["kept"]


def test_snapshot_replaces_atomically(settings):
    with open_store(settings) as store:
        for i in range(3):
            ElementSpace(name=f"s{i}", elements=["Cu"]).save()
            store.commit()
        assert store.snapshots == 3
    leftovers = [p for p in settings.data_dir.iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_readonly_open_writes_nothing(settings):
    with open_store(settings, readonly=True) as store:
        assert not settings.data_dir.exists()
        with pytest.raises(Exception, match="read-only"):
            store.commit()


def _holder(settings, *, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(
        f"""
        import time
        from screener.settings import load_settings
        from screener.store import open_store
        with open_store(load_settings(data_dir={str(settings.data_dir)!r})) as store:
            print("holding", flush=True)
            time.sleep({seconds})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_second_writer_is_refused_and_a_dead_holder_is_taken_over(settings, caplog):
    holder = _holder(settings, seconds=60)
    try:
        with pytest.raises(StoreBusyError, match=f"in use by screener pid {holder.pid}"):
            with open_store(settings):
                pass
        with open_store(settings, readonly=True):  # readers are never blocked
            pass
    finally:
        holder.kill()  # SIGKILL: the lock file still names the dead pid
        holder.wait()
    with caplog.at_level("WARNING"):
        with open_store(settings) as store:
            store.commit()
    assert f"left by pid {holder.pid}" in caplog.text


def test_lock_is_released_on_close(settings):
    with open_store(settings):
        pass
    with open_store(settings) as store:
        store.commit()
    assert (settings.data_dir / SNAPSHOT_NAME).exists()
    assert os.path.getsize(settings.data_dir / "store.lock") == 0


def test_site_counts_agree_between_the_scan_and_the_aggregation(settings):
    """The embedded store counts by a projected scan, MongoDB by $group: same numbers."""
    from screener.queries import site_counts_by_bulk

    bulks = [ObjectId() for _ in range(3)]
    with open_store(settings) as store:
        rows = [{"bulk": bulks[i % 3], "adsorbate": "CO" if i % 4 else "H"} for i in range(40)]
        store.db["sites"].insert_many(rows)
        scanned = site_counts_by_bulk(store)
        store._server_store, saved = None, store._server_store  # pretend: a MongoDB server
        try:
            grouped = site_counts_by_bulk(store)
        finally:
            store._server_store = saved
    assert scanned == grouped and sum(scanned.values()) == 40
    assert scanned[(bulks[0], "H")] == sum(1 for i in range(0, 40, 3) if i % 4 == 0)


def test_launchpad_shares_the_embedded_client_and_snapshot(settings):
    from fireworks import Firework, ScriptTask

    with open_store(settings) as store:
        launchpad = store.launchpad()
        assert launchpad.connection is store.client
        launchpad.add_wf(Firework(ScriptTask.from_str("echo hi"), name="hello"))
        ElementSpace(name="Cu", elements=["Cu"]).save()
        store.commit()
    with open_store(settings, readonly=True) as store:
        launchpad = store.launchpad()
        assert [fw["name"] for fw in launchpad.fireworks.find({})] == ["hello"]
        assert ElementSpace.objects.count() == 1
