"""messaging.nats on the machine's NATS server: each test uses two connections (a publishing
and a subscribing module) and subjects of its own, so every message crosses the server."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from stores.storekit import require_service
from treadle.modules.messaging import BrokerError
from treadle.modules.nats_broker import NatsBroker

pytestmark = pytest.mark.services

NATS_URL = os.environ.get("TREADLE_TEST_NATS", "nats://127.0.0.1:4222")

Make = Callable[..., NatsBroker]


@pytest.fixture
async def brokers() -> AsyncIterator[Make]:
    """`make(name, **config)`: a NatsBroker on the test server, stopped after the test."""
    require_service("NATS", "127.0.0.1", 4222)
    made: list[NatsBroker] = []

    def make(name: str = "b", **config: Any) -> NatsBroker:
        broker = NatsBroker(name, {"url": NATS_URL, **config})
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.stop()


def subject() -> str:
    return f"treadle.test.{uuid.uuid4().hex[:12]}"


async def test_messages_cross_the_server_in_publish_order_per_subject(brokers: Make) -> None:
    base = subject()
    pub, sub = brokers("pub"), brokers("sub")
    got: dict[str, list[bytes]] = {"a": [], "b": [], "all": []}
    sub.subscribe(f"{base}.a", got["a"].append)  # before start: activated by start

    async def slow_b(msg: bytes) -> None:
        got["b"].append(msg)

    sub.subscribe(f"{base}.b", slow_b)
    sub.subscribe(f"{base}.>", got["all"].append)
    await pub.start()
    await sub.start()
    sent: list[bytes] = []
    for i in range(40):
        topic = "a" if i % 3 else "b"
        message = {"i": i} if i % 2 else f"text {i}"
        await pub.publish(f"{base}.{topic}", message)
        sent.append((f'{{"i":{i}}}' if i % 2 else f"text {i}").encode())
    await pub.flush()
    await sub.drain()
    assert got["a"] == [m for i, m in enumerate(sent) if i % 3]
    assert got["b"] == [m for i, m in enumerate(sent) if not i % 3]
    assert got["all"] == sent  # one publisher: the server keeps its order
    assert (pub.published, sub.received, sub.failed) == (40, 80, 0)
    assert pub.subscriptions == [] and await sub.health_check() == (True, "connected")


async def test_a_subscription_made_while_running_receives_after_a_flush(brokers: Make) -> None:
    topic = subject()
    pub, sub = brokers("pub"), brokers("sub")
    await pub.start()
    await sub.start()
    got: list[bytes] = []
    sub.subscribe(topic, got.append)
    await sub.flush()  # the server has the subscription
    await pub.handle("publish", {"topic": topic, "message": {"via": "delegate"}})
    await pub.flush()
    await sub.drain()
    assert got == [b'{"via":"delegate"}']


async def test_unsubscribe_stops_delivery(brokers: Make) -> None:
    topic = subject()
    pub, sub = brokers("pub"), brokers("sub")
    kept: list[bytes] = []
    dropped: list[bytes] = []
    sub.subscribe(topic, kept.append)
    gone = sub.subscribe(topic, dropped.append)
    await pub.start()
    await sub.start()
    await pub.publish(topic, b"1")
    await pub.flush()
    await sub.drain()
    gone.unsubscribe()
    racing = sub.subscribe(topic, dropped.append)  # unsubscribed before the server has it
    racing.unsubscribe()
    await pub.publish(topic, b"2")
    await pub.flush()
    await sub.drain()
    assert kept == [b"1", b"2"] and dropped == [b"1"]
    assert [s.topic for s in sub.subscriptions] == [topic]


async def test_stop_closes_and_a_new_start_subscribes_again(brokers: Make) -> None:
    topic = subject()
    pub, sub = brokers("pub"), brokers("sub")
    got: list[bytes] = []
    sub.subscribe(topic, got.append)
    await pub.start()
    await sub.start()
    await sub.stop()
    assert not sub.connected and sub.subscriptions[0].nats is None
    await pub.publish(topic, b"while stopped")  # nobody listens: core NATS drops it
    await pub.flush()
    await sub.start()
    await pub.publish(topic, b"after restart")
    await pub.flush()
    await sub.drain()
    assert got == [b"after restart"]


async def test_credentials_in_the_url_are_never_logged(brokers: Make,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = NATS_URL.replace("nats://", "nats://ann:s3cret@", 1)
    broker = brokers("secret", url=url)
    await broker.start()  # the test server has no auth: it ignores the credentials
    await broker.stop()
    assert "connected to NATS at nats://ann:***@127.0.0.1:4222" in caplog.text
    assert "s3cret" not in caplog.text


async def test_a_start_on_a_closed_port_fails_naming_the_module_and_url(
        caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.DEBUG)
    broker = NatsBroker("events", {"url": f"nats://ann:s3cret@127.0.0.1:{port}",
                                   "connectTimeout": "1s"})  # fmt: skip
    with pytest.raises(BrokerError) as failed:
        await broker.start()
    message = str(failed.value)
    assert message.startswith(f"messaging.nats 'events': cannot connect to NATS at "
                              f"nats://ann:***@127.0.0.1:{port}: ")  # fmt: skip
    assert "refused" in message.lower()
    assert "s3cret" not in message and "s3cret" not in caplog.text
    assert not broker.connected
    await broker.stop()  # nothing to undo
