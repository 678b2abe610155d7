"""Messaging modules: messaging.broker (in-memory pub/sub), its Go alias
messaging.broker.eventbus, and webhook.sender. messaging.nats is in `nats_broker`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from treadle.errors import TreadleError, require
from treadle.modules.base import BuildContext, Module
from treadle.modules.registry import register

logger = logging.getLogger("treadle.messaging")

MessageHandler = Callable[[bytes], Awaitable[Any] | Any]

BROKER_TYPES = ("messaging.broker", "messaging.broker.eventbus", "messaging.nats")
"""The built-in broker module types (`subscribe`, `publish`)."""


class BrokerFullError(TreadleError):
    """A topic's queue stayed full for the whole delivery timeout."""


class BrokerError(TreadleError):
    """A broker could not reach its server: connect, subscribe or publish failed."""


def encode_message(message: Any) -> bytes:
    """Messages travel as bytes, as in the Go broker: mappings and lists as JSON."""
    if isinstance(message, bytes):
        return message
    if isinstance(message, str):
        return message.encode()
    return json.dumps(message, separators=(",", ":")).encode()


class _Counting(Protocol):
    name: str
    failed: int


async def deliver(broker: _Counting, topic: str, handler: MessageHandler,
                  queue: asyncio.Queue[bytes]) -> None:  # fmt: skip
    """Hand a subscription's queued messages to its handler in order, forever; a handler that
    fails is logged and counted (`broker.failed`), and delivery goes on."""
    while True:
        data = await queue.get()
        try:
            result = handler(data)
            if inspect.isawaitable(result):
                await result
        except Exception:
            broker.failed += 1
            logger.exception("broker %r: a subscriber of %r failed", broker.name, topic)
        finally:
            queue.task_done()


class _Delivering(Protocol):
    task: asyncio.Task[None] | None


async def stop_delivery(sub: _Delivering) -> None:
    """Stop a subscription's delivery task (`deliver`), if it runs, and wait for it."""
    if sub.task is not None:
        sub.task.cancel()
        with contextlib.suppress(BaseException):
            await sub.task
        sub.task = None


@dataclass(eq=False)
class Subscription:
    topic: str
    handler: MessageHandler
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(10_000))
    task: asyncio.Task[None] | None = None
    broker: MemoryBroker | None = None

    def unsubscribe(self) -> None:
        if self.broker is not None:
            self.broker.unsubscribe(self)


class MemoryBroker(Module):
    """Topics with any number of subscribers; each subscriber gets every message of its
    topic, in publish order, from its own queue (a slow subscriber does not block others)."""

    type = "messaging.broker"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        from treadle.steps._durations import parse_duration

        size = config.get("maxQueueSize", 10_000)
        self.max_queue = int(size) if isinstance(size, int | float) and size > 0 else 10_000
        self.delivery_timeout = parse_duration(config.get("deliveryTimeout") or "30s",
                                               "deliveryTimeout")  # fmt: skip
        self.subscriptions: list[Subscription] = []
        self.running = False
        self.published = 0
        self.failed = 0

    def subscribe(self, topic: str, handler: MessageHandler) -> Subscription:
        """Call `handler(message_bytes)` (sync or async) for each message on `topic` (`*`
        subscribes to every topic)."""
        sub = Subscription(topic, handler, asyncio.Queue(self.max_queue), broker=self)
        self.subscriptions.append(sub)
        if self.running:
            sub.task = asyncio.get_running_loop().create_task(self._deliver(sub))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
        if sub.task is not None:
            sub.task.cancel()

    async def publish(self, topic: str, message: Any) -> None:
        """Queue `message` for every subscriber of `topic`."""
        data = encode_message(message)
        self.published += 1
        for sub in [s for s in self.subscriptions if s.topic in (topic, "*")]:
            try:
                await asyncio.wait_for(sub.queue.put(data), self.delivery_timeout)
            except TimeoutError as exc:
                raise BrokerFullError(f"broker {self.name!r}: topic {topic!r} queue is full "
                                      f"({self.max_queue} messages)") from exc  # fmt: skip

    async def _deliver(self, sub: Subscription) -> None:
        await deliver(self, sub.topic, sub.handler, sub.queue)

    async def drain(self) -> None:
        """Wait until every queued message has been handled (for tests and shutdown)."""
        for sub in list(self.subscriptions):
            await sub.queue.join()

    async def start(self) -> None:
        self.running = True
        loop = asyncio.get_running_loop()
        for sub in self.subscriptions:
            if sub.task is None:
                sub.task = loop.create_task(self._deliver(sub))

    async def stop(self) -> None:
        self.running = False
        for sub in self.subscriptions:
            await stop_delivery(sub)

    def handle(self, action: str, data: dict[str, Any]) -> Awaitable[None]:
        """For step.delegate: `publish` {topic, message}."""
        if action != "publish":
            raise ValueError(f"{self.type} {self.name!r} has no action {action!r}")
        return self.publish(str(data["topic"]), data.get("message", {}))


_BROKER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "maxQueueSize": {"type": "integer", "minimum": 1, "default": 10000,
                         "description": "Queue size per subscriber."},
        "deliveryTimeout": {"type": ["string", "number"], "default": "30s",
                            "description": "Longest wait for queue space."},
    },
}


