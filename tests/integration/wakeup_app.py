"""Another process for the wake-up tests: `python wakeup_app.py STORE MODE`.

- `produce`: reads commands on stdin and answers each with one line on stdout, `<epoch time
  just before the write> <result>`:
  `enqueue <queue> <name>` → the execution id; `start_at <queue> <name> <epoch>` → the id;
  `signal <id> <name> <json payload>` → `ok`; `result <id>` → waits for the result (printed
  as JSON) and answers with the time it returned.
- `work`: a worker on queue `wake` with poll and idle intervals of 60 s (so only pushed
  wake-ups make it prompt), until SIGTERM; prints `ready` once its subscription is live.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import treadle


@treadle.workflow(name="wake-record")
async def wake_record(ctx: treadle.Context, name: str) -> dict[str, float | str]:
    return {"name": name, "ran_at": ctx.now().timestamp()}


@treadle.workflow(name="wake-wait")
async def wake_wait(ctx: treadle.Context, name: str) -> dict[str, object]:
    payload = await ctx.wait_for_signal("go")
    return {"name": name, "payload": payload, "woke_at": ctx.now().timestamp()}


def say(*parts: object) -> None:
    print(*parts, flush=True)


async def produce(store: str) -> None:
    engine = treadle.Engine(store, idle_poll_interval=60.0)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command, *args = line.split(maxsplit=3)
            before = time.time()
            if command == "enqueue":
                handle = await engine.start(wake_record, args[1], queue=args[0])
                say(before, handle.id)
            elif command == "enqueue_wait":
                handle = await engine.start(wake_wait, args[1], queue=args[0])
                say(before, handle.id)
            elif command == "start_at":
                handle = await engine.start(wake_record, args[1], queue=args[0],
                                            start_at=float(args[2]))
                say(before, handle.id)
            elif command == "signal":
                await engine.signal(args[0], args[1], json.loads(args[2]))
                say(before, "ok")
            elif command == "result":
                output = await treadle.Handle(engine, args[0]).result(timeout=30)
                say(time.time(), json.dumps(output))
            else:
                say(time.time(), f"unknown command {command!r}")
    finally:
        await engine.close()


async def work(store: str) -> None:
    engine = treadle.Engine(store, idle_poll_interval=60.0, signal_poll_interval=60.0)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    working = asyncio.create_task(engine.work(queues=["wake"], poll_interval=60.0, stop=stop))
    while not engine._wakeups.live:
        await asyncio.sleep(0.01)
    say("ready")
    await working
    await engine.close()


if __name__ == "__main__":
    url, mode = sys.argv[1], sys.argv[2]
    asyncio.run(produce(url) if mode == "produce" else work(url))
