"""Redis-only checks: URL options, prefix isolation, no index keys left behind."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from storekit import (
    REDIS_URL,
    T0,
    delete_redis_prefix,
    ev,
    make,
    require_service,
    with_option,
)

from treadle.journal import ExecutionStatus
from treadle.stores import ListQuery, RowUpdate, open_store
from treadle.stores.base import ClaimLimits
from treadle.stores.redis import RedisStore, redis_options

pytestmark = pytest.mark.services


@pytest.fixture
def prefix() -> Iterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    name = f"treadle-test:{uuid.uuid4().hex[:12]}:"
    yield name
    delete_redis_prefix(name)


def _keys(prefix: str) -> set[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return {key.removeprefix(prefix) for key in client.scan_iter(match=f"{prefix}*")}
    finally:
        client.close()


def test_url_options() -> None:
    assert redis_options("redis://h:1/2?prefix=app:&socket_timeout=5&pool_max=3") == (
        "redis://h:1/2?socket_timeout=5", {"prefix": "app:", "pool_max": "3"})
    assert redis_options("rediss://:pw@h/0") == ("rediss://:pw@h/0", {})
    store = RedisStore("redis://h/0?prefix=x:&pool_max=7&pool_timeout=2")
    assert (store.prefix, store._max_size, store._timeout) == ("x:", 7, 2.0)
    assert RedisStore("redis://h/0").prefix == "treadle:"
    with pytest.raises(ValueError):
        RedisStore("redis://h/0?pool_max=0")


async def test_prefixes_are_isolated(prefix: str) -> None:
    other = prefix + "b:"
    first = open_store(with_option(REDIS_URL, "prefix", prefix + "a:"))
    second = open_store(with_option(REDIS_URL, "prefix", other))
    await first.open()
    await second.open()
    try:
        await make(first, "a")
        assert await second.get("a") is None
        assert await second.claim("w", now=T0, lease_until=T0 + 1, limit=9) == []
        assert (await second.list(ListQuery())).items == []
    finally:
        await first.close()
        await second.close()


async def test_pruning_everything_leaves_no_keys_behind(prefix: str) -> None:
    store = open_store(with_option(REDIS_URL, "prefix", prefix))
    await store.open()
    try:
        for i in range(6):
            await make(store, f"e{i}", queue=f"q{i % 2}", status=ExecutionStatus.PENDING,
                       parent_id="p" if i % 3 else None, tenant_id="t", partition_key="k",
                       idempotency_key=f"key-{i}", wake_at=T0 - 1 if i == 5 else None)
            await store.send_signal(f"e{i}", "s", i, T0)
        claimed = await store.claim("w", now=T0, lease_until=T0 + 9, limit=4, due_only=True,
                                    limits=ClaimLimits(queue_rate={"q0": (9, 60.0)}))
        assert len(claimed) == 4
        assert await store.claim("w", now=T0, lease_until=T0 + 9, limit=9) != []
        for i in range(6):
            await store.append(f"e{i}", [ev(f"e{i}", 2)], expected_seq=1, owner="w",
                               update=RowUpdate(ExecutionStatus.SUSPENDED, wake_at=T0 + i),
                               consume_signal=i + 1)
            await store.append(f"e{i}", [ev(f"e{i}", 3)], expected_seq=2, owner="w",
                               update=RowUpdate(ExecutionStatus.COMPLETED, finished_at=T0))
        assert _keys(prefix) > {"sig", "idem", "fin", "l:all"}
        assert await store.prune(T0 + 1) == 6
        assert _keys(prefix) == {"sig"}
    finally:
        await store.close()


async def test_a_cancelled_call_waiting_for_a_connection_stays_cancelled(prefix: str) -> None:
    # redis-py's pool and reads wait under timeouts that, on Python 3.11, can swallow a
    # cancellation arriving as the wait ends; the engine's crash and shutdown paths depend on it.
    store = RedisStore(with_option(REDIS_URL, "prefix", prefix) + "&pool_max=1")
    await store.open()
    try:
        assert store._client is not None
        pool = store._client.connection_pool
        for yields in range(6):
            connection = await pool.get_connection()
            waiter = asyncio.create_task(store.get("nope"))
            for _ in range(3):
                await asyncio.sleep(0)  # let it queue for the connection
            await pool.release(connection)
            for _ in range(yields):
                await asyncio.sleep(0)
            if waiter.cancel():
                with pytest.raises(asyncio.CancelledError):
                    await waiter
            else:
                assert await waiter is None
    finally:
        await store.close()
