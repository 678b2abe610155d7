"""Helpers for in-process durability tests: crash an engine, resume on another."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import treadle

WAIT = 30.0  # deadlines for conditions: generous, a loaded 2-core CI machine is slow


async def until(predicate: Callable[[], object], timeout: float = WAIT) -> None:
    """Poll `predicate` on the event loop until it is truthy; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"condition not reached in {timeout} s: {predicate}")
        await asyncio.sleep(0.002)


def engine_with_short_lease(store: object, **kwargs: object) -> treadle.Engine:
    """An engine whose leases lapse at once and are never renewed: a crash frees its work."""
    return treadle.Engine(store, lease_seconds=0.001, heartbeat_interval=3600, **kwargs)  # type: ignore[arg-type]


async def crash(engine: treadle.Engine) -> None:
    """Stop an engine's tasks without writing anything or releasing leases, like SIGKILL."""
    runs = list(engine._runs.values())
    for run in runs:
        run.shutdown = True
        run.pending.clear()
        assert run.task is not None
        run.task.cancel()
    for run in runs:
        with contextlib.suppress(BaseException):
            await run.task  # type: ignore[misc]
    if engine._heartbeat is not None:
        engine._heartbeat.cancel()
        engine._heartbeat = None
    engine._runs.clear()


async def recover_one(engine: treadle.Engine, deadline: float = WAIT) -> treadle.Handle:
    """Recover until an execution is claimed (its lapsed lease may take a moment)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        handles = await engine.recover()
        if handles:
            assert len(handles) == 1
            return handles[0]
        await asyncio.sleep(0.005)
    raise AssertionError("nothing to recover")
