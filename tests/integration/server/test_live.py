"""The live SSE stream, read by a real streaming client, and its resumption."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx

import treadle
from treadle.observability.live import Dropped, LiveEvent, LiveHub

from .conftest import Server, finished, sse_events, start, wait_for
from .workflows import REGISTRY


def until(events: Iterator[dict[str, Any]], stop: Any) -> list[dict[str, Any]]:
    """Events (comments left out) up to and including the first one `stop` accepts."""
    out = []
    for event in events:
        if "comment" in event:
            continue
        out.append(event)
        if stop(event):
            return out
    raise AssertionError(f"the stream ended before the expected event; got {out}")


def completed(execution_id: str) -> Any:
    return lambda e: (e.get("event") == "execution.completed"
                      and e["data"]["execution_id"] == execution_id)


def subscribed(events: Iterator[dict[str, Any]]) -> None:
    first = next(events)
    assert first == {"comment": "subscribed"}


def test_global_stream_delivers_the_seed_events(server: Server, client: httpx.Client) -> None:
    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live", params={"pipeline": "order"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        subscribed(events)
        start(client, "greet", "not me")  # another pipeline: filtered out
        ex_id = start(client, "order", {"id": 5})
        got = until(events, completed(ex_id))

    assert {e["data"]["execution_id"] for e in got} == {ex_id}
    types = [e["event"] for e in got]
    assert types[0] == "execution.started" and types[-1] == "execution.completed"
    assert types.count("step.started") == 3 and types.count("step.completed") == 3
    assert [e["id"] for e in got] == [f"{ex_id}:{n}" for n in range(1, len(got) + 1)]

    started = got[0]["data"]
    assert {"execution_id": ex_id, "pipeline": "order", "trigger": "api"}.items() <= (
        started.items())
    step_started = next(e["data"] for e in got if e["event"] == "step.started")
    assert step_started["step"] == "validate" and step_started["type"] == "step"
    step_done = next(e["data"] for e in got if e["event"] == "step.completed")
    assert step_done["step"] == "validate" and step_done["duration_ms"] >= 0
    done = got[-1]["data"]
    assert done["status"] == "completed" and done["duration_ms"] >= 0
    assert all(e["data"]["at"].endswith("Z") for e in got)


def test_tenant_filter(server: Server, client: httpx.Client) -> None:
    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live", params={"tenant": "acme"}) as response:
        events = sse_events(response)
        subscribed(events)
        start(client, "greet", "other tenant", tenant_id="globex")
        mine = start(client, "greet", "mine", tenant_id="acme")
        got = until(events, completed(mine))
    assert {e["data"]["execution_id"] for e in got} == {mine}
    assert got[0]["data"]["tenant"] == "acme"


def test_global_stream_resumes_after_last_event_id(server: Server, client: httpx.Client) -> None:
    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live", params={"pipeline": "order"}) as response:
        events = sse_events(response)
        subscribed(events)
        first = start(client, "order", {"id": 1})
        seen = until(events, completed(first))
    last_id = seen[-1]["id"]

    second = start(client, "order", {"id": 2})  # emitted while nobody listens
    finished(client, second)
    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live", params={"pipeline": "order"},
            headers={"Last-Event-ID": last_id}) as response:
        events = sse_events(response)
        subscribed(events)
        missed = until(events, completed(second))
    assert {e["data"]["execution_id"] for e in missed} == {second}
    assert missed[0]["event"] == "execution.started"
    assert [e["data"]["seq"] for e in missed] == list(range(1, len(missed) + 1))

    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live",
            headers={"Last-Event-ID": "no-such-execution:3"}) as response:
        events = sse_events(response)
        subscribed(events)
        reset = next(events)
    assert reset["event"] == "stream.reset"
    assert reset["data"] == {"reason": "last_event_id_unknown"}


def test_execution_stream_replays_then_follows_then_ends(
        server: Server, client: httpx.Client) -> None:
    ex_id = start(client, "approval", {"items": [1]})
    wait_for(lambda: client.get(f"/api/v1/executions/{ex_id}").json()["status"] == "suspended")
    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live", params={"execution_id": ex_id}) as response:
        events = sse_events(response)
        history = until(events, lambda e: e.get("event") == "execution.suspended")
        assert history[0]["event"] == "execution.started"
        client.post(f"/api/v1/executions/{ex_id}/signals", json={"name": "approve",
                                                                  "payload": "yes"})
        rest = [e for e in events if "comment" not in e]  # the stream ends by itself
    got = history + rest
    assert [e["data"]["seq"] for e in got] == list(range(1, len(got) + 1))
    assert "signal.received" in [e["event"] for e in rest]
    assert got[-1]["event"] == "execution.completed"

    middle = got[len(got) // 2]["id"]
    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live", params={"execution_id": ex_id},
            headers={"Last-Event-ID": middle}) as response:
        resumed = [e for e in sse_events(response) if "comment" not in e]
    assert [e["id"] for e in resumed] == [e["id"] for e in got[len(got) // 2 + 1:]]

    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live",
            params={"execution_id": ex_id, "after": len(got) - 1}) as response:
        last = [e for e in sse_events(response) if "comment" not in e]
    assert [e["event"] for e in last] == ["execution.completed"]


def test_execution_stream_follows_a_running_execution(
        server: Server, client: httpx.Client) -> None:
    ex_id = start(client, "fifty", 0)
    with server.client() as reader, reader.stream(
            "GET", "/api/v1/executions/live", params={"execution_id": ex_id}) as response:
        got = [e for e in sse_events(response) if "comment" not in e]
    assert [e["data"]["seq"] for e in got] == list(range(1, len(got) + 1))
    assert [e["event"] for e in got].count("step.completed") == 50
    assert got[-1]["data"]["status"] == "completed"


# -- the hub on its own -------------------------------------------------------------------------


def _event(n: int) -> treadle.Event:
    return treadle.Event("x", n, "step.started", {"pos": n, "step_name": "s"}, float(n))


async def test_a_full_subscription_drops_and_says_how_many() -> None:
    hub = LiveHub()
    sub = hub.subscribe(queue_size=3)
    for n in range(1, 11):
        hub.on_event(_event(n))
    got = [await sub.get(0.1) for _ in range(4)]
    assert [g.event.seq for g in got[:3] if isinstance(g, LiveEvent)] == [1, 2, 3]
    assert isinstance(got[3], Dropped) and got[3].count == 7
    assert got[3].after is not None and got[3].after.event.seq == 3
    hub.on_event(_event(11))  # there is room again: delivery goes on after the gap
    nxt = await sub.get(0.1)
    assert isinstance(nxt, LiveEvent) and nxt.event.seq == 11
    assert await sub.get(0.01) is None
    sub.close()
    assert hub.subscribers == 0


async def test_a_subscriber_that_never_reads_does_not_slow_the_engine() -> None:
    hub = LiveHub(queue_size=5)
    engine = treadle.Engine(registry=REGISTRY, observers=[hub])
    with hub.subscribe() as sub:
        handle = await engine.start("fifty", 0)
        assert await asyncio.wait_for(handle.result(), 10) == 50
        assert sub.dropped > 100
    await engine.close()


async def test_the_buffer_replays_after_an_event_and_forgets_old_ones() -> None:
    hub = LiveHub(buffer_size=5)
    sub = hub.subscribe()
    for n in range(1, 9):
        hub.on_event(_event(n))
    after = hub.since("x", 5, sub)
    assert after is not None and [i.event.seq for i in after] == [6, 7, 8]
    assert hub.since("x", 2, sub) is None  # fell out of the buffer
    assert [i.event.seq for i in hub.recent("x", 6)] == [7, 8]
    sub.close()


async def test_the_buffer_is_kept_only_while_someone_watches() -> None:
    hub = LiveHub(keep_for=3600)
    hub.on_event(_event(1))  # nobody watches yet: nothing is kept
    sub = hub.subscribe()
    assert hub.recent("x", 0) == []
    hub.on_event(_event(2))
    sub.close()
    hub.on_event(_event(3))  # the last one left: kept for `keep_for`, to reconnect
    again = hub.subscribe()
    assert [i.event.seq for i in hub.since("x", 2, again)] == [3]
    again.close()
    hub.keep_for = 0.0  # ...and past it, dropped with whatever was buffered
    hub.on_event(_event(4))
    assert hub.recent("x", 0) == []
