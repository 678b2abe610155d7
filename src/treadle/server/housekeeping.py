"""A serving process's durability housekeeping, shared by both servers.

`treadle serve` (the control plane, `treadle.server.app`) and `treadle serve APP.yaml` (a
YAML application, `treadle.apps.runtime`) both run `housekeep` while they serve:

```python
await recover(engine)                                        # at start: every free execution
task = start_housekeeping(engine)                            # then, until cancelled:
# every lease period, take_over(engine); every hour, engine.store.prune_records(now)
```

Needs only the engine (no FastAPI, no metrics), so the application server imports it
without the server extras.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from treadle.errors import TreadleError
from treadle.journal import ExecutionStatus
from treadle.stores.base import ListQuery

if TYPE_CHECKING:
    from treadle.engine import Engine

logger = logging.getLogger("treadle.server")

PRUNE_SECONDS = 3600.0
"""How often a serving process deletes expired records, by default."""


async def recover(engine: Engine) -> int:
    """Resume every execution left by a dead process or never claimed (`Engine.recover`);
    how many."""
    resumed = await engine.recover()
    if resumed:
        logger.info("resumed %d executions", len(resumed))
    return len(resumed)


async def take_over(engine: Engine) -> int:
    """Resume here the executions of workflows loaded here whose holder stopped renewing its
    lease (a process killed while it held them). Free executions — queued for workers, or
    scheduled — are left alone: they are the workers' (`recover()` at startup takes those)."""
    now = time.time()
    names = set(engine.registry.names())
    taken = 0
    for status in (ExecutionStatus.RUNNING, ExecutionStatus.SUSPENDED):
        cursor: str | None = None
        while True:
            page = await engine.store.list(ListQuery(status=status, limit=500, cursor=cursor))
            for row in page.items:
                if (row.owner is None or row.owner == engine.owner or row.workflow not in names
                        or row.lease_until is None or row.lease_until >= now):
                    continue
                try:
                    await engine.resume(row.id)
                    taken += 1
                except TreadleError as exc:  # taken meanwhile, or its version is not loaded
                    logger.info("left execution %s: %s", row.id, exc)
            cursor = page.next_cursor
            if cursor is None:
                break
    if taken:
        logger.info("took over %d execution(s) of a process that stopped", taken)
    return taken


async def housekeep(engine: Engine, every: float, prune_every: float = PRUNE_SECONDS) -> None:
    """Until cancelled: every `every` seconds, take over the executions whose holder died
    (`take_over`: e.g. this server's previous life, restarted within the lease); every
    `prune_every` seconds, delete the records past their expiry (dead letters past their
    retention, expired breakpoints, old audit entries and refresh-token records)."""
    pruned_at = time.monotonic()
    while True:
        await asyncio.sleep(every)
        try:
            await take_over(engine)
            if time.monotonic() - pruned_at >= prune_every:
                pruned_at = time.monotonic()
                count = await engine.store.prune_records(time.time())
                if count:
                    logger.info("deleted %d expired records", count)
        except Exception as exc:  # a store hiccup: try again next time
            logger.warning("cannot look for executions to take over: %s", exc)


def start_housekeeping(engine: Engine, every: float | None = None,
                       prune_every: float = PRUNE_SECONDS) -> asyncio.Task[None]:  # fmt: skip
    """`housekeep` as a task of the running loop, every `every` seconds (default: the
    engine's lease period). Cancel the task to stop it."""
    return asyncio.get_running_loop().create_task(
        housekeep(engine, every or engine.lease_seconds, prune_every), name="treadle:reclaim")


__all__ = ["PRUNE_SECONDS", "housekeep", "recover", "start_housekeeping", "take_over"]