@register(
    "messaging.broker",
    category="messaging",
    provides=("broker", "service"),
    doc="""
An in-memory publish/subscribe broker. `step.publish` (`broker: <this module>`) sends to a
topic; `event` triggers subscribe pipelines to topics. Messages are bytes (mappings become
JSON); each subscriber has its own queue of at most `maxQueueSize` messages, handled in
order; a publish that finds a queue full for `deliveryTimeout` fails. Being in memory,
queued messages do not survive a restart (the executions they started do).
""",
    schema=_BROKER_SCHEMA,
    example="""
- name: events
  type: messaging.broker
  config: {maxQueueSize: 1000}
""",
)
def _broker(name: str, config: dict[str, Any], ctx: BuildContext) -> MemoryBroker:
    return MemoryBroker(name, config)


class EventBusBroker(MemoryBroker):
    """messaging.broker.eventbus: the in-memory broker under the Go EventBus bridge's name."""

    type = "messaging.broker.eventbus"


@register(
    "messaging.broker.eventbus",
    category="messaging",
    provides=("broker", "service"),
    doc="""
The Go project's EventBus bridge (`module/eventbus_bridge.go`), which adapts the in-process
EventBus of its `eventbus.modular` module to the broker interface. Treadle has one
in-process bus, so this is `messaging.broker` under another name: `step.publish` and
`event` triggers use it the same way, in the same process only.

Mapping: the Go bridge takes no config (its bus is configured by `eventbus.modular`, which
Treadle does not have) and does nothing until that bus is found; here the bus is built in
and accepts `messaging.broker`'s keys. The Go bridge round-trips payloads through JSON
(bytes that are not JSON arrive as a base64 string); Treadle delivers the published bytes
unchanged, which is the same for JSON messages.
""",
    schema=_BROKER_SCHEMA,
    example="""
- name: eventBroker
  type: messaging.broker.eventbus
""",
)
def _eventbus(name: str, config: dict[str, Any], ctx: BuildContext) -> EventBusBroker:
    return EventBusBroker(name, config)


# -- webhook.sender -------------------------------------------------------------------------


class WebhookDeliveryError(TreadleError):
    """Every attempt to deliver a webhook failed."""


class WebhookSender(Module):
    """POSTs JSON to URLs with retries and exponential back-off; failures go to a dead-letter
    list (`dead_letters`)."""

    type = "webhook.sender"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        from treadle.steps._durations import parse_duration

        retries = config.get("maxRetries", 3)
        self.max_retries = int(retries) if isinstance(retries, int | float) else 3
        self.initial_backoff = parse_duration(config.get("initialBackoff", "1s"),
                                              "initialBackoff")  # fmt: skip
        self.max_backoff = parse_duration(config.get("maxBackoff", "60s"), "maxBackoff")
        self.multiplier = float(config.get("backoffMultiplier", 2.0))
        self.timeout = parse_duration(config.get("timeout", "30s"), "timeout")
        self.dead_letters: list[dict[str, Any]] = []
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.transport: Any = None
        """An httpx transport to use instead of the network (tests)."""

    async def send(self, url: str, payload: Any,
                   headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        """POST `payload` as JSON; `{status_code, attempts, body}`. Retries transport errors
        and 5xx/408/429 answers; raises WebhookDeliveryError when all attempts fail."""
        httpx = require("httpx", "http")
        delay = self.initial_backoff
        last = ""
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
            for attempt in range(1, self.max_retries + 2):
                try:
                    response = await client.post(url, json=payload, headers=headers or {})
                    if response.status_code < 400:
                        return {"status_code": response.status_code, "attempts": attempt,
                                "body": response.text}  # fmt: skip
                    last = f"HTTP {response.status_code}"
                    if response.status_code < 500 and response.status_code not in (408, 429):
                        break
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if attempt <= self.max_retries:
                    await self.sleep(delay)
                    delay = min(self.max_backoff, delay * self.multiplier)
        self.dead_letters.append({"url": url, "payload": payload, "error": last})
        raise WebhookDeliveryError(f"webhook to {url} failed: {last}")

    async def handle(self, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """For step.delegate: `send` {url, payload, headers}."""
        if action not in ("send", ""):
            raise ValueError(f"webhook.sender {self.name!r} has no action {action!r} (send)")
        return await self.send(str(data["url"]), data.get("payload", {}),
                               data.get("headers") if isinstance(data.get("headers"), dict)
                               else None)  # fmt: skip


@register(
    "webhook.sender",
    category="integration",
    provides=("service",),
    doc="""
Outbound webhooks: `send(url, payload, headers)` POSTs JSON with httpx, retrying transport
errors and 5xx/408/429 answers up to `maxRetries` times with exponential back-off; a
delivery that fails for good is kept in the module's dead-letter list and raises. From a
pipeline: `step.delegate` with `action: send` and `{url, payload, headers}` in the data.
""",
    schema={
        "type": "object",
        "properties": {
            "maxRetries": {"type": "integer", "minimum": 0, "default": 3,
                           "description": "Retries after the first attempt."},
            "initialBackoff": {"type": ["string", "number"], "default": "1s",
                               "description": "First back-off."},
            "maxBackoff": {"type": ["string", "number"], "default": "60s",
                           "description": "Longest back-off."},
            "backoffMultiplier": {"type": "number", "minimum": 1, "default": 2,
                                  "description": "Back-off growth."},
            "timeout": {"type": ["string", "number"], "default": "30s",
                        "description": "Per-attempt timeout."},
        },
    },
    example="""
- name: hooks
  type: webhook.sender
  config: {maxRetries: 5}
""",
)
def _webhook(name: str, config: dict[str, Any], ctx: BuildContext) -> WebhookSender:
    return WebhookSender(name, config)


__all__ = ["BROKER_TYPES", "BrokerError", "BrokerFullError", "EventBusBroker", "MemoryBroker",
           "Subscription", "WebhookDeliveryError", "WebhookSender", "encode_message"]  # fmt: skip
