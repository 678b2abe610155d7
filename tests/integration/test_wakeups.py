"""Pushed wake-ups between processes: workers, signal waits and `Handle.result()` react at
once, with every poll interval set to 60 s so that polling cannot explain it.

The other process is `wakeup_app.py` (a producer answering commands on stdin, or a worker).
Latencies are measured from the moment the other process began its write to the moment the
workflow ran (its `ctx.now()`), on one machine's clock. Nothing waits on a sleep: every wait
is for a condition, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import treadle
from integration.wakeup_app import wake_record, wake_wait
from stores.storekit import (
    PG_URL,
    REDIS_URL,
    delete_redis_prefix,
    drop_pg_schema,
    require_service,
    with_option,
)
from treadle.stores import MemoryStore, Store
from treadle.stores.notify import PushListener

APP = Path(__file__).with_name("wakeup_app.py")
PROMPT = 2.0  # seconds: generous for CI; measured latencies are in milliseconds (docs/stores.md)
SLOW = 60.0  # every poll interval: a wake-up within PROMPT cannot come from polling


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.services),
                        pytest.param("redis", marks=pytest.mark.services)])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgres":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        schema = f"treadle_wake_{uuid.uuid4().hex[:12]}"
        yield with_option(PG_URL, "schema", schema)
        drop_pg_schema(schema)
    else:
        require_service("Redis", "127.0.0.1", 6379)
        prefix = f"treadle-wake:{uuid.uuid4().hex[:12]}:"
        yield with_option(REDIS_URL, "prefix", prefix)
        delete_redis_prefix(prefix)


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def suspended(store: Store, execution_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (row := await store.get(execution_id)) is None or row.status != "suspended":
        assert time.monotonic() < deadline, f"{execution_id} never suspended"
        await asyncio.sleep(0.005)


def count_claims(store: Store) -> list[float]:
    """Record the time of every `store.claim` call from now on."""
    calls: list[float] = []
    original = store.claim

    async def claim(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.time())
        return await original(*args, **kwargs)

    store.claim = claim  # type: ignore[method-assign]
    return calls


def slow_engine(url: str) -> treadle.Engine:
    return slow_engine_on(url)


def slow_engine_on(store: str | Store) -> treadle.Engine:
    return treadle.Engine(store, idle_poll_interval=SLOW, signal_poll_interval=SLOW)


@contextlib.asynccontextmanager
async def worker(url: str) -> AsyncIterator[tuple[treadle.Engine, list[float]]]:
    """A worker here on queue `wake`, polling every 60 s, once its subscription is live."""
    engine = slow_engine(url)
    await engine.open()
    claims = count_claims(engine.store)
    stop = asyncio.Event()
    working = asyncio.create_task(engine.work(queues=["wake"], poll_interval=SLOW, stop=stop))
    try:
        await until(lambda: engine._wakeups.live)
        yield engine, claims
    finally:
        stop.set()
        await working
        await engine.close()


class Other:
    """`wakeup_app.py` in another process."""

    def __init__(self, url: str, mode: str) -> None:
        self.mode = mode
        self.proc = subprocess.Popen(
            [sys.executable, str(APP), url, mode], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def line(self) -> str:
        assert self.proc.stdout is not None
        found = await asyncio.to_thread(self.proc.stdout.readline)
        assert found, self.proc.stderr.read() if self.proc.stderr else "no output"
        return found.strip()

    async def ask(self, *words: str) -> tuple[float, str]:
        """Send a command; (epoch time just before its write, its answer)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        at, _, answer = (await self.line()).partition(" ")
        return float(at), answer

    def close(self) -> None:
        """Stop it: end of input for a producer, SIGTERM (drain) for a worker."""
        if self.mode == "work" and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err


@contextlib.contextmanager
def other(url: str, mode: str = "produce") -> Iterator[Other]:
    process = Other(url, mode)
    try:
        yield process
    finally:
        process.close()


async def test_new_work_from_another_process_is_claimed_at_once(store_url: str) -> None:
    async with worker(store_url) as (engine, claims):
        with other(store_url) as producer:
            for name in ("first", "second"):
                before = len(claims)
                await producer.ask("enqueue", "elsewhere", "ignored")  # not our queue
                written, ident = await producer.ask("enqueue", "wake", name)
                output = await treadle.Handle(engine, ident).result(timeout=10)
                assert output["name"] == name
                assert 0 <= output["ran_at"] - written < PROMPT
                # the wake-up, the slot freed when the run ended: a handful, not a poll loop
                assert len(claims) - before <= 4


async def test_signal_from_another_process_wakes_a_waiting_execution(store_url: str) -> None:
    async with worker(store_url) as (engine, _):
        handle = await engine.start(wake_wait, "held-here")  # runs (and waits) here
        await suspended(engine.store, handle.id)
        with other(store_url) as producer:
            written, _ = await producer.ask("signal", handle.id, "go", json.dumps({"n": 1}))
            output = await handle.result(timeout=10)
        assert output["payload"] == {"n": 1}
        assert 0 <= output["woke_at"] - written < PROMPT


