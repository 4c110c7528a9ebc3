"""Shared fixtures: every test gets its own store, configured through ``use_settings`` only.

With ``SCREENER_TEST_MONGO_URI`` set the store tests run against that MongoDB server (a fresh
database per test, dropped afterwards); otherwise against the embedded mongomock store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from screener.settings import ScreenerSettings, use_settings

REPO = Path(__file__).resolve().parents[1]
MONGO_URI = os.environ.get("SCREENER_TEST_MONGO_URI")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SCREENER_") and key != "SCREENER_TEST_MONGO_URI":
            monkeypatch.delenv(key)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[ScreenerSettings]:
    """Settings for one test: a private store, enumeration in-process (no dask cluster)."""
    values: dict = {"data_dir": tmp_path / "data", "dask_workers": 0}
    if MONGO_URI:
        values.update(mongo_uri=MONGO_URI, db_name=f"screener_test_{uuid.uuid4().hex[:8]}")
    with use_settings(**values) as current:
        yield current
    if MONGO_URI:
        import pymongo

        pymongo.MongoClient(MONGO_URI).drop_database(current.db_name)


@pytest.fixture
def cli_env(settings: ScreenerSettings) -> dict[str, str]:
    """Environment for running the ``screener`` console script against the test's store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    env["SCREENER_DATA_DIR"] = str(settings.data_dir)
    env["SCREENER_DASK_WORKERS"] = "0"
    if settings.mongo_uri:
        env["SCREENER_MONGO_URI"] = settings.mongo_uri
        env["SCREENER_DB_NAME"] = settings.db_name
    return env
