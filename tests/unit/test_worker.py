"""Queues and workers: producers enqueue, workers claim due work, drain on stop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import treadle
from treadle.engine.worker import Worker
from treadle.stores import open_store

log: list[str] = []
gates: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _reset() -> None:
    log.clear()
    gates.clear()


@treadle.step
async def record(name: str) -> str:
    log.append(name)
    return name


@treadle.step
async def held(name: str) -> str:
    log.append(f"{name}:start")
    await gates.setdefault(name, asyncio.Event()).wait()
    log.append(f"{name}:done")
    return name


@treadle.workflow(name="queued-job")
async def queued_job(ctx: treadle.Context, name: str) -> str:
    return await record(name)


@treadle.workflow(name="held-job")
async def held_job(ctx: treadle.Context, name: str) -> list[str]:
    first = await held(name)
    return [first, await record(f"{name}-after")]


@treadle.workflow(name="waiting-job")
async def waiting_job(ctx: treadle.Context) -> Any:
    await record("before")
    return await ctx.wait_for_signal("go")


async def until(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.002)


@pytest.fixture
def store(store_url: str) -> Any:
    return open_store(store_url)


async def test_producer_only_enqueues_and_a_worker_runs(store: Any) -> None:
    producer = treadle.Engine(store)
    handle = await producer.start(queued_job, "a", queue="default")
    assert (await producer.get(handle.id)).status == "pending"
    assert (await store.get(handle.id)).owner is None and log == []

    worker_engine = treadle.Engine(store)
    stop = asyncio.Event()
    working = asyncio.create_task(worker_engine.work(stop=stop, poll_interval=0.01))
    assert await asyncio.wait_for(handle.result(), 5) == "a"  # the producer's handle waits
    stop.set()
    await working
    assert log == ["a"]


async def test_queues_priorities_and_start_at(store: Any) -> None:
    engine = treadle.Engine(store)
    low = await engine.start(queued_job, "low", queue="q", priority=1)
    high = await engine.start(queued_job, "high", queue="q", priority=9)
    other = await engine.start(queued_job, "other", queue="elsewhere")
    later = await engine.start(queued_job, "later", queue="q", start_at=time.time() + 3600)
    due = await engine.start(queued_job, "due", queue="q", start_at=time.time() - 1)
    worker = Worker(treadle.Engine(store), queues=["q"], concurrency=1)
    claimed = []
    for _ in range(5):
        claimed.append(await worker.claim())
        await until(lambda: not worker.engine._runs)
    assert claimed[:3] == [1, 1, 1] and claimed[3:] == [0, 0]
    assert log == ["high", "low", "due"]  # priority first, then oldest
    for h in (other, later):
        assert (await engine.get(h.id)).status == "pending"
    for h in (low, high, due):
        assert (await engine.get(h.id)).status == "completed"


async def test_concurrency_limit(store: Any) -> None:
    engine = treadle.Engine(store)
    handles = [await engine.start(held_job, f"j{i}", queue="default") for i in range(5)]
    worker = Worker(treadle.Engine(store), concurrency=2)
    assert await worker.claim() == 2
    await until(lambda: sum(x.endswith(":start") for x in log) == 2)
    assert await worker.claim() == 0  # both slots busy
    for name in ("j0", "j1", "j2", "j3", "j4"):
        gates.setdefault(name, asyncio.Event()).set()
    async def pending() -> bool:
        return any([(await engine.get(h.id)).status != "completed" for h in handles])

    while await pending():
        await worker.claim()
        await asyncio.sleep(0.005)
    assert sorted(x for x in log if x.endswith(":done")) == [f"j{i}:done" for i in range(5)]


async def test_drain_finishes_the_running_step_then_hands_over(store: Any) -> None:
    producer = treadle.Engine(store)
    busy = await producer.start(held_job, "busy", queue="default")
    waiting = await producer.start(waiting_job, queue="default")
    first = treadle.Engine(store)
    stop = asyncio.Event()
    working = asyncio.create_task(first.work(stop=stop, poll_interval=0.01))
    await until(lambda: "busy:start" in log and "before" in log)
    await until(lambda: waiting.id in first._runs and first._runs[waiting.id].active == 0)
    stop.set()
    await asyncio.sleep(0.01)
    gates["busy"].set()  # the step in flight finishes and is journaled...
    await asyncio.wait_for(working, 5)
    assert "busy-after" not in log  # ...but nothing after it runs here
    for h in (busy, waiting):
        row = await store.get(h.id)
        assert row.owner is None and not row.status.is_terminal  # leases released at once

    second = treadle.Engine(store)
    stop2 = asyncio.Event()
    working2 = asyncio.create_task(second.work(stop=stop2, poll_interval=0.01))
    assert await asyncio.wait_for(busy.result(), 5) == ["busy", "busy-after"]
    await second.signal(waiting.id, "go", 42)
    assert await asyncio.wait_for(waiting.result(), 5) == 42
    stop2.set()
    await working2
    assert log.count("busy:start") == 1 and log.count("before") == 1  # nothing ran twice
