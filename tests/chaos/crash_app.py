"""A process that runs workflows on SQLite, to be killed with SIGKILL by test_crash.py.

    python crash_app.py start STORE EFFECTS WORKFLOW   # prints the execution id, then runs
    python crash_app.py recover STORE EFFECTS          # resumes what the dead process left

Every step appends `start:<name>` and `done:<name>` lines to the EFFECTS file. With
TREADLE_BLOCK=<name> in the environment, that step blocks forever once started.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import treadle


def record(line: str) -> None:
    with open(os.environ["EFFECTS"], "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@treadle.step
async def work(name: str) -> str:
    record(f"start:{name}")
    if os.environ.get("TREADLE_BLOCK") == name:
        await asyncio.Event().wait()
    record(f"done:{name}")
    return name


@treadle.workflow(name="five-steps")
async def five_steps(ctx: treadle.Context) -> list[str]:
    return [await work(f"s{i}") for i in range(1, 6)]


@treadle.workflow(name="wait-signal")
async def wait_signal(ctx: treadle.Context) -> list[str]:
    done = [await work("a"), await work("b")]
    payload = await ctx.wait_for_signal("go")
    done.append(await work(f"c-{payload}"))
    return done


@treadle.workflow(name="wait-timer")
async def wait_timer(ctx: treadle.Context) -> list[str]:
    done = [await work("a")]
    await ctx.sleep(1.0)
    done.append(await work("b"))
    return done


async def start(store: str, workflow: str) -> None:
    engine = treadle.Engine(store, lease_seconds=1.0)
    handle = await engine.start(workflow)
    print(handle.id, flush=True)
    await handle.result()


async def recover(store: str) -> None:
    engine = treadle.Engine(store, lease_seconds=1.0)
    deadline = time.monotonic() + 10
    handles: list[treadle.Handle] = []
    while not handles and time.monotonic() < deadline:
        handles = await engine.recover()  # the dead owner's lease lapses within a second
        if not handles:
            await asyncio.sleep(0.05)
    results = {h.id: await h.result(timeout=20) for h in handles}
    print(json.dumps(results), flush=True)
    await engine.close()


if __name__ == "__main__":
    command, store, effects = sys.argv[1:4]
    os.environ["EFFECTS"] = effects
    if command == "start":
        asyncio.run(start(store, sys.argv[4]))
    else:
        asyncio.run(recover(store))
