"""Open the store: a real MongoDB (``SCREENER_MONGO_URI``) or the embedded one in ``data_dir``.

Every client in the process (mongoengine's documents, and later FireWorks' LaunchPad) is built on
the one :class:`Store`, so that the embedded mode never has two persisting clients.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mongoengine

from screener.errors import ScreenerError
from screener.settings import ScreenerSettings
from screener.store import documents
from screener.store.embedded import SNAPSHOT_NAME, StoreLock, dump_server_store, load_server_store

log = logging.getLogger(__name__)
ALIAS = "default"


class Store:
    """An open store: ``client`` (pymongo API), ``db`` and :meth:`commit` for durability."""

    def __init__(
        self,
        settings: ScreenerSettings,
        client: Any,
        *,
        readonly: bool,
        server_store: Any = None,
        lock: StoreLock | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.db = client[settings.db_name]
        self.readonly = readonly
        self._server_store = server_store
        self._lock = lock
        self.snapshots = 0

    @property
    def embedded(self) -> bool:
        return self._server_store is not None

    @property
    def location(self) -> str:
        if self.embedded:
            return str(self.settings.data_dir.resolve())
        uri = self.settings.mongo_uri or ""
        return uri.split("@")[-1]  # never print credentials

    @property
    def snapshot_path(self) -> Path:
        return self.settings.data_dir / SNAPSHOT_NAME

    def launchpad(self) -> Any:
        """FireWorks' LaunchPad on this store's database, initialised on first use.

        Embedded: built on this store's own mongomock client, so FireWorks and mongoengine share
        one in-memory server and one snapshot (a second persisting client would overwrite it).
        """
        from fireworks.core import launchpad as fw_launchpad

        if self.embedded:
            import mongomock.gridfs

            mongomock.gridfs.enable_gridfs_integration()  # as FireWorks' own mongomock mode does
            original = fw_launchpad.MongoClient
            fw_launchpad.MongoClient = lambda *args, **kwargs: self.client
            try:
                launchpad = fw_launchpad.LaunchPad(
                    host="mongodb://localhost",
                    name=self.settings.db_name,
                    uri_mode=True,
                    strm_lvl="WARNING",
                )
            finally:
                fw_launchpad.MongoClient = original
        else:
            launchpad = fw_launchpad.LaunchPad(
                host=self.settings.mongo_uri,
                name=self.settings.db_name,
                uri_mode=True,
                strm_lvl="WARNING",
            )
        fresh = launchpad.fw_id_assigner.count_documents({}) == 0
        if fresh and not self.readonly and launchpad.fireworks.count_documents({}) == 0:
            launchpad.reset("", require_password=False)
        return launchpad

    def commit(self) -> None:
        """Make everything written so far durable (embedded: atomic snapshot; MongoDB: no-op)."""
        if self.readonly:
            raise ScreenerError("this store was opened read-only")
        if self.embedded:
            dump_server_store(self._server_store, self.snapshot_path)
            self.snapshots += 1

    def close(self) -> None:
        mongoengine.disconnect(ALIAS)
        if self._lock is not None:
            self._lock.release()
            self._lock = None


@contextmanager
def open_store(settings: ScreenerSettings, *, readonly: bool = False) -> Iterator[Store]:
    """Connect mongoengine (alias ``default``) and yield the :class:`Store`.

    ``readonly`` opens the embedded store without its lock, from the last snapshot, so status and
    queries work while a writer runs; nothing is ever persisted from a read-only store.
    Writers must call :meth:`Store.commit` after each step they want to keep.
    """
    mongoengine.disconnect(ALIAS)
    if settings.mongo_uri:
        store = _open_mongodb(settings, readonly=readonly)
    else:
        store = _open_embedded(settings, readonly=readonly)
    try:
        yield store
    finally:
        store.close()


def _open_mongodb(settings: ScreenerSettings, *, readonly: bool) -> Store:
    import pymongo.errors

    mongoengine.connect(
        db=settings.db_name,
        host=settings.mongo_uri,
        alias=ALIAS,
        serverSelectionTimeoutMS=10000,
        uuidRepresentation="standard",
    )
    client = mongoengine.get_connection(ALIAS)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        mongoengine.disconnect(ALIAS)
        where = settings.mongo_uri.split("@")[-1]
        raise ScreenerError(f"cannot reach MongoDB at {where}: {exc}") from None
    if not readonly:
        documents.ensure_indexes()
    return Store(settings, client, readonly=readonly)


def _open_embedded(settings: ScreenerSettings, *, readonly: bool) -> Store:
    import mongomock

    directory = settings.data_dir
    lock = None
    if not readonly:
        directory.mkdir(parents=True, exist_ok=True)
        lock = StoreLock(directory)
        lock.acquire()
        if lock.took_over_from is not None:
            log.warning(
                "took over the embedded store lock left by pid %s (no longer running)",
                lock.took_over_from,
            )
    try:
        server_store = load_server_store(directory / SNAPSHOT_NAME)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    mongoengine.connect(
        db=settings.db_name,
        host="mongodb://localhost",
        alias=ALIAS,
        mongo_client_class=mongomock.MongoClient,
        _store=server_store,
        uuidRepresentation="standard",
    )
    client = mongoengine.get_connection(ALIAS)
    return Store(settings, client, readonly=readonly, server_store=server_store, lock=lock)
