"""The `Store` contract under contention: racing appends and racing claimers.

Writers race inside one event loop (`asyncio.gather`, on separate connections where the
backend has them), from threads (each with its own store handle and loop) and, for the durable
backends, from separate processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from storekit import (
    T0,
    append_until_done,
    check_gap_free,
    claim_all,
    claimer_main,
    ev,
    in_thread_loop,
    make,
    row,
    started,
    writer_main,
)

from treadle.errors import JournalConflictError
from treadle.journal import Event, ExecutionStatus
from treadle.stores import ListQuery, RowUpdate, Store, open_store
from treadle.stores.base import ClaimLimits

WRITERS = 6
ROUNDS = 15


async def _handles(store: Store, store_url: str, count: int) -> list[Store]:
    """`count` handles on the store's data: the store itself for memory://, else new ones."""
    if store_url.startswith("memory"):
        return [store] * count
    handles = [open_store(store_url) for _ in range(count)]
    for handle in handles:
        await handle.open()
    return handles


async def _close(store: Store, handles: list[Store]) -> None:
    for handle in handles:
        if handle is not store:
            await handle.close()


async def test_same_expected_seq_has_exactly_one_winner(store: Store, store_url: str) -> None:
    await make(store, "a", owner="w", lease_until=T0 + 60)
    handles = await _handles(store, store_url, WRITERS)
    try:
        for seq in range(1, ROUNDS + 1):
            signal = await store.send_signal("a", "go", seq, T0)

            async def attempt(i: int, handle: Store, seq: int = seq, signal: int = signal) -> int:
                event = ev("a", seq + 1, data={"writer": i})
                try:
                    await handle.append("a", [event], expected_seq=seq, owner="w",
                                        update=RowUpdate(ExecutionStatus.RUNNING, error=str(i)),
                                        consume_signal=signal)
                except JournalConflictError:
                    return -1
                return i

            results = await asyncio.gather(*(attempt(i, h) for i, h in enumerate(handles)))
            winners = [r for r in results if r >= 0]
            assert len(winners) == 1, results
            [event] = await store.events("a", after=seq)
            assert event.seq == seq + 1 and event.data == {"writer": winners[0]}
            found = await store.get("a")
            assert found is not None and (found.last_seq, found.error) == (seq + 1,
                                                                          str(winners[0]))
            assert await store.signals("a") == []
    finally:
        await _close(store, handles)
    check_gap_free([e.seq for e in await store.events("a")])


async def test_optimistic_writers_in_one_loop_leave_no_gaps(store: Store, store_url: str) -> None:
    await make(store, "a")
    handles = await _handles(store, store_url, WRITERS)
    try:
        await asyncio.gather(*(append_until_done(h, "a", f"w{i}", ROUNDS)
                               for i, h in enumerate(handles)))
    finally:
        await _close(store, handles)
    _check_writers(await store.events("a"), WRITERS, ROUNDS)


async def test_optimistic_writers_in_threads_leave_no_gaps(store: Store, store_url: str) -> None:
    await make(store, "a")
    with ThreadPoolExecutor(WRITERS) as pool:
        if store_url.startswith("memory"):
            futures = [pool.submit(asyncio.run, append_until_done(store, "a", f"w{i}", ROUNDS))
                       for i in range(WRITERS)]
        else:
            futures = [pool.submit(writer_main, store_url, "a", f"w{i}", ROUNDS)
                       for i in range(WRITERS)]
        conflicts = [f.result(timeout=60) for f in futures]
    assert all(c >= 0 for c in conflicts)
    _check_writers(await store.events("a"), WRITERS, ROUNDS)


@pytest.mark.slow
async def test_optimistic_writers_in_processes_leave_no_gaps(
    store: Store, store_url: str
) -> None:
    if store_url.startswith("memory"):
        pytest.skip("memory:// is not shared between processes")
    await make(store, "a")
    processes = 3
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [pool.submit(writer_main, store_url, "a", f"p{i}", ROUNDS)
                   for i in range(processes)]
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(asyncio.wrap_future(f, loop=loop) for f in futures))
    _check_writers(await store.events("a"), processes, ROUNDS)


