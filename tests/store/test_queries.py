"""The per-bulk and chunked reads of the read side return each matching document once, on a real
server."""

from __future__ import annotations

import pymongo
from bson import ObjectId

from screener.queries import ID_CHUNK, by_bulk, by_ids, of_space


def _collection(settings):
    return pymongo.MongoClient(settings.mongo_uri)[settings.db_name]["things"]


def test_by_bulk_and_of_space_read_every_match_once(settings):
    col = _collection(settings)
    bulks = [ObjectId() for _ in range(34)]
    other = ObjectId()  # a bulk outside the space
    docs = [{"bulk": b, "kind": k, "n": i} for i, b in enumerate(bulks) for k in ("a", "b")]
    docs += [{"bulk": other, "kind": "a"}, {"bulk": other, "kind": "a", "space": "s"}]
    docs += [{"bulk": bulks[0], "kind": "a", "space": "s"}]  # on a bulk of the space and named
    col.insert_many(docs)

    found = list(by_bulk(col, bulks + bulks[:2], {"kind": "a"}, {"bulk": 1}, sort="_id"))
    assert len(found) == len(bulks) + 1
    assert {d["bulk"] for d in found} == set(bulks)
    assert len({d["_id"] for d in found}) == len(found)

    mixed = of_space(col, bulks, "s", {"kind": "a"}, {"bulk": 1})
    assert len(mixed) == len(bulks) + 2  # the bulks' documents plus the named one elsewhere
    assert len({d["_id"] for d in mixed}) == len(mixed)
    assert sum(d["bulk"] == other for d in mixed) == 1


def test_by_ids_reads_more_ids_than_one_query_holds(settings):
    col = _collection(settings)
    ids = col.insert_many([{"n": i} for i in range(2 * ID_CHUNK + 7)]).inserted_ids
    wanted = ids[::2] + ids[:3]  # 0 and 2 repeat and are read once
    found = list(by_ids(col, wanted, {"n": 1}))
    assert sorted(d["n"] for d in found) == sorted([*range(0, len(ids), 2), 1])
