"""The HTTP trigger: trigger data, meta, and the Go project's response rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from treadle.apps import AppRuntime
from treadle.errors import ConfigError
from treadle.modules.web import HTTPRequest, HTTPResponse
from treadle.steps import PipelineContext, StepRegistry, default_registry

Build = Callable[..., AppRuntime]

ECHO = """
modules:
  - {name: web, type: http.server, config: {address: ":8080"}}
  - {name: api, type: http.router, dependsOn: [web]}
pipelines:
  echo:
    trigger: {type: http, config: {path: "/things/{id}/parts/{rest...}", method: POST}}
    steps:
      - name: parse
        type: step.request_parse
        config: {path_params: [id, rest], query_params: [q], headers: [X-Token], parse_body: true}
      - name: respond
        type: step.json_response
        config:
          status: 201
          headers: {X-Kind: echo}
          body:
            trigger: "{{ json .trigger }}"
            params: "{{ json .steps.parse }}"
            pattern: "{{ .meta._http_request.route_pattern }}"
"""


def request(method: str, path: str, body: Any = None, query: str = "",
            headers: dict[str, str] | None = None) -> HTTPRequest:
    raw = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) \
        else (body or b"")
    return HTTPRequest(method, path.split("?")[0], path, query_string=query,
                       headers={k.lower(): v for k, v in (headers or {}).items()}, body=raw)


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


async def test_trigger_data_meta_and_json_response(build: Build) -> None:
    runtime = build(ECHO)
    await runtime.start()
    response = await runtime.handle(request(
        "POST", "/things/42/parts/a/b", {"name": "x"}, query="q=1&q=2&z=3",
        headers={"X-Token": "t", "Content-Type": "application/json"}))
    assert response.status == 201
    assert response.get_header("X-Kind") == "echo"
    assert response.get_header("Content-Type") == "application/json"
    out = body(response)
    trigger = json.loads(out["trigger"])
    assert trigger == {"method": "POST", "path": "/things/42/parts/a/b", "id": "42",
                       "rest": "a/b", "q": "1", "z": "3", "body": {"name": "x"}}
    assert json.loads(out["params"]) == {"path_params": {"id": "42", "rest": "a/b"},
                                         "query": {"q": "1"}, "headers": {"X-Token": "t"},
                                         "body": {"name": "x"}}
    assert out["pattern"] == "/things/{id}/parts/{rest...}"
    execution = await runtime.engine.get(response.get_header("X-Treadle-Execution-Id") or "")
    meta = execution.input[1]["_http_request"]
    assert meta["headers"]["X-Token"] == "t" and meta["query"] == {"q": ["1", "2"], "z": ["3"]}
    assert meta["body"] == '{"name": "x"}'


RULES = """
modules:
  - {name: api, type: http.router}
triggers:
  http:
    routes:
      - {path: /fail-422, method: POST, workflow: "pipeline:check"}
      - {path: /crash, method: GET, workflow: "pipeline:crash"}
      - {path: /nothing, method: GET, workflow: "pipeline:nothing", params: {extra: 1}}
      - {path: /output, method: GET, workflow: "pipeline:output"}
      - {path: /slow, method: GET, workflow: "pipeline:slow", timeout: 50ms}
pipelines:
  check:
    steps:
      - name: validate
        type: step.validate
        error_status: 422
        config: {strategy: required_fields, required_fields: [body]}
  crash:
    steps:
      - {name: boom, type: step.jq, config: {expression: "error(\\"broken\\")"}}
  nothing:
    steps:
      - {name: log, type: step.log, config: {message: "{{ .extra }}"}}
  output:
    steps:
      - {name: set, type: step.set, config: {values: {_pipeline_output: {answer: 42}}}}
  slow:
    steps:
      - {name: wait, type: step.wait_signal, config: {signal: go}}
