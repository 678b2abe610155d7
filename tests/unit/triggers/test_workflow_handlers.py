"""The Go project's `workflows:` handler sections: http routes to handler modules and inline
route pipelines, messaging subscriptions and producers, scheduler jobs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from treadle.apps import AppRuntime
from treadle.config import load_config
from treadle.config.validate import check_config
from treadle.errors import ConfigError
from treadle.modules.web import HTTPRequest

Build = Callable[..., AppRuntime]


def request(method: str, path: str, body: object = None,
            headers: dict[str, str] | None = None) -> HTTPRequest:  # fmt: skip
    raw = json.dumps(body).encode() if body is not None else b""
    return HTTPRequest(method, path, path, headers=headers or {}, body=raw)


HANDLERS = """
modules:
  - {name: web, type: http.server, config: {address: "127.0.0.1:0"}}
  - {name: api, type: http.router, dependsOn: [web]}
  - {name: admin, type: http.router, dependsOn: [web]}
  - {name: users, type: http.handler}
  - {name: texts, type: http.handler, config: {contentType: text/plain}}
  - {name: ids, type: http.middleware.requestid}
workflows:
  http:
    router: api
    routes:
      - {method: GET, path: /api/users, handler: users, middlewares: [ids]}
      - {method: GET, path: "/api/users/{id}", handler: users}
      - method: POST
        path: "/api/orders/{id}"
        handler: api
        pipeline:
          steps:
            - name: parse
              type: step.request_parse
              config: {path_params: [id], parse_body: true}
            - name: respond
              type: step.json_response
              config:
                status: 201
                body: {order: "{{ .path_params.id }}", qty: "{{ .body.qty }}"}
      - method: DELETE
        path: "/api/orders/{id}"
        steps:
          - {name: gone, type: step.json_response, config: {status: 204}}
  http-admin:
    router: admin
    routes:
      - {method: GET, path: /admin/texts, handler: texts}
"""


async def test_handler_routes_answer_as_the_go_handlers(build: Build) -> None:
    runtime = build(HANDLERS)
    await runtime.start()
    response = await runtime.handle(request("GET", "/api/users"))
    assert response.status == 200
    assert response.body == \
        b'{"handler":"users","message":"Default handler response","status":"success"}\n'
    assert response.get_header("content-type") == "application/json"
    assert response.get_header("x-request-id")  # the route's middleware ran
    assert (await runtime.handle(request("GET", "/api/users/7"))).status == 200
    assert (await runtime.handle(request("GET", "/api/users/7"))).get_header("x-request-id") is None
    texts = await runtime.handle(request("GET", "/admin/texts"))
    assert (texts.status, texts.get_header("content-type")) == (200, "text/plain")
    assert json.loads(texts.body)["handler"] == "texts"
    assert (await runtime.handle(request("POST", "/api/users"))).status == 405
    assert (await runtime.handle(request("GET", "/nowhere"))).status == 404
    assert runtime.modules["users"].handled == 3
    # each section's routes are on the router it names
    assert [str(r.pattern) for r in runtime.modules["admin"].router.routes] == \
        ["GET /admin/texts"]


async def test_inline_route_pipelines_are_journaled_pipelines(build: Build) -> None:
    runtime = build(HANDLERS)
    assert {"POST /api/orders/{id}", "DELETE /api/orders/{id}"} <= \
        set(runtime.application.pipelines)
    await runtime.start()
    response = await runtime.handle(request("POST", "/api/orders/o-9", {"qty": 3}))
    assert response.status == 201
    assert json.loads(response.body) == {"order": "o-9", "qty": 3}
    execution = await runtime.engine.get(response.get_header("x-treadle-execution-id") or "")
    assert execution.workflow == "pipeline:POST /api/orders/{id}"
    assert [s.name for s in execution.steps] == ["parse", "respond"]
    gone = await runtime.handle(request("DELETE", "/api/orders/o-9"))
    assert (gone.status, gone.body) == (204, b"")
    _, output = await runtime.run_pipeline("POST /api/orders/{id}", {"body": {"qty": 1}})
    assert output["response_status"] == 201


MESSAGING = """
modules:
  - {name: bus, type: messaging.broker}
  - {name: audit, type: messaging.handler}
  - {name: archive, type: messaging.handler}
  - {name: hourly, type: scheduler.modular, config: {cronExpression: "0 * * * *"}}
  - {name: cleanup, type: messaging.handler}
workflows:
  messaging:
    subscriptions:
      - {topic: user-events, handler: audit}
      - {topic: archived, handler: archive}
    producers:
      - {name: audit, forwardTo: [archived]}
      - {name: cleanup, forwardTo: [user-events]}
  scheduler:
    jobs:
      - {scheduler: hourly, job: cleanup}
