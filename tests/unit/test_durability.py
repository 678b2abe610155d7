"""Resume after a crash, signals, durable timers, children, cancellation and sagas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

import treadle
from durable import crash, engine_with_short_lease, recover_one
from treadle.stores import MemoryStore, open_store
from treadle.testing import FakeClock

effects: list[str] = []
gate = {"event": asyncio.Event()}


@pytest.fixture(autouse=True)
def _reset_durability() -> None:
    effects.clear()
    gate["event"] = asyncio.Event()


@treadle.step
async def effect(name: str) -> str:
    effects.append(name)
    return f"did {name}"


@treadle.step
async def blocking(name: str) -> str:
    effects.append(f"{name}:started")
    await gate["event"].wait()
    effects.append(name)
    return f"did {name}"


@treadle.workflow(name="three-steps")
async def three_steps(ctx: treadle.Context) -> list[str]:
    a = await effect("one")
    b = await blocking("two")
    c = await effect("three")
    return [a, b, c]


@pytest.fixture
def store(store_url: str) -> Any:
    return open_store(store_url)


async def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


async def test_resume_after_crash_runs_only_the_step_in_flight(store: Any) -> None:
    first = engine_with_short_lease(store)
    handle = await first.start(three_steps)
    await wait_for(lambda: "two:started" in effects)
    await crash(first)

    second = treadle.Engine(store)
    resumed = await recover_one(second)
    assert resumed.id == handle.id
    gate["event"].set()
    assert await resumed.result() == ["did one", "did two", "did three"]
    assert effects == ["one", "two:started", "two:started", "two", "three"]
    ex = await second.get(handle.id)
    assert ex.status == "completed" and [s.attempts for s in ex.steps] == [1, 1, 1]
    seqs = [e.seq for e in await second.events(handle.id)]
    assert seqs == list(range(1, len(seqs) + 1))


@treadle.workflow(name="approval")
async def approval(ctx: treadle.Context, amount: int) -> dict[str, Any]:
    await effect("before-wait")
    decision = await ctx.wait_for_signal("approval")
    await effect("after-wait")
    return {"amount": amount, "by": decision["by"]}


async def test_signal_wakes_a_waiting_workflow(store: Any) -> None:
    engine = treadle.Engine(store)
    handle = await engine.start(approval, 10)
    await wait_for(lambda: effects == ["before-wait"])
    await asyncio.sleep(0)  # let it reach the wait
    await engine.signal(handle.id, "approval", {"by": "ann"})
    assert await handle.result() == {"amount": 10, "by": "ann"}
    received = [e for e in await engine.events(handle.id) if e.type == "signal.received"]
    assert received[0].data["payload"] == {"by": "ann"}


async def test_signal_sent_before_the_wait_is_not_lost(store: Any) -> None:
    gate_wf = treadle.Engine(store)
    handle = await gate_wf.start(signal_after_block)
    await gate_wf.signal(handle.id, "go", "early")
    gate["event"].set()
    assert await handle.result() == "early"


@treadle.workflow(name="signal-after-block")
async def signal_after_block(ctx: treadle.Context) -> Any:
    await blocking("x")
    return await ctx.wait_for_signal("go")


async def test_suspended_on_signal_survives_a_crash(store: Any) -> None:
    first = engine_with_short_lease(store)
    handle = await first.start(approval, 5)
    await wait_for(lambda: effects == ["before-wait"])
    row = None
    for _ in range(1000):
        row = await store.get(handle.id)
        if row.status == "suspended":
            break
        await asyncio.sleep(0.001)
    assert row is not None and row.status == "suspended"
    await crash(first)
    await first.signal(handle.id, "approval", {"by": "bob"})  # sent while nobody runs it

    second = treadle.Engine(store)
    resumed = await recover_one(second)
    assert await resumed.result() == {"amount": 5, "by": "bob"}
    assert effects == ["before-wait", "after-wait"]  # the step before the wait ran once


@treadle.workflow(name="signal-timeout")
async def signal_timeout(ctx: treadle.Context) -> str:
    try:
        await ctx.wait_for_signal("never", timeout=86400)
    except treadle.SignalTimeoutError:
        return "timed out"
    return "signalled"


def test_signal_timeout_uses_the_fake_clock() -> None:
    assert treadle.Engine(clock=FakeClock()).run(signal_timeout) == "timed out"


@treadle.workflow(name="sleeper")
async def sleeper(ctx: treadle.Context, seconds: float) -> str:
    await effect("before-sleep")
    started = ctx.now()
    await ctx.sleep(seconds)
    await effect("after-sleep")
    return f"{(ctx.now() - started).total_seconds():.0f}"


async def test_durable_sleep_skipped_by_the_fake_clock(store: Any) -> None:
    engine = treadle.Engine(store, clock=FakeClock())
    handle = await engine.start(sleeper, 7 * 86400)
    assert await handle.result() == str(7 * 86400)
    ex = await engine.get(handle.id)
    kinds = [s.kind for s in ex.steps]
    assert "timer" in kinds
    types = [e.type for e in await engine.events(handle.id)]
    assert types.count("execution.suspended") == 1 and types.count("timer.fired") == 1


async def test_manual_clock_and_timer_resume_after_crash(store: Any) -> None:
    clock = FakeClock(auto_advance=False)
    first = engine_with_short_lease(store, clock=clock)
    handle = await first.start(sleeper, 60)
    await wait_for(lambda: clock.pending == 1)
    row = await store.get(handle.id)
    assert row.status == "suspended" and row.wake_at == pytest.approx(clock.time() + 60)
    await crash(first)

    second = treadle.Engine(store, clock=clock)
    resumed = await recover_one(second)
    await wait_for(lambda: clock.pending == 1)
    clock.advance(59)
    assert clock.pending == 1  # the original deadline holds: not re-armed for another 60s
    clock.advance(1)
    assert await resumed.result() == "60"
    assert effects == ["before-sleep", "after-sleep"]


@treadle.workflow(name="child-square")
async def child_square(ctx: treadle.Context, x: int) -> int:
    await effect(f"square {x}")
    if x < 0:
        raise ValueError("negative")
    return x * x


@treadle.workflow(name="parent")
async def parent(ctx: treadle.Context, xs: list[int]) -> Any:
    squares = await ctx.gather(*(ctx.run_child(child_square, x) for x in xs))
    try:
        await ctx.run_child("child-square", -1)
    except treadle.ExecutionFailedError as exc:
        return {"squares": squares, "child_error": exc.error["message"]}
    return {"squares": squares}


async def test_child_workflows(store: Any) -> None:
    engine = treadle.Engine(store)
    handle = await engine.start(parent, [2, 3])
    assert await handle.result() == {"squares": [4, 9], "child_error": "negative"}
    children = (await engine.list(parent_id=handle.id)).items
    assert sorted(c.id for c in children) == sorted(f"{handle.id}-{i}" for i in range(3))
    ex = await engine.get(handle.id)
    assert [s.kind for s in ex.steps] == ["child", "child", "child"]
    assert ex.steps[0].child_id == f"{handle.id}-0" and ex.steps[0].output == 4


@treadle.step
async def reserve(item: str) -> dict[str, str]:
    effects.append(f"reserve {item}")
    return {"reservation": f"r-{item}"}


@treadle.step
async def release(reservation: dict[str, str], item: str) -> None:
    effects.append(f"release {reservation['reservation']} for {item}")


@treadle.step(compensate=release)
async def reserve_with_undo(item: str) -> dict[str, str]:
    return await reserve.fn(item)  # type: ignore[no-any-return]


@treadle.step
async def refund(charge: dict[str, Any], amount: int) -> None:
    effects.append(f"refund {charge['id']}")


@treadle.step(compensate=refund)
async def charge(amount: int) -> dict[str, Any]:
    effects.append(f"charge {amount}")
    return {"id": f"ch-{amount}"}


@treadle.workflow(name="saga")
async def saga(ctx: treadle.Context, fail: bool) -> str:
    await reserve_with_undo("book")
    await charge(30)
    if fail:
        await boom_step("shipping failed")
    return "shipped"


@treadle.step
async def boom_step(msg: str) -> None:
    raise RuntimeError(msg)


async def test_saga_compensates_in_reverse_order_on_failure(store: Any) -> None:
    engine = treadle.Engine(store)
    handle = await engine.start(saga, True)
    with pytest.raises(treadle.ExecutionFailedError, match="shipping failed"):
        await handle.result()
    assert effects == ["reserve book", "charge 30", "refund ch-30",
                       "release r-book for book"]
    types = [e.type for e in await engine.events(handle.id)]
    assert types.index("saga.compensating") < types.index("saga.compensated")
    assert types.count("step.compensated") == 2
    ex = await engine.get(handle.id)
    assert [s.compensated for s in ex.steps[:2]] == [True, True]


async def test_saga_success_does_not_compensate(store: Any) -> None:
    assert await (await treadle.Engine(store).start(saga, False)).result() == "shipped"
    assert effects == ["reserve book", "charge 30"]


@treadle.workflow(name="cancellable")
async def cancellable(ctx: treadle.Context) -> str:
    await charge(5)
    await ctx.wait_for_signal("never")
    return "done"


async def test_cancel_compensates_and_records_cancelled(store: Any) -> None:
    engine = treadle.Engine(store)
    handle = await engine.start(cancellable)
    await wait_for(lambda: effects == ["charge 5"])
    await asyncio.sleep(0)
    await engine.cancel(handle.id, "customer changed their mind")
    with pytest.raises(treadle.ExecutionCancelledError):
        await handle.result()
    assert effects == ["charge 5", "refund ch-5"]
    ex = await engine.get(handle.id)
    assert ex.status == "cancelled"
    assert ex.error == {"type": "Cancelled", "message": "customer changed their mind"}


async def suspended_in_store(store: Any, execution_id: str) -> None:
    """The journal (not just a side effect) says the execution waits: safe to crash now."""
    for _ in range(2000):
        row = await store.get(execution_id)
        if row is not None and row.status == "suspended":
            return
        await asyncio.sleep(0.0025)
    raise AssertionError("the execution never suspended")


async def test_cancel_of_an_execution_nobody_runs(store: Any) -> None:
    first = engine_with_short_lease(store)
    handle = await first.start(cancellable)
    await suspended_in_store(store, handle.id)
    await crash(first)
    second = treadle.Engine(store)
    for _ in range(1000):
        try:
            await second.cancel(handle.id)
            break
        except treadle.TreadleError:
            await asyncio.sleep(0.002)  # the dead owner's lease lapses
    assert (await second.get(handle.id)).status == "cancelled"
    assert effects == ["charge 5", "refund ch-5"]


@treadle.workflow(name="deterministic")
async def deterministic(ctx: treadle.Context) -> list[Any]:
    values = [ctx.uuid(), ctx.random(), ctx.now().isoformat()]
    await blocking("gate")
    return values


async def test_recorded_values_are_the_same_after_resume(store: Any) -> None:
    first = engine_with_short_lease(store)
    handle = await first.start(deterministic)
    await wait_for(lambda: "gate:started" in effects)
    # values are durable before the next step starts: a crash in it cannot change them
    recorded = [e.data["output"] for e in await store.events(handle.id)
                if e.data.get("kind") == "value"]
    assert len(recorded) == 3
    recorded[2] = datetime.fromtimestamp(recorded[2], UTC).isoformat()
    await crash(first)
    second = treadle.Engine(store)
    resumed = await recover_one(second)
    gate["event"].set()
    assert await resumed.result() == recorded


def make_versioned(version: str, registry: treadle.Registry, steps: list[Any]) -> Any:
    @treadle.workflow(name="versioned", version=version, registry=registry)
    async def versioned(ctx: treadle.Context) -> str:
        for s in steps:
            await s("v")
        return version

    return versioned


async def test_execution_resumes_only_on_its_own_version(store: Any) -> None:
    old = treadle.Registry()
    make_versioned("1", old, [effect, blocking])
    first = engine_with_short_lease(store, registry=old)
    handle = await first.start("versioned")
    await wait_for(lambda: "v:started" in effects)
    await crash(first)

    new = treadle.Registry()
    make_versioned("2", new, [effect, blocking])
    second = treadle.Engine(store, registry=new)
    with pytest.raises(treadle.WorkflowVersionError, match="version '1' is not loaded"):
        for _ in range(1000):
            try:
                await second.resume(handle.id)
            except treadle.WorkflowVersionError:
                raise
            except treadle.TreadleError:
                await asyncio.sleep(0.002)
    assert (await second.get(handle.id)).version == "1"
    assert await second.recover() == []  # left alone, not failed
    gate["event"].set()
    both = treadle.Registry()
    make_versioned("1", both, [effect, blocking])
    make_versioned("2", both, [effect, blocking])
    assert await (await treadle.Engine(store, registry=both).resume(handle.id)).result() == "1"


async def test_changed_code_raises_non_determinism_error(store: Any) -> None:
    old = treadle.Registry()

    @treadle.workflow(name="changing", registry=old)
    async def changing(ctx: treadle.Context) -> str:
        await effect("a")
        await blocking("b")
        return "old"

    first = engine_with_short_lease(store, registry=old)
    await first.start(changing)
    await wait_for(lambda: "b:started" in effects)
    await crash(first)

    new = treadle.Registry()

    @treadle.workflow(name="changing", registry=new)
    async def changed(ctx: treadle.Context) -> str:
        await reserve("a")  # a different step now sits at position 0
        return "new"

    resumed = await recover_one(treadle.Engine(store, registry=new))
    with pytest.raises(treadle.ExecutionFailedError) as info:
        await resumed.result()
    assert info.value.error["type"] == "treadle.errors.NonDeterminismError"
    assert "position 0" in info.value.error["message"]
    assert "reserve" in info.value.error["message"] and "effect" in info.value.error["message"]


async def test_list_filters_and_paginates(store: Any) -> None:
    engine = treadle.Engine(store)
    ids = [(await engine.start(child_square, i)).id for i in range(5)]
    for i in ids:
        await engine.outcome(i)
    failed = await engine.start(child_square, -3)
    await engine.outcome(failed.id)
    page1 = await engine.list(workflow="child-square", limit=4)
    assert len(page1.items) == 4 and page1.next_cursor
    page2 = await engine.list(workflow="child-square", limit=4, cursor=page1.next_cursor)
    assert len(page2.items) == 2 and page2.next_cursor is None
    listed = [r.id for r in page1.items + page2.items]
    assert sorted(listed) == sorted([*ids, failed.id])
    only_failed = await engine.list(status="failed")
    assert [r.id for r in only_failed.items] == [failed.id]
    assert only_failed.items[0].error == "negative"


async def test_prune_removes_old_finished_executions() -> None:
    clock = FakeClock()
    engine = treadle.Engine(MemoryStore(), clock=clock)
    old = await engine.start(child_square, 1)
    await old.result()
    clock.advance(31 * 86400)
    fresh = await engine.start(child_square, 2)
    await fresh.result()
    assert await engine.prune(30 * 86400) == 1
    with pytest.raises(treadle.ExecutionNotFoundError):
        await engine.get(old.id)
    assert (await engine.get(fresh.id)).status == "completed"


def test_mocks_replace_steps_and_are_journaled() -> None:
    from treadle.testing import test_engine

    engine = test_engine(mocks={charge.name: {"id": "mocked"}, reserve_with_undo.name:
                                lambda item: {"reservation": f"fake-{item}"}})
    assert engine.run(saga, False) == "shipped"
    assert effects == []

    async def inspect() -> list[bool]:
        page = await engine.list(workflow="saga")
        return [s.mocked for s in (await engine.get(page.items[0].id)).steps]

    assert asyncio.run(inspect()) == [True, True]


async def test_signal_from_another_engine_reaches_a_waiting_workflow(store_url: str) -> None:
    if store_url.startswith("memory"):
        store: Any = MemoryStore()
        owner, other = treadle.Engine(store, signal_poll_interval=0.01), treadle.Engine(store)
    else:  # two engines, two connections to one SQLite file: as two processes would be
        owner = treadle.Engine(store_url, signal_poll_interval=0.01)
        other = treadle.Engine(store_url)
    handle = await owner.start(approval, 7)
    await wait_for(lambda: effects == ["before-wait"])
    while (await other.get(handle.id)).status != "suspended":
        await asyncio.sleep(0.005)
    await other.signal(handle.id, "approval", {"by": "remote"})
    assert await asyncio.wait_for(handle.result(), 30) == {"amount": 7, "by": "remote"}


async def test_cancelled_step_is_journaled_as_failed(store: Any) -> None:
    engine = treadle.Engine(store)
    handle = await engine.start(three_steps)
    await wait_for(lambda: "two:started" in effects)
    await engine.cancel(handle.id, "stop")
    ex = await engine.get(handle.id)
    assert ex.status == "cancelled"
    assert [str(s.status) for s in ex.steps] == ["completed", "failed"]
    assert ex.steps[1].error is not None and ex.steps[1].error["type"] == "Cancelled"


seen_keys: list[tuple[str, int]] = []


@treadle.step
async def keyed(name: str) -> str:
    info = treadle.current_step()
    assert info is not None
    seen_keys.append((info.idempotency_key, info.attempt))
    if name == "block":
        await gate["event"].wait()
    return info.idempotency_key


@treadle.workflow(name="keyed")
async def keyed_workflow(ctx: treadle.Context) -> list[str]:
    return [await keyed("a"), await keyed("block")]


async def test_step_idempotency_key_is_stable_across_a_crash(store: Any) -> None:
    seen_keys.clear()
    assert treadle.current_step() is None
    first = engine_with_short_lease(store)
    handle = await first.start(keyed_workflow)
    await wait_for(lambda: len(seen_keys) == 2)
    await crash(first)
    resumed = await recover_one(treadle.Engine(store))
    gate["event"].set()
    keys = await resumed.result()
    assert keys == [f"{handle.id}:0", f"{handle.id}:1"]
    assert [k for k, _ in seen_keys] == [keys[0], keys[1], keys[1]]  # same key when re-run


async def test_cancel_an_execution_another_process_runs(store_url: str) -> None:
    if store_url.startswith("memory"):
        shared: Any = MemoryStore()
        owner = treadle.Engine(shared, signal_poll_interval=0.01)
        other = treadle.Engine(shared)
    else:
        owner = treadle.Engine(store_url, signal_poll_interval=0.01)
        other = treadle.Engine(store_url)
    handle = await owner.start(cancellable)
    await wait_for(lambda: effects == ["charge 5"])
    while (await other.get(handle.id)).status != "suspended":
        await asyncio.sleep(0.005)
    assert await other.cancel(handle.id, "from elsewhere") is False  # requested of the owner
    with pytest.raises(treadle.ExecutionCancelledError):
        await asyncio.wait_for(handle.result(), 30)
    ex = await other.get(handle.id)
    assert ex.status == "cancelled" and ex.error is not None
    assert ex.error["message"] == "from elsewhere"
    assert effects == ["charge 5", "refund ch-5"]  # the owner compensated


async def test_a_pending_cancel_request_is_honoured_on_resume(store: Any) -> None:
    first = engine_with_short_lease(store)
    handle = await first.start(cancellable)
    await suspended_in_store(store, handle.id)
    await crash(first)
    await store.send_signal(handle.id, "treadle.cancel", {"reason": "while down"}, 0.0)
    resumed = await recover_one(treadle.Engine(store))
    with pytest.raises(treadle.ExecutionCancelledError):
        await resumed.result()
    assert effects == ["charge 5", "refund ch-5"]


async def test_reserved_signal_names_are_refused() -> None:
    engine = treadle.Engine()
    handle = await engine.start(cancellable)
    with pytest.raises(ValueError, match="reserved"):
        await engine.signal(handle.id, "treadle.cancel", {})
    await engine.cancel(handle.id)


async def test_a_mock_run_stays_mocked_after_a_crash(store: Any) -> None:
    clock = FakeClock()
    first = engine_with_short_lease(store, clock=clock)
    mocks = {charge.name: {"output": {"id": "ch-mock"}, "delay_ms": 5000}}
    handle = await first.start(saga, True, mocks=mocks)  # fails at boom_step, then refunds
    with pytest.raises(treadle.ExecutionFailedError):
        await handle.result()
    assert "charge 30" not in effects and "refund ch-mock" in effects  # mocked, compensated
    ex = await first.get(handle.id)
    assert [s.mocked for s in ex.steps[:2]] == [False, True]
    assert ex.steps[1].output == {"id": "ch-mock"}

    effects.clear()
    second = engine_with_short_lease(store, clock=clock)
    held = await second.start(cancellable, mocks=mocks)
    await suspended_in_store(store, held.id)
    await crash(second)
    resumed = await recover_one(treadle.Engine(store, clock=clock))
    await resumed.cancel()
    assert effects == ["refund ch-mock"]  # the recorded mock output, compensated after resume