def _check_writers(events: list[Event], writers: int, rounds: int) -> None:
    check_gap_free([e.seq for e in events])
    tagged = [(e.data["writer"], e.data["n"]) for e in events[1:]]
    assert len(tagged) == writers * rounds
    per_writer = Counter(w for w, _ in tagged)
    assert all(count == rounds for count in per_writer.values()) and len(per_writer) == writers
    for writer in per_writer:  # each writer's events appear once each, in its own order
        assert [n for w, n in tagged if w == writer] == list(range(rounds))


async def test_claimers_never_share_an_execution(store: Store, store_url: str) -> None:
    total = 60
    for i in range(total):
        await make(store, f"e{i:03}", created_at=T0 + i)
    handles = await _handles(store, store_url, 4)
    try:
        results = await asyncio.gather(*(claim_all(h, f"w{i}", 3)
                                         for i, h in enumerate(handles)))
    finally:
        await _close(store, handles)
    _check_claims(results, total)
    for owner, ids in enumerate(results):
        for ident in ids:
            found = await store.get(ident)
            assert found is not None and found.owner == f"w{owner}"


async def test_claimers_in_threads_never_share_an_execution(
    store: Store, store_url: str
) -> None:
    total = 60
    for i in range(total):
        await make(store, f"e{i:03}", created_at=T0 + i, status=ExecutionStatus.PENDING)
    with ThreadPoolExecutor(4) as pool:
        if store_url.startswith("memory"):
            futures = [pool.submit(asyncio.run, claim_all(store, f"w{i}", 2)) for i in range(4)]
        else:
            futures = [pool.submit(claimer_main, store_url, f"w{i}", 2) for i in range(4)]
        results = [f.result(timeout=60) for f in futures]
    _check_claims(results, total)


def _check_claims(results: list[list[str]], total: int) -> None:
    everything = [ident for ids in results for ident in ids]
    assert len(everything) == len(set(everything)), "an execution was claimed twice"
    assert sorted(everything) == [f"e{i:03}" for i in range(total)]


async def test_claimers_with_limits_never_exceed_them(store: Store, store_url: str) -> None:
    # More executions than one claim looks at (PostgreSQL locks up to 500 candidates), so
    # claimers see disjoint candidates and only the limit check can keep them in bounds.
    for i in range(1100):
        await make(store, f"e{i:04}", queue="q", status=ExecutionStatus.PENDING,
                   created_at=T0 + i)
    limits = ClaimLimits(queue_concurrency={"q": 3}, workflow_concurrency={"wf": 5})
    shared = store if store_url.startswith("memory") else None
    start = threading.Barrier(4)

    async def claim_some(handle: Store) -> list[str]:
        got: list[str] = []
        await handle.get("e0000")  # connected
        start.wait(timeout=30)  # then all claim at once
        for _ in range(5):
            rows = await handle.claim(f"w{id(handle)}", now=T0, lease_until=T0 + 60, limit=2,
                                      limits=limits)
            got.extend(r.id for r in rows)
        return got

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(in_thread_loop, store_url, shared, claim_some) for _ in range(4)]
        results = [f.result(timeout=60) for f in futures]
    everything = [ident for ids in results for ident in ids]
    assert sorted(everything) == ["e0000", "e0001", "e0002"]
    assert await store.depth("q") == 1097


async def test_racing_creates_with_one_idempotency_key(store: Store, store_url: str) -> None:
    handles = await _handles(store, store_url, WRITERS)

    async def create(i: int, handle: Store) -> tuple[str, bool]:
        stored, created = await handle.create(row(f"e{i}", idempotency_key="same"),
                                              [started(f"e{i}")])
        return stored.id, created

    try:
        results = await asyncio.gather(*(create(i, h) for i, h in enumerate(handles)))
    finally:
        await _close(store, handles)
    winners = [ident for ident, created in results if created]
    assert len(winners) == 1
    assert {ident for ident, _ in results} == set(winners)
    for i in range(WRITERS):
        assert (await store.get(f"e{i}") is None) == (f"e{i}" != winners[0])


