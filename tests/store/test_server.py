"""The local database server: start on demand, one per data directory, restart after a kill,
clear errors for data directories it cannot serve; the client side: URI, journaled writes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymongo
import pytest

from screener.store import open_store, server
from screener.store.documents import Surface, ensure_indexes
from tests.conftest import env_of
from tests.test_cli import run

SCREENER = str(Path(sys.executable).with_name("screener"))


def servers_of(storage: Path) -> list[int]:
    """Pids of SecantusDB processes serving ``storage``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in argv]
        if any(server.EXECUTABLE in a for a in text) and str(storage.resolve()) in text:
            if server.pid_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_db_commands_start_status_uri_stop(local_settings):
    env = env_of(local_settings)
    state = json.loads(run(env, "db", "status", "--json").stdout)
    assert state["running"] is False and state["pid"] is None
    assert {"pid", "uri", "data_dir", "running", "storage", "log"} <= set(state)
    assert not (local_settings.data_dir / "db").exists()  # status starts nothing

    run(env, "db", "start")
    state = json.loads(run(env, "db", "status", "--json").stdout)
    assert state["running"] and state["data_dir"] == str(local_settings.data_dir.resolve())
    assert state["uri"].startswith("mongodb://127.0.0.1:")
    assert servers_of(local_settings.data_dir / "db") == [state["pid"]]
    run(env, "db", "start")  # already running: the same server
    assert json.loads(run(env, "db", "status", "--json").stdout)["pid"] == state["pid"]
    assert run(env, "db", "uri").stdout.strip() == state["uri"]
    client = pymongo.MongoClient(state["uri"], serverSelectionTimeoutMS=5000)
    assert client.admin.command("ping")["ok"] == 1
    client.close()

    run(env, "db", "stop")
    stopped = json.loads(run(env, "db", "status", "--json").stdout)
    assert stopped["running"] is False and servers_of(local_settings.data_dir / "db") == []
    # the port stays recorded: the data directory keeps its URI across restarts
    assert stopped["uri"] == state["uri"]
    assert run(env, "db", "uri").stdout.strip() == state["uri"]


def test_commands_start_the_server_on_demand_and_data_survives_a_restart(local_settings):
    env = env_of(local_settings)
    run(env, "seed", "-e", "Pd", "--max-miller", "1")
    state = json.loads(run(env, "db", "status", "--json").stdout)
    assert state["running"]
    counts = json.loads(run(env, "status", "--json").stdout)["total"]
    run(env, "db", "stop")
    again = json.loads(run(env, "status", "--json").stdout)  # starts it again
    assert again["total"] == counts and counts["surfaces"] == 3
    assert again["store"]["kind"] == "local server"


def test_a_killed_server_is_detected_and_restarted(local_settings):
    env = env_of(local_settings)
    run(env, "seed", "-e", "Pd", "--max-miller", "1")
    before = json.loads(run(env, "db", "status", "--json").stdout)
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.pid_alive(before["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(run(env, "db", "status", "--json").stdout)["running"] is False
    status = json.loads(run(env, "status", "--json").stdout)
    assert status["spaces"]["Pd"]["surfaces"] == 3
    after = json.loads(run(env, "db", "status", "--json").stdout)
    assert after["running"] and after["pid"] != before["pid"]
    assert servers_of(local_settings.data_dir / "db") == [after["pid"]]


def test_commands_starting_at_once_start_one_server(local_settings):
    env = env_of(local_settings)
    procs = [
        subprocess.Popen([SCREENER, "db", "uri"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    uris = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(uris) == 1
    assert len(servers_of(local_settings.data_dir / "db")) == 1


def test_with_a_uri_nothing_is_started(cli_env, settings):
    run(cli_env, "seed", "-e", "Pd", "--max-miller", "1")
    assert not (settings.data_dir / "db").exists()
    assert "SCREENER_MONGO_URI is set" in one_error_line(run(cli_env, "db", "status", check=False))


def test_port_taken_names_the_log_and_exits_nonzero(local_settings):
    env = env_of(local_settings)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc = run(dict(env, SCREENER_DB_PORT=str(port)), "status", check=False)
    line = one_error_line(proc)
    assert "did not start" in line and "Address already in use" in line
    assert str(local_settings.data_dir.resolve() / "db-server.log") in line
    assert servers_of(local_settings.data_dir / "db") == []


def test_foreign_and_damaged_storage_are_refused(local_settings, tmp_path):
    env = env_of(local_settings)
    foreign = tmp_path / "foreign"
    (foreign / "db").mkdir(parents=True)
    (foreign / "db" / "notes.txt").write_text("not a database\n")
    before = sorted(p.name for p in foreign.rglob("*"))
    line = one_error_line(run(dict(env, SCREENER_DATA_DIR=str(foreign)), "status", check=False))
    assert "is not a screener database" in line
    assert sorted(p.name for p in foreign.rglob("*")) == before  # nothing written

    run(env, "seed", "-e", "Pd", "--max-miller", "1")
    run(env, "db", "stop")
    catalog = local_settings.data_dir / "db" / "secantus_collections.wt"
    with open(catalog, "r+b") as fh:
        fh.write(b"\0" * 8192)
    line = one_error_line(run(env, "status", check=False))
    # WiredTiger refuses the storage at start, or the server fails the first read of it
    assert "did not start" in line or "failed" in line
    assert str(local_settings.data_dir.resolve() / "db-server.log") in line


def test_an_unreachable_uri_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    env.update(
        SCREENER_MONGO_URI="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300",
        SCREENER_DATA_DIR=str(tmp_path / "data"),
    )
    line = one_error_line(run(env, "status", check=False))
    assert "cannot reach the database at 127.0.0.1:9" in line
    assert not (tmp_path / "data").exists()


def test_writes_are_journaled_and_the_multikey_surface_index_is_retired(settings):
    with open_store(settings) as store:
        assert store.client.write_concern.document == {"j": True}
        assert store.launchpad().connection.write_concern.document == {"j": True}
        fireworks = store.launchpad().fireworks.index_information()
        assert {"spec.screener_key_1", "spec.screener_job_1"} <= set(fireworks)
        surfaces = Surface._get_collection()
        assert "bulk_1_miller_1_termination_1" not in surfaces.index_information()
        # a store made by an earlier version has it: it goes on the next open
        surfaces.create_index([("bulk", 1), ("miller", 1), ("termination", 1)], unique=True)
        ensure_indexes()
        assert "bulk_1_miller_1_termination_1" not in surfaces.index_information()
        # two facets of one bulk sharing a digit and a termination are both stored
        surfaces.insert_many(
            [
                {"key": "b|100|t", "bulk": "b", "miller": [1, 0, 0], "termination": "t"},
                {"key": "b|110|t", "bulk": "b", "miller": [1, 1, 0], "termination": "t"},
            ]
        )
        assert surfaces.count_documents({"bulk": "b"}) == 2
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            surfaces.insert_one({"key": "b|100|t", "bulk": "b"})


def test_lpad_is_fireworks_own_on_the_same_database(cli_env, settings):
    run(cli_env, "seed", "-e", "Pd", "--max-miller", "1")
    with open_store(settings) as store:
        from fireworks import Firework, ScriptTask

        store.launchpad().add_wf(Firework(ScriptTask.from_str("true"), name="probe"))
    proc = run(cli_env, "lpad", "get_fws", "-d", "count")
    assert proc.stdout.strip() == "1"
    path = settings.data_dir / "my_launchpad.yaml"
    assert settings.db_name in path.read_text() and path.stat().st_mode & 0o777 == 0o600
