"""The live event hub: an `Observer` that fans journal events out to subscribers.

The engine calls `on_event` synchronously as it emits; the hub appends the event to a bounded
ring of recent events and offers it to each matching subscription, never waiting. Each
subscription holds at most `queue_size` undelivered events; when a consumer falls behind,
further events for it are dropped and counted, and the consumer receives one `Dropped` marker
in their place (in order), so a slow client never slows the engine down.

The ring (`buffer_size` recent events of this process) lets a reconnecting consumer resume
after the last event it saw (`since`), and lets an execution-scoped consumer see events that
were emitted but are not yet committed to the store (`recent`). It is kept only while someone
watches: from the first subscription until `keep_for` seconds after the last one ended (time
to reconnect). A server nobody watches keeps no events: holding thousands of them costs every
request of a busy server (their memory is cold when the ring finally drops them, and every full
garbage collection scans them).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass

from treadle.engine.hooks import Observer
from treadle.journal import Event
from treadle.observability.tracking import ExecutionIndex


@dataclass(slots=True, eq=False)
class LiveEvent:
    """A journal event as the hub saw it, with its workflow and tenant (read-only by
    convention: one instance goes to every subscriber; not frozen, because a frozen
    dataclass is three times slower to make and the hub makes one per journal event)."""

    n: int  # the hub's own counter: order of emission in this process
    event: Event
    workflow: str | None
    tenant: str | None


@dataclass(slots=True)
class Dropped:
    """Stands in for `count` events a slow subscription could not hold."""

    count: int
    after: LiveEvent | None  # the last event delivered before the gap


class Subscription:
    """One consumer's filtered, bounded view of the hub. Use as a context manager."""

    def __init__(
        self,
        hub: LiveHub,
        *,
        workflow: str | None = None,
        tenant: str | None = None,
        execution_id: str | None = None,
        queue_size: int = 1000,
    ) -> None:
        self.hub = hub
        self.workflow = workflow
        self.tenant = tenant
        self.execution_id = execution_id
        self.queue_size = queue_size
        self._items: deque[LiveEvent | Dropped] = deque()
        self._queued = 0
        self._last: LiveEvent | None = None
        self._wakeup = asyncio.Event()
        self.dropped = 0  # total, for observability
        self.closed = False

    def matches(self, item: LiveEvent) -> bool:
        if self.execution_id is not None and item.event.execution_id != self.execution_id:
            return False
        if self.workflow is not None and item.workflow != self.workflow:
            return False
        return self.tenant is None or item.tenant == self.tenant

    def offer(self, item: LiveEvent) -> None:
        """Queue `item` if it matches; never blocks (drops when the queue is full)."""
        if self.closed or not self.matches(item):
            return
        if self._queued >= self.queue_size:
            self.dropped += 1
            tail = self._items[-1] if self._items else None
            if isinstance(tail, Dropped):
                tail.count += 1
            else:
                self._items.append(Dropped(1, self._last))
        else:
            self._items.append(item)
            self._queued += 1
            self._last = item
        self._wakeup.set()

    async def get(self, timeout: float | None = None) -> LiveEvent | Dropped | None:
        """The next item, waiting up to `timeout` seconds (None when it passed)."""
        while not self._items:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                return None
        item = self._items.popleft()
        if isinstance(item, LiveEvent):
            self._queued -= 1
        return item

    def close(self) -> None:
        self.closed = True
        self.hub.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveHub(Observer):
    """Fans out journal events to subscriptions; keeps `buffer_size` recent ones for resumption.

    Subscriptions are consumed in the event loop that created them. Events emitted from
    another thread are handed over to that loop thread-safely.
    """

    def __init__(self, *, buffer_size: int = 10_000, queue_size: int = 1000,
                 keep_for: float = 300.0) -> None:  # fmt: skip
        self.buffer_size = buffer_size
        self.queue_size = queue_size
        self.keep_for = keep_for
        self._ring: deque[LiveEvent] = deque(maxlen=buffer_size)
        self._subs: set[Subscription] = set()
        self._index = ExecutionIndex()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()  # guards the ring and the index across threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recording = False  # someone watches, or did less than `keep_for` seconds ago
        self._idle_since = 0.0  # when the last subscription ended (monotonic)

    # -- the observer side --------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if not self._subs and not self._still_recording():
            return
        with self._lock:
            info, _ = self._index.observe(event)
            item = LiveEvent(next(self._counter), event, info.workflow, info.tenant)
            self._ring.append(item)
        if not self._subs:
            return
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self._publish(item)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._publish, item)

    def _still_recording(self) -> bool:
        """Without subscriptions: whether the ring is still kept for a reconnect."""
        if self._recording and time.monotonic() - self._idle_since > self.keep_for:
            with self._lock:
                self._recording = False
                self._ring.clear()
                self._index = ExecutionIndex()
        return self._recording

    def _publish(self, item: LiveEvent) -> None:
        for sub in list(self._subs):
            sub.offer(item)

    # -- the consumer side --------------------------------------------------------------------

    def subscribe(
        self,
        *,
        workflow: str | None = None,
        tenant: str | None = None,
        execution_id: str | None = None,
        queue_size: int | None = None,
    ) -> Subscription:
        """A new subscription; call it in the event loop that will consume it."""
        self._loop = asyncio.get_running_loop()
        self._recording = True
        sub = Subscription(self, workflow=workflow, tenant=tenant, execution_id=execution_id,
                           queue_size=queue_size or self.queue_size)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        if not self._subs:
            self._idle_since = time.monotonic()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def since(self, execution_id: str, seq: int, sub: Subscription) -> list[LiveEvent] | None:
        """Buffered events after event (`execution_id`, `seq`) that `sub` matches.

        None when that event is no longer (or never was) in the buffer: the caller cannot know
        what it missed.
        """
        with self._lock:
            ring = list(self._ring)
        for i in range(len(ring) - 1, -1, -1):
            ev = ring[i].event
            if ev.execution_id == execution_id and ev.seq == seq:
                return [item for item in ring[i + 1:] if sub.matches(item)]
        return None

    def recent(self, execution_id: str, after_seq: int) -> list[LiveEvent]:
        """Buffered events of one execution with a seq above `after_seq`, in order."""
        with self._lock:
            ring = list(self._ring)
        return [item for item in ring
                if item.event.execution_id == execution_id and item.event.seq > after_seq]