async def test_more_concurrent_callers_than_connections(store_url: str) -> None:
    # A small pool where the backend has one: callers beyond it wait, they do not fail.
    url = store_url
    if store_url.startswith(("postgresql", "redis")):
        url += "&pool_max=3&pool_timeout=30"
    store = open_store(url)
    await store.open()
    try:
        await asyncio.gather(*(make(store, f"e{i:03}", created_at=T0 + i) for i in range(150)))
        rows = await asyncio.gather(*(store.get(f"e{i:03}") for i in range(150)))
        assert all(r is not None for r in rows)
        await asyncio.gather(*(store.append(f"e{i:03}", [ev(f"e{i:03}", 2)], expected_seq=1,
                                            owner=None) for i in range(150)))
        assert len((await store.list(ListQuery(status=ExecutionStatus.RUNNING,
                                               limit=200))).items) == 150
    finally:
        await store.close()


async def test_racing_consumers_of_one_signal(store: Store, store_url: str) -> None:
    await make(store, "a", owner="w", lease_until=T0 + 60)
    signal = await store.send_signal("a", "go", "payload", T0)
    handles = await _handles(store, store_url, WRITERS)

    async def consume(handle: Store) -> bool:
        event = ev("a", 2, "signal.received", {"signal_id": signal})
        try:
            await handle.append("a", [event], expected_seq=1, owner="w", consume_signal=signal)
        except JournalConflictError:
            return False
        return True

    try:
        results = await asyncio.gather(*(consume(h) for h in handles))
    finally:
        await _close(store, handles)
    assert results.count(True) == 1
    assert await store.signals("a") == []
    assert [e.type for e in await store.events("a")] == ["execution.started", "signal.received"]


async def test_writes_of_one_turn_stand_or_fall_alone(store: Store) -> None:
    # Writes issued together (SQLite commits them as one group): the refused ones raise and
    # write nothing, the others land whole.
    for name in ("a", "b", "c"):
        await make(store, name, owner="w", lease_until=T0 + 60)

    async def append(name: str, expected: int) -> str:
        try:
            await store.append(name, [ev(name, expected + 1), ev(name, expected + 2)],
                               expected_seq=expected, owner="w",
                               update=RowUpdate(ExecutionStatus.COMPLETED, finished_at=T0))
        except JournalConflictError:
            return f"{name}: refused"
        return f"{name}: ok"

    async def create(name: str) -> str:
        try:
            await store.create(row(name), [started(name)])
        except JournalConflictError:
            return f"{name}: exists"
        return f"{name}: created"

    results = await asyncio.gather(append("a", 1), append("b", 5), create("a"), create("d"),
                                   append("c", 1))
    assert results == ["a: ok", "b: refused", "a: exists", "d: created", "c: ok"]
    assert [e.seq for e in await store.events("a")] == [1, 2, 3]
    assert [e.seq for e in await store.events("b")] == [1]
    assert [e.seq for e in await store.events("d")] == [1]
    statuses = {n: (await store.get(n)) for n in "abcd"}
    assert {n: str(r.status) for n, r in statuses.items() if r is not None} == {
        "a": "completed", "b": "running", "c": "completed", "d": "running"}


async def test_a_write_cancelled_before_it_ran_writes_nothing_or_all(store: Store) -> None:
    await make(store, "a", owner="w", lease_until=T0 + 60)
    task = asyncio.ensure_future(store.append("a", [ev("a", 2)], expected_seq=1, owner="w"))
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    seqs = [e.seq for e in await store.events("a")]
    assert seqs in ([1], [1, 2])  # whole or nothing, never torn
    if store.url.startswith("sqlite"):
        assert seqs == [1]  # still queued for its group: dropped