async def test_signal_for_a_released_sleeper_wakes_a_worker(store_url: str) -> None:
    first = slow_engine(store_url)
    handle = await first.start(wake_wait, "released", queue="wake")
    stop = asyncio.Event()
    draining = asyncio.create_task(first.work(queues=["wake"], poll_interval=SLOW, stop=stop))
    await suspended(first.store, handle.id)
    stop.set()
    await draining  # drained: the sleeper is released, nobody holds it
    await first.close()
    async with worker(store_url) as (engine, claims):
        with other(store_url) as producer:
            before = len(claims)
            written, _ = await producer.ask("signal", handle.id, "go", "2")
            output = await treadle.Handle(engine, handle.id).result(timeout=10)
        assert output["payload"] == 2
        assert 0 <= output["woke_at"] - written < PROMPT
        assert len(claims) - before <= 4


async def test_delayed_starts_fire_on_time(store_url: str) -> None:
    setup = slow_engine(store_url)
    early_due = time.time() + 1.0
    early = await setup.start(wake_record, "known-before", queue="wake", start_at=early_due)
    await setup.close()
    async with worker(store_url) as (engine, claims):  # learns of it from the store
        with other(store_url) as producer:
            late_due = time.time() + 1.5
            _, ident = await producer.ask("start_at", "wake", "told-later", repr(late_due))
            first = await treadle.Handle(engine, early.id).result(timeout=10)
            second = await treadle.Handle(engine, ident).result(timeout=10)
        assert early_due <= first["ran_at"] < early_due + PROMPT / 2
        assert late_due <= second["ran_at"] < late_due + PROMPT / 2
        assert len(claims) <= 10


async def test_result_in_the_producer_wakes_when_another_process_finishes(
    store_url: str,
) -> None:
    producer = slow_engine(store_url)
    try:
        with other(store_url, "work") as remote:
            assert await remote.line() == "ready"
            handle = await producer.start(wake_record, "remote", queue="wake")
            output = await handle.result(timeout=10)
            returned = time.time()
            row = await producer.store.get(handle.id)
            assert row is not None and row.finished_at is not None
            assert output["name"] == "remote"
            assert 0 <= returned - row.finished_at < PROMPT
    finally:
        await producer.close()


async def _kill_listener(store_url: str) -> None:
    if store_url.startswith("postgres"):
        import psycopg

        schema = store_url.rsplit("schema=", 1)[1]
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
                (f'LISTEN "treadle:{schema}"',))
            assert len(await cur.fetchall()) == 1
    else:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            assert await client.client_kill_filter(_type="pubsub") == 1
        finally:
            await client.aclose()


async def test_worker_resubscribes_after_its_connection_is_killed(
    store_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="treadle.stores")
    async with worker(store_url) as (engine, _):
        listener = engine._wakeups._listener
        assert isinstance(listener, PushListener) and listener.connections == 1
        await _kill_listener(store_url)
        await until(lambda: listener.connections == 2 and engine._wakeups.live)
        with other(store_url) as producer:
            written, ident = await producer.ask("enqueue", "wake", "after-reconnect")
            output = await treadle.Handle(engine, ident).result(timeout=10)
        assert 0 <= output["ran_at"] - written < PROMPT
    lost = [r for r in caplog.records if r.getMessage().startswith("lost the wake-up")]
    assert len(lost) == 1  # logged once


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_in_process_wakeups_on_embedded_stores(backend: str, tmp_path: Path) -> None:
    """Engines of one process sharing a memory store, or a SQLite file, wake each other at
    once; a SQLite worker also keeps polling, for the processes it cannot hear."""
    if backend == "memory":
        shared = MemoryStore()
        producer, engine = treadle.Engine(shared), slow_engine_on(shared)
    else:
        url = f"sqlite:///{tmp_path}/wake.db"
        producer, engine = treadle.Engine(url), slow_engine_on(url)
    claims = count_claims(engine.store)
    stop = asyncio.Event()
    working = asyncio.create_task(engine.work(queues=["wake"], poll_interval=SLOW, stop=stop))
    try:
        await until(lambda: len(claims) >= 1)
        assert engine._wakeups.live is (backend == "memory")
        before = time.time()
        handle = await producer.start(wake_record, "local", queue="wake")
        output = await handle.result(timeout=10)
        assert 0 <= output["ran_at"] - before < PROMPT
        waiting = await engine.start(wake_wait, "local-signal")
        await suspended(engine.store, waiting.id)
        before = time.time()
        await producer.signal(waiting.id, "go", "x")
        woke = await waiting.result(timeout=10)
        assert 0 <= woke["woke_at"] - before < PROMPT
        assert len(claims) <= 8
    finally:
        stop.set()
        await working
        await engine.close()
        await producer.close()
