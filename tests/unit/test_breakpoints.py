"""Breakpoints: pause before a step, inspect, then resume (with a new input), skip or abort."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import treadle
from durable import crash, engine_with_short_lease, recover_one
from treadle.engine.breakpoints import BREAKPOINT_SIGNAL
from treadle.journal import EventType, StepStatus
from treadle.stores import Record

ran: list[tuple[str, Any]] = []


@pytest.fixture(autouse=True)
def _reset_breakpoint_calls() -> None:
    ran.clear()


@treadle.step
async def inspect_order(amount: int) -> dict[str, int]:
    ran.append(("inspect", amount))
    return {"total": amount * 10}


@treadle.step
async def charge_card(amount: int) -> dict[str, int]:
    ran.append(("charge", amount))
    return {"charged": amount}


@treadle.step
async def refund_card(charged: dict[str, int], amount: int) -> None:
    ran.append(("refund", charged["charged"]))


@treadle.step(compensate=refund_card)
async def reserve(amount: int) -> dict[str, int]:
    ran.append(("reserve", amount))
    return {"charged": amount}


@treadle.workflow(name="bp-order")
async def bp_order(ctx: treadle.Context, amount: int) -> dict[str, int]:
    await reserve(amount)
    checked = await inspect_order(amount)
    return await charge_card(checked["total"])


async def paused(engine: treadle.Engine, execution_id: str) -> dict[str, Any]:
    """Wait (bounded) until the execution waits at a breakpoint; its `breakpoint.hit` data."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        hit = await engine.breakpoints.paused(execution_id)
        if hit is not None and (await engine.get(execution_id)).status == "suspended":
            return hit
        await asyncio.sleep(0.005)
    raise AssertionError(f"{execution_id} never paused")