"""


async def test_subscriptions_producers_and_scheduler_jobs(build: Build) -> None:
    runtime = build(MESSAGING)
    slot = datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
    hourly = runtime.modules["hourly"]
    hourly.now = lambda: slot - timedelta(minutes=10)
    await runtime.start()
    bus = runtime.modules["bus"]
    await bus.publish("user-events", {"user": "u1"})
    await bus.drain()
    assert list(runtime.modules["audit"].received) == [b'{"user":"u1"}']
    assert list(runtime.modules["archive"].received) == [b'{"user":"u1"}']  # forwarded
    assert hourly.jobs[0].next_fire == slot
    await hourly.tick(slot)
    await bus.drain()
    fired = json.loads(runtime.modules["cleanup"].received[0])
    assert fired == {"scheduler": "hourly", "job": "cleanup",
                     "scheduledAt": "2026-05-01T13:00:00+00:00"}
    # cleanup forwards to user-events, audit to archived
    assert runtime.modules["audit"].count == 2 and runtime.modules["archive"].count == 2
    await runtime.stop()
    assert hourly.jobs == []


BROKEN = """
modules:
  - {name: bus, type: messaging.broker}
  - {name: cron, type: scheduler.modular}
  - {name: users, type: http.handler}
workflows:
  http:
    routes:
      - {method: GET, path: /a, handler: missing}
      - {method: GET, path: /b, handler: bus}
      - {method: GET, path: /c}
      - {method: GET, path: /d, handler: users, middlewares: [users]}
  messaging:
    subscriptions:
      - {topic: t, handler: users}
  scheduler:
    jobs:
      - {scheduler: cron, job: users}
"""

BROKEN_KEYS = {
    "workflows.http.routes[0].handler": "'missing' is not a module",
    "workflows.http.routes[1].handler": "module 'bus' is not a http.handler",
    "workflows.http.routes[2]": "method, path and handler (missing: handler)",
    "workflows.http.routes[3].middlewares[0]": "module 'users' is not a middleware",
    "workflows.messaging.subscriptions[0].handler": "'users' is not a messaging.handler",
    "workflows.scheduler.jobs[0].scheduler": "'cron' has no cronExpression",
    "workflows.scheduler.jobs[0].job": "'users' is not a messaging.handler",
}


def test_wiring_problems_name_the_key_in_validate_and_build(build: Build,
                                                            tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN)
    report = check_config(load_config(tmp_path / "broken.yaml"))
    found = {e.key: e.message for e in report.errors}
    for key, text in BROKEN_KEYS.items():
        assert text in found.get(key, ""), (key, found)
    with pytest.raises(ConfigError) as caught:
        build(BROKEN)
    keys = {e.key for e in caught.value.errors}
    # building stops at a job's first problem and names the middlewares list
    assert keys == set(BROKEN_KEYS) - {"workflows.scheduler.jobs[0].job",
                                       "workflows.http.routes[3].middlewares[0]"} \
        | {"workflows.http.routes[3].middlewares"}


SERVERS = """
modules:
  - {name: public, type: http.server, config: {address: "127.0.0.1:8101"}}
  - {name: admin, type: http.server, config: {address: "127.0.0.1:8102"}}
  - {name: api, type: http.router, dependsOn: [public]}
  - {name: ops, type: http.router}
  - {name: hello, type: http.handler}
  - {name: stats, type: http.handler}
workflows:
  http:
    routes:
      - {method: GET, path: /hello, handler: hello}
  http-admin:
    server: admin
    router: ops
    routes:
      - {method: GET, path: /stats, handler: stats}
pipelines:
  ping:
    trigger: {type: http, config: {path: /ping, method: GET, router: ops}}
    steps:
      - {name: pong, type: step.json_response, config: {status: 200, body: {pong: true}}}
"""


async def test_each_http_server_serves_the_routes_of_its_routers(build: Build) -> None:
    runtime = build(SERVERS)
    public, admin = runtime.for_server("public"), runtime.for_server("admin")
    assert (public.address, admin.address) == (("127.0.0.1", 8101), ("127.0.0.1", 8102))
    assert public.routes() == ["GET /hello"]
    assert sorted(admin.routes()) == ["GET /ping", "GET /stats"]
    await runtime.start()
    assert (await public.handle(request("GET", "/hello"))).status == 200
    assert (await public.handle(request("GET", "/stats"))).status == 404
    assert (await admin.handle(request("GET", "/stats"))).status == 200
    assert (await admin.handle(request("GET", "/ping"))).status == 200
    assert (await admin.handle(request("GET", "/hello"))).status == 404
    # the runtime itself (treadle test, handle()) serves every route
    assert (await runtime.handle(request("GET", "/stats"))).status == 200
    with pytest.raises(KeyError, match="servers: public, admin"):
        runtime.for_server("nope")


def test_two_servers_on_one_port_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(SERVERS.replace("8102", "8101"))
    report = check_config(load_config(tmp_path / "app.yaml"))
    assert [(e.key, e.message) for e in report.errors] == [
        ("modules[1].config.address", "http.server 'admin' uses port 8101, as 'public' does")]


REST = """
modules:
  - {name: message-broker, type: messaging.broker}
  - {name: seen, type: messaging.handler}
  - name: items
    type: api.handler
    config: {resourceName: items, seedFile: seed.json}
