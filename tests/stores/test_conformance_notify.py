"""The `Notifier` capability: wake-ups pushed by the store, and when work is next due.

A listener on one handle (`peer`: its own connections) hears the writes made through another
(`store`). Absence is checked without sleeping: wake-ups arrive in commit order, so once a
marker written last has arrived, nothing written before it can still be on its way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from storekit import (
    PG_URL,
    REDIS_URL,
    T0,
    delete_redis_prefix,
    drop_pg_schema,
    ev,
    make,
    with_option,
)

from treadle.journal import ExecutionStatus
from treadle.stores import Record, RowUpdate, Store, open_store
from treadle.stores.base import ANY_TOPIC, Listener, Locker, Notifier, Wakeup

PENDING = ExecutionStatus.PENDING
RUNNING = ExecutionStatus.RUNNING
SUSPENDED = ExecutionStatus.SUSPENDED
COMPLETED = ExecutionStatus.COMPLETED


class Heard:
    """Collects what a listener yields, in a background task."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.items: list[Wakeup] = []
        self.task = asyncio.get_running_loop().create_task(self._collect())

    async def _collect(self) -> None:
        async for wakeup in self.listener:
            self.items.append(wakeup)

    async def until(self, predicate: Callable[[list[Wakeup]], bool], timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.items):
            assert time.monotonic() < deadline, f"not heard; got {self.items}"
            await asyncio.sleep(0.002)

    async def topic(self, topic: str, timeout: float = 5) -> Wakeup:
        await self.until(lambda items: any(w.topic == topic for w in items), timeout)
        return next(w for w in self.items if w.topic == topic)

    def topics(self) -> list[str]:
        return [w.topic for w in self.items]

    async def marker(self, store: Store) -> list[str]:
        """Write a marker, wait for it; the topics heard before it (and drop them all)."""
        name = f"marker-{uuid.uuid4().hex[:6]}"
        await make(store, name, status=PENDING, queue=name)
        await self.topic(f"work:{name}")
        before = self.topics()[:self.topics().index(f"work:{name}")]
        self.items.clear()
        return before


@contextlib.asynccontextmanager
async def listening(store: Store) -> AsyncIterator[Heard]:
    assert isinstance(store, Notifier)
    async with store.listen() as listener:
        heard = Heard(listener)
        await heard.topic(ANY_TOPIC)  # subscribed: everything from now on is heard
        heard.items.clear()
        try:
            yield heard
        finally:
            heard.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heard.task


async def test_every_backend_is_a_notifier_and_locker(store: Store) -> None:
    assert isinstance(store, Notifier) and isinstance(store, Locker)


async def test_listeners_say_whether_they_hear_other_processes(store_url: str,
                                                               store: Store) -> None:
    assert isinstance(store, Notifier)
    async with store.listen() as listener:
        heard = Heard(listener)
        await heard.topic(ANY_TOPIC)
        # SQLite files are shared with processes that cannot be told: users keep polling.
        assert listener.complete is (not store_url.startswith("sqlite"))
        heard.task.cancel()


async def test_enqueued_work_wakes_listeners_with_its_due_time(store: Store, peer: Store) -> None:
    async with listening(peer) as heard:
        await make(store, "now", status=PENDING, queue="q")
        await make(store, "later", status=PENDING, queue="q", wake_at=T0 + 60)
        await make(store, "held", status=RUNNING, queue="q", owner="w", lease_until=T0 + 30)
        assert await heard.marker(store) == ["work:q", "work:q"]  # nothing for a held one
    # (re-listen to read the due times, which `marker` dropped)
    async with listening(peer) as heard:
        await make(store, "later2", status=PENDING, queue="r", wake_at=T0 + 61.25)
        assert (await heard.topic("work:r")).at == T0 + 61.25


async def test_signals_finishes_and_releases_wake_listeners(store: Store, peer: Store) -> None:
    await make(store, "x", status=RUNNING, queue="q", owner="w", lease_until=T0 + 30)
    await store.append("x", [ev("x", 2)], expected_seq=1, owner="w",
                       update=RowUpdate(SUSPENDED))
    async with listening(peer) as heard:
        await store.send_signal("x", "go", {"n": 1}, T0)
        # held by w: only its holder needs to know
        assert await heard.marker(store) == ["signal:x"]
        await store.release("x", "w")  # a sleeper with a signal waiting is due work
        await store.send_signal("x", "again", None, T0)  # free sleeper: workers too
        assert await heard.marker(store) == ["work:q", "signal:x", "work:q"]
        await store.claim("w2", now=T0, lease_until=T0 + 30, limit=1, execution_id="x")
        await store.append("x", [ev("x", 3)], expected_seq=2, owner="w2",
                           update=RowUpdate(COMPLETED, finished_at=T0 + 1))
        assert await heard.marker(store) == ["done:x"]


