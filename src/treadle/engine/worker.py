"""A worker: claims due executions of its queues and runs them, up to a concurrency limit.

Any number of workers in any number of processes may share one store: claiming takes a lease
in one transaction (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL), a heartbeat renews it,
and a worker that dies simply stops renewing, so its executions are claimed again by another
once the lease lapses — and resume from their journals.

Draining (on SIGTERM, or when `stop` is set): no new claims; every execution finishes the step
it is in, then stops at its next journaled call; waiting executions stop at once; all leases
are released so other workers take over immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from treadle.engine.queues import claim_limits
from treadle.errors import TreadleError

if TYPE_CHECKING:
    from treadle.engine.engine import Engine

logger = logging.getLogger("treadle.worker")


class Worker:
    """Claims and runs work for one engine until stopped, then drains."""

    def __init__(
        self,
        engine: Engine,
        *,
        queues: Sequence[str] = ("default",),
        concurrency: int = 16,
        poll_interval: float = 0.5,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.engine = engine
        self.queues = list(queues)
        self.concurrency = concurrency
        self.poll_interval = poll_interval

    def busy(self) -> int:
        """Executions here that are doing work (not just waiting for a timer or signal)."""
        return sum(1 for run in self.engine._runs.values() if run.active > 0)

    async def run(self, stop: asyncio.Event) -> None:
        engine = self.engine
        await engine.open()
        engine.draining = False
        engine.work_available = asyncio.Event()
        logger.info("worker %s on queues %s, concurrency %d", engine.owner, self.queues,
                    self.concurrency)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                engine.work_available.clear()
                await self.claim()
                woken = asyncio.ensure_future(engine.work_available.wait())
                await asyncio.wait({stopping, woken}, timeout=self.poll_interval,
                                   return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            stopping.cancel()
            await self.drain()

    async def claim(self) -> int:
        free = self.concurrency - self.busy()
        if free <= 0:
            return 0
        engine = self.engine
        now = time.time()
        rows = await engine.store.claim(
            engine.owner, now=now, limit=free, due_only=True,
            lease_until=now + engine.lease_seconds, queues=self.queues,
            limits=claim_limits(engine.queues.values(), engine.registry),
        )
        for row in rows:
            try:
                await engine._resume(row)
            except TreadleError as exc:
                logger.warning("cannot run execution %s: %s", row.id, exc,
                               extra={"execution_id": row.id, "workflow": row.workflow})
                await engine.store.release(row.id, engine.owner)
        return len(rows)

    async def drain(self) -> None:
        """Let running steps finish, stop every execution here, release all leases."""
        engine = self.engine
        engine.draining = True
        try:
            for run in list(engine._runs.values()):
                if run.active <= 0:
                    run.stop_now()
            while engine._runs:
                engine.work_available.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(engine.work_available.wait(), 0.5)
        finally:
            await engine.detach()
            engine.draining = False
        logger.info("worker %s drained", engine.owner)
