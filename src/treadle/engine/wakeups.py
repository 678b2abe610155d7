"""Wake-ups pushed by the store, routed to the parts of one engine that wait for them.

When the store is a `Notifier` (PostgreSQL LISTEN/NOTIFY, Redis pub/sub, in-process for the
memory and SQLite stores), the engine holds one subscription, started on first need (a run
here, a worker, a `Handle.result()` for an execution that runs elsewhere) and stopped by
`Engine.detach`/`close`:

- `signal:<id>` of an execution running here wakes its signal waits at once and has its inbox
  looked at (cancel requests from other processes travel as signals);
- `done:<id>` wakes `Engine.outcome` waiters;
- `work:<queue>` goes to the hooks a worker registers;
- `*` (after a (re)connect: wake-ups may have been lost) does all of the above for everything.

While the subscription is not `live` (connecting, lost, or a backend that cannot reach other
processes) everything polls as it would without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from treadle.stores.base import ANY_TOPIC, Listener, Notifier, Wakeup
from treadle.stores.notify import stop_task

if TYPE_CHECKING:
    from treadle.engine.engine import Engine

logger = logging.getLogger("treadle")


class Wakeups:
    """One engine's subscription to its store's wake-ups, and their routing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        store = engine.store
        self.notifier: Notifier | None = store if isinstance(store, Notifier) else None
        self.hooks: list[Callable[[Wakeup], None]] = []
        """Called with every wake-up (a worker registers one for `work:` topics)."""
        self.nudge: asyncio.Event | None = None
        """Set when `dirty` gains runs (the heartbeat loop waits on it)."""
        self.dirty: set[str] = set()
        """Executions running here whose inbox should be looked at now."""
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self._done: dict[str, set[asyncio.Future[None]]] = {}

    @property
    def live(self) -> bool:
        """True while every wake-up of the store reaches this engine (no need to poll)."""
        listener, task = self._listener, self._task
        return listener is not None and listener.complete and task is not None \
            and not task.done()

    def start(self) -> None:
        """Subscribe (in the background) unless already subscribed in this event loop."""
        if self.notifier is None:
            return
        loop = asyncio.get_running_loop()
        task = self._task
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._listener = None
        self._task = loop.create_task(self._listen(self.notifier), name="treadle:wakeups")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._listener = None
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return  # (a task of another loop went with that loop)
        await stop_task(task)

    @contextlib.contextmanager
    def watching(self, execution_id: str) -> Iterator[asyncio.Future[None]]:
        """A future resolved when `done:<execution_id>` (or `*`) arrives while inside."""
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._done.setdefault(execution_id, set())
        waiters.add(finished)
        try:
            yield finished
        finally:
            waiters.discard(finished)
            if not waiters and self._done.get(execution_id) is waiters:
                del self._done[execution_id]

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    async def _listen(self, notifier: Notifier) -> None:
        try:
            async with notifier.listen() as listener:
                self._listener = listener
                async for wakeup in listener:
                    self._route(wakeup)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("wake-ups from the store stopped; polling instead")
        finally:
            self._listener = None

    def _route(self, wakeup: Wakeup) -> None:
        runs = self.engine._runs
        if wakeup.topic == ANY_TOPIC:
            self._mark(runs)
            for waiters in self._done.values():
                _resolve(waiters)
            for run in runs.values():
                run.notify_signal()
        elif wakeup.kind == "signal":
            target = runs.get(wakeup.key)
            if target is not None:
                target.notify_signal()
                self._mark((wakeup.key,))
        elif wakeup.kind == "done":
            _resolve(self._done.get(wakeup.key, ()))
        for hook in list(self.hooks):
            try:
                hook(wakeup)
            except Exception:
                logger.exception("wake-up hook failed")

    def _mark(self, ids: Iterable[str]) -> None:
        self.dirty.update(ids)
        if self.nudge is not None:
            self.nudge.set()


def _resolve(waiters: Iterable[asyncio.Future[None]]) -> None:
    for waiter in list(waiters):
        if not waiter.done():
            waiter.set_result(None)