async def test_quiet_writes_wake_nobody(store: Store, peer: Store) -> None:
    await make(store, "x", status=PENDING, queue="q")
    await make(store, "sleeper", status=SUSPENDED, queue="q")  # no timer, no signal: not due
    async with listening(peer) as heard:
        claimed = await store.claim("w", now=T0, lease_until=T0 + 30, limit=1,
                                    execution_id="x")
        assert [r.id for r in claimed] == ["x"]
        await store.append("x", [ev("x", 2)], expected_seq=1, owner="w")
        await store.append("x", [ev("x", 3)], expected_seq=2, owner="w",
                           update=RowUpdate(SUSPENDED, wake_at=T0 + 5))
        await store.renew("w", ["x"], T0 + 60)
        await store.release("nope", "w")
        await store.release("x", "someone-else")
        await store.claim("w", now=T0, lease_until=T0 + 30, limit=1, execution_id="sleeper")
        await store.release("sleeper", "w")
        assert await heard.marker(store) == []
        await store.release("x", "w")  # a sleeper with a timer: due at its wake-up time
        await store.put_record(Record("k", "key", {}, T0))
        assert await heard.marker(store) == ["work:q"]


async def test_next_wake_reports_timers_and_leases(store: Store) -> None:
    assert isinstance(store, Notifier)
    assert await store.next_wake(None, T0) is None
    await make(store, "ready", status=PENDING, queue="a")  # due now: not in the future
    await make(store, "past", status=PENDING, queue="a", wake_at=T0 - 5)
    await make(store, "timer", status=SUSPENDED, queue="a", wake_at=T0 + 20)
    await make(store, "start", status=PENDING, queue="b", wake_at=T0 + 10)
    await make(store, "leased", status=RUNNING, queue="c", owner="w", lease_until=T0 + 5)
    await make(store, "held-timer", status=SUSPENDED, queue="a", wake_at=T0 + 1, owner="w",
               lease_until=T0 + 30)
    await make(store, "done", status=COMPLETED, queue="a", wake_at=T0 + 2)
    assert await store.next_wake(None, T0) == T0 + 5
    assert await store.next_wake(["a"], T0) == T0 + 20
    assert await store.next_wake(["a", "b"], T0) == T0 + 10
    assert await store.next_wake(["b"], T0 + 10) is None  # its time has come: claimable now
    assert await store.next_wake(["c"], T0 + 5) == T0 + 5  # the lease ends right after
    assert await store.next_wake(["nothing"], T0) is None


# -- isolation and connection loss (server backends) ---------------------------------------------


@pytest.fixture
def server_url(backend: str, store_url: str) -> str:
    if backend not in ("postgres", "redis"):
        pytest.skip("needs a server")
    return store_url


async def test_isolated_namespaces_do_not_hear_each_other(backend: str, server_url: str,
                                                          store: Store) -> None:
    other_name = uuid.uuid4().hex[:12]
    if backend == "postgres":
        other_url = with_option(PG_URL, "schema", f"treadle_test_{other_name}")
    else:
        other_url = with_option(REDIS_URL, "prefix", f"treadle-test:{other_name}:")
    other = open_store(other_url)
    await other.open()
    try:
        async with listening(store) as heard:
            await make(other, "elsewhere", status=PENDING, queue="q")
            assert await heard.marker(store) == []
    finally:
        await other.close()
        if backend == "postgres":
            drop_pg_schema(f"treadle_test_{other_name}")
        else:
            delete_redis_prefix(f"treadle-test:{other_name}:")


async def _kill_listener_connection(backend: str, url: str) -> None:
    if backend == "postgres":
        import psycopg

        schema = url.rsplit("schema=", 1)[1]
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query = %s", (f'LISTEN "treadle:{schema}"',))
            assert len(await cur.fetchall()) == 1
    else:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            assert await client.client_kill_filter(_type="pubsub") >= 1
        finally:
            await client.aclose()


async def test_a_killed_listener_connection_comes_back(
    backend: str, server_url: str, store: Store, peer: Store, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="treadle.stores")
    async with listening(peer) as heard:
        await _kill_listener_connection(backend, server_url)
        await heard.topic(ANY_TOPIC, timeout=10)  # reconnected: "look at everything again"
        assert heard.listener.complete
        await make(store, "after", status=PENDING, queue="q")
        await heard.topic("work:q")
    messages = [r.getMessage() for r in caplog.records if r.name == "treadle.stores"]
    assert len([m for m in messages if m.startswith("lost the wake-up connection")]) == 1
    assert len([m for m in messages if m.startswith("wake-ups from")]) == 1


async def test_push_listener_polls_while_down_logs_once_and_resyncs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from treadle.stores.notify import PushListener

    caplog.set_level(logging.DEBUG, logger="treadle.stores")
    attempts: list[int] = []
    release = asyncio.Event()

    async def session(connected: Callable[[], None]) -> AsyncIterator[Wakeup]:
        attempts.append(1)
        if len(attempts) <= 3:
            raise OSError(f"refused #{len(attempts)}")
        connected()
        yield Wakeup("work:q")
        if len(attempts) == 4:  # the first connection drops once released; the next stays
            await release.wait()
            raise OSError("dropped")
        await asyncio.Event().wait()

    listener = PushListener("test://server", session, retry_min=0.001, retry_max=0.01)
    async with listener:
        heard = Heard(listener)
        assert not listener.complete
        await heard.until(lambda items: [w.topic for w in items] == [ANY_TOPIC, "work:q"])
        assert listener.complete and len(attempts) == 4
        release.set()
        await heard.until(lambda items: items.count(Wakeup(ANY_TOPIC)) == 2)
        heard.task.cancel()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "cannot open the wake-up connection to test://server (refused #1); polling until it "
        "is back",
        "wake-ups from test://server are back",
        "lost the wake-up connection to test://server (dropped); polling until it is back",
        "wake-ups from test://server are back",
    ]
