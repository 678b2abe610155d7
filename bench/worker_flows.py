"""Workflows the worker benchmarks run in `treadle worker` processes.

The benchmark imports this file itself (to enqueue) and hands its path to each worker with
`treadle worker --import bench/worker_flows.py`. Steps that leave a trace append one line to
`$WB_EFFECTS` (one `write` with O_APPEND, so lines from several processes never interleave):
`<kind> <execution id> <pid> <epoch seconds>`.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import treadle

GATE_POLL = 0.01  # how often a held step looks for its gate file


def trace(kind: str) -> None:
    path = os.environ.get("WB_EFFECTS")
    info = treadle.current_step()
    if not path or info is None:
        return
    line = f"{kind} {info.execution_id} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@treadle.step(name="wb.noop")
async def noop(i: int) -> int:
    return i


@treadle.step(name="wb.pid")
async def pid() -> int:
    return os.getpid()


@treadle.workflow(name="wb.ten")
async def ten(ctx: treadle.Context, n: int = 10) -> int:
    """`n` trivial sequential steps: the throughput workload."""
    for i in range(n):
        await noop(i)
    return n


@treadle.workflow(name="wb.whoami")
async def whoami(ctx: treadle.Context) -> int:
    """The worker's pid: tells which workers are up and claiming."""
    return await pid()


@treadle.workflow(name="wb.wait")
async def wait(ctx: treadle.Context, mode: str, fire_at: float) -> str:
    """One step, then a durable wait (a timer until `fire_at`, or the signal `go`), one step.

    While it waits, the execution is in flight: suspended, leased by its worker."""
    await noop(0)
    if mode == "timer":
        await ctx.sleep_until(datetime.fromtimestamp(fire_at, UTC))
        got = "timer"
    else:
        got = str(await ctx.wait_for_signal("go"))
    await noop(1)
    return got


@treadle.step(name="wb.first")
async def first() -> int:
    trace("first")
    return 1


@treadle.step(name="wb.hold")
async def hold(gate: str) -> int:
    """Runs until the file `gate` exists: the step a worker is in when it is killed."""
    trace("hold")
    while not Path(gate).exists():
        await asyncio.sleep(GATE_POLL)
    return 2


@treadle.step(name="wb.last")
async def last() -> int:
    trace("last")
    return 3


@treadle.workflow(name="wb.takeover")
async def takeover(ctx: treadle.Context, gate: str) -> int:
    """first (done before the kill), hold (in progress at the kill), last (after)."""
    return await first() + await hold(gate) + await last()
