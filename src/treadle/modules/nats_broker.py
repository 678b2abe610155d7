"""messaging.nats: publish/subscribe over a NATS server (the Go project's `NATSBroker`).

```python
broker = NatsBroker("events", {"url": "nats://127.0.0.1:4222"})
broker.subscribe("orders.*", handler)          # before or after start
await broker.start()                           # connects; BrokerError naming the URL if not
await broker.publish("orders.eu", {"id": 1})   # JSON bytes, as the in-memory broker sends
await broker.drain()                           # tests: everything received has been handled
await broker.stop()                            # unsubscribes and closes the connection
```

Same interface as `MemoryBroker`, so `step.publish`, event triggers and messaging handlers
use either. What differs is NATS's: topics are subjects passed through as-is (`*` matches
one token, `>` the rest), delivery is at most once (core NATS, no JetStream), and messages
cross processes: every process connected to the server with a matching subscription gets
each message. Each subscriber handles its messages in order, from its own queue.

Credentials in the URL (`nats://user:pass@host`, `nats://token@host`) never reach a log or
an error message: the module shows `redact_url(url)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from treadle.errors import describe, require
from treadle.modules.base import BuildContext, Module
from treadle.modules.messaging import (
    BrokerError,
    MessageHandler,
    deliver,
    encode_message,
    stop_delivery,
)
from treadle.modules.registry import register

logger = logging.getLogger("treadle.messaging")

DEFAULT_URL = "nats://127.0.0.1:4222"
"""nats.go's `nats.DefaultURL`."""

_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][\w+.-]*://)?(?P<userinfo>[^@/]*)@")


def redact_url(url: str) -> str:
    """`url` (one server or a comma-separated list) without secrets: `user:pass@` becomes
    `user:***@` and a token (`token@`) becomes `***@`."""

    def one(server: str) -> str:
        def hide(m: re.Match[str]) -> str:
            user, sep, _ = m["userinfo"].partition(":")
            return f"{m['scheme'] or ''}{user + ':***' if sep else '***'}@"

        return _USERINFO.sub(hide, server.strip(), count=1)

    return ",".join(one(s) for s in url.split(","))


