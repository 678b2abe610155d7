"""`Engine.start(lazy=True)`: the execution is first written at its first durable point."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import treadle
from durable import crash
from treadle.engine import current
from treadle.errors import ExecutionNotFoundError

gate = {"event": asyncio.Event()}
seen: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _reset() -> None:
    gate["event"] = asyncio.Event()
    seen.clear()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[treadle.Engine]:
    engine = treadle.Engine(f"sqlite:///{tmp_path}/t.db")
    yield engine
    await engine.close()


def batches(engine: treadle.Engine, execution_id: str) -> int:
    """How many journal writes (batches) the SQLite store holds for an execution."""
    path = engine.store.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        found: int = conn.execute("SELECT count(*) FROM execution_events WHERE execution_id = ?",
                                  (execution_id,)).fetchone()[0]
    return found


@treadle.step(pure=True)
async def shape(x: int) -> int:
    return x + 1


@treadle.step(pure=True)
async def held(x: int) -> int:
    await gate["event"].wait()
    return x * 10


@treadle.step
async def charge(x: int) -> int:
    step = current.STEP.get()
    assert step is not None
    run = current.RUN.get()
    assert run is not None
    seen["row_before_effect"] = await run.engine.store.get(step["execution_id"])
    return x


@treadle.workflow(name="lazy-pure")
async def pure_only(ctx: treadle.Context, x: int) -> int:
    return await held(await shape(x))


@treadle.workflow(name="lazy-effect")
async def with_effect(ctx: treadle.Context, x: int) -> int:
    return await shape(await charge(await shape(x)))


@treadle.workflow(name="lazy-signal")
async def waits_for_signal(ctx: treadle.Context, x: int) -> object:
    await shape(x)
    return await ctx.wait_for_signal("go")


async def test_a_short_execution_is_written_once_with_its_end(engine: treadle.Engine) -> None:
    handle = await engine.start(pure_only, 1, lazy=True)
    await asyncio.sleep(0)  # let it reach `held`
    assert await engine.store.get(handle.id) is None  # nothing written yet
    with pytest.raises(ExecutionNotFoundError):
        await engine.get(handle.id)
    gate["event"].set()
    assert await handle.result() == 20
    row = await engine.store.get(handle.id)
    assert row is not None and row.status == "completed" and row.finished_at is not None
    assert batches(engine, handle.id) == 1
    view = await engine.get(handle.id)
    assert [s.name for s in view.steps] == [shape.name, held.name]
    assert view.output == 20


async def test_an_eager_start_writes_before_it_runs(engine: treadle.Engine) -> None:
    handle = await engine.start(pure_only, 1)
    row = await engine.store.get(handle.id)
    assert row is not None and row.status == "running"
    gate["event"].set()
    assert await handle.result() == 20
    assert batches(engine, handle.id) == 2


async def test_the_row_exists_before_a_step_with_effects_runs(engine: treadle.Engine) -> None:
    handle = await engine.start(with_effect, 1, lazy=True)
    assert await handle.result() == 3
    before = seen["row_before_effect"]
    assert isinstance(before, treadle.ExecutionSummary) and before.status == "running"
    # the pure step before the effect rode with the creation
    view = await engine.get(handle.id)
    assert [s.name for s in view.steps] == [shape.name, charge.name, shape.name]


async def test_persist_writes_it_now_and_signals_reach_it(engine: treadle.Engine) -> None:
    handle = await engine.start(pure_only, 1, lazy=True)
    await asyncio.sleep(0)
    await engine.persist(handle.id)
    row = await engine.store.get(handle.id)
    assert row is not None and row.status == "running"
    await engine.persist(handle.id)  # already written: nothing more
    assert batches(engine, handle.id) == 1
    gate["event"].set()
    assert await handle.result() == 20

    waiting = await engine.start(waits_for_signal, 1, lazy=True)
    await engine.signal(waiting.id, "go", {"ok": True})
    assert await waiting.result() == {"ok": True}


async def test_one_stopped_before_its_first_write_leaves_no_trace(
    engine: treadle.Engine,
) -> None:
    handle = await engine.start(pure_only, 1, lazy=True)
    await asyncio.sleep(0)
    await crash(engine)
    assert await engine.store.get(handle.id) is None
    assert (await engine.list()).items == []


async def test_lazy_is_for_executions_that_run_here(engine: treadle.Engine) -> None:
    with pytest.raises(ValueError, match="queue"):
        await engine.start(pure_only, 1, lazy=True, queue="batch")
    # with an idempotency key the start is written first, so the key holds
    handle = await engine.start(pure_only, 1, lazy=True, idempotency_key="k")
    assert await engine.store.get(handle.id) is not None
    again = await engine.start(pure_only, 1, lazy=True, idempotency_key="k")
    assert again.id == handle.id
    gate["event"].set()
    assert await handle.result() == 20


@treadle.workflow(name="lazy-mutates")
async def mutates_its_input(ctx: treadle.Context, order: dict[str, object]) -> int:
    order["lines"] = "changed by the workflow"  # code may change its arguments...
    return await shape(1)


async def test_what_the_workflow_does_to_its_arguments_never_reaches_the_journal(
    engine: treadle.Engine,
) -> None:
    handle = await engine.start(mutates_its_input, {"lines": [1, 2]}, lazy=True)
    assert await handle.result() == 2
    view = await engine.get(handle.id)  # ...the journal, written after, still has what came in
    assert view.input == {"lines": [1, 2]}
