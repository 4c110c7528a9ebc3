"""The local database server: one SecantusDB process per data directory.

SecantusDB is a MongoDB wire-protocol server on WiredTiger (GPL-2.0).  screener never imports it:
the server runs as its own process through its ``secantusd-py`` entry point, bound to 127.0.0.1,
and every screener process reaches it by URI like any MongoDB.

Files in ``<data_dir>``:

* ``db/``: the server's storage (WiredTiger home);
* ``db-server.json``: the running server's pid and port (the port stays recorded after a stop,
  so a data directory keeps its URI);
* ``db-server.lock``: held while a server is being started, so that two commands starting at once
  start one server;
* ``db-server.log``: the server's output;
* ``db-server.toml``: an empty configuration file, so that the server reads no other.

A server left by a killed process is detected (its pid is gone, or no longer a SecantusDB on this
storage) and a new one is started on the same storage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from screener.errors import NoDatabaseError, ScreenerError

EXECUTABLE = "secantusd-py"
HOST = "127.0.0.1"


class ServerError(ScreenerError):
    """The local database server cannot be started or reached."""


@dataclass(frozen=True)
class ServerPaths:
    """Where one data directory keeps its server's storage and bookkeeping."""

    data_dir: Path

    @property
    def storage(self) -> Path:
        return self.data_dir / "db"

    @property
    def record(self) -> Path:
        return self.data_dir / "db-server.json"

    @property
    def lock(self) -> Path:
        return self.data_dir / "db-server.lock"

    @property
    def log(self) -> Path:
        return self.data_dir / "db-server.log"

    @property
    def config(self) -> Path:
        return self.data_dir / "db-server.toml"

    @property
    def holds_database(self) -> bool:
        """Whether the storage holds a database (the server has created its WiredTiger home)."""
        return self.storage.is_dir() and (self.storage / "WiredTiger").exists()


@dataclass
class ServerStatus:
    """What ``screener db status --json`` prints."""

    running: bool
    pid: int | None
    port: int | None
    uri: str | None
    data_dir: str
    storage: str
    log: str
    started: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def server_uri(port: int) -> str:
    return f"mongodb://{HOST}:{port}/?directConnection=true"


# -- process checks ------------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a live process (a zombie child is reaped and counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if state == "Z":
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _is_our_server(pid: int, storage: Path) -> bool:
    """The process is a SecantusDB serving ``storage`` (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid_alive(pid)  # no /proc: trust the pid
    text = [a.decode(errors="replace") for a in argv]
    if not any(EXECUTABLE in a for a in text):
        return False
    return str(storage.resolve()) in text


def _port_answers(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as a server binds: a port whose last connections linger in TIME_WAIT is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


# -- the record --------------------------------------------------------------------------------
def _read_record(paths: ServerPaths) -> dict:
    try:
        value = json.loads(paths.record.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_record(paths: ServerPaths, record: dict) -> None:
    tmp = paths.record.with_name(f"{paths.record.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, paths.record)


def _live(paths: ServerPaths) -> dict | None:
    """The record of a live server of this data directory that answers on its port, or None."""
    record = _read_record(paths)
    pid, port = record.get("pid"), record.get("port")
    if not isinstance(pid, int) or not isinstance(port, int):
        return None
    if not pid_alive(pid) or not _is_our_server(pid, paths.storage):
        return None
    return record if _port_answers(port) else None


def status(data_dir: Path) -> ServerStatus:
    paths = ServerPaths(data_dir)
    record = _live(paths)
    port = record["port"] if record else _read_record(paths).get("port")
    return ServerStatus(
        running=record is not None,
        pid=record["pid"] if record else None,
        port=port if isinstance(port, int) else None,
        uri=server_uri(port) if isinstance(port, int) else None,
        data_dir=str(data_dir.resolve()),
        storage=str(paths.storage.resolve()),
        log=str(paths.log.resolve()),
        started=record.get("started") if record else None,
    )


# -- start / stop ------------------------------------------------------------------------------
def _executable() -> str:
    beside = Path(sys.executable).parent / EXECUTABLE
    if beside.is_file():
        return str(beside)
    found = shutil.which(EXECUTABLE)
    if found is None:
        raise ServerError(
            f"the database server ({EXECUTABLE}, PyPI SecantusDB) is not installed; run "
            "scripts/setup.sh, or set SCREENER_MONGO_URI to use a MongoDB server"
        )
    return found


@contextlib.contextmanager
def _start_lock(paths: ServerPaths, timeout: float) -> Iterator[None]:
    with open(paths.lock, "a+") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"timed out waiting for another process starting the database server "
                        f"of {paths.data_dir}; see {paths.log}"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _check_data_dir(paths: ServerPaths) -> None:
    """Refuse a data directory that is not one (a file, or storage that is not WiredTiger's)."""
    if paths.data_dir.exists() and not paths.data_dir.is_dir():
        raise ServerError(f"data directory {paths.data_dir} is not a directory")
    storage = paths.storage
    if storage.exists():
        if not storage.is_dir():
            raise ServerError(f"{storage} is not a database directory (a file is in the way)")
        if any(storage.iterdir()) and not paths.holds_database:
            raise ServerError(
                f"{storage} is not a screener database (no WiredTiger storage in it); "
                "choose another SCREENER_DATA_DIR"
            )


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:200] if lines else ""