def _servers(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise ValueError("url must be a string (comma-separated servers) or a list of them")
    servers = [s.strip() for s in items if s.strip()]
    return servers or [DEFAULT_URL]


def check_subject(subject: str) -> str:
    """`subject` if NATS accepts it: non-empty dot-separated tokens, no whitespace."""
    if not subject or any(c.isspace() for c in subject) or "" in subject.split("."):
        raise ValueError(f"{subject!r} is not a NATS subject (dot-separated tokens, no spaces)")
    return subject


@dataclass(eq=False)
class NatsSubscription:
    """One handler of one subject; `unsubscribe()` stops its delivery at once."""

    topic: str
    handler: MessageHandler
    queue: asyncio.Queue[bytes]
    broker: NatsBroker
    task: asyncio.Task[None] | None = None
    nats: Any = None
    """The nats-py subscription while connected."""
    active: bool = field(default=True)

    def unsubscribe(self) -> None:
        self.broker.unsubscribe(self)


class NatsBroker(Module):
    """Subjects on a NATS server; each subscriber handles its messages in order."""

    type = "messaging.nats"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        from treadle.steps._durations import parse_duration

        self.servers = _servers(config.get("url") or DEFAULT_URL)
        self.safe_url = redact_url(",".join(self.servers))
        self.connection_name = str(config.get("connectionName") or f"treadle:{name}")
        self.connect_timeout = parse_duration(config.get("connectTimeout") or "2s",
                                              "connectTimeout")  # fmt: skip
        self.reconnect_wait = parse_duration(config.get("reconnectWait") or "2s",
                                             "reconnectWait")  # fmt: skip
        reconnects = config.get("maxReconnects", 60)
        self.max_reconnects = int(reconnects) if isinstance(reconnects, int) else 60
        size = config.get("maxQueueSize", 10_000)
        self.max_queue = int(size) if isinstance(size, int) and size > 0 else 10_000
        self.nc: Any = None
        self.subscriptions: list[NatsSubscription] = []
        self.running = False
        self.published = 0
        self.received = 0
        self.failed = 0
        self._pending: set[asyncio.Task[None]] = set()
        self._connecting = False

    def __repr__(self) -> str:
        return f"<NatsBroker {self.name!r} {self.safe_url}>"

    @property
    def connected(self) -> bool:
        return self.nc is not None and bool(self.nc.is_connected)

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(self, topic: str, handler: MessageHandler) -> NatsSubscription:
        """Call `handler(message_bytes)` (sync or async) for each message on subject
        `topic`. Before `start` it is activated at start; after, at once (`flush()` waits
        until the server has it)."""
        check_subject(topic)
        sub = NatsSubscription(topic, handler, asyncio.Queue(self.max_queue), self)
        self.subscriptions.append(sub)
        if self.running:
            sub.task = asyncio.get_running_loop().create_task(self._deliver(sub))
            self._background(self._activate(sub))
        return sub

    def unsubscribe(self, sub: NatsSubscription) -> None:
        """Stop delivering to `sub` now; the server forgets it soon after (before `stop`
        closes the connection)."""
        sub.active = False
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
        if sub.task is not None:
            sub.task.cancel()
            sub.task = None
        if sub.nats is not None:
            nats_sub, sub.nats = sub.nats, None
            self._background(self._unsubscribe(nats_sub))

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` (a subscribe or unsubscribe: `subscribe()` is sync, nats-py's is not)
        as a task that `_settle` waits for; its failure is logged."""

        async def logged() -> None:
            try:
                await coro
            except Exception as exc:
                logger.error("broker %r: %s", self.name, describe(exc))

        task = asyncio.get_running_loop().create_task(logged())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self) -> None:
        """Wait for the subscribes and unsubscribes in flight."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _activate(self, sub: NatsSubscription) -> None:
        async def receive(msg: Any) -> None:
            if sub.active:
                self.received += 1
                await sub.queue.put(msg.data)

        try:
            nats_sub = await self.nc.subscribe(sub.topic, cb=receive)
        except Exception as exc:
            raise BrokerError(f"messaging.nats {self.name!r}: cannot subscribe to "
                              f"{sub.topic!r}: {describe(exc)}") from exc  # fmt: skip
        if sub.active:
            sub.nats = nats_sub
        else:  # unsubscribed while the subscribe was in flight
            await self._unsubscribe(nats_sub)

    async def _unsubscribe(self, nats_sub: Any) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await nats_sub.unsubscribe()
            except Exception as exc:
                logger.warning("broker %r: unsubscribe from %r failed: %s", self.name,
                               nats_sub.subject, describe(exc))  # fmt: skip

    async def _deliver(self, sub: NatsSubscription) -> None:
        await deliver(self, sub.topic, sub.handler, sub.queue)

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, topic: str, message: Any) -> None:
        """Send `message` (bytes; str as UTF-8; anything else as JSON) to subject `topic`.
        Like nats.go's Publish it is buffered: `flush()` waits until the server has it."""
        if self.nc is None:
            raise BrokerError(f"messaging.nats {self.name!r}: not connected to NATS; "
                              "start the module first")  # fmt: skip
        data = encode_message(message)
        await self._settle()  # a subscribe made just before is on the server first
        try:
            await self.nc.publish(topic, data)
        except Exception as exc:
            raise BrokerError(f"messaging.nats {self.name!r}: publish to {topic!r} failed: "
                              f"{describe(exc)}") from exc  # fmt: skip
        self.published += 1

    def handle(self, action: str, data: dict[str, Any]) -> Awaitable[None]:
        """For step.delegate: `publish` {topic, message}."""
        if action != "publish":
            raise ValueError(f"messaging.nats {self.name!r} has no action {action!r}")
        return self.publish(str(data["topic"]), data.get("message", {}))

    async def flush(self) -> None:
        """Wait until the server has every message published and every subscription made
        through this module so far."""
        await self._settle()
        if self.connected:
            await self.nc.flush()

    async def drain(self) -> None:
        """Wait until every message this connection has received has been handled. After a
        `flush()` (or `drain()`) of the publishing module, that includes every message it
        published, whichever process it is in: the server forwards in order."""
        await self.flush()
        for sub in list(self.subscriptions):
            while True:
                await sub.queue.join()
                if sub.nats is None or not sub.nats.pending_msgs:
                    break
                await asyncio.sleep(0)  # let nats-py hand its buffered messages over

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (each server is tried twice, at once: a broker that is not there fails
        the start rather than hanging it), then activate the subscriptions and wait until
        the server has them."""
        if self.nc is not None:
            return
        nats = require("nats", "nats")
        seen: list[BaseException] = []

        async def on_error(exc: Exception) -> None:
            if self._connecting:
                seen.append(exc)
            else:
                logger.warning("broker %r (NATS at %s): %s", self.name, self.safe_url,
                               describe(exc))  # fmt: skip

        async def on_disconnect() -> None:
            if self.running:
                logger.warning("broker %r: disconnected from NATS at %s; reconnecting",
                               self.name, self.safe_url)  # fmt: skip

        async def on_reconnect() -> None:
            logger.info("broker %r: reconnected to NATS at %s", self.name, self.safe_url)

        async def on_closed() -> None:
            if self.running:
                logger.error("broker %r: gave up reconnecting to NATS at %s; publishing "
                             "fails until a restart", self.name, self.safe_url)  # fmt: skip

        nc = nats.NATS()
        self._connecting = True
        try:
            await nc.connect(servers=self.servers, name=self.connection_name,
                             error_cb=on_error, disconnected_cb=on_disconnect,
                             reconnected_cb=on_reconnect, closed_cb=on_closed,
                             connect_timeout=self.connect_timeout,
                             max_reconnect_attempts=1, reconnect_time_wait=0)  # fmt: skip
        except Exception as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            cause = seen[-1] if seen else exc
            raise BrokerError(f"messaging.nats {self.name!r}: cannot connect to NATS at "
                              f"{self.safe_url}: {describe(cause)}") from cause  # fmt: skip
        finally:
            self._connecting = False
        # Connected: from now on, reconnect as configured (nats.go's defaults: 60 tries, 2 s;
        # nats-py reads these options at each reconnection, and takes 0 tries as forever).
        nc.options["allow_reconnect"] = self.max_reconnects != 0
        nc.options["max_reconnect_attempts"] = self.max_reconnects
        nc.options["reconnect_time_wait"] = self.reconnect_wait
        self.nc = nc
        try:
            for sub in self.subscriptions:
                await self._activate(sub)
            await nc.flush()  # once started, the server has every subscription
        except BaseException:
            await self._close()
            raise
        self.running = True
        loop = asyncio.get_running_loop()
        for sub in self.subscriptions:
            if sub.task is None:
                sub.task = loop.create_task(self._deliver(sub))
        logger.info("broker %r: connected to NATS at %s", self.name, self.safe_url)

    async def stop(self) -> None:
        """Unsubscribe and close the connection. Subscriptions stay registered: a new
        `start` activates them again."""
        self.running = False
        await self._settle()
        for sub in self.subscriptions:
            await stop_delivery(sub)
            if sub.nats is not None:
                nats_sub, sub.nats = sub.nats, None
                await self._unsubscribe(nats_sub)
        await self._close()

    async def _close(self) -> None:
        nc, self.nc = self.nc, None
        for sub in self.subscriptions:
            sub.nats = None
        if nc is not None:
            try:
                await nc.close()
            except Exception as exc:
                logger.warning("broker %r: closing the NATS connection failed: %s",
                               self.name, describe(exc))  # fmt: skip

    async def health_check(self) -> tuple[bool, str]:
        return (True, "connected") if self.connected else (False, "not connected to NATS")


@register(
    "messaging.nats",
    category="messaging",
    provides=("broker", "service"),
    doc="""
A publish/subscribe broker over a NATS server (nats-py; `pip install 'treadle[nats]'`):
the same interface as `messaging.broker`, so `step.publish` and `event` triggers work with
either, but messages cross processes — every process connected to the server with a
matching subscription gets each message. Topics are NATS subjects, passed through as-is
(`orders.*` matches one token, `orders.>` the rest; a bare `*` is every one-token subject,
not every topic as on `messaging.broker`); messages are bytes (mappings become JSON).
Delivery is core NATS, at most once: a message published while nobody subscribes is gone,
and queued messages do not survive a restart (the executions they started do).

The module connects at start and fails the start, naming the module and the URL, when no
server answers; once connected it reconnects by itself (`maxReconnects` tries,
`reconnectWait` apart). Credentials in `url` are never logged. The Go engine ignores this
module's config and always uses `nats://127.0.0.1:4222` (nats.go's `DefaultURL`), which is
also Treadle's default.
""",
    schema={
        "type": "object",
        "properties": {
            "url": {"anyOf": [{"type": "string"},
                              {"type": "array", "items": {"type": "string"}}],
                    "default": DEFAULT_URL,
                    "description": "Server URL, or several (a list or comma-separated); "
                                   "`nats://user:pass@host:4222` or `nats://token@host` "
                                   "for credentials."},
            "connectionName": {"type": "string",
                               "description": "Name shown by the server's monitoring "
                                              "(default `treadle:<module name>`)."},
            "connectTimeout": {"type": ["string", "number"], "default": "2s",
                               "description": "Longest wait for each connection attempt."},
            "maxReconnects": {"type": "integer", "default": 60,
                              "description": "Reconnection tries per server after a lost "
                                             "connection (0: none, negative: forever)."},
            "reconnectWait": {"type": ["string", "number"], "default": "2s",
                              "description": "Pause between tries of one server."},
            "maxQueueSize": {"type": "integer", "minimum": 1, "default": 10000,
                             "description": "Queue size per subscriber (beyond it the "
                                            "client buffers, then drops as a slow "
                                            "consumer)."},
        },
    },
    example="""
- name: events
  type: messaging.nats
  config: {url: "nats://127.0.0.1:4222"}
""",
)
def _nats(name: str, config: dict[str, Any], ctx: BuildContext) -> NatsBroker:
    return NatsBroker(name, config)


__all__ = ["DEFAULT_URL", "NatsBroker", "NatsSubscription", "check_subject", "redact_url"]
