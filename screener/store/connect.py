"""Open the store: a MongoDB server reached by URI, the same way in every process.

The URI is ``SCREENER_MONGO_URI`` when it is set (any MongoDB; nothing is started), otherwise that
of the data directory's own server (:mod:`screener.store.server`), started when it is not running.
mongoengine's documents and FireWorks' LaunchPad each hold a pymongo client on that URI.  Every
write is acknowledged only once it is in the server's journal (write concern ``j=True``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mongoengine

from screener.errors import ScreenerError
from screener.settings import ScreenerSettings
from screener.store import documents, server

log = logging.getLogger(__name__)
ALIAS = "default"
# screener's queries of FireWorks' collection: the step key (duplicate finder, ingest) and the
# job key (reconciling a submission)
FIREWORK_INDEXES = ("spec.screener_key", "spec.screener_job", "spec.screener_submission")
CLIENT_OPTIONS: dict[str, Any] = {
    "journal": True,  # write concern j=True: the ledger, results, leases and models survive
    "serverSelectionTimeoutMS": 10000,
    "uuidRepresentation": "standard",
}


def store_uri(settings: ScreenerSettings, *, create: bool = True) -> str:
    """The URI of the store: ``SCREENER_MONGO_URI``, or the data directory's server (started).

    ``create=False`` refuses a data directory that holds no database yet
    (:class:`~screener.errors.NoDatabaseError`) instead of starting an empty one.
    """
    if settings.mongo_uri:
        return settings.mongo_uri
    started = server.start(settings.data_dir, port=settings.db_port, create=create)
    assert started.uri is not None
    return started.uri


def safe_location(uri: str) -> str:
    """A URI's hosts and database, without credentials or options, for messages."""
    rest = uri.split("://", 1)[-1]
    return rest.split("@")[-1].split("?")[0].rstrip("/")


class Store:
    """An open store: the pymongo ``client``, its ``db`` and FireWorks' :meth:`launchpad`."""

    def __init__(self, settings: ScreenerSettings, uri: str, client: Any, *, readonly: bool):
        self.settings = settings
        self.uri = uri
        self.client = client
        self.db = client[settings.db_name]
        self.readonly = readonly
        self.closed = threading.Event()  # set by close(): background readers stop on it
        self._launchpad: Any = None

    @property
    def kind(self) -> str:
        return "mongodb" if self.settings.mongo_uri else "local server"

    @property
    def location(self) -> str:
        where = safe_location(self.uri)
        if self.settings.mongo_uri:
            return where
        return f"{where} ({self.settings.data_dir.resolve()})"

    def launchpad_spec(self) -> dict[str, Any]:
        """FireWorks' LaunchPad settings for this store (``my_launchpad.yaml``)."""
        return {
            "host": self.uri,
            "name": self.settings.db_name,
            "uri_mode": True,
            "mongoclient_kwargs": {"journal": True, "serverSelectionTimeoutMS": 10000},
            "strm_lvl": "WARNING",
        }

    def launchpad(self) -> Any:
        """FireWorks' LaunchPad on this store's database, initialised on first use."""
        if self._launchpad is None:
            from fireworks.core.launchpad import LaunchPad

            launchpad = LaunchPad.from_dict(self.launchpad_spec())
            if not self.readonly:
                fresh = launchpad.fw_id_assigner.count_documents({}) == 0
                if fresh and launchpad.fireworks.count_documents({}) == 0:
                    launchpad.reset("", require_password=False)
                for field in FIREWORK_INDEXES:
                    launchpad.fireworks.create_index(field)
            self._launchpad = launchpad
        return self._launchpad

    def close(self) -> None:
        self.closed.set()
        if self._launchpad is not None:
            self._launchpad.connection.close()
            self._launchpad = None
        mongoengine.disconnect(ALIAS)


@contextmanager
def open_store(
    settings: ScreenerSettings, *, readonly: bool = False, create: bool = True
) -> Iterator[Store]:
    """Connect mongoengine (alias ``default``) and yield the :class:`Store`.

    ``readonly`` promises that this process only reads: it creates no indexes and does not
    initialise FireWorks' collections.  ``create=False`` is for work on stored data (a named
    space, its sites and results): a local data directory without a database is refused before
    anything is written to it.
    """
    import pymongo.errors

    uri = store_uri(settings, create=create)
    mongoengine.disconnect(ALIAS)
    mongoengine.connect(db=settings.db_name, host=uri, alias=ALIAS, **CLIENT_OPTIONS)
    client = mongoengine.get_connection(ALIAS)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        mongoengine.disconnect(ALIAS)
        raise ScreenerError(
            f"cannot reach the database at {safe_location(uri)}: {str(exc).split(',')[0]}"
        ) from None
    store = Store(settings, uri, client, readonly=readonly)
    try:
        if not readonly:
            documents.ensure_indexes()
        yield store
    finally:
        store.close()