def start(
    data_dir: Path, *, port: int | None = None, timeout: float = 60.0, create: bool = True
) -> ServerStatus:
    """The running server of ``data_dir``, started when it is not running.

    With ``create=False`` a data directory that holds no database yet is refused
    (:class:`NoDatabaseError`) and nothing is created: the commands that only read or change
    stored data do not start an empty database for nothing.
    """
    paths = ServerPaths(data_dir)
    if _live(paths) is None:
        _check_data_dir(paths)
        if not create and not paths.holds_database:
            raise NoDatabaseError(
                f"no screener database in {data_dir} yet (nothing has been seeded there); "
                "`screener seed` creates one"
            )
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        with _start_lock(paths, timeout):
            if _live(paths) is None:  # nobody started it while we waited for the lock
                _spawn(paths, port, timeout)
    return status(data_dir)


def _spawn(paths: ServerPaths, port: int | None, timeout: float) -> None:
    record = _read_record(paths)
    stale = record.get("pid")
    if isinstance(stale, int) and pid_alive(stale) and _is_our_server(stale, paths.storage):
        _terminate(stale, 20.0)  # alive but not answering: a hung server holds the storage
    if port is None:
        recorded = record.get("port")
        port = recorded if isinstance(recorded, int) and _port_free(recorded) else _free_port()
    paths.config.write_text("# screener starts SecantusDB with this (empty) configuration\n")
    paths.storage.mkdir(exist_ok=True)
    command = [
        _executable(),
        "--config",
        str(paths.config.resolve()),
        "--host",
        HOST,
        "--port",
        str(port),
        "--storage-path",
        str(paths.storage.resolve()),
        "--log-level",
        "WARNING",
    ]
    with open(paths.log, "ab") as log:
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        log.write(f"--- {stamp} starting on port {port} (pid of starter {os.getpid()})\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the command that started it does not stop it
            close_fds=True,
            cwd=paths.data_dir,
        )
    deadline = time.monotonic() + timeout
    while not _answers(port):
        if process.poll() is not None:
            raise ServerError(
                f"the database server of {paths.data_dir} did not start "
                f"(exit {process.returncode}: {_last_line(paths.log)}); see {paths.log}"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise ServerError(
                f"the database server of {paths.data_dir} did not answer within {timeout:.0f} s; "
                f"see {paths.log}"
            )
        time.sleep(0.1)
    _write_record(
        paths,
        {
            "pid": process.pid,
            "port": port,
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "storage": str(paths.storage.resolve()),
        },
    )


def _answers(port: int) -> bool:
    """The server on ``port`` answers a MongoDB ping."""
    if not _port_answers(port, timeout=0.2):
        return False
    import pymongo
    import pymongo.errors

    client = pymongo.MongoClient(server_uri(port), serverSelectionTimeoutMS=1000)
    try:
        client.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False
    finally:
        client.close()


def _terminate(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            break
        time.sleep(0.1)


def stop(data_dir: Path, *, timeout: float = 30.0) -> ServerStatus:
    """Stop the server of ``data_dir`` (SIGTERM, then SIGKILL after ``timeout`` s)."""
    paths = ServerPaths(data_dir)
    record = _read_record(paths)
    pid = record.get("pid")
    if isinstance(pid, int) and pid_alive(pid) and _is_our_server(pid, paths.storage):
        _terminate(pid, timeout)
    if record:
        record.pop("pid", None)
        record.pop("started", None)
        _write_record(paths, record)
    return status(data_dir)


@contextlib.contextmanager
def stopped_after(data_dir: Path) -> Iterator[Path]:
    """Stop the server of ``data_dir`` on leaving (for throwaway data directories)."""
    try:
        yield data_dir
    finally:
        stop(data_dir)