"""


async def test_error_status_becomes_the_response_status(build: Build) -> None:
    runtime = build(RULES)
    await runtime.start()
    response = await runtime.handle(request("POST", "/fail-422"))
    assert response.status == 422
    assert "missing required fields: body" in body(response)["error"]


async def test_other_failures_are_500_as_go_writes_them(build: Build) -> None:
    runtime = build(RULES)
    await runtime.start()
    response = await runtime.handle(request("GET", "/crash"))
    assert response.status == 500
    assert response.body.startswith(b"Error triggering workflow: ")
    assert response.get_header("Content-Type") == "text/plain; charset=utf-8"


async def test_no_response_gives_202_and_pipeline_output_200(build: Build) -> None:
    runtime = build(RULES)
    await runtime.start()
    nothing = await runtime.handle(request("GET", "/nothing"))
    assert (nothing.status, body(nothing)) == (202, {"status": "workflow triggered"})
    output = await runtime.handle(request("GET", "/output"))
    assert (output.status, body(output)) == (200, {"answer": 42})


async def test_a_pipeline_past_the_timeout_is_answered_202_and_keeps_running(
        build: Build) -> None:
    runtime = build(RULES)
    await runtime.start()
    response = await runtime.handle(request("GET", "/slow"))
    assert response.status == 202
    execution_id = body(response)["execution_id"]
    assert response.get_header("X-Treadle-Execution-Id") == execution_id
    await runtime.engine.signal(execution_id, "go", {"ok": True})
    handle = await runtime.engine.get(execution_id)
    assert str(handle.status) in ("running", "suspended", "completed")


GATED = """
modules:
  - {name: api, type: http.router}
triggers:
  http:
    routes:
      - {path: /gated, method: GET, workflow: "pipeline:gated", timeout: 10ms}
      - {path: /quick, method: GET, workflow: "pipeline:quick"}
pipelines:
  gated:
    steps:
      - {name: hold, type: step.gated}
  quick:
    steps:
      - {name: set, type: step.set, config: {values: {_pipeline_output: {n: 1}}}}
