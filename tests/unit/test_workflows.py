"""Workflows on the memory and SQLite stores: steps, fan-out, branches, retries, timeouts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import treadle
from treadle.testing import FakeClock

calls: list[str] = []
attempts: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()
    attempts.clear()


@treadle.step
async def add(a: int, b: int) -> int:
    calls.append(f"add:{a}+{b}")
    return a + b


@treadle.step
def multiply(a: int, b: int) -> int:  # a sync step: runs in a thread
    calls.append(f"mul:{a}*{b}")
    return a * b


@treadle.workflow(name="arith")
async def arith(ctx: treadle.Context, x: int) -> dict[str, Any]:
    total = await add(x, 1)
    product = await multiply(total, 10)
    if product > 50:  # branches are plain Python
        product = await add(product, 5)
    for i in range(2):  # and so are loops
        total = await add(total, i)
    return {"total": total, "product": product}


def test_sequential_sync_and_async_steps(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    assert engine.run(arith, 5) == {"total": 7, "product": 65}
    assert calls == ["add:5+1", "mul:6*10", "add:60+5", "add:6+0", "add:6+1"]


async def test_execution_view_has_steps_inputs_outputs_and_timing(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    handle = await engine.start(arith, 1)
    assert await handle.result() == {"total": 3, "product": 20}
    ex = await engine.get(handle.id)
    assert ex.status == treadle.ExecutionStatus.COMPLETED and str(ex.status) == "completed"
    assert ex.workflow == "arith" and ex.input == 1
    assert ex.output == {"total": 3, "product": 20}
    assert [s.name for s in ex.steps] == [
        "add", "multiply", "add", "add"
    ] or [s.name.rsplit(".", 1)[-1] for s in ex.steps] == ["add", "multiply", "add", "add"]
    first = ex.steps[0]
    assert first.input == [1, 1] and first.output == 2 and first.attempts == 1
    assert first.duration_ms is not None and first.duration_ms >= 0
    assert ex.duration_ms is not None and ex.created_at is not None
    types = [e.type for e in await engine.events(handle.id)]
    assert types[0] == "execution.started" and types[-1] == "execution.completed"
    assert types[1:5] == ["step.started", "step.input_recorded", "step.output_recorded",
                          "step.completed"]
    seqs = [e.seq for e in await engine.events(handle.id)]
    assert seqs == list(range(1, len(seqs) + 1))


turns: dict[int, asyncio.Event] = {}


@treadle.step
async def reverse_echo(value: int, last: int) -> int:
    """Finishes only after the call made after it: the last call finishes first."""
    if value != last:
        await turns[value + 1].wait()
    calls.append(f"echo:{value}")
    turns[value].set()
    return value


@treadle.workflow(name="fan-out")
async def fan_out(ctx: treadle.Context, n: int) -> list[int]:
    turns.clear()
    turns.update({i: asyncio.Event() for i in range(n)})
    # later calls finish first: results must still come back in call order
    return await ctx.gather(*(reverse_echo(i, n - 1) for i in range(n)))


async def test_gather_returns_in_call_order_and_numbers_positions_by_call(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    handle = await engine.start(fan_out, 5)
    assert await handle.result() == [0, 1, 2, 3, 4]
    assert calls == [f"echo:{i}" for i in (4, 3, 2, 1, 0)]  # completion order differs
    ex = await engine.get(handle.id)
    assert [(s.pos, s.input) for s in ex.steps] == [(i, [i, 4]) for i in range(5)]


@treadle.step
async def boom(msg: str) -> None:
    raise ValueError(msg)


@treadle.step
async def forever() -> None:
    calls.append("forever-started")
    await asyncio.Event().wait()


@treadle.workflow(name="fan-out-fails")
async def fan_out_fails(ctx: treadle.Context) -> None:
    await ctx.gather(forever(), boom("bad branch"))


async def test_gather_failure_cancels_other_branches(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    handle = await engine.start(fan_out_fails)
    with pytest.raises(treadle.ExecutionFailedError, match="bad branch"):
        await handle.result()
    ex = await engine.get(handle.id)
    assert ex.status == "failed" and ex.error is not None
    assert ex.error["type"] == "ValueError" and "bad branch" in ex.error["traceback"]


@treadle.workflow(name="gather-exceptions")
async def gather_exceptions(ctx: treadle.Context) -> list[str]:
    results = await ctx.gather(add(1, 2), boom("x"), return_exceptions=True)
    return [type(r).__name__ for r in results]


def test_gather_return_exceptions() -> None:
    assert treadle.Engine().run(gather_exceptions) == ["int", "ValueError"]


@treadle.step(retries=3, initial_delay=5, max_delay=60, retry_on=ConnectionError)
async def flaky(key: str, failures: int) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] <= failures:
        raise ConnectionError(f"attempt {attempts[key]} failed")
    return f"ok after {attempts[key]}"


@treadle.workflow(name="retrying")
async def retrying(ctx: treadle.Context, key: str, failures: int) -> str:
    return await flaky(key, failures)


async def test_retries_with_backoff_on_the_engine_clock(store_url: str) -> None:
    clock = FakeClock()
    t0 = clock.time()
    engine = treadle.Engine(store_url, clock=clock)
    handle = await engine.start(retrying, "a", 2)
    assert await handle.result() == "ok after 3"
    assert attempts["a"] == 3
    assert clock.time() - t0 >= 5 * 0.5 + 10 * 0.5  # two jittered back-offs were waited
    ex = await engine.get(handle.id)
    assert ex.steps[0].attempts == 3
    retries = [e for e in await engine.events(handle.id) if e.type == "retry.attempted"]
    assert [e.data["attempt"] for e in retries] == [1, 2]
    assert all(0 < e.data["delay"] <= 60 for e in retries)


async def test_retries_exhausted_fail_the_execution() -> None:
    engine = treadle.Engine(clock=FakeClock())
    handle = await engine.start(retrying, "b", 10)
    with pytest.raises(treadle.ExecutionFailedError, match="attempt 4 failed"):
        await handle.result()
    assert attempts["b"] == 4
    failed = [e for e in await engine.events(handle.id) if e.type == "step.failed"]
    assert failed[0].data["attempts"] == 4


@treadle.step(retries=5, retry_on=ConnectionError)
async def wrong_kind() -> None:
    calls.append("wrong_kind")
    raise KeyError("not retried")


@treadle.workflow(name="no-retry-for-other-errors")
async def no_retry(ctx: treadle.Context) -> None:
    await wrong_kind()


def test_retry_on_limits_which_errors_retry() -> None:
    with pytest.raises(treadle.ExecutionFailedError, match="KeyError"):
        treadle.Engine(clock=FakeClock()).run(no_retry)
    assert calls == ["wrong_kind"]


@treadle.step(timeout=0.05)
async def too_slow() -> None:
    await asyncio.sleep(10)


@treadle.step(timeout=0.05)
def too_slow_sync() -> str:
    import time

    time.sleep(0.2)
    return "late"


@treadle.workflow(name="step-timeout")
async def step_timeout(ctx: treadle.Context, sync: bool) -> str:
    try:
        await (too_slow_sync() if sync else too_slow())
    except treadle.StepTimeoutError as exc:
        return f"timed out: {exc}"
    return "no timeout"


@pytest.mark.parametrize("sync", [False, True])
def test_step_timeout(sync: bool) -> None:
    out = treadle.Engine().run(step_timeout, sync)
    assert out.startswith("timed out") and "0.05s" in out


@treadle.workflow(name="workflow-timeout", timeout=3600)
async def workflow_timeout(ctx: treadle.Context) -> str:
    await ctx.sleep(7200)
    return "woke"


def test_workflow_timeout_is_durable_and_uses_the_engine_clock() -> None:
    with pytest.raises(treadle.ExecutionFailedError, match="ran past its timeout of 3600"):
        treadle.Engine(clock=FakeClock()).run(workflow_timeout)


@treadle.step
async def make_set() -> Any:
    return {1, 2}


@treadle.workflow(name="not-json")
async def not_json(ctx: treadle.Context) -> Any:
    return await make_set()


def test_non_json_output_is_a_clear_error_at_the_step(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    with pytest.raises(treadle.ExecutionFailedError, match=r"make_set.*not JSON-serialisable"):
        engine.run(not_json)


def test_plain_call_outside_a_workflow() -> None:
    assert multiply(3, 4) == 12
    assert asyncio.run(add(1, 2)) == 3


def test_workflow_must_be_async() -> None:
    with pytest.raises(TypeError, match="async def"):
        @treadle.workflow
        def sync_workflow(ctx: treadle.Context) -> None: ...


def test_run_inside_a_loop_is_a_clear_error() -> None:
    async def main() -> None:
        treadle.Engine().run(arith, 1)

    with pytest.raises(RuntimeError, match=r"await engine\.start"):
        asyncio.run(main())


async def test_idempotency_key_returns_the_same_execution(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    first = await engine.start(arith, 1, idempotency_key="order-1")
    second = await engine.start(arith, 1, idempotency_key="order-1")
    assert first.id == second.id
    await first.result()
    third = await engine.start(arith, 1, idempotency_key="order-1")
    assert third.id == first.id
    assert len((await engine.list(workflow="arith")).items) == 1
    assert calls.count("add:1+1") == 1


class Collector(treadle.Observer):
    def __init__(self) -> None:
        self.events: list[treadle.Event] = []

    def on_event(self, event: treadle.Event) -> None:
        self.events.append(event)


async def test_observers_see_every_event_in_order(store_url: str) -> None:
    seen = Collector()
    engine = treadle.Engine(store_url, observers=[seen])
    handle = await engine.start(arith, 2)
    await handle.result()
    journal = await engine.events(handle.id)
    assert [(e.seq, e.type) for e in seen.events] == [(e.seq, e.type) for e in journal]


def test_debug_mode_logs_steps_with_input_and_output(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="treadle.debug")
    treadle.Engine(debug=True).run(arith, 3)
    messages = [r.getMessage() for r in caplog.records if r.name == "treadle.debug"]
    assert any("input: [3, 1]" in m for m in messages)
    assert any("output: 4" in m for m in messages)
    assert all(getattr(r, "execution_id", None) for r in caplog.records
               if r.name == "treadle.debug")


@treadle.step
async def logs_something() -> None:
    logging.getLogger("user.code").warning("inside the step")


@treadle.workflow(name="logging-context")
async def logging_context(ctx: treadle.Context) -> str:
    ctx.logger.info("in the workflow")
    await logs_something()
    return ctx.execution_id


def test_log_records_carry_execution_workflow_step_and_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from treadle.engine.hooks import LogContextFilter

    caplog.set_level(logging.INFO)
    handler_filter = LogContextFilter()
    caplog.handler.addFilter(handler_filter)
    execution_id = treadle.Engine().run(logging_context)
    wf_record = next(r for r in caplog.records if r.getMessage() == "in the workflow")
    step_record = next(r for r in caplog.records if r.getMessage() == "inside the step")
    assert wf_record.execution_id == execution_id  # type: ignore[attr-defined]
    assert wf_record.workflow == "logging-context"  # type: ignore[attr-defined]
    assert step_record.execution_id == execution_id  # type: ignore[attr-defined]
    assert step_record.step.endswith("logs_something")  # type: ignore[attr-defined]
    assert step_record.attempt == 1  # type: ignore[attr-defined]


@treadle.workflow(name="noting")
async def noting(ctx: treadle.Context, x: int) -> str:
    run = ctx._run
    decision = run.note("conditional.routed", "route", {"route": "big" if x > 1 else "small"})
    run.note("step.skipped", "optional", {"reason": "if was false"})
    typed = treadle.StepFunction(add.fn, name="typed", policy=treadle.RetryPolicy(),
                                 timeout=None, compensate=None, step_type="step.set")
    await typed(1, 2)
    return str(decision["route"])


def test_notes_and_step_types_are_journaled() -> None:
    async def main() -> None:
        engine = treadle.Engine()
        handle = await engine.start(noting, 5)
        assert await handle.result() == "big"
        ex = await engine.get(handle.id)
        assert [(s.name, s.kind, str(s.status)) for s in ex.steps] == [
            ("route", "note", "completed"), ("optional", "note", "skipped"),
            ("typed", "step", "completed")]
        assert ex.steps[2].step_type == "step.set"
        routed = next(e for e in await engine.events(handle.id)
                      if e.type == "conditional.routed")
        assert routed.data["route"] == "big"

    asyncio.run(main())


async def test_handle_says_whether_start_created_the_execution() -> None:
    engine = treadle.Engine()
    first = await engine.start(arith, 1, idempotency_key="k")
    again = await engine.start(arith, 1, idempotency_key="k")
    queued = await engine.start(arith, 2, idempotency_key="q", queue="default")
    queued_again = await engine.start(arith, 2, idempotency_key="q", queue="default")
    assert (first.created, again.created) == (True, False) and first.id == again.id
    assert (queued.created, queued_again.created) == (True, False)
    await first.result()