async def test_a_matching_step_pauses_before_running_and_resume_runs_it(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    bp = await engine.breakpoints.set("bp-order", "charge_card", ttl=60)
    handle = await engine.start(bp_order, 3)
    hit = await paused(engine, handle.id)
    assert hit["step_name"] == "charge_card" and hit["input"] == [30]
    assert hit["breakpoint_id"] == bp.id
    assert ("charge", 30) not in ran  # paused before the step ran
    ex = await engine.get(handle.id)
    step = ex.steps[-1]
    assert (step.name, step.status, step.input) == ("charge_card", StepStatus.PAUSED, [30])
    await engine.breakpoints.resume(handle.id)
    assert await handle.result() == {"charged": 30}
    types = [e.type for e in await engine.events(handle.id)]
    assert EventType.BREAKPOINT_HIT in types
    assert types.index(EventType.BREAKPOINT_HIT) < types.index(EventType.EXECUTION_SUSPENDED)


async def test_resume_with_a_modified_input(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    await engine.breakpoints.set("bp-order", "charge_card")
    handle = await engine.start(bp_order, 3)
    await paused(engine, handle.id)
    await engine.breakpoints.resume(handle.id, input=[7], by="ann")
    assert await handle.result() == {"charged": 7}
    assert ("charge", 7) in ran and ("charge", 30) not in ran
    received = [e for e in await engine.events(handle.id)
                if e.type == EventType.SIGNAL_RECEIVED]
    assert received[0].data["for"] == "breakpoint"
    assert received[0].data["payload"]["by"] == "ann"


async def test_skip_returns_the_given_output_without_running(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    await engine.breakpoints.set("bp-order", "charge_card")
    handle = await engine.start(bp_order, 3)
    await paused(engine, handle.id)
    await engine.breakpoints.skip(handle.id, output={"charged": 0})
    assert await handle.result() == {"charged": 0}
    assert not any(name == "charge" for name, _ in ran)
    ex = await engine.get(handle.id)
    assert ex.steps[-1].status == StepStatus.SKIPPED and ex.steps[-1].output == {"charged": 0}


async def test_abort_cancels_and_compensates(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    await engine.breakpoints.set("bp-order", "charge_card")
    handle = await engine.start(bp_order, 3)
    await paused(engine, handle.id)
    await engine.breakpoints.abort(handle.id, reason="looks fraudulent")
    with pytest.raises(treadle.ExecutionCancelledError):
        await handle.result()
    ex = await engine.get(handle.id)
    assert ex.status == "cancelled" and ex.error is not None
    assert ex.error["message"] == "looks fraudulent"
    assert ("refund", 3) in ran and not any(name == "charge" for name, _ in ran)


async def test_condition_decides_and_sees_earlier_outputs_and_the_input(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    await engine.breakpoints.set("bp-order", "charge_card",
                                 condition="steps.inspect_order.total > 100 && input[0] > 0")
    small = await engine.start(bp_order, 5)  # total 50: runs through
    assert await small.result() == {"charged": 50}
    big = await engine.start(bp_order, 50)
    hit = await paused(engine, big.id)
    assert hit["condition"].startswith("steps.inspect_order.total")
    await engine.breakpoints.resume(big.id)
    assert await big.result() == {"charged": 500}


async def test_breakpoints_are_scoped_to_workflow_step_tenant_and_expire(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    await engine.breakpoints.set("bp-order", "charge_card", tenant_id="acme")
    await engine.breakpoints.set("other-workflow", "charge_card")
    expired = await engine.breakpoints.set("bp-order", "inspect_order", ttl=60)
    await engine.store.put_record(Record(  # the same breakpoint, but its time is up
        "breakpoint", expired.id, {"workflow": "bp-order", "step": "inspect_order"},
        time.time() - 120, None, time.time() - 60))
    await engine.breakpoints.load()  # re-read now (otherwise within refresh_seconds)
    other = await engine.start(bp_order, 1, tenant_id="globex")
    assert await other.result() == {"charged": 10}
    assert [bp.workflow for bp in await engine.breakpoints.list()] == \
        ["other-workflow", "bp-order"]
    mine = await engine.start(bp_order, 1, tenant_id="acme")
    hit = await paused(engine, mine.id)
    assert hit["step_name"] == "charge_card"
    await engine.breakpoints.resume(mine.id)
    assert await mine.result() == {"charged": 10}


async def test_removing_a_breakpoint_stops_new_pauses(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    bp = await engine.breakpoints.set("bp-order", "charge_card")
    assert await engine.breakpoints.get(bp.id) == bp
    assert await engine.breakpoints.remove(bp.id)
    assert await engine.breakpoints.get(bp.id) is None
    assert await (await engine.start(bp_order, 2)).result() == {"charged": 20}


async def test_deciding_for_an_execution_that_is_not_paused_is_an_error(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    done = await engine.start(bp_order, 1)
    await done.result()
    with pytest.raises(treadle.TreadleError, match="not paused"):
        await engine.breakpoints.resume(done.id)
    with pytest.raises(treadle.ExecutionNotFoundError):
        await engine.breakpoints.skip("nope")
    with pytest.raises(ValueError, match="action"):
        await engine.breakpoints.decide(done.id, {"action": "explode"})
    with pytest.raises(ValueError, match="condition"):
        await engine.breakpoints.set("bp-order", "charge_card", condition="steps.x >")
    with pytest.raises(ValueError, match="ttl"):
        await engine.breakpoints.set("bp-order", "charge_card", ttl=1e90)
    with pytest.raises(ValueError, match="reserved"):
        await engine.signal(done.id, BREAKPOINT_SIGNAL, {})


async def test_a_pause_survives_a_crash_and_the_decision_is_replayed(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/bp.db"
    first = engine_with_short_lease(url)
    await first.breakpoints.set("bp-order", "charge_card")
    handle = await first.start(bp_order, 4)
    await paused(first, handle.id)
    await crash(first)
    second = engine_with_short_lease(url)
    await second.breakpoints.remove((await second.breakpoints.list())[0].id)
    resumed = await recover_one(second)  # still paused: the hit is in the journal
    assert await second.breakpoints.paused(resumed.id) is not None
    await second.breakpoints.resume(resumed.id, input=[9])
    assert await resumed.result() == {"charged": 9}
    assert ran.count(("reserve", 4)) == 1 and ran.count(("inspect", 4)) == 1
    events = await second.events(handle.id)
    assert [e.type for e in events].count(EventType.BREAKPOINT_HIT) == 1
    ex = await second.get(handle.id)
    assert ex.steps[-1].input == [9]  # the step ran with the operator's input


hold = asyncio.Event()


@treadle.step
async def slow_charge(amount: int) -> dict[str, int]:
    ran.append(("slow", amount))
    if ran.count(("slow", amount)) == 1:
        await hold.wait()  # never set: the engine is crashed while the first call runs
    return {"charged": amount}


@treadle.workflow(name="bp-slow")
async def bp_slow(ctx: treadle.Context, amount: int) -> dict[str, int]:
    checked = await inspect_order(amount)
    return await slow_charge(checked["total"])


async def test_a_recorded_decision_is_replayed_not_asked_again(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/bp.db"
    first = engine_with_short_lease(url)
    await first.breakpoints.set("bp-slow", "slow_charge")
    handle = await first.start(bp_slow, 2)
    await paused(first, handle.id)
    await first.breakpoints.resume(handle.id, input=[99])
    end = time.monotonic() + 10
    while ("slow", 99) not in ran:  # the decision is journaled; the step is running
        assert time.monotonic() < end
        await asyncio.sleep(0.005)
    await crash(first)
    second = engine_with_short_lease(url)
    resumed = await recover_one(second)
    assert await resumed.result() == {"charged": 99}  # the recorded input, no second pause
    types = [e.type for e in await second.events(handle.id)]
    assert types.count(EventType.BREAKPOINT_HIT) == 1
    assert types.count(EventType.SIGNAL_RECEIVED) == 1
