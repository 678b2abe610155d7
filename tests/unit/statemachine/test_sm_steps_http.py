"""The pipeline steps, pipeline hooks and the HTTP binding."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from smkit import SIMPLE

import treadle
from treadle.config import load_config_text
from treadle.errors import ConfigError, ExecutionFailedError
from treadle.pipelines import Application, load_application
from treadle.statemachine import StateMachineEngine, http_routes, register_steps
from treadle.statemachine.app import build_engines, pipeline_runner
from treadle.steps import StepRegistry, default_registry
from treadle.testing import test_engine

APP = """
modules:
  - name: doors
    type: statemachine.engine
    config:
      conflict_retries: 2

workflows:
  statemachine:
    engine: doors
    definitions:
      - name: door
        initialState: closed
        states:
          closed: {}
          open: {}
          locked: {}
        transitions:
          open: {fromState: closed, toState: open}
          close: {fromState: open, toState: closed}
          lock: {fromState: closed, toState: locked}
    hooks:
      - workflowType: door
        transitions: [lock]
        pipeline: check-key

pipelines:
  install:
    steps:
      - name: create
        type: step.statemachine_create
        config:
          statemachine: doors
          workflow_type: door
          entity_id: "{{ .door }}"
          data: {color: "{{ .color }}"}
  operate:
    steps:
      - name: move
        type: step.statemachine_transition
        config:
          statemachine: doors
          entity_id: "{{ .door }}"
          event: "{{ .action }}"
          data: {by: "{{ .user }}"}
      - name: status
        type: step.statemachine_get
        config:
          statemachine: doors
          entity_id: "{{ .door }}"
  strict-operate:
    steps:
      - name: move
        type: step.statemachine_transition
        config:
          engine: doors
          instanceId: "{{ .door }}"
          transition: "{{ .action }}"
          fail_on_error: true
  check-key:
    steps:
      - name: verify
        type: step.validate
        config:
          strategy: required_fields
          required_fields: [key]
