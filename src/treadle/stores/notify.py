"""Wake-ups pushed by stores (the `Notifier` capability): the wire format and two listeners.

- `LocalHub` fans wake-ups out to listeners in this process, on whatever event loop each one
  runs (the memory store; SQLite, whose other processes cannot be reached and keep polling).
- `PushListener` keeps one subscription to a server alive (`listen_postgres`: LISTEN,
  `listen_redis`: SUBSCRIBE): when the connection drops it logs once, reports `complete =
  False` so that its users poll, reconnects with back-off, and yields `ANY_TOPIC` once it is
  back (wake-ups may have been missed in between).

On the wire a wake-up is `<kind>:<at>:<key>` — `work:1700000000.25:emails`, `done::<id>` —
with `at` empty when the work is due now. The key comes last so it may contain anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from treadle.errors import require
from treadle.stores.base import ANY_TOPIC, Wakeup

if TYPE_CHECKING:
    from psycopg import AsyncConnection

logger = logging.getLogger("treadle.stores")

_PROBE_EVERY = 15.0  # seconds without traffic after which a subscription checks its connection
_PROBE_TIMEOUT = 10.0

Session = Callable[[Callable[[], None]], AsyncIterator[Wakeup]]
"""Connects, subscribes, calls its argument once subscribed, then yields wake-ups until the
connection fails (by raising)."""


def encode_wakeup(kind: str, key: str, at: float | None = None) -> str:
    return f"{kind}:{'' if at is None else repr(float(at))}:{key}"


def decode_wakeup(text: str) -> Wakeup | None:
    """A wake-up from its wire form; None for anything malformed (never raises)."""
    kind, sep, rest = text.partition(":")
    at_text, sep2, key = rest.partition(":")
    if not (sep and sep2 and kind):
        return None
    try:
        at = float(at_text) if at_text else None
    except ValueError:
        return None
    return Wakeup(f"{kind}:{key}", at)


class _Queue:
    """An unbounded queue of wake-ups fed from any thread, read on one event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.items: asyncio.Queue[Wakeup] = asyncio.Queue()

    def put(self, wakeup: Wakeup) -> bool:
        """False when the reader's loop is gone."""
        try:
            self.loop.call_soon_threadsafe(self.items.put_nowait, wakeup)
        except RuntimeError:  # loop closed
            return False
        return True


class LocalHub:
    """Delivers wake-ups to every listener of this process, on each listener's own loop."""

    def __init__(self) -> None:
        self._queues: set[_Queue] = set()
        self._lock = threading.Lock()

    def publish(self, kind: str, key: str, at: float | None = None) -> None:
        if not self._queues:
            return
        wakeup = Wakeup(f"{kind}:{key}", at)
        with self._lock:
            dead = [q for q in self._queues if not q.put(wakeup)]
            self._queues.difference_update(dead)

    def listen(self, *, complete: bool) -> LocalListener:
        return LocalListener(self, complete)

    def _add(self, queue: _Queue) -> None:
        with self._lock:
            self._queues.add(queue)

    def _remove(self, queue: _Queue) -> None:
        with self._lock:
            self._queues.discard(queue)


class LocalListener:
    """A `Listener` on a `LocalHub` (an async context manager yielding itself)."""

    def __init__(self, hub: LocalHub, complete: bool) -> None:
        self._hub = hub
        self._complete = complete
        self._queue: _Queue | None = None

    @property
    def complete(self) -> bool:
        return self._complete

    async def __aenter__(self) -> LocalListener:
        self._queue = _Queue()
        self._hub._add(self._queue)
        self._queue.items.put_nowait(Wakeup(ANY_TOPIC))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._queue is not None:
            self._hub._remove(self._queue)
            self._queue = None

    def __aiter__(self) -> AsyncIterator[Wakeup]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Wakeup]:
        while self._queue is not None:
            yield await self._queue.items.get()


