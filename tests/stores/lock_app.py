"""A lock holder in another process: `python lock_app.py STORE NAME MODE [ARGS]`.

- `count FILE N`: prints `ready`, waits for a line on stdin, then N times, under the lock: reads
  the integer in FILE, yields, writes it plus one. Prints `done`. Without mutual exclusion,
  updates get lost.
- `hold`: take the lock (with a 1 s TTL where the backend needs one), print `held`, then wait
  to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import treadle


async def count(engine: treadle.Engine, name: str, path: Path, times: int) -> None:
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # all counters start together
    for _ in range(times):
        async with engine.lock(name, timeout=30):
            value = int(path.read_text() or "0")
            await asyncio.sleep(0)  # let others run inside the read-modify-write window
            await asyncio.sleep(0.0005)
            path.write_text(str(value + 1))
    print("done", flush=True)


async def hold(engine: treadle.Engine, name: str) -> None:
    async with engine.lock(name, timeout=10):
        print("held", flush=True)
        await asyncio.Event().wait()


async def main(url: str, name: str, mode: str, *args: str) -> None:
    engine = treadle.Engine(url, lease_seconds=1.0)
    await engine.open()
    try:
        if mode == "count":
            await count(engine, name, Path(args[0]), int(args[1]))
        else:
            await hold(engine, name)
    finally:
        await engine.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
