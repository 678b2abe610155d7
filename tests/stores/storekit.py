"""Helpers shared by the store tests: rows, events, racing writers and claimers.

The racing helpers are plain functions of a URL so that they can run in threads (each with its
own event loop and store handle) or in spawned processes.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from typing import Any

import pytest

from treadle.errors import JournalConflictError
from treadle.journal import Event, ExecutionStatus, ExecutionSummary
from treadle.stores import Store, open_store

T0 = 1_700_000_000.0

PG_URL = os.environ.get("TREADLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TREADLE_TEST_REDIS", "redis://127.0.0.1:6379/9")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("TREADLE_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def with_option(url: str, key: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{key}={value}"


def drop_pg_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def delete_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def row(
    execution_id: str,
    *,
    workflow: str = "wf",
    status: ExecutionStatus = ExecutionStatus.RUNNING,
    created_at: float = T0,
    **fields: Any,
) -> ExecutionSummary:
    return ExecutionSummary(
        id=execution_id, workflow=workflow, status=status, created_at=created_at,
        updated_at=created_at, **fields,
    )


def ev(
    execution_id: str, seq: int, kind: str = "step.completed", data: dict[str, Any] | None = None,
    at: float | None = None,
) -> Event:
    return Event(execution_id, seq, kind, {"pos": seq} if data is None else data,
                 T0 + seq if at is None else at)


def started(execution_id: str, at: float = T0) -> Event:
    return Event(execution_id, 1, "execution.started", {"workflow": "wf", "args": []}, at)


async def make(
    store: Store, execution_id: str, *, events: int = 1, **fields: Any
) -> ExecutionSummary:
    """Create an execution whose journal holds `events` events."""
    at = fields.get("created_at", T0)
    evs = [started(execution_id, at)] + [ev(execution_id, s) for s in range(2, events + 1)]
    stored, created = await store.create(row(execution_id, **fields), evs)
    assert created
    return stored


def same_json(a: Any, b: Any) -> bool:
    """Equal, of the same JSON types all the way down (1.0 is not 1, True is not 1), and with
    object keys in the same order (a resumed workflow iterating a recorded dict must see the
    order the first run saw)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# -- racing writers -----------------------------------------------------------------------------


async def append_until_done(
    store: Store, execution_id: str, writer: str, count: int
) -> int:
    """Append `count` events tagged `writer`, optimistically: read the head, try, retry.

    Returns how many conflicts this writer met.
    """
    conflicts = 0
    written = 0
    while written < count:
        head = await store.get(execution_id)
        assert head is not None
        seq = head.last_seq
        event = ev(execution_id, seq + 1, data={"writer": writer, "n": written})
        try:
            await store.append(execution_id, [event], expected_seq=seq, owner=None)
        except JournalConflictError:
            conflicts += 1
            continue
        written += 1
    return conflicts


def writer_main(url: str, execution_id: str, writer: str, count: int) -> int:
    """Thread or process entry point: an own store handle and event loop."""

    async def main() -> int:
        store = open_store(url)
        await store.open()
        try:
            return await append_until_done(store, execution_id, writer, count)
        finally:
            await store.close()

    return asyncio.run(main())


async def claim_all(store: Store, owner: str, batch: int) -> list[str]:
    """Claim batches until nothing is left for `owner`; the ids it got."""
    got: list[str] = []
    while True:
        rows = await store.claim(owner, now=T0, lease_until=T0 + 3600, limit=batch)
        if not rows:
            return got
        assert all(r.owner == owner for r in rows)
        got.extend(r.id for r in rows)


def claimer_main(url: str, owner: str, batch: int) -> list[str]:
    async def main() -> list[str]:
        store = open_store(url)
        await store.open()
        try:
            return await claim_all(store, owner, batch)
        finally:
            await store.close()

    return asyncio.run(main())


def in_thread_loop(url: str, shared: Store | None, work: Any) -> Any:
    """Run `await work(store)` on a fresh event loop with its own handle on `url` (or on the
    `shared` store, for memory://, which cannot be opened twice)."""

    async def main() -> Any:
        if shared is not None:
            return await work(shared)
        store = open_store(url)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


def check_gap_free(seqs: Sequence[int]) -> None:
    assert list(seqs) == list(range(1, len(seqs) + 1))
