"""Hundreds of executions in flight at once in one engine."""

from __future__ import annotations

import asyncio

import pytest

import treadle

pytestmark = pytest.mark.slow


@treadle.step
async def square(x: int) -> int:
    await asyncio.sleep(0)
    return x * x


@treadle.workflow(name="concurrent-square")
async def concurrent_square(ctx: treadle.Context, x: int) -> int:
    a, b = await ctx.gather(square(x), square(x + 1))
    extra = await ctx.wait_for_signal("add")
    return a + b + extra


async def test_500_concurrent_executions(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    handles = [await engine.start(concurrent_square, i) for i in range(500)]

    async def all_suspended() -> None:
        while True:
            page = await engine.list(status="suspended", limit=1000)
            if len(page.items) == 500:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(all_suspended(), 60)  # all 500 are in flight together
    await asyncio.gather(*(engine.signal(h.id, "add", 1) for h in handles))
    results = await asyncio.gather(*(h.result() for h in handles))
    assert results == [i * i + (i + 1) ** 2 + 1 for i in range(500)]
    for h in handles[::50]:
        seqs = [e.seq for e in await engine.events(h.id)]
        assert seqs == list(range(1, len(seqs) + 1))
    assert len((await engine.list(status="completed", limit=1000)).items) == 500
    await engine.close()
