"""Queues and workers: producers enqueue, workers claim due work, drain on stop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import treadle
import treadle.stores
from treadle.engine.worker import Worker
from treadle.stores import open_store

log: list[str] = []
gates: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _reset_worker() -> None:
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


WAIT = 30.0  # deadlines for conditions: generous, a loaded 2-core CI machine is slow


async def until(predicate: Any, timeout: float = WAIT) -> None:
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
    assert await asyncio.wait_for(handle.result(), WAIT) == "a"  # the producer's handle waits
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
    await until(lambda: first.draining)  # the worker has seen the stop (it may be mid-claim)
    gates["busy"].set()  # the step in flight finishes and is journaled...
    await asyncio.wait_for(working, WAIT)
    assert "busy-after" not in log  # ...but nothing after it runs here
    for h in (busy, waiting):
        row = await store.get(h.id)
        assert row.owner is None and not row.status.is_terminal  # leases released at once

    second = treadle.Engine(store)
    stop2 = asyncio.Event()
    working2 = asyncio.create_task(second.work(stop=stop2, poll_interval=0.01))
    assert await asyncio.wait_for(busy.result(), WAIT) == ["busy", "busy-after"]
    await second.signal(waiting.id, "go", 42)
    assert await asyncio.wait_for(waiting.result(), WAIT) == 42
    stop2.set()
    await working2
    assert log.count("busy:start") == 1 and log.count("before") == 1  # nothing ran twice


async def running_now(store: Any) -> list[Any]:
    page = await store.list(treadle.stores.ListQuery(status=treadle.ExecutionStatus.RUNNING,
                                                     limit=100))
    return [r for r in page.items if r.owner is not None]


async def test_queue_full_refuses_and_writes_nothing(store: Any) -> None:
    engine = treadle.Engine(store, queues=[treadle.Queue("small", max_depth=2)])
    await engine.start(queued_job, "1", queue="small")
    await engine.start(queued_job, "2", queue="small")
    with pytest.raises(treadle.QueueFullError, match="queue 'small' is full: 2 pending"):
        await engine.start(queued_job, "3", queue="small")
    assert len((await engine.list()).items) == 2
    await engine.start(queued_job, "elsewhere", queue="other")  # other queues are not limited


async def test_queue_concurrency_holds_across_workers(store: Any) -> None:
    limits = [treadle.Queue("q", concurrency=2)]
    producer = treadle.Engine(store, queues=limits)
    handles = [await producer.start(held_job, f"c{i}", queue="q") for i in range(6)]
    workers = [Worker(treadle.Engine(store, queues=limits), queues=["q"], concurrency=5)
               for _ in range(2)]
    claimed = [await w.claim() for w in workers for _ in range(2)]
    assert sum(claimed) == 2 and len(await running_now(store)) == 2
    for i in range(6):
        gates.setdefault(f"c{i}", asyncio.Event())
    peak = 0
    while True:
        statuses = [(await producer.get(h.id)).status for h in handles]
        if all(s == "completed" for s in statuses):
            break
        peak = max(peak, len(await running_now(store)))
        for name, gate in gates.items():
            if f"{name}:start" in log:
                gate.set()
        for w in workers:
            await w.claim()
        await asyncio.sleep(0.002)
    assert peak <= 2


async def test_partition_and_workflow_concurrency(store: Any) -> None:
    registry = treadle.Registry()

    @treadle.workflow(name="limited-wf", concurrency=1, registry=registry)
    async def limited(ctx: treadle.Context, name: str) -> list[str]:
        return [await held(name)]

    @treadle.workflow(name="partitioned-wf", registry=registry)
    async def partitioned(ctx: treadle.Context, name: str) -> list[str]:
        return [await held(name)]

    queues = [treadle.Queue("p", partition_concurrency=1)]
    engine = treadle.Engine(store, registry=registry, queues=queues)
    for name in ("a1", "a2"):
        await engine.start(partitioned, name, queue="p", tenant_id="tenant-a")
    await engine.start(partitioned, "b1", queue="p", partition_key="tenant-b")
    await engine.start(limited, "w1", queue="w")
    await engine.start(limited, "w2", queue="w")
    worker = Worker(engine, queues=["p", "w"], concurrency=10)
    assert await worker.claim() == 3  # one per partition, one of the limited workflow
    assert await worker.claim() == 0
    running = sorted(r.partition_key or r.workflow for r in await running_now(store))
    assert running == ["limited-wf", "tenant-a", "tenant-b"]


async def test_rate_limit_counts_starts_in_the_period(store: Any) -> None:
    queues = [treadle.Queue("r", rate_limit="2/h")]
    engine = treadle.Engine(store, queues=queues)
    for i in range(4):
        await engine.start(queued_job, f"r{i}", queue="r")
    worker = Worker(engine, queues=["r"], concurrency=10)
    assert await worker.claim() == 2
    await until(lambda: len(log) == 2)
    await until(lambda: not engine._runs)
    assert await worker.claim() == 0  # two started within the hour: the rest wait


def test_queue_validation() -> None:
    with pytest.raises(ValueError, match="expected '<count>/<unit>'"):
        treadle.Queue("bad", rate_limit="fast")
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        treadle.Queue("bad", concurrency=0)
