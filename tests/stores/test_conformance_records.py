"""Records: the control plane's small documents, the same contract on every backend."""

from __future__ import annotations

import asyncio

from treadle.stores import Record, RecordQuery, Store

T0 = 1_700_000_000.0


def rec(key: str, at: float = T0, kind: str = "dlq", tenant: str | None = None,
        expires: float | None = None, **data: object) -> Record:
    return Record(kind, key, {"key": key, **data}, at, tenant, expires)


async def keys(store: Store, query: RecordQuery) -> list[str]:
    return [r.key for r in (await store.list_records(query)).items]


async def test_put_get_round_trips_every_field(store: Store) -> None:
    record = Record("user", "ann@example.com", {"roles": ["viewer"], "n": 1.5, "ok": True,
                                                "nested": {"a": [1, None, "ü"]}},
                    T0 + 0.25, "acme", T0 + 60)
    assert await store.put_record(record)
    assert await store.get_record("user", "ann@example.com") == record
    assert await store.get_record("user", "bob@example.com") is None
    assert await store.get_record("dlq", "ann@example.com") is None  # kinds are separate


async def test_put_replaces_and_create_only_keeps_the_first(store: Store) -> None:
    assert await store.put_record(rec("a", v=1))
    assert await store.put_record(rec("a", at=T0 + 1, v=2))
    found = await store.get_record("dlq", "a")
    assert found is not None and found.data["v"] == 2 and found.created_at == T0 + 1
    assert not await store.put_record(rec("a", v=3), create_only=True)
    assert not await store.put_record(rec("a", v=3), create_only=True)
    found = await store.get_record("dlq", "a")
    assert found is not None and found.data["v"] == 2
    assert await store.put_record(rec("b", v=3), create_only=True)


async def test_stored_data_is_a_copy(store: Store) -> None:
    data = {"items": [1]}
    await store.put_record(Record("dlq", "a", data, T0))
    data["items"].append(2)
    found = await store.get_record("dlq", "a")
    assert found is not None and found.data == {"items": [1]}


async def test_list_is_newest_first_with_key_tiebreak_and_cursor_pages(store: Store) -> None:
    for i, key in enumerate(["k1", "k2", "k3", "k4", "k5"]):
        await store.put_record(rec(key, at=T0 + i))
    await store.put_record(rec("k0", at=T0 + 4))  # same created_at as k5: key breaks the tie
    await store.put_record(rec("other", kind="audit", at=T0 + 9))
    first = await store.list_records(RecordQuery("dlq", limit=4))
    assert [r.key for r in first.items] == ["k5", "k0", "k4", "k3"]
    assert first.next_cursor is not None
    second = await store.list_records(RecordQuery("dlq", limit=4, cursor=first.next_cursor))
    assert [r.key for r in second.items] == ["k2", "k1"]
    assert second.next_cursor is None
    exact = await store.list_records(RecordQuery("dlq", limit=6))
    assert len(exact.items) == 6 and exact.next_cursor is None


async def test_list_filters_by_tenant_and_key_prefix(store: Store) -> None:
    await store.put_record(rec("orders/1", tenant="acme", at=T0 + 1))
    await store.put_record(rec("orders/2", tenant="globex", at=T0 + 2))
    await store.put_record(rec("payments/1", tenant="acme", at=T0 + 3))
    await store.put_record(rec("orders%/3", at=T0 + 4))  # LIKE metacharacters are literal
    assert await keys(store, RecordQuery("dlq", tenant_id="acme")) == ["payments/1", "orders/1"]
    assert await keys(store, RecordQuery("dlq", key_prefix="orders/")) == ["orders/2", "orders/1"]
    assert await keys(store, RecordQuery("dlq", key_prefix="orders%")) == ["orders%/3"]
    assert await keys(store, RecordQuery("dlq", key_prefix="orders/", tenant_id="globex")) \
        == ["orders/2"]
    assert await keys(store, RecordQuery("dlq", tenant_id="initech")) == []


async def test_delete(store: Store) -> None:
    await store.put_record(rec("a"))
    assert await store.delete_record("dlq", "a")
    assert not await store.delete_record("dlq", "a")
    assert await store.get_record("dlq", "a") is None


async def test_prune_records_deletes_only_the_expired(store: Store) -> None:
    await store.put_record(rec("gone", expires=T0 + 10))
    await store.put_record(rec("edge", expires=T0 + 20))
    await store.put_record(rec("later", expires=T0 + 30))
    await store.put_record(rec("forever"))
    await store.put_record(rec("bp", kind="breakpoint", expires=T0 + 10))
    assert await store.prune_records(T0 + 20, kind="dlq") == 2
    assert await keys(store, RecordQuery("dlq")) == ["later", "forever"]
    assert await store.get_record("breakpoint", "bp") is not None
    assert await store.prune_records(T0 + 100) == 2
    assert await keys(store, RecordQuery("dlq")) == ["forever"]
    assert await keys(store, RecordQuery("breakpoint")) == []


async def test_records_survive_reopening(store: Store, peer: Store) -> None:
    await store.put_record(rec("a", tenant="acme", v=1))
    found = await peer.get_record("dlq", "a")
    assert found is not None and found.data["v"] == 1 and found.tenant_id == "acme"


async def test_create_only_admits_one_writer(store: Store, peer: Store) -> None:
    results = await asyncio.gather(*(
        (store if i % 2 else peer).put_record(rec("once", v=i), create_only=True)
        for i in range(6)))
    assert results.count(True) == 1
    found = await store.get_record("dlq", "once")
    assert found is not None and found.data["v"] == results.index(True)
