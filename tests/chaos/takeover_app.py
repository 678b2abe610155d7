"""Workflows for the takeover chaos test, run by `treadle worker --import <this file>`.

`takeover-three` runs three steps: `first` (done before the worker is killed), `hold` (in
progress when it is killed: it runs until the gate file exists) and `last`. Every attempt of
every step appends one line to `$TAKEOVER_EFFECTS` — `<step> <execution id> <pid> <time>` —
in a single O_APPEND write, so lines from the two workers never interleave.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import treadle


def record(step: str) -> None:
    info = treadle.current_step()
    assert info is not None
    line = f"{step} {info.execution_id} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["TAKEOVER_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@treadle.step(name="takeover.first")
async def first() -> int:
    record("first")
    return 1


@treadle.step(name="takeover.hold")
async def hold(gate: str) -> int:
    record("hold")
    while not Path(gate).exists():  # the step's own work: it lasts until the gate opens
        await asyncio.sleep(0.01)
    return 2


@treadle.step(name="takeover.last")
async def last() -> int:
    record("last")
    return 3


@treadle.workflow(name="takeover-three")
async def takeover_three(ctx: treadle.Context, gate: str) -> int:
    return await first() + await hold(gate) + await last()
