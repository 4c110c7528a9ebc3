"""Shared fixtures: every test gets its own database, configured through ``use_settings`` only.

The tests run against a real MongoDB-protocol server: one SecantusDB that this conftest starts in
a temporary directory for the session (through screener's own server management), or the
MongoDB at ``SCREENER_TEST_MONGO_URI`` when that is set.  Each test gets a fresh database on it,
dropped afterwards.  Tests of the local server itself give screener a data directory and no URI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

from screener.settings import ScreenerSettings, use_settings
from screener.store import server

REPO = Path(__file__).resolve().parents[1]
MONGO_URI = os.environ.get("SCREENER_TEST_MONGO_URI")


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of the server every test's database lives on."""
    if MONGO_URI:
        yield MONGO_URI
        return
    data_dir = tmp_path_factory.mktemp("server") / "data"
    with server.stopped_after(data_dir):
        started = server.start(data_dir)
        assert started.uri is not None
        yield started.uri


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SCREENER_") and key != "SCREENER_TEST_MONGO_URI":
            monkeypatch.delenv(key)


@pytest.fixture
def settings(tmp_path: Path, mongo_uri: str) -> Iterator[ScreenerSettings]:
    """Settings for one test: a private database, enumeration in-process (no dask cluster)."""
    values: dict = {
        "data_dir": tmp_path / "data",
        "dask_workers": 0,
        "mongo_uri": mongo_uri,
        "db_name": f"screener_test_{uuid.uuid4().hex[:10]}",
    }
    with use_settings(**values) as current:
        yield current
    client = pymongo.MongoClient(mongo_uri)
    try:
        client.drop_database(current.db_name)
    finally:
        client.close()


@pytest.fixture
def local_settings(tmp_path: Path) -> Iterator[ScreenerSettings]:
    """Settings with no URI: screener starts the data directory's own server (stopped after)."""
    data_dir = tmp_path / "local"
    with server.stopped_after(data_dir), use_settings(data_dir=data_dir, dask_workers=0) as s:
        yield s


def env_of(settings: ScreenerSettings) -> dict[str, str]:
    """Environment for running the ``screener`` console script with these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    env["SCREENER_DATA_DIR"] = str(settings.data_dir)
    env["SCREENER_DASK_WORKERS"] = "0"
    env["SCREENER_DB_NAME"] = settings.db_name
    if settings.mongo_uri:
        env["SCREENER_MONGO_URI"] = settings.mongo_uri
    return env


@pytest.fixture
def cli_env(settings: ScreenerSettings) -> dict[str, str]:
    """Environment for running the ``screener`` console script against the test's database."""
    return env_of(settings)