class PushListener:
    """A `Listener` over a server subscription, reconnecting for as long as it is open.

    `session` connects and yields wake-ups (see `Session`); it runs in a background task that
    starts again after each failure, `retry_min` to `retry_max` seconds later (doubling).
    """

    def __init__(
        self, describe: str, session: Session, *, retry_min: float = 0.05,
        retry_max: float = 5.0,
    ) -> None:
        self.describe = describe
        self._session = session
        self._retry = (retry_min, retry_max)
        self._complete = False
        self._lost = False  # a failure was logged and no connection has succeeded since
        self._items: asyncio.Queue[Wakeup] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.connections = 0
        """How many times a subscription was established (tests and diagnostics)."""

    @property
    def complete(self) -> bool:
        return self._complete

    async def __aenter__(self) -> PushListener:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"treadle:listen:{self.describe}")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        self._complete = False
        if task is not None:
            await stop_task(task)

    def __aiter__(self) -> AsyncIterator[Wakeup]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Wakeup]:
        while True:
            yield await self._items.get()

    def _connected(self) -> None:
        self.connections += 1
        if self._lost:
            logger.warning("wake-ups from %s are back", self.describe)
        self._lost = False
        self._complete = True
        self._items.put_nowait(Wakeup(ANY_TOPIC))

    async def _run(self) -> None:
        delay = self._retry[0]
        while True:
            connections = self.connections
            try:
                async for wakeup in self._session(self._connected):
                    self._items.put_nowait(wakeup)
                error: BaseException = ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
            self._complete = False
            if self.connections > connections:
                delay = self._retry[0]  # it worked for a while: retry quickly
            if not self._lost:
                self._lost = True
                logger.warning("%s the wake-up connection to %s (%s); polling until it is "
                               "back", "lost" if self.connections else "cannot open",
                               self.describe, error)
            else:
                logger.debug("wake-up connection to %s still down: %s", self.describe, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry[1])


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a task and wait for it, cancelling again every second: client libraries waiting
    under timeouts can swallow a cancellation on Python 3.11 (CPython gh-86296)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    with contextlib.suppress(BaseException):
        task.result()


def _raise_if_cancelled() -> None:
    """Deliver a cancellation that a client library swallowed (see `stop_task`)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


# -- server subscriptions (sessions for PushListener) -------------------------------------------


def channel_name(schema: str) -> str:
    """The PostgreSQL channel of a schema, as migration 003's triggers compute it."""
    name = f"treadle:{schema}"
    if len(name.encode()) > 63:
        name = "treadle:" + hashlib.md5(schema.encode(), usedforsecurity=False).hexdigest()
    return name


async def listen_postgres(
    connect: Callable[[], Awaitable[AsyncConnection[Any]]], connected: Callable[[], None],
) -> AsyncIterator[Wakeup]:
    """LISTEN on the channel of the connection's schema, on a connection of its own; probe it
    after a silence, so that a connection that died without a word is noticed too."""
    sql = require("psycopg.sql", "postgres")
    conn = await connect()
    try:
        cur = await conn.execute("SELECT current_schema()")
        found = await cur.fetchone()
        channel = channel_name(str(found[0]) if found else "public")
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        connected()
        while True:
            async for note in conn.notifies(timeout=_PROBE_EVERY):
                _raise_if_cancelled()
                wakeup = decode_wakeup(note.payload)
                if wakeup is not None:
                    yield wakeup
            _raise_if_cancelled()
            await asyncio.wait_for(conn.execute("SELECT 1"), _PROBE_TIMEOUT)
    finally:
        await conn.close()


async def listen_redis(
    client_url: str, channel: str, timeout: float, connected: Callable[[], None],
) -> AsyncIterator[Wakeup]:
    """SUBSCRIBE on a client of its own, without redis-py's silent reconnects (a gap must be
    seen, to be reported as `*`); PING after a silence to notice a dead connection."""
    module = require("redis.asyncio", "redis")
    retry = require("redis.asyncio.retry", "redis").Retry
    backoff = require("redis.backoff", "redis").NoBackoff
    client = module.Redis.from_url(client_url, decode_responses=True, retry=retry(backoff(), 0))
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel)
        while True:  # wait for the confirmation: subscribed from then on
            message = await pubsub.get_message(timeout=timeout)
            _raise_if_cancelled()
            if message is None:
                raise ConnectionError("SUBSCRIBE was not confirmed")
            if message["type"] == "subscribe":
                break
        connected()
        probing = False
        while True:
            message = await pubsub.get_message(timeout=_PROBE_EVERY)
            _raise_if_cancelled()
            if message is None:
                if probing:
                    raise ConnectionError("no reply to PING")
                await pubsub.ping()
                probing = True
                continue
            probing = False
            if message["type"] == "message":
                wakeup = decode_wakeup(message["data"])
                if wakeup is not None:
                    yield wakeup
    finally:
        await pubsub.aclose()
        await client.aclose()