"""


def gated_steps(entered: asyncio.Event, gate: asyncio.Event) -> StepRegistry:
    """`step.gated`: a pure step that says it started, then waits for `gate`."""
    steps = StepRegistry(parent=default_registry)

    @steps.register("step.gated", schema={"type": "object"}, doc="Waits for the test.",
                    pure=True)
    async def gated(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
        entered.set()
        await gate.wait()
        return {"released": True}

    return steps


async def test_a_route_writes_its_execution_once_and_before_a_202(build: Build) -> None:
    # Route pipelines start lazily: nothing is written until the first durable point; a
    # pipeline of pure steps still running at the route's timeout is written before its id
    # goes out in the 202.
    gate = asyncio.Event()
    runtime = build(GATED, step_types=gated_steps(asyncio.Event(), gate))
    await runtime.start()
    engine = runtime.engine
    response = await runtime.handle(request("GET", "/gated"))
    assert response.status == 202
    execution_id = body(response)["execution_id"]
    row = await engine.store.get(execution_id)
    assert row is not None and row.status == "running"
    gate.set()
    assert (await engine.outcome(execution_id))[0] == "completed"
    assert [e.type for e in await engine.store.events(execution_id)][-1] == "execution.completed"

    quick = await runtime.handle(request("GET", "/quick"))
    assert (quick.status, body(quick)) == (200, {"n": 1})
    done = await engine.store.get(quick.get_header("X-Treadle-Execution-Id") or "")
    assert done is not None and done.status == "completed"


async def test_a_pipeline_stopped_before_its_first_write_is_answered_503(
        build: Build) -> None:
    entered = asyncio.Event()
    runtime = build(GATED.replace("timeout: 10ms", "timeout: 60s"),
                    step_types=gated_steps(entered, asyncio.Event()))
    await runtime.start()
    answer = asyncio.create_task(runtime.handle(request("GET", "/gated")))
    await asyncio.wait_for(entered.wait(), 10)
    await runtime.engine.detach()  # what a shutdown does to the executions running here
    response = await asyncio.wait_for(answer, 10)
    assert response.status == 503 and "retry" in body(response)["error"]
    assert (await runtime.engine.list()).items == []


async def test_unknown_paths_and_methods(build: Build) -> None:
    runtime = build(RULES)
    await runtime.start()
    missing = await runtime.handle(request("GET", "/nope"))
    assert (missing.status, missing.body) == (404, b"404 page not found\n")
    wrong = await runtime.handle(request("DELETE", "/crash"))
    assert wrong.status == 405 and wrong.get_header("Allow") == "GET, HEAD"


async def test_route_middlewares_run_in_order_and_cors_is_global(build: Build) -> None:
    runtime = build("""
    modules:
      - {name: cors, type: http.middleware.cors, config: {allowedOrigins: ["https://ui.test"]}}
      - {name: rid, type: http.middleware.requestid}
      - {name: login, type: http.middleware.auth}
      - {name: auth, type: auth.jwt, config: {secret: k}}
    pipelines:
      me:
        trigger:
          type: http
          config: {path: /me, method: GET, middlewares: [rid, login]}
        steps:
          - name: respond
            type: step.json_response
            config: {body: {sub: "{{ .meta.auth_claims.sub }}", rid: "{{ .meta.request_id }}"}}
    """)
    await runtime.start()
    denied = await runtime.handle(request("GET", "/me", headers={"X-Request-ID": "r1"}))
    assert denied.status == 401 and denied.get_header("X-Request-ID") == "r1"
    token = runtime.modules["auth"].issue({"sub": "ann"})
    ok = await runtime.handle(request("GET", "/me", headers={
        "Authorization": f"Bearer {token}", "X-Request-ID": "r2", "Origin": "https://ui.test"}))
    assert body(ok) == {"sub": "ann", "rid": "r2"}
    assert ok.get_header("Access-Control-Allow-Origin") == "https://ui.test"
    preflight = await runtime.handle(request("OPTIONS", "/me", headers={
        "Origin": "https://ui.test"}))
    assert preflight.status == 200


async def test_module_routes_and_static_endpoints(build: Build) -> None:
    runtime = build("""
    modules:
      - {name: health, type: health.checker}
      - {name: metrics, type: metrics.collector, config: {namespace: t}}
      - {name: db, type: storage.sqlite, config: {dbPath: ":memory:"}}
    workflows:
      http:
        endpoints:
          - {path: /health, method: GET, response: {statusCode: 200, body: '{"status": "ok"}'}}
    pipelines:
      hi:
        trigger: {type: http, config: {path: /hi, method: GET}}
        steps:
          - {name: respond, type: step.json_response, config: {body: {hi: 1}}}
    """)
    await runtime.start()
    assert body(await runtime.handle(request("GET", "/health"))) == {"status": "ok"}
    healthz = body(await runtime.handle(request("GET", "/healthz")))
    assert healthz == {"status": "healthy", "checks": {"db": {"status": "healthy",
                                                              "message": "ok"}}}
    await runtime.handle(request("GET", "/hi"))
    text = (await runtime.handle(request("GET", "/metrics"))).body.decode()
    assert 't_http_requests_total{method="GET",route="/hi",status="200"} 1' in text
    assert 't_pipeline_executions_total{pipeline="hi",status="completed"} 1' in text


def test_wiring_problems_are_config_errors(build: Build) -> None:
    with pytest.raises(ConfigError) as info:
        build("""
        modules:
          - {name: cache, type: cache.modular}
        triggers:
          http:
            routes:
              - {path: /a, method: GET, workflow: "pipeline:ghost"}
              - {path: /b, method: GET, workflow: "pipeline:p", middlewares: [cache]}
              - {path: /c, method: GET, workflow: "pipeline:p", router: nope}
        pipelines:
          p: {steps: [{name: s, type: step.log, config: {message: x}}]}
        """)
    keys = {e.key for e in info.value.errors}
    assert keys == {"triggers.http.routes[0].workflow", "triggers.http.routes[1].middlewares",
                    "triggers.http.routes[2].router"}
