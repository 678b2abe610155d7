"""The `Store` contract, checked on every backend (see `conftest.py` for the URLs).

Claims and leases are in `test_conformance_claims.py`, races between writers and between
claimers in `test_conformance_races.py`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from storekit import T0, ev, make, row, same_json, started

from treadle.errors import JournalConflictError
from treadle.journal import Event, ExecutionStatus, ExecutionSummary
from treadle.stores import ListQuery, RowUpdate, Store, open_store

RUNNING = ExecutionStatus.RUNNING
SUSPENDED = ExecutionStatus.SUSPENDED
PENDING = ExecutionStatus.PENDING
COMPLETED = ExecutionStatus.COMPLETED
FAILED = ExecutionStatus.FAILED
CANCELLED = ExecutionStatus.CANCELLED


async def seqs(store: Store, execution_id: str) -> list[int]:
    return [e.seq for e in await store.events(execution_id)]


# -- lifecycle ----------------------------------------------------------------------------------


async def test_is_a_store_with_its_url(store: Store, store_url: str) -> None:
    assert isinstance(store, Store)
    assert store.url == store_url


async def test_open_and_close_are_idempotent(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    await store.open()
    await make(store, "a")
    await store.close()
    await store.close()


async def test_data_survives_reopening(store_url: str) -> None:
    if store_url.startswith("memory"):
        pytest.skip("memory:// keeps nothing once closed")
    first = open_store(store_url)
    await first.open()
    await make(first, "a", events=3, idempotency_key="k")
    await first.send_signal("a", "go", {"x": 1}, T0)
    await first.close()
    second = open_store(store_url)
    await second.open()
    try:
        found = await second.get("a")
        assert found is not None and found.last_seq == 3 and found.idempotency_key == "k"
        assert await seqs(second, "a") == [1, 2, 3]
        assert [s.payload for s in await second.signals("a")] == [{"x": 1}]
    finally:
        await second.close()


# -- create -------------------------------------------------------------------------------------


async def test_create_stores_row_and_first_events(store: Store) -> None:
    given = row("a", version="v2", priority=3, queue="q", tenant_id="t", parent_id="p",
                owner="me", lease_until=T0 + 30, idempotency_key="key-a", partition_key="pk",
                started_at=T0 - 1.5)
    events = [started("a"), ev("a", 2), ev("a", 3)]
    stored, created = await store.create(given, events)
    assert created
    assert stored == replace(given, last_seq=3)
    assert await store.get("a") == replace(given, last_seq=3)
    assert await store.events("a") == events


@pytest.mark.parametrize("status", [COMPLETED, FAILED])
async def test_create_can_write_a_finished_execution(store: Store, status: ExecutionStatus) -> None:
    # A lazy start (`Engine.start(lazy=True)`) that ended before its first write: the whole
    # execution lands in one create.
    given = replace(row("done", status=status, owner="me", lease_until=T0 + 30,
                        finished_at=T0 + 2, error="boom" if status == FAILED else None),
                    updated_at=T0 + 2)
    events = [started("done"), ev("done", 2), ev("done", 3)]
    stored, created = await store.create(given, events)
    assert created and stored == replace(given, last_seq=3)
    assert await store.get("done") == replace(given, last_seq=3)
    assert await store.events("done") == events
    listed = await store.list(ListQuery(status=status))
    assert [r.id for r in listed.items] == ["done"]
    assert await store.claim("other", now=T0 + 3600, lease_until=T0 + 7200, limit=10) == []
    assert await store.prune(T0 + 3) == 1
    assert await store.get("done") is None


async def test_create_with_taken_idempotency_key_returns_existing(store: Store) -> None:
    _, created = await store.create(row("a", idempotency_key="k"), [started("a")])
    assert created
    await store.append("a", [ev("a", 2)], expected_seq=1, owner=None)
    again, created = await store.create(row("b", idempotency_key="k", workflow="other"),
                                        [started("b")])
    assert not created
    assert again.id == "a" and again.workflow == "wf" and again.last_seq == 2
    assert await store.get("b") is None
    assert await store.events("b") == []
    assert await seqs(store, "a") == [1, 2]


async def test_executions_without_key_do_not_collide(store: Store) -> None:
    await make(store, "a")
    await make(store, "b")
    assert (await store.get("a")) is not None and (await store.get("b")) is not None


async def test_create_with_existing_id_conflicts(store: Store) -> None:
    await make(store, "a", events=2)
    with pytest.raises(JournalConflictError):
        await store.create(row("a", workflow="other"), [started("a")])
    found = await store.get("a")
    assert found is not None and found.workflow == "wf" and found.last_seq == 2


async def test_unknown_execution_reads_empty(store: Store) -> None:
    assert await store.get("nope") is None
    assert await store.events("nope") == []
    assert await store.signals("nope") == []


# -- append -------------------------------------------------------------------------------------


async def test_append_continues_the_journal(store: Store) -> None:
    await make(store, "a", owner="w1", lease_until=T0 + 60)
    await store.append("a", [ev("a", 2), ev("a", 3)], expected_seq=1, owner="w1")
    await store.append("a", [ev("a", 4)], expected_seq=3, owner="w1")
    assert await seqs(store, "a") == [1, 2, 3, 4]
    found = await store.get("a")
    assert found is not None and found.last_seq == 4


@pytest.mark.parametrize("expected", [0, 1, 3, 4])
async def test_append_at_wrong_seq_conflicts_and_writes_nothing(
    store: Store, expected: int
) -> None:
    await make(store, "a", events=2, owner="w1", lease_until=T0 + 60)
    signal = await store.send_signal("a", "go", 1, T0)
    before = await store.get("a")
    new = [ev("a", expected + 1), ev("a", expected + 2)]
    with pytest.raises(JournalConflictError):
        await store.append("a", new, expected_seq=expected, owner="w1",
                           update=RowUpdate(COMPLETED, finished_at=T0 + 9),
                           consume_signal=signal)
    assert await seqs(store, "a") == [1, 2]
    assert await store.get("a") == before
    assert [s.id for s in await store.signals("a")] == [signal]


@pytest.mark.parametrize(("holder", "writer"), [("w1", "w2"), ("w1", None), (None, "w2")])
async def test_append_by_non_owner_conflicts_and_writes_nothing(
    store: Store, holder: str | None, writer: str | None
) -> None:
    await make(store, "a", owner=holder, lease_until=None if holder is None else T0 + 60)
    before = await store.get("a")
    with pytest.raises(JournalConflictError):
        await store.append("a", [ev("a", 2)], expected_seq=1, owner=writer,
                           update=RowUpdate(SUSPENDED, wake_at=T0 + 5))
    assert await seqs(store, "a") == [1]
    assert await store.get("a") == before


async def test_append_events_must_follow_expected_seq(store: Store) -> None:
    await make(store, "a")
    for bad in ([ev("a", 3)], [ev("a", 2), ev("a", 4)], [ev("a", 1)]):
        with pytest.raises(JournalConflictError):
            await store.append("a", bad, expected_seq=1, owner=None)
    assert await seqs(store, "a") == [1]


async def test_append_to_unknown_execution_conflicts(store: Store) -> None:
    with pytest.raises(JournalConflictError):
        await store.append("nope", [ev("nope", 1)], expected_seq=0, owner=None)
    assert await store.events("nope") == []


async def test_row_update_is_applied_with_the_append(store: Store) -> None:
    await make(store, "a", owner="w", lease_until=T0 + 60)
    await store.append("a", [ev("a", 2)], expected_seq=1, owner="w",
                       update=RowUpdate(SUSPENDED, wake_at=T0 + 100))
    found = await store.get("a")
    assert found is not None
    assert (found.status, found.wake_at, found.last_seq) == (SUSPENDED, T0 + 100, 2)
    await store.append("a", [ev("a", 3)], expected_seq=2, owner="w",
                       update=RowUpdate(RUNNING))
    found = await store.get("a")
    assert found is not None and (found.status, found.wake_at) == (RUNNING, None)
    await store.append("a", [ev("a", 4)], expected_seq=3, owner="w",
                       update=RowUpdate(FAILED, error="boom ✗", finished_at=T0 + 4))
    found = await store.get("a")
    assert found is not None
    assert (found.status, found.error, found.finished_at) == (FAILED, "boom ✗", T0 + 4)
    assert found.updated_at == T0 + 4 and found.last_seq == 4
    # A later update without an error keeps the recorded one.
    await store.append("a", [], expected_seq=4, owner="w", update=RowUpdate(FAILED,
                                                                          finished_at=T0 + 4))
    found = await store.get("a")
    assert found is not None and found.error == "boom ✗"


async def test_append_without_events_still_checks_the_position(store: Store) -> None:
    await make(store, "a", events=2, owner="w", lease_until=T0 + 60)
    with pytest.raises(JournalConflictError):
        await store.append("a", [], expected_seq=1, owner="w", update=RowUpdate(SUSPENDED))
    with pytest.raises(JournalConflictError):
        await store.append("a", [], expected_seq=2, owner="x", update=RowUpdate(SUSPENDED))
    with pytest.raises(JournalConflictError):
        await store.append("a", [], expected_seq=1, owner="w")
    found = await store.get("a")
    assert found is not None and found.status == RUNNING
    await store.append("a", [], expected_seq=2, owner="w")
    await store.append("a", [], expected_seq=2, owner="w", update=RowUpdate(SUSPENDED))
    found = await store.get("a")
    assert found is not None and (found.status, found.last_seq) == (SUSPENDED, 2)


async def test_stored_events_are_not_aliased(store: Store) -> None:
    await make(store, "a")
    first = await store.events("a")
    first[0].data["args"].append("mutated")
    assert (await store.events("a"))[0].data == {"workflow": "wf", "args": []}


async def test_read_signals_are_not_aliased(store: Store) -> None:
    await make(store, "a")
    await store.send_signal("a", "go", {"items": [1]}, T0)
    [signal] = await store.signals("a")
    signal.payload["items"].append("mutated")
    assert [s.payload for s in await store.signals("a")] == [{"items": [1]}]


# -- events -------------------------------------------------------------------------------------


async def test_events_after_and_limit(store: Store) -> None:
    await make(store, "a", events=3)
    await store.append("a", [ev("a", 4)], expected_seq=3, owner=None)
    await store.append("a", [ev("a", s) for s in range(5, 11)], expected_seq=4, owner=None)
    assert await seqs(store, "a") == list(range(1, 11))
    cases = {(0, None): range(1, 11), (3, None): range(4, 11), (3, 2): range(4, 6),
             (2, 3): range(3, 6), (4, 100): range(5, 11), (9, None): [10], (10, None): [],
             (0, 1): [1], (5, 0): []}
    for (after, limit), expected in cases.items():
        got = await store.events("a", after=after, limit=limit)
        assert [e.seq for e in got] == list(expected), (after, limit)
        assert all(e.execution_id == "a" for e in got)


# -- list ---------------------------------------------------------------------------------------


async def _population(store: Store) -> list[ExecutionSummary]:
    """Nine executions: ties on created_at, two workflows, parents, tenants, statuses."""
    specs: list[tuple[str, float, dict[str, Any]]] = [
        ("e1", T0 + 1, {"workflow": "alpha", "tenant_id": "t1"}),
        ("e2", T0 + 2, {"workflow": "beta", "tenant_id": "t2"}),
        ("e3", T0 + 2, {"workflow": "alpha", "parent_id": "e1", "tenant_id": "t1"}),
        ("e4", T0 + 2, {"workflow": "alpha", "parent_id": "e1"}),
        ("e5", T0 + 3.5, {"workflow": "beta", "status": PENDING}),
        ("e6", T0 + 4, {"workflow": "alpha", "tenant_id": "t2"}),
        ("e7", T0 + 5, {"workflow": "beta", "parent_id": "e2", "tenant_id": "t1"}),
        ("e8", T0 + 6, {"workflow": "alpha"}),
        ("e9", T0 + 6, {"workflow": "alpha", "status": SUSPENDED}),
    ]
    made = [await make(store, ident, created_at=at, **extra) for ident, at, extra in specs]
    await store.append("e8", [ev("e8", 2)], expected_seq=1, owner=None,
                       update=RowUpdate(COMPLETED, finished_at=T0 + 7))
    await store.append("e2", [ev("e2", 2)], expected_seq=1, owner=None,
                       update=RowUpdate(FAILED, finished_at=T0 + 7, error="x"))
    return made


def _newest_first(rows: list[ExecutionSummary]) -> list[str]:
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


async def _all_pages(store: Store, query: ListQuery) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        page = await store.list(replace(query, cursor=cursor))
        pages += 1
        assert len(page.items) <= query.limit
        ids.extend(r.id for r in page.items)
        if page.next_cursor is None:
            return ids, pages
        assert len(page.items) == query.limit
        cursor = page.next_cursor


async def test_list_is_newest_first(store: Store) -> None:
    made = await _population(store)
    page = await store.list(ListQuery(limit=100))
    assert [r.id for r in page.items] == _newest_first(made)
    assert page.next_cursor is None
    e8 = next(r for r in page.items if r.id == "e8")
    assert (e8.status, e8.finished_at, e8.last_seq) == (COMPLETED, T0 + 7, 2)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (ListQuery(workflow="alpha"), ["e9", "e8", "e6", "e4", "e3", "e1"]),
        (ListQuery(workflow="gamma"), []),
        (ListQuery(status=RUNNING), ["e7", "e6", "e4", "e3", "e1"]),
        (ListQuery(status=COMPLETED), ["e8"]),
        (ListQuery(status=FAILED), ["e2"]),
        (ListQuery(status=PENDING), ["e5"]),
        (ListQuery(status=SUSPENDED), ["e9"]),
        (ListQuery(created_after=T0 + 2), ["e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2"]),
        (ListQuery(created_before=T0 + 3.5), ["e4", "e3", "e2", "e1"]),
        (ListQuery(created_after=T0 + 2, created_before=T0 + 5), ["e6", "e5", "e4", "e3", "e2"]),
        (ListQuery(parent_id="e1"), ["e4", "e3"]),
        (ListQuery(tenant_id="t1"), ["e7", "e3", "e1"]),
        (ListQuery(workflow="alpha", tenant_id="t1", status=RUNNING), ["e3", "e1"]),
        (ListQuery(workflow="beta", parent_id="e2", created_after=T0 + 5), ["e7"]),
    ],
)
async def test_list_filters(store: Store, query: ListQuery, expected: list[str]) -> None:
    await _population(store)
    assert [r.id for r in (await store.list(query)).items] == expected
    ids, _ = await _all_pages(store, replace(query, limit=1))
    assert ids == expected


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 8, 9, 10])
async def test_list_pages_cover_everything_once(store: Store, limit: int) -> None:
    made = await _population(store)
    ids, pages = await _all_pages(store, ListQuery(limit=limit))
    assert ids == _newest_first(made)
    assert pages == max(1, -(-len(made) // limit))


async def test_list_pages_with_a_filter(store: Store) -> None:
    await _population(store)
    ids, pages = await _all_pages(store, ListQuery(workflow="alpha", limit=2))
    assert ids == ["e9", "e8", "e6", "e4", "e3", "e1"]
    assert pages == 3


async def test_list_cursor_is_stable_under_inserts(store: Store) -> None:
    await _population(store)
    first = await store.list(ListQuery(limit=3))
    assert [r.id for r in first.items] == ["e9", "e8", "e7"]
    await make(store, "e0", created_at=T0 + 100)  # newer: must not shift the next page
    await make(store, "e10", created_at=T0 + 4)   # older than the cursor: must show up
    second = await store.list(ListQuery(limit=3, cursor=first.next_cursor))
    assert [r.id for r in second.items] == ["e6", "e10", "e5"]


async def test_list_follows_status_changes(store: Store) -> None:
    await make(store, "a")
    assert [r.id for r in (await store.list(ListQuery(status=RUNNING))).items] == ["a"]
    await store.append("a", [ev("a", 2)], expected_seq=1, owner=None,
                       update=RowUpdate(SUSPENDED, wake_at=T0))
    assert (await store.list(ListQuery(status=RUNNING))).items == []
    found = (await store.list(ListQuery(status=SUSPENDED))).items
    assert [(r.id, r.wake_at, r.last_seq) for r in found] == [("a", T0, 2)]


# -- signals ------------------------------------------------------------------------------------


async def test_signals_wait_oldest_first(store: Store) -> None:
    await make(store, "a")
    await make(store, "b")
    ids = [await store.send_signal("a", "approve", {"by": "ann"}, T0 + 1),
           await store.send_signal("b", "other", None, T0 + 2),
           await store.send_signal("a", "approve", [1, 2], T0 + 3),
           await store.send_signal("a", "reject", "no", T0 + 4)]
    assert ids == sorted(ids) and len(set(ids)) == 4
    found = await store.signals("a")
    assert [(s.id, s.execution_id, s.name, s.payload, s.created_at) for s in found] == [
        (ids[0], "a", "approve", {"by": "ann"}, T0 + 1),
        (ids[2], "a", "approve", [1, 2], T0 + 3),
        (ids[3], "a", "reject", "no", T0 + 4),
    ]
    assert [s.id for s in await store.signals("b")] == [ids[1]]


async def test_signal_to_unknown_execution_conflicts(store: Store) -> None:
    with pytest.raises(JournalConflictError):
        await store.send_signal("nope", "go", None, T0)


async def test_consuming_a_signal_is_part_of_the_append(store: Store) -> None:
    await make(store, "a", owner="w", lease_until=T0 + 60)
    first = await store.send_signal("a", "go", 1, T0)
    second = await store.send_signal("a", "go", 2, T0)
    received = ev("a", 2, "signal.received", {"pos": 0, "signal_id": second, "payload": 2})
    with pytest.raises(JournalConflictError):
        await store.append("a", [received], expected_seq=0, owner="w", consume_signal=second)
    with pytest.raises(JournalConflictError):
        await store.append("a", [received], expected_seq=1, owner="x", consume_signal=second)
    assert [s.id for s in await store.signals("a")] == [first, second]
    await store.append("a", [received], expected_seq=1, owner="w", consume_signal=second)
    assert [s.payload for s in await store.signals("a")] == [1]
    await store.append("a", [], expected_seq=2, owner="w", consume_signal=first)
    assert await store.signals("a") == []
    assert await seqs(store, "a") == [1, 2]


# -- retention ----------------------------------------------------------------------------------


async def test_prune_deletes_only_finished_before_the_cutoff(store: Store) -> None:
    await make(store, "old", idempotency_key="k-old")
    await make(store, "recent", idempotency_key="k-recent")
    await make(store, "failed")
    await make(store, "active", created_at=T0 - 1000)
    await make(store, "no-finish")
    for ident, status, finished in (("old", COMPLETED, T0 + 10), ("recent", COMPLETED, T0 + 50),
                                    ("failed", FAILED, T0 + 20), ("no-finish", CANCELLED, None)):
        await store.send_signal(ident, "late", None, T0)
        await store.append(ident, [ev(ident, 2)], expected_seq=1, owner=None,
                           update=RowUpdate(status, finished_at=finished))
    assert await store.prune(T0 + 20) == 1
    assert await store.prune(T0 + 21) == 1
    assert await store.prune(T0 + 21) == 0
    for gone in ("old", "failed"):
        assert await store.get(gone) is None
        assert await store.events(gone) == []
        assert await store.signals(gone) == []
    for kept in ("recent", "active", "no-finish"):
        assert await store.get(kept) is not None
    assert {r.id for r in (await store.list(ListQuery())).items} == {
        "recent", "active", "no-finish"}
    again, created = await store.create(row("new", idempotency_key="k-old"), [started("new")])
    assert created and again.id == "new"
    existing, created = await store.create(row("x", idempotency_key="k-recent"),
                                           [started("x")])
    assert not created and existing.id == "recent"


# -- values -------------------------------------------------------------------------------------

TRICKY: dict[str, Any] = {
    "zeta": 1, "alpha": 2, "Δ": 3, "": 4, "a.b": 5, "10": 6, "2": 7,  # key order is kept
    "nested": {"list": [1, [2, [3, {"deep": [None]}]]], "empty": {}, "none": [], "t": True,
               "f": False},
    "unicode": "héllo wörld — 日本語 🎉 \U0001f680 e\u0301 \u202eRTL",
    "escapes": "quote \" backslash \\ newline \n tab \t nul \u0000 bell \x07 \u2028",
    "floats": [0.1, -2.5, 1.0, 0.0, 1e-7, 1e16, 1.5e300, 1.7976931348623157e308, 5e-324,
               123456789.12345679, 2.0**53 + 2, 1e22, 3.14159],
    "ints": [0, -1, 2**53 + 1, 2**63 - 1, -(2**63), 10**30],
    "null": None,
    "bools": [True, False],
}


async def test_event_data_round_trips_exactly(store: Store) -> None:
    events = [Event("a", 1, "execution.started", TRICKY, T0),
              Event("a", 2, "step.completed", {"output": ["x", 1.0, None, {"k": 1}]}, T0 + 1.25)]
    await store.create(row("a"), events[:1])
    await store.append("a", events[1:], expected_seq=1, owner=None)
    for stored, original in zip(await store.events("a"), events, strict=True):
        assert same_json(stored.data, original.data)
        assert stored.created_at == original.created_at and stored.type == original.type


@pytest.mark.parametrize("payload", [TRICKY, None, 1.0, 7, "s\u0000", [1, "two", 3.0], True])
async def test_signal_payload_round_trips_exactly(store: Store, payload: Any) -> None:
    await make(store, "a")
    await store.send_signal("a", "go", payload, T0)
    [signal] = await store.signals("a")
    assert same_json(signal.payload, payload)


async def test_row_fields_round_trip(store: Store) -> None:
    given = row("ü-1 ✓", workflow="wörkflow/🎉", version="2.0-β", created_at=1712345678.1234567,
                idempotency_key="clé", parent_id="père", queue="hi-prio", priority=-7,
                tenant_id="tenant ✓", partition_key="clé/1", owner="worker ✓",
                lease_until=1712345999.9876543, wake_at=1712346000.0000002, status=SUSPENDED)
    await store.create(given, [started("ü-1 ✓")])
    found = await store.get("ü-1 ✓")
    assert found == replace(given, last_seq=1)
    assert found is not None and same_json(found.created_at, given.created_at)
    [listed] = (await store.list(ListQuery(workflow="wörkflow/🎉"))).items
    assert listed == found
