"""A worker process for the chaos tests: `python worker_app.py STORE EFFECTS_DB`.

Runs queue "chaos" until SIGTERM (then drains and exits 0). Each step records its effect once
under its idempotency key, and every attempt (start and end times, pid) for the overlap check.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time

import treadle

EFFECTS = sys.argv[2] if len(sys.argv) > 2 else ""


def effects_db() -> sqlite3.Connection:
    conn = sqlite3.connect(EFFECTS, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


@treadle.step(retries=5, initial_delay=0.01)
def effect(n: int) -> int:
    info = treadle.current_step()
    assert info is not None
    conn = effects_db()
    try:
        conn.execute("INSERT INTO attempts VALUES (?, ?, ?, ?, NULL)",
                     (info.execution_id, info.pos, os.getpid(), time.time()))
        conn.execute("INSERT OR IGNORE INTO effects VALUES (?, ?, ?)",
                     (info.idempotency_key, info.execution_id, n))
        conn.execute("UPDATE attempts SET ended = ? WHERE execution_id = ? AND pos = ? "
                     "AND pid = ? AND ended IS NULL",
                     (time.time(), info.execution_id, info.pos, os.getpid()))
    finally:
        conn.close()
    return n * n


@treadle.workflow(name="chaos-five")
async def chaos_five(ctx: treadle.Context, base: int) -> int:
    total = 0
    for i in range(5):
        total += await effect(base * 10 + i)
    return total


async def main(store: str) -> None:
    engine = treadle.Engine(store, lease_seconds=1.0)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await engine.work(queues=["chaos"], concurrency=8, poll_interval=0.05, stop=stop)
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
