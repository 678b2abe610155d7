"""The event trigger: broker topic subscriptions that start pipelines.

As in the Go project (`module/event_trigger.go`), a message must be a JSON object; with
`event:` set, only messages whose `type` (or `eventType`) equals it start the pipeline. The
trigger data is the message's fields, `originalMessage` (the raw text) and the
subscription's static `params`. Treadle adds `filter:` — `{dotted.path: value}` pairs (a
list value means any of) that must all match.

The broker is the subscription's `broker:`, else a module named `messageBroker`,
`eventBroker` or `broker` (the Go lookup), else the first broker module (`messaging.broker`,
`messaging.broker.eventbus` or `messaging.nats`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from treadle.modules.messaging import BROKER_TYPES
from treadle.triggers.base import Dispatcher
from treadle.triggers.spec import SubscriptionSpec

logger = logging.getLogger("treadle.triggers")

_MISSING = object()


def _lookup(data: Any, path: str) -> Any:
    value = data
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def matches(spec: SubscriptionSpec, event: dict[str, Any]) -> bool:
    """Whether `event` passes the subscription's `event` type and `filter`."""
    if spec.event:
        kind = event.get("type") or event.get("eventType") or ""
        if kind != spec.event:
            return False
    for path, wanted in spec.filter.items():
        value = _lookup(event, str(path))
        if value is _MISSING:
            return False
        choices = wanted if isinstance(wanted, list) else [wanted]
        if not any(value == c or str(value) == str(c) for c in choices):
            return False
    return True


class EventSubscription:
    """The message handler of one subscription."""

    def __init__(self, spec: SubscriptionSpec, dispatcher: Dispatcher) -> None:
        self.spec = spec
        self.dispatcher = dispatcher
        self.started = 0
        self.skipped = 0
        self.handles: list[Any] = []
        """The latest executions started (at most 100), for tests and tools."""

    async def __call__(self, message: bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            logger.warning("topic %r: message is not a JSON object; ignored", self.spec.topic)
            self.skipped += 1
            return
        if not matches(self.spec, event):
            self.skipped += 1
            return
        data = dict(event)
        data["originalMessage"] = message.decode(errors="replace")
        data.update(self.spec.params)
        handle = await self.dispatcher.start(self.spec.target, data,
                                             meta={"_event": {"topic": self.spec.topic}})
        self.started += 1
        self.handles.append(handle)
        del self.handles[:-100]


def find_broker(modules: Any, name: str = "") -> Any:
    """The broker module a subscription naming broker `name` (may be empty) uses (see the
    module docs), or None."""
    if name:
        return modules.get(name)
    for name in ("messageBroker", "eventBroker", "broker"):
        found = modules.get(name)
        if found is not None and callable(getattr(found, "subscribe", None)):
            return found
    brokers = modules.of_type(*BROKER_TYPES)
    if brokers:
        return brokers[0]
    return next((m for m in modules.values() if callable(getattr(m, "subscribe", None))), None)


__all__ = ["EventSubscription", "find_broker", "matches"]
