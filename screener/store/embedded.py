"""The embedded store: an in-process mongomock server persisted to one snapshot file.

Single writer.  A writing process holds an exclusive ``flock`` on ``<data_dir>/store.lock``; the
kernel drops it when the process dies, so a lock left by a killed process is taken over on the next
start.  The data lives in ``<data_dir>/store.pkl``, replaced atomically (write a temporary file,
fsync, rename, fsync the directory) at every :meth:`EmbeddedStore.snapshot`, so a ``kill -9`` loses
at most the step in flight and never leaves a torn file.  Readers load the last snapshot without
taking the lock.

The snapshot reads and writes mongomock's in-memory documents directly (one pickle of plain
documents); this is tied to the mongomock version pinned in pyproject.toml and checked by the tests.
"""

from __future__ import annotations

import collections
import datetime as dt
import fcntl
import json
import os
import pickle
import socket
import sys
from pathlib import Path
from typing import Any

import mongomock
from mongomock.store import ServerStore

from screener.errors import ScreenerError, StoreBusyError

SNAPSHOT_NAME = "store.pkl"
LOCK_NAME = "store.lock"
FORMAT = "screener-embedded-1"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreLock:
    """Exclusive, crash-safe ownership of an embedded store directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fh: Any = None
        self.took_over_from: int | None = None

    def acquire(self) -> None:
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the life of the store
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = _parse_holder(fh.read())
            fh.close()
            who = f"pid {holder.get('pid', '?')}"
            if holder.get("command"):
                who += f" ({holder['command']})"
            since = f" since {holder['since']}" if holder.get("since") else ""
            raise StoreBusyError(
                f"the embedded store {self.path.parent} is in use by screener {who}{since}; "
                "wait for it or stop it, or set SCREENER_MONGO_URI to share a MongoDB server"
            ) from None
        fh.seek(0)
        previous = _parse_holder(fh.read())
        pid = previous.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
            self.took_over_from = pid
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": " ".join(
                        Path(a).name if i == 0 else a for i, a in enumerate(sys.argv)
                    ),
                    "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                }
            )
        )
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.flush()
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None


def _parse_holder(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def load_server_store(path: Path) -> ServerStore:
    """Rebuild a mongomock ServerStore from a snapshot (an empty one when there is none)."""
    server = ServerStore()
    if not path.exists():
        return server
    try:
        with open(path, "rb") as fh:
            payload = pickle.load(fh)
    except Exception as exc:  # a snapshot is written atomically; this is a foreign/damaged file
        raise ScreenerError(f"cannot read the embedded store {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ScreenerError(f"{path} is not a screener embedded store ({FORMAT})")
    for db_name, collections_ in payload["databases"].items():
        db_store = server[db_name]
        for coll_name, documents in collections_.items():
            coll_store = db_store[coll_name]
            coll_store._documents = collections.OrderedDict((d["_id"], d) for d in documents)
            coll_store.create()
    return server


def dump_server_store(server: ServerStore, path: Path) -> int:
    """Atomically write ``server`` to ``path``; returns the number of bytes written."""
    databases: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for db_name, db_store in server._databases.items():
        databases[db_name] = {
            name: list(coll._documents.values())
            for name, coll in db_store._collections.items()
            if coll.is_created
        }
    payload = {
        "format": FORMAT,
        "saved": dt.datetime.now(dt.timezone.utc).isoformat(),
        "mongomock": mongomock.__version__,
        "databases": databases,
    }
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
        size = fh.tell()
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return size
