"""A worker: claims due executions of its queues and runs them, up to a concurrency limit.

Any number of workers in any number of processes may share one store: claiming takes a lease
in one transaction (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL), a heartbeat renews it,
and a worker that dies simply stops renewing, so its executions are claimed again by another
once the lease lapses — and resume from their journals.

Waking up: when the store pushes wake-ups (`treadle.stores.base.Notifier`: PostgreSQL
LISTEN/NOTIFY, Redis pub/sub, the memory store), a worker claims at once when work arrives in
one of its queues, and otherwise sleeps until the earliest time it knows work becomes due (a
timer or delayed start of a free execution, a lease running out — asked of the store after each
round that left slots free, and told by wake-ups) or for `idle_interval` (the engine's
`idle_poll_interval`, 5 s) at most, a safety net. It polls every `poll_interval` instead while
the store cannot push (no `Notifier`, SQLite across processes, a lost connection) and when
queue or workflow limits apply (their capacity frees up without a push).

Draining (on SIGTERM, or when `stop` is set): no new claims; every execution finishes the step
it is in, then stops at its next journaled call; waiting executions stop at once; all leases
are released so other workers take over immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from treadle.engine.queues import claim_limits
from treadle.errors import StoreError, TreadleError
from treadle.stores.base import ANY_TOPIC, Wakeup

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
        idle_interval: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.engine = engine
        self.queues = list(queues)
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.idle_interval = engine.idle_poll_interval if idle_interval is None else idle_interval
        self.limited = False  # the last claim had queue or workflow limits to respect

    def busy(self) -> int:
        """Executions here that are doing work (not just waiting for a timer or signal)."""
        return sum(1 for run in self.engine._runs.values() if run.active > 0)

    async def run(self, stop: asyncio.Event) -> None:
        engine = self.engine
        await engine.open()
        engine.draining = False
        engine.work_available = asyncio.Event()
        wakeups = engine._wakeups
        alarm = _Alarm(engine.work_available)
        hook = functools.partial(self._on_wakeup, alarm)
        wakeups.hooks.append(hook)
        wakeups.start()
        logger.info("worker %s on queues %s, concurrency %d", engine.owner, self.queues,
                    self.concurrency)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                engine.work_available.clear()
                free = self.concurrency - self.busy()
                claimed = await self.claim()
                timeout = self.poll_interval
                if wakeups.live and not self.limited:
                    timeout = self.idle_interval
                    if claimed < free:  # nothing else is due now: when will something be?
                        alarm.add(await self._next_wake())
                woken = asyncio.ensure_future(engine.work_available.wait())
                await asyncio.wait({stopping, woken}, timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            stopping.cancel()
            wakeups.hooks.remove(hook)
            alarm.cancel()
            await self.drain()

    def _on_wakeup(self, alarm: _Alarm, wakeup: Wakeup) -> None:
        if wakeup.topic == ANY_TOPIC:
            self.engine.work_available.set()
        elif wakeup.kind == "work" and wakeup.key in self.queues:
            if wakeup.at is None or wakeup.at <= time.time():
                self.engine.work_available.set()
            else:
                alarm.add(wakeup.at)

    async def _next_wake(self) -> float | None:
        notifier = self.engine._wakeups.notifier
        if notifier is None:
            return None
        try:
            return await notifier.next_wake(self.queues, time.time())
        except StoreError as exc:
            logger.warning("cannot ask the store when work is next due: %s", exc)
            return None

    async def claim(self) -> int:
        free = self.concurrency - self.busy()
        if free <= 0:
            return 0
        engine = self.engine
        now = time.time()
        limits = claim_limits(engine.queues.values(), engine.registry)
        self.limited = limits is not None
        rows = await engine.store.claim(
            engine.owner, now=now, limit=free, due_only=True,
            lease_until=now + engine.lease_seconds, queues=self.queues, limits=limits,
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


class _Alarm:
    """Sets an event at each of the (epoch) times it is given, earliest first."""

    def __init__(self, event: asyncio.Event) -> None:
        self._event = event
        self._times: list[float] = []
        self._known: set[float] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._armed: float | None = None

    def add(self, when: float | None) -> None:
        if when is None or when in self._known:
            return
        self._known.add(when)
        heapq.heappush(self._times, when)
        if self._armed is None or when < self._armed:
            self._arm()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._armed = None
        self._times.clear()
        self._known.clear()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._armed = None
        if self._times:
            self._armed = self._times[0]
            delay = max(0.0, self._armed - time.time()) + 0.001
            self._handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        now = time.time()
        while self._times and self._times[0] <= now + 0.001:
            self._known.discard(heapq.heappop(self._times))
        self._event.set()
        self._arm()