workflows:
  http:
    routes:
      - {method: GET, path: /api/items, handler: items}
      - {method: POST, path: /api/items, handler: items}
      - {method: GET, path: "/api/items/{id}", handler: items}
      - {method: PUT, path: "/api/items/{id}", handler: items}
      - {method: DELETE, path: "/api/items/{id}", handler: items}
      - {method: PATCH, path: "/api/items/{id}", handler: items}
      - {method: PUT, path: "/api/items/{id}/transition", handler: items}
  messaging:
    subscriptions:
      - {topic: items-events, handler: seen}
"""


async def test_api_handler_is_an_in_memory_rest_resource(build: Build, tmp_path: Path) -> None:
    (tmp_path / "seed.json").write_text('[{"id": "s1", "data": {"n": 0}, "state": "ready"}, '
                                        '{"data": {"no": "id"}}]')
    runtime = build(REST)
    await runtime.start()

    async def call(method: str, path: str, body: object = None) -> tuple[int, object]:
        response = await runtime.handle(request(method, path, body))
        return response.status, json.loads(response.body) if response.body else None

    status, listed = await call("GET", "/api/items")
    assert status == 200 and [r["id"] for r in listed] == ["s1"]  # type: ignore[union-attr,index]
    status, created = await call("POST", "/api/items", {"n": 1})
    assert status == 201 and isinstance(created, dict)
    assert (created["id"], created["data"], created["state"]) == ("2", {"n": 1}, "new")
    status, named = await call("POST", "/api/items", {"id": "x", "state": "draft"})
    assert status == 201 and named["state"] == "draft"  # type: ignore[index]
    status, replaced = await call("PUT", "/api/items/x", {"n": 5})
    assert (status, replaced) == (200, {"id": "x", "data": {"n": 5}})  # Go drops the state
    assert (await call("PUT", "/api/items/zz", {}))[0] == 404
    assert (await call("POST", "/api/items", None))[0] == 400  # no JSON object
    assert await call("DELETE", "/api/items/x") == (204, None)
    assert (await call("GET", "/api/items/x"))[0] == 404
    assert await call("PATCH", "/api/items/2", {}) == \
        (405, {"error": "Method not allowed or invalid path"})
    await runtime.modules["message-broker"].drain()
    events = [json.loads(m)["eventType"] for m in runtime.modules["seen"].received]
    assert events == ["items.created", "items.created", "items.updated", "items.deleted"]
    # transitions need a state machine engine
    assert await call("PUT", "/api/items/2/transition", {"transition": "go"}) == \
        (500, {"error": "Workflow engine not found"})


CQRS = """
modules:
  - {name: queries, type: api.query}
  - {name: commands, type: api.command, config: {delegate: legacy}}
  - {name: legacy, type: http.handler}
workflows:
  http:
    routes:
      - method: GET
        path: /api/v1/stats
        handler: queries
        pipeline:
          steps:
            - {name: count, type: step.set, config: {values: {total: 3}}}
      - method: POST
        path: /api/v1/orders
        handler: commands
        pipeline:
          steps:
            - name: check
              type: step.validate
              config:
                strategy: json_schema
                schema: {type: object, required: [body],
                         properties: {body: {type: object, required: [id]}}}
            - {name: made, type: step.json_response, config: {status: 201, body: {ok: true}}}
      - {method: GET, path: /api/v1/other, handler: queries}
      - {method: POST, path: /api/v1/legacy, handler: commands}
"""


async def test_query_and_command_handlers_answer_as_in_go(build: Build) -> None:
    runtime = build(CQRS)
    await runtime.start()
    stats = await runtime.handle(request("GET", "/api/v1/stats"))
    body = json.loads(stats.body)
    assert stats.status == 200 and body["total"] == 3 and body["path"] == "/api/v1/stats"
    made = await runtime.handle(request("POST", "/api/v1/orders", {"id": "o1"}))
    assert (made.status, json.loads(made.body)) == (201, {"ok": True})
    refused = await runtime.handle(request("POST", "/api/v1/orders", {"x": 1}))
    assert refused.status == 500
    assert "'id' is a required property" in json.loads(refused.body)["error"]
    other = await runtime.handle(request("GET", "/api/v1/other"))
    assert (other.status, json.loads(other.body)) == (404, {"error": "unknown query: other"})
    legacy = await runtime.handle(request("POST", "/api/v1/legacy"))
    assert json.loads(legacy.body)["handler"] == "legacy"  # the delegate answered


def test_a_delegate_must_answer_http(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(CQRS.replace("delegate: legacy", "delegate: queries2"))
    report = check_config(load_config(tmp_path / "app.yaml"))
    assert [e.key for e in report.errors] == ["modules[1].config.delegate"]
