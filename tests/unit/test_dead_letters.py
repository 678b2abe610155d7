"""Dead letters: workflows with `dead_letter` keep executions that failed for good."""

from __future__ import annotations

from typing import Any

import pytest

import treadle
from treadle.engine.dead_letters import RECORD_KIND
from treadle.testing import FakeClock

charges: list[int] = []


@pytest.fixture(autouse=True)
def _reset_dead_letter_calls() -> None:
    charges.clear()


@treadle.step(retries=2, backoff="constant", initial_delay=0.01)
async def charge_or_decline(order: dict[str, Any]) -> dict[str, Any]:
    charges.append(order["amount"])
    if order["amount"] > order.get("limit", 100):
        raise ValueError(f"declined: {order['amount']}")
    return {"charged": order["amount"]}


@treadle.workflow(name="dlq-pay", dead_letter=treadle.DeadLetter(retention=3600))
async def dlq_pay(ctx: treadle.Context, order: dict[str, Any]) -> dict[str, Any]:
    return await charge_or_decline(order)


@treadle.workflow(name="dlq-none")
async def no_dlq(ctx: treadle.Context, order: dict[str, Any]) -> dict[str, Any]:
    return await charge_or_decline(order)


@treadle.workflow(name="dlq-inspect-only", dead_letter=treadle.DeadLetter(replayable=False))
async def inspect_only(ctx: treadle.Context, order: dict[str, Any]) -> dict[str, Any]:
    return await charge_or_decline(order)


async def fail(engine: treadle.Engine, wf: treadle.WorkflowDef, order: dict[str, Any],
               **options: Any) -> str:
    handle = await engine.start(wf, order, **options)
    with pytest.raises(treadle.ExecutionFailedError):
        await handle.result()
    return handle.id


async def test_a_failed_execution_lands_in_the_queue_after_its_retries(store_url: str) -> None:
    engine = treadle.Engine(store_url, clock=FakeClock())
    ok = await engine.start(dlq_pay, {"amount": 5})
    assert await ok.result() == {"charged": 5}
    failed = await fail(engine, dlq_pay, {"amount": 500}, tenant_id="acme")
    assert charges == [5, 500, 500, 500]  # three attempts before it went to the queue
    page = await engine.dlq.list("dlq-pay")
    assert [letter.id for letter in page.items] == [failed]
    letter = page.items[0]
    assert letter.input == [{"amount": 500}] and letter.failed_step == "charge_or_decline"
    assert letter.error["type"] == "ValueError" and letter.error["message"] == "declined: 500"
    assert "traceback" not in letter.error and letter.tenant_id == "acme"
    assert letter.expires_at == pytest.approx(letter.failed_at + 3600)
    assert await engine.dlq.get("dlq-pay", failed) == letter
    assert await engine.dlq.depth("dlq-pay") == 1
    assert await engine.dlq.depth("dlq-pay", tenant_id="globex") == 0


async def test_workflows_without_dead_letter_keep_no_letters(store_url: str) -> None:
    engine = treadle.Engine(store_url, clock=FakeClock())
    await fail(engine, no_dlq, {"amount": 500})
    assert (await engine.dlq.list()).items == []


async def test_replay_starts_a_linked_execution_and_removes_the_letter(store_url: str) -> None:
    engine = treadle.Engine(store_url, clock=FakeClock())
    failed = await fail(engine, dlq_pay, {"amount": 150, "limit": 100})
    letter = await engine.dlq.get("dlq-pay", failed)
    assert letter is not None
    # the cause was fixed elsewhere; here the replay runs with the same input and fails again
    again = await engine.dlq.replay("dlq-pay", failed, by="ann")
    with pytest.raises(treadle.ExecutionFailedError):
        await again.result()
    ex = await engine.get(again.id)
    assert ex.metadata == {"dlq_of": failed, "replay_of": failed, "replayed_by": "ann"}
    assert ex.input == {"amount": 150, "limit": 100}
    assert [x.id for x in (await engine.dlq.list("dlq-pay")).items] == [again.id]
    with pytest.raises(KeyError):
        await engine.dlq.replay("dlq-pay", failed)


async def test_replay_all_and_discard(store_url: str) -> None:
    engine = treadle.Engine(store_url, clock=FakeClock())
    ids = [await fail(engine, dlq_pay, {"amount": 200 + i}) for i in range(3)]
    assert await engine.dlq.discard("dlq-pay", ids[0])
    assert not await engine.dlq.discard("dlq-pay", ids[0])
    handles = await engine.dlq.replay_all("dlq-pay")
    assert list(handles) == ids[1:]  # oldest first
    inputs = [(await engine.get(h.id)).input["amount"] for h in handles.values()]
    assert inputs == [201, 202]
    for handle in handles.values():  # they fail again, and land as letters of their own
        with pytest.raises(treadle.ExecutionFailedError):
            await handle.result()
    assert {x.id for x in (await engine.dlq.list("dlq-pay")).items} == \
        {h.id for h in handles.values()}



async def test_not_replayable_letters_refuse(store_url: str) -> None:
    engine = treadle.Engine(store_url, clock=FakeClock())
    failed = await fail(engine, inspect_only, {"amount": 999})
    with pytest.raises(treadle.TreadleError, match="not replayable"):
        await engine.dlq.replay("dlq-inspect-only", failed)
    assert await engine.dlq.get("dlq-inspect-only", failed) is not None


async def test_retention_hides_and_prunes_old_letters(store_url: str) -> None:
    clock = FakeClock()
    engine = treadle.Engine(store_url, clock=clock)
    old = await fail(engine, dlq_pay, {"amount": 300})
    clock.advance(3000)
    recent = await fail(engine, dlq_pay, {"amount": 301})
    clock.advance(1000)  # the first is past its hour, the second is not
    assert [x.id for x in (await engine.dlq.list("dlq-pay")).items] == [recent]
    assert await engine.dlq.get("dlq-pay", old) is None
    assert await engine.dlq.prune() == 1
    assert await engine.store.get_record(RECORD_KIND, f"dlq-pay/{old}") is None
    assert await engine.store.get_record(RECORD_KIND, f"dlq-pay/{recent}") is not None


def test_dead_letter_options_are_checked() -> None:
    with pytest.raises(ValueError, match="retention"):
        treadle.DeadLetter(retention=0)
