"""Storage: the connection (a MongoDB server by URI, local or not) and the documents."""

from __future__ import annotations

from screener.store.connect import Store, open_store
from screener.store.documents import Bulk, ElementSpace, Site, Surface

__all__ = ["Bulk", "ElementSpace", "Site", "Store", "Surface", "open_store"]
