"""The statemachine.engine / state.tracker modules and `attach` in a built application."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import treadle
from treadle.config import load_config_text
from treadle.statemachine import StateMachineEngine, register_steps
from treadle.statemachine.app import attach
from treadle.statemachine.module import (
    StateMachineModule,
    StateTrackerModule,
    register_module_types,
)
from treadle.steps import StepRegistry, default_registry

APP = """
modules:
  - name: orders
    type: statemachine.engine
    config: {http_prefix: /sm/orders, conflict_retries: 1}
  - name: tracker
    type: state.tracker
workflows:
  statemachine:
    engine: orders
    definitions:
      - name: order
        initialState: new
        states: {new: {}, paid: {}}
        transitions: {pay: {fromState: new, toState: paid}}
    hooks:
      - transitions: [pay]
        pipeline: audit
pipelines:
  audit:
    steps:
      - {name: note, type: step.log, config: {message: "paying {{ .instanceId }}"}}
"""


def _module_types() -> Any:
    modules = pytest.importorskip("treadle.modules")
    types = modules.ModuleRegistry(parent=modules.default_registry)
    register_module_types(types)
    register_module_types(types)  # idempotent
    return types


def _steps() -> StepRegistry:
    types = StepRegistry(parent=default_registry)
    register_steps(types)
    return types


async def test_modules_attach_and_share_the_execution_store(tmp_path: Path) -> None:
    from treadle.modules import build_modules
    from treadle.pipelines import load_application

    config = load_config_text(textwrap.dedent(APP), filename=str(tmp_path / "app.yaml"))
    modules = build_modules(config, _module_types())
    assert isinstance(modules["orders"], StateMachineModule)
    assert isinstance(modules["tracker"], StateTrackerModule)
    registry = treadle.Registry()
    engine = treadle.Engine(f"sqlite:///{tmp_path}/runs.db", registry=registry)
    app = load_application(config, registry=registry, modules=modules, step_types=_steps())
    engines = attach(config, modules, app, engine)
    sm = engines["orders"]
    assert isinstance(sm, StateMachineEngine) and sm.conflict_retries == 1
    assert getattr(sm.store, "url", "") == f"sqlite:///{tmp_path}/runs.db"
    async with engine:
        await modules.start()
        try:
            await sm.create_instance("order", "o-1")
            await sm.transition("o-1", "pay")
            tracked = modules["tracker"].get_state("o-1")
            assert tracked is not None and tracked["state"] == "paid"
            audits = (await engine.list(workflow="pipeline:audit")).items
            assert len(audits) == 1
        finally:
            await modules.stop()
    attach(config, modules, app, engine)  # again: the YAML hook is not added twice
    assert len(sm.hooks) == 1


async def test_served_binding_through_the_runtime(tmp_path: Path) -> None:
    apps = pytest.importorskip("treadle.apps")
    from treadle.modules.web import HTTPRequest

    config = load_config_text(textwrap.dedent(APP), filename=str(tmp_path / "app.yaml"))
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    runtime = apps.build_app(config, engine, module_types=_module_types(),
                             step_types=_steps())
    attach(config, runtime.modules, runtime.application, engine)
    async with engine:
        await runtime.start()
        try:
            def request(method: str, path: str, body: Any = None) -> HTTPRequest:
                raw = b"" if body is None else json.dumps(body).encode()
                return HTTPRequest(method=method, path=path, raw_path=path, body=raw,
                                   headers={"content-type": "application/json"})

            response = await runtime.handle(request("POST", "/sm/orders/instances",
                                                    {"workflowType": "order", "id": "a"}))
            assert response.status == 201
            response = await runtime.handle(request("POST", "/sm/orders/instances/a/transition",
                                                    {"transition": "pay"}))
            assert response.status == 200
            assert json.loads(response.body)["currentState"] == "paid"
            response = await runtime.handle(request("GET", "/sm/orders/instances/a/history"))
            assert [h["transition"] for h in json.loads(response.body)["history"]] == ["", "pay"]
        finally:
            await runtime.stop()
