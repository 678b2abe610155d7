"""`@step(pure=True)`: a pure step's events ride with the execution's next journal write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import treadle
from durable import crash, engine_with_short_lease, recover_one
from treadle.engine import current
from treadle.stores import MemoryStore

runs: list[str] = []
stores: list[MemoryStore] = []
seen: dict[str, list[str]] = {}
gate = {"event": asyncio.Event()}


@pytest.fixture(autouse=True)
def _reset() -> None:
    runs.clear()
    seen.clear()
    stores[:] = [MemoryStore()]
    gate["event"] = asyncio.Event()


async def journaled() -> list[str]:
    """Names of the steps whose completion the store holds, seen from inside a step."""
    step = current.STEP.get()
    assert step is not None
    events = await stores[0].events(step["execution_id"])
    return [str(e.data["step_name"]) for e in events if e.type == "step.completed"]


@treadle.step(pure=True)
async def double(x: int) -> int:
    runs.append("double")
    return 2 * x


@treadle.step
async def charge(x: int) -> int:
    runs.append("charge")
    seen["charge"] = await journaled()
    return x


@treadle.step(pure=True)
async def held(x: int) -> int:
    runs.append("held")
    seen.setdefault("held", await journaled())
    await gate["event"].wait()
    return x + 1


@treadle.workflow(name="pure-then-effect")
async def pure_then_effect(ctx: treadle.Context, x: int) -> int:
    y = await double(x)
    z = await double(y)
    c = await charge(z)
    w = await double(c)
    return await held(w)


async def test_pure_steps_are_journaled_with_the_next_write() -> None:
    engine = treadle.Engine(stores[0])
    handle = await engine.start(pure_then_effect, 1)
    gate["event"].set()
    assert await handle.result() == 9
    # the two doubles were written before `charge` started; the third waited for the end
    qual = double.name
    assert seen["charge"] == [qual, qual]
    assert seen["held"] == [qual, qual, charge.name]
    ex = await engine.get(handle.id)
    assert [s.name for s in ex.steps] == [qual, qual, charge.name, qual, held.name]
    assert all(s.status == "completed" for s in ex.steps)


async def test_a_crash_reruns_pure_steps_but_never_the_effect() -> None:
    store = stores[0]
    first = engine_with_short_lease(store)
    await first.start(pure_then_effect, 1)
    while "held" not in runs:
        await asyncio.sleep(0.001)
    await crash(first)
    assert runs == ["double", "double", "charge", "double", "held"]

    second = treadle.Engine(store)
    resumed = await recover_one(second)
    gate["event"].set()
    assert await resumed.result() == 9
    # the pure double after `charge` ran again; `charge` did not
    assert runs[5:] == ["double", "held"]


def test_pure_with_compensate_is_not_pure() -> None:
    @treadle.step(pure=True, compensate=lambda *a: None)
    def booked(x: Any) -> Any:
        return x

    assert booked.pure is False and double.pure is True and charge.pure is False
