"""Triggers whose `workflow` names a state machine definition (treadle.statemachine.triggers)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import treadle
from pipekit import running_app
from treadle.apps import AppRuntime, build_app
from treadle.errors import ConfigError, ExecutionFailedError
from treadle.modules.web import HTTPRequest
from treadle.statemachine.triggers import instance_id

APP = """
modules:
  - {name: http, type: http.server, config: {address: ":8080"}}
  - {name: router, type: http.router}
  - {name: broker, type: messaging.broker}
  - {name: sm, type: statemachine.engine}
workflows:
  statemachine:
    engine: sm
    definitions:
      - name: ticket
        initialState: open
        states: {open: {}, working: {}, closed: {isFinal: true}}
        transitions:
          start: {fromState: open, toState: working}
          close: {fromState: working, toState: closed}
triggers:
  http:
    routes:
      - {path: /tickets, method: POST, workflow: ticket, action: start}
      - {path: "/tickets/{id}/close", method: POST, workflow: ticket, action: "sm:close"}
      - {path: /tickets/new, method: PUT, workflow: ticket}
  event:
    subscriptions:
      - {topic: tickets, workflow: ticket, action: start}
"""


def test_the_instance_id_comes_from_the_data_then_its_body() -> None:
    assert instance_id({"instanceId": "a", "id": "b"}) == "a"
    assert instance_id({"id": 7}) == "7"
    assert instance_id({"path": "/x", "body": {"id": "c"}}) == "c"
    assert instance_id({"id": True, "body": "text"}) is None


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[AppRuntime]:
    async with running_app(tmp_path, APP) as runtime:
        yield runtime


def post(path: str, body: object = None, method: str = "POST") -> HTTPRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    return HTTPRequest(method, path, path, body=raw)


async def test_http_triggers_create_and_transition_instances(app: AppRuntime) -> None:
    sm = app.modules["sm"].engine
    started = await app.handle(post("/tickets", {"id": "t1"}))
    assert started.status == 202
    assert (await sm.get("t1")).current_state == "working"
    # `engine:transition` (Go's action form), the id from the path parameter
    closed = await app.handle(post("/tickets/t1/close"))
    assert closed.status == 202
    instance = await sm.get("t1")
    assert (instance.current_state, instance.completed) == ("closed", True)
    refused = await app.handle(post("/tickets", {"id": "t1"}))
    assert refused.status == 500 and b"cannot trigger transition" in refused.body
    # no action: only create (a generated id when the data names none)
    await app.handle(post("/tickets/new", {"title": "x"}, method="PUT"))
    [fresh] = [i for i in await sm.list() if i.id != "t1"]
    assert fresh.current_state == "open" and fresh.data["body"] == {"title": "x"}


async def test_event_triggers_run_a_journaled_execution(app: AppRuntime) -> None:
    await app.modules["broker"].publish("tickets", {"id": "t2"})
    await app.modules["broker"].drain()
    subscription = next(s for _, s in app.subscriptions)
    handle = subscription.handles[0]
    assert await handle.result(5) == {"instanceId": "t2", "currentState": "working",
                                      "transition": "start", "success": True}
    execution = await app.engine.get(handle.id)
    assert execution.workflow == "statemachine:ticket"
    assert [s.name for s in execution.steps] == ["statemachine:ticket"]
    await app.modules["broker"].publish("tickets", {"id": "t2"})
    await app.modules["broker"].drain()
    with pytest.raises(ExecutionFailedError, match="cannot trigger transition"):
        await subscription.handles[1].result(5)


def test_a_trigger_naming_no_definition_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(APP.replace("workflow: ticket, action: start}\n", "workflow: tickt}\n", 1))
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    with pytest.raises(ConfigError, match="tickt"):
        build_app(path, engine)