"""


def _types() -> StepRegistry:
    types = StepRegistry(parent=default_registry)
    register_steps(types)
    register_steps(types)  # idempotent
    return types


async def _app(tmp_path: Path) -> tuple[Application, treadle.Engine, StateMachineEngine]:
    config = load_config_text(textwrap.dedent(APP), filename=str(tmp_path / "app.yaml"))
    modules: dict[str, Any] = {}
    engines = build_engines(config, modules=modules)
    modules.update(engines)
    registry = treadle.Registry()
    app = load_application(config, registry=registry, modules=modules, step_types=_types())
    engine = test_engine(registry=registry)
    engines["doors"].pipeline_runner = pipeline_runner(app, engine)
    return app, engine, engines["doors"]


async def test_steps_create_transition_and_get(tmp_path: Path) -> None:
    app, engine, sm = await _app(tmp_path)
    assert sm.conflict_retries == 2
    _, out = await app.run_pipeline(engine, "install", {"door": "front", "color": "red"})
    assert (out["entity_id"], out["current_state"], out["created"]) == ("front", "closed", True)
    _, out = await app.run_pipeline(engine, "operate",
                                    {"door": "front", "action": "open", "user": "ann"})
    assert out["transition_ok"] is True and out["new_state"] == "open"
    assert out["current_state"] == "open" and out["previous_state"] == "closed"
    assert out["instance"]["data"] == {"color": "red", "by": "ann"}
    ex = await engine.get(next(iter(await _ids(engine, "pipeline:operate"))))
    assert [(s.name, s.step_type) for s in ex.steps] == [
        ("move", "step.statemachine_transition"), ("status", "step.statemachine_get")]


async def _ids(engine: treadle.Engine, workflow: str) -> list[str]:
    page = await engine.list(workflow=workflow)
    return [row.id for row in page.items]


async def test_a_failed_transition_is_an_output_unless_fail_on_error(tmp_path: Path) -> None:
    app, engine, sm = await _app(tmp_path)
    await sm.create_instance("door", "back")
    _, out = await app.run_pipeline(engine, "operate",
                                    {"door": "back", "action": "close", "user": "bob"})
    assert out["transition_ok"] is False
    assert "cannot trigger transition 'close' from state 'closed'" in out["error"]
    assert out["current_state"] == "closed"
    with pytest.raises(ExecutionFailedError, match="cannot trigger transition 'close'"):
        await app.run_pipeline(engine, "strict-operate", {"door": "back", "action": "close"})
    with pytest.raises(ExecutionFailedError, match="'nope' not found"):
        await app.run_pipeline(engine, "operate", {"door": "nope", "action": "open"})


async def test_pipeline_hook_runs_before_commit_and_can_abort(tmp_path: Path) -> None:
    app, engine, sm = await _app(tmp_path)
    await sm.create_instance("door", "d")
    _, out = await app.run_pipeline(engine, "operate", {"door": "d", "action": "lock"})
    assert out["transition_ok"] is False and "check-key" in out["error"]
    assert (await sm.get("d")).current_state == "closed"
    result = await sm.transition("d", "lock", {"key": "k-1"})
    assert result.instance.current_state == "locked"
    hooks = await _ids(engine, "pipeline:check-key")
    assert len(hooks) == 2  # both runs are journaled executions
    last = await engine.get(hooks[0])
    assert last.input["instanceId"] == "d" and last.input["transition"] == "lock"


async def test_step_config_is_checked_at_load(tmp_path: Path) -> None:
    bad = """
    pipelines:
      p:
        steps:
          - name: t
            type: step.statemachine_transition
            config: {statemachine: doors, event: open}
    """
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(bad))
    with pytest.raises(ConfigError, match="'entity_id' is required"):
        load_application(path, registry=treadle.Registry(), step_types=_types())


async def test_unknown_engine_module_is_a_clear_error(tmp_path: Path) -> None:
    config = load_config_text(textwrap.dedent(APP), filename="app.yaml")
    app = load_application(config, registry=(registry := treadle.Registry()), modules={},
                           step_types=_types())
    with pytest.raises(ExecutionFailedError, match="state machine engine 'doors' is not "
                                                  "defined"):
        await app.run_pipeline(test_engine(registry=registry), "operate",
                               {"door": "d", "action": "open"})


# -- HTTP -------------------------------------------------------------------------------------


def _router(sm: StateMachineEngine) -> Any:
    routes = http_routes(sm, prefix="/sm")

    async def call(method: str, path: str, body: Any = None,
                   query: dict[str, str] | None = None) -> tuple[int, Any]:
        for route in routes:
            params = _match(route.pattern, path)
            if route.method == method and params is not None:
                status, payload = await route.handler({
                    "method": method, "path": path, "path_params": params,
                    "query": query or {}, "headers": {},
                    "body": json.dumps(body) if isinstance(body, dict) else body})
                json.dumps(payload)  # always JSON
                return status, payload
        raise AssertionError(f"no route for {method} {path}")

    return call


def _match(pattern: str, path: str) -> dict[str, str] | None:
    want, got = pattern.strip("/").split("/"), path.strip("/").split("/")
    if len(want) != len(got):
        return None
    params: dict[str, str] = {}
    for w, g in zip(want, got, strict=True):
        if w.startswith("{"):
            params[w[1:-1]] = g
        elif w != g:
            return None
    return params


async def test_http_binding() -> None:
    sm = StateMachineEngine("doors")
    sm.define(SIMPLE)
    call = _router(sm)
    assert [(r.method, r.pattern) for r in http_routes(sm)][:2] == [
        ("GET", "/api/v1/statemachines/doors/definitions"),
        ("GET", "/api/v1/statemachines/doors/instances")]

    status, body = await call("POST", "/sm/instances",
                              {"workflowType": "door", "id": "d1", "data": {"a": 1}})
    assert status == 201 and body["currentState"] == "closed" and body["data"] == {"a": 1}
    assert (await call("POST", "/sm/instances", {"workflowType": "door", "id": "d1"}))[0] == 409
    assert (await call("POST", "/sm/instances", {"workflowType": "nope"}))[0] == 404
    assert (await call("POST", "/sm/instances", {}))[0] == 400
    assert (await call("POST", "/sm/instances", "{not json"))[0] == 400

    status, body = await call("GET", "/sm/instances/d1")
    assert status == 200 and body["availableTransitions"] == ["open", "lock", "smash"]
    assert (await call("GET", "/sm/instances/zz"))[0] == 404

    status, body = await call("POST", "/sm/instances/d1/transition",
                              {"transition": "open", "data": {"by": "ann"}})
    assert status == 200 and body["currentState"] == "open" and body["fromState"] == "closed"
    assert body["instance"]["data"] == {"a": 1, "by": "ann"}
    status, body = await call("PUT", "/sm/instances/d1/transition", {"event": "lock"})
    assert status == 422 and "cannot trigger transition 'lock'" in body["error"]
    assert (await call("POST", "/sm/instances/d1/transition", {}))[0] == 400
    assert (await call("POST", "/sm/instances/zz/transition", {"event": "open"}))[0] == 404

    status, body = await call("GET", "/sm/instances/d1/history")
    assert [h["transition"] for h in body["history"]] == ["", "open"]
    status, body = await call("GET", "/sm/instances", query={"state": "open"})
    assert body["count"] == 1 and body["instances"][0]["id"] == "d1"
    assert (await call("GET", "/sm/instances", query={"limit": "x"}))[0] == 400
    status, body = await call("GET", "/sm/definitions")
    assert body["definitions"][0]["name"] == "door"


async def test_http_hook_rejection_is_422() -> None:
    sm = StateMachineEngine("doors")
    sm.define(SIMPLE)

    def deny(event: Any) -> None:
        raise PermissionError("not allowed")

    sm.add_hook(deny, transitions=("open",))
    await sm.create_instance("door", "d")
    status, body = await _router(sm)("POST", "/sm/instances/d/transition", {"event": "open"})
    assert status == 422 and body["type"] == "HookError" and "not allowed" in body["error"]
