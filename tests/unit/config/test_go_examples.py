"""Example configs of GoCodeAlone/workflow (fixtures/go_examples, copied unchanged) validate
and run on Treadle."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import treadle
from treadle.apps import AppRuntime, build_app
from treadle.config.validate import validate_report
from treadle.modules.web import HTTPRequest, HTTPResponse

GO = Path(__file__).parent / "fixtures" / "go_examples"
BROKEN = {"test-route-pipeline.yaml"}
"""Examples the Go engine cannot load either (see test_an_invalid_go_example...)."""
NESTED = ["multi-workflow/app.yaml", "ecommerce-app/configs/gateway.yaml",
          "chat-platform/configs/gateway.yaml"]
"""Examples kept in their directories: a multi-file application (an `application:` listing
workflow files) by its main file, and the two `gateway.yaml` of the multi-service examples."""


def request(method: str, path: str, body: object = None) -> HTTPRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    return HTTPRequest(method, path, path, body=raw)


def payload(response: HTTPResponse) -> object:
    return json.loads(response.body)


@pytest.fixture
async def runtime(request: pytest.FixtureRequest) -> AsyncIterator[AppRuntime]:
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    app = build_app(GO / request.param, engine)
    yield app
    await app.stop()
    await engine.close()


def test_the_fixtures_are_there() -> None:
    assert len(list(GO.rglob("*.yaml"))) >= 25
    readme = (GO / "README.md").read_text()
    for path in GO.rglob("*.yaml"):
        assert path.relative_to(GO).as_posix() in readme  # its origin is recorded


@pytest.mark.parametrize("name", sorted(p.name for p in GO.glob("*.yaml") if p.name not in BROKEN)
                         + NESTED)
def test_go_examples_validate_and_build(name: str) -> None:
    report = validate_report(GO / name)
    assert report.errors == [], [str(e) for e in report.errors]
    build_app(GO / name, treadle.Engine("memory://", registry=treadle.Registry()))


def test_an_invalid_go_example_is_reported_at_its_inline_steps() -> None:
    # its route pipelines use `sql:` where step.db_exec / db_query take `query:`, and name
    # modules the file does not declare: the Go engine refuses it too
    report = validate_report(GO / "test-route-pipeline.yaml")
    found = {(e.key, e.line) for e in report.errors}
    assert ("workflows.http.routes[0].pipeline.steps[2].config.database", 34) in found
    assert ("workflows.http.routes[2].middlewares[0]", 60) in found
    assert ("workflows.http.routes[2].pipeline.steps[0].config.service", 66) in found


@pytest.mark.parametrize("runtime", ["api-server-config.yaml"], indirect=True)
async def test_api_server_routes_answer_from_their_handlers(runtime: AppRuntime) -> None:
    await runtime.start()
    for method, path, handler in [("GET", "/api/users", "users-handler"),
                                  ("POST", "/api/products", "products-handler"),
                                  ("GET", "/health", "health-handler")]:
        response = await runtime.handle(request(method, path))
        assert response.status == 200
        assert payload(response) == {"handler": handler, "status": "success",
                                     "message": "Default handler response"}
    assert (await runtime.handle(request("DELETE", "/api/users"))).status == 405
    assert runtime.address == ("0.0.0.0", 8080)


@pytest.mark.parametrize("runtime", ["simple-workflow-config.yaml"], indirect=True)
async def test_simple_workflow_subscriptions_reach_their_handler(runtime: AppRuntime) -> None:
    await runtime.start()
    await runtime.modules["messageBroker"].publish("user-events", {"id": "u1"})
    await runtime.modules["messageBroker"].drain()
    assert list(runtime.modules["notificationService"].received) == [b'{"id":"u1"}']
    assert (await runtime.handle(request("GET", "/health"))).status == 200


@pytest.mark.parametrize("runtime", ["scheduled-jobs-config.yaml"], indirect=True)
async def test_scheduled_jobs_fire_and_forward_to_the_status_store(runtime: AppRuntime) -> None:
    minute = datetime(2026, 6, 1, 8, 31, tzinfo=UTC)
    scheduler = runtime.modules["minute-scheduler"]
    scheduler.now = lambda: minute - timedelta(seconds=30)
    await runtime.start()
    assert {j.name for j in scheduler.jobs} == {"minute-scheduler:health-check-job",
                                                "minute-scheduler:metrics-collection-job"}
    await scheduler.tick(minute)
    await runtime.modules["message-broker"].drain()
    store = runtime.modules["job-status-store"]
    jobs = sorted(json.loads(m)["job"] for m in store.received)
    assert jobs == ["health-check-job", "metrics-collection-job"]
    status = await runtime.handle(request("GET", "/api/jobs/status"))
    assert payload(status) == {"handler": "job-status-api", "status": "success",
                               "message": "Default handler response"}


@pytest.mark.parametrize("runtime", ["webhook-pipeline.yaml"], indirect=True)
async def test_webhook_pipeline_routes_by_event_type(runtime: AppRuntime) -> None:
    await runtime.start()
    execution_id, out = await runtime.run_pipeline("stripe-payment", {
        "type": "payment_intent.succeeded", "data": {"id": "pi_1"}})
    assert (out["event_type"], out["payload_id"]) == ("payment_intent.succeeded", "pi_1")
    # as in Go, the conditional jumps and the steps after the target run in order too
    execution = await runtime.engine.get(execution_id)
    names = [s.name for s in execution.steps]
    assert names[:4] == ["validate-payload", "extract-event", "log-received", "route-by-type"]
    assert names[-3:] == ["process-success", "process-failure", "log-unknown"]
    # over HTTP the JSON body is not top-level trigger data (as in the Go HTTP trigger), so
    # its required_fields check fails and the error is answered as Go's http.Error writes it
    response = await runtime.handle(request("POST", "/webhooks/stripe", {"type": "x"}))
    assert response.status == 500
    assert b"missing required fields: type, data" in response.body


@pytest.mark.parametrize("runtime", ["order-processing-pipeline.yaml"], indirect=True)
async def test_order_processing_serves_its_handler_and_health(runtime: AppRuntime) -> None:
    await runtime.start()
    created = await runtime.handle(request("POST", "/api/orders", {"id": "o1"}))
    assert payload(created) == {"handler": "order-api", "status": "success",
                                "message": "Default handler response"}
    assert (await runtime.handle(request("GET", "/healthz"))).status == 200


@pytest.mark.parametrize("runtime", ["state-machine-workflow.yaml"], indirect=True)
async def test_state_machine_orders_through_the_rest_handler(runtime: AppRuntime) -> None:
    await runtime.start()
    created = await runtime.handle(request("POST", "/api/orders", {"id": "o1", "total": 30}))
    assert created.status == 201
    assert payload(created) == {"id": "o1", "data": {"id": "o1", "total": 30}, "state": "new",
                                "lastUpdate": payload(created)["lastUpdate"]}  # type: ignore[index]
    moved = await runtime.handle(request("PUT", "/api/orders/o1/transition",
                                         {"transition": "submit_order", "data": {"by": "ann"}}))
    body = payload(moved)
    assert isinstance(body, dict)
    assert moved.status == 200 and body["success"] is True
    assert (body["instanceId"], body["state"]) == ("order-o1", "validating")
    engine = runtime.modules["order-processor"].engine
    instance = await engine.get("order-o1")
    assert (instance.workflow_type, instance.current_state) == ("order-workflow", "validating")
    assert instance.data["by"] == "ann"
    # the hook handler of submit_order got the transition as a message
    hook = runtime.modules["order-validation-handler"]
    assert json.loads(hook.received[0])["transition"] == "submit_order"
    refused = await runtime.handle(request("PUT", "/api/orders/o1/transition",
                                           {"transition": "deliver"}))
    assert refused.status == 400 and payload(refused)["success"] is False  # type: ignore[index]
    got = payload(await runtime.handle(request("GET", "/api/orders/o1")))
    assert isinstance(got, dict) and got["state"] == "validating"
    listed = payload(await runtime.handle(request("GET", "/api/orders")))
    assert [r["id"] for r in listed] == ["o1"]  # type: ignore[union-attr,index]
    assert (await runtime.handle(request("GET", "/api/orders/nope"))).status == 404


async def _health_service(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The example's "mock health service" on localhost:8091: echoes method and path."""
    body = json.dumps({"service": "health", "method": scope["method"],
                       "path": scope["path"]}).encode()  # fmt: skip
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("runtime", ["api-gateway-config.yaml"], indirect=True)
async def test_api_gateway_proxies_every_path_to_its_default_backend(
        runtime: AppRuntime) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", 8091))
    except OSError:
        sock.close()
        pytest.skip("port 8091 (the example's health backend) is in use")
    await runtime.start()
    down = await runtime.handle(request("GET", "/health"))  # nothing listens yet
    assert (down.status, down.body) == (502, b"Backend service unavailable\n")
    server = uvicorn.Server(uvicorn.Config(_health_service, log_level="warning",
                                           lifespan="off", interface="asgi3"))  # fmt: skip
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # a condition, polled until uvicorn listens
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        for method, path in [("GET", "/health"), ("POST", "/api/users/1")]:
            got = payload(await runtime.handle(request(method, path, {"a": 1})))
            assert got == {"service": "health", "method": method, "path": path}
    finally:
        server.should_exit = True
        await task
        sock.close()

async def started(runtime: AppRuntime) -> AppRuntime:
    await runtime.start()
    return runtime


@pytest.mark.parametrize("runtime", ["advanced-scheduler-workflow.yaml"], indirect=True)
async def test_advanced_scheduler_runs_each_job_on_its_schedule(runtime: AppRuntime) -> None:
    midnight = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    schedulers = ["minutely-scheduler", "hourly-scheduler", "daily-scheduler"]
    for name in schedulers:
        runtime.modules[name].now = lambda: midnight - timedelta(seconds=30)
    await started(runtime)
    for name in schedulers:  # at midnight every schedule is due
        await runtime.modules[name].tick(midnight)
    for job in ["system-stats-job", "health-check-job", "data-cleanup-job",
                "report-generator-job"]:
        assert runtime.modules[job].count == 1, job
    await runtime.modules["minutely-scheduler"].tick(midnight + timedelta(minutes=1))
    assert runtime.modules["system-stats-job"].count == 2
    assert runtime.modules["data-cleanup-job"].count == 1


@pytest.mark.parametrize("runtime", ["data-sync-pipeline.yaml"], indirect=True)
async def test_data_sync_pipelines_run_from_their_http_triggers(runtime: AppRuntime) -> None:
    await started(runtime)
    _, out = await runtime.run_pipeline("manual-sync", {})
    assert out == {"sync_status": "in_progress", "sync_source": "external-api"}
    _, out = await runtime.run_pipeline("health-probe", {})
    assert out["status"] == "healthy"
    # no step writes a response: the HTTP trigger answers as Go's does
    response = await runtime.handle(request("POST", "/api/sync/trigger"))
    assert (response.status, payload(response)) == (202, {"status": "workflow triggered"})


@pytest.mark.parametrize("runtime", ["event-processor-config.yaml"], indirect=True)
async def test_event_processor_forwards_from_its_producer(runtime: AppRuntime) -> None:
    await started(runtime)
    await runtime.modules["event-broker"].publish("incoming-events", {"id": "e1"})
    await runtime.modules["event-broker"].drain()
    # event-receiver gets it and, as producer, forwards it to processed- and error-events
    for name in ["event-receiver", "event-notifier", "error-handler"]:
        assert list(runtime.modules[name].received) == [b'{"id":"e1"}'], name
    assert list(runtime.modules["event-processor"].received) == []  # subscribed to nothing


@pytest.mark.parametrize("runtime", ["data-pipeline-config.yaml"], indirect=True)
async def test_data_pipeline_stages_chain_through_the_broker(runtime: AppRuntime) -> None:
    await started(runtime)
    broker = runtime.modules["message-broker"]
    await broker.publish("raw-input", {"id": "r1"})
    await broker.drain()
    for stage in ["data-validation", "data-transformation", "data-enrichment", "db-output",
                  "notification-output"]:
        assert list(runtime.modules[stage].received) == [b'{"id":"r1"}'], stage
    # api-input is an http.handler: its producers entry is ignored (Go only logs it)
    response = await runtime.handle(request("POST", "/api/data", {"x": 1}))
    assert payload(response) == {"handler": "api-input", "status": "success",
                                 "message": "Default handler response"}
    assert list(runtime.modules["data-validation"].received) == [b'{"id":"r1"}']


@pytest.mark.parametrize("runtime", ["multi-workflow-config.yaml"], indirect=True)
async def test_multi_workflow_protects_its_api_and_delivers_events(runtime: AppRuntime) -> None:
    await started(runtime)
    assert (await runtime.handle(request("GET", "/health"))).status == 200
    refused = await runtime.handle(request("GET", "/api/users"))
    assert refused.status == 401  # behind auth-middleware
    await runtime.modules["message-broker"].publish("audit-logs", {"who": "ann"})
    await runtime.modules["message-broker"].drain()
    assert list(runtime.modules["audit-log-handler"].received) == [b'{"who":"ann"}']
    assert list(runtime.modules["user-event-handler"].received) == []


@pytest.mark.parametrize("runtime", ["sms-chat-config.yaml"], indirect=True)
async def test_sms_chat_webhook_and_triage_subscriptions(runtime: AppRuntime) -> None:
    await started(runtime)
    for method, path in [("POST", "/sms/webhook"), ("GET", "/sms/status")]:
        response = await runtime.handle(request(method, path, {"From": "+1"}
                                                if method == "POST" else None))
        assert payload(response) == {"handler": "sms-webhook-handler", "status": "success",
                                     "message": "Default handler response"}
    broker = runtime.modules["message-broker"]
    for topic in ["incoming-sms", "outgoing-sms"]:
        await broker.publish(topic, {"topic": topic})
    await broker.drain()
    assert runtime.modules["triage-survey-handler"].count == 1
    assert runtime.modules["notification-handler"].count == 1
    assert runtime.modules["agent-assignment-handler"].count == 0


@pytest.mark.parametrize("runtime", ["realtime-messaging-modular-config.yaml"], indirect=True)
async def test_realtime_messaging_eventbus_delivers(runtime: AppRuntime) -> None:
    await started(runtime)
    bus = runtime.modules["realtime-eventbus"]
    got: list[bytes] = []

    async def receive(message: bytes) -> None:
        got.append(message)

    bus.subscribe("chat.room1", receive)
    await bus.publish("chat.room1", {"text": "hi"})
    await bus.drain()
    assert got == [b'{"text":"hi"}']


def test_scheduled_jobs_modular_top_level_section_is_reported_ignored() -> None:
    report = validate_report(GO / "scheduled-jobs-modular-config.yaml")
    assert report.errors == []
    warned = [w for w in report.warnings if w.key == "scheduler"]
    assert warned and "ignored" in str(warned[0])


@pytest.mark.parametrize("runtime", ["workflow-a-orders.yaml"], indirect=True)
async def test_orders_trigger_drives_the_order_lifecycle(runtime: AppRuntime) -> None:
    await started(runtime)
    created = await runtime.handle(request("POST", "/api/orders", {"id": "o1", "total": 30}))
    assert (created.status, payload(created)) == (202, {"status": "workflow triggered"})
    engine = runtime.modules["order-state-engine"].engine
    instance = await engine.get("o1")  # created by the trigger, then validate_order fired
    assert (instance.workflow_type, instance.current_state) == ("order-lifecycle", "validated")
    # the toStates hook told order-event-handler
    told = json.loads(runtime.modules["order-event-handler"].received[0])
    assert (told["instanceId"], told["toState"]) == ("o1", "validated")
    again = await runtime.handle(request("POST", "/api/orders", {"id": "o1"}))
    assert again.status == 500 and b"cannot trigger transition" in again.body
    assert (await runtime.handle(request("GET", "/api/orders/o1"))).status == 200


@pytest.mark.parametrize("runtime", ["workflow-b-fulfillment.yaml"], indirect=True)
async def test_fulfillment_event_trigger_starts_picking(runtime: AppRuntime) -> None:
    await started(runtime)
    broker = runtime.modules["fulfillment-broker"]
    await broker.publish("order.validated", {"type": "order.created", "id": "f0"})
    await broker.publish("order.validated", {"type": "order.validated", "id": "f1"})
    await broker.drain()
    subscription = next(s for _, s in runtime.subscriptions)
    assert (subscription.started, subscription.skipped) == (1, 1)  # `event:` filters
    result = await subscription.handles[0].result(5)
    assert result == {"instanceId": "f1", "currentState": "picking",
                      "transition": "start_picking", "success": True}
    engine = runtime.modules["fulfillment-state-engine"].engine
    assert (await engine.get("f1")).current_state == "picking"
    assert runtime.modules["fulfillment-handler"].count == 2  # its own subscription too


@pytest.mark.parametrize("runtime", ["multi-workflow/app.yaml"], indirect=True)
async def test_multi_workflow_application_calls_across_files(runtime: AppRuntime) -> None:
    await started(runtime)
    assert sorted(runtime.application.pipelines) == [
        "assign-conversation", "escalate-conversation", "handle-message", "notify-responder"]
    _, out = await runtime.run_pipeline("handle-message", {
        "conversation_id": "c1", "channel": "sms", "message_text": "help"})
    assert (out["urgency"], out["status"]) == ("normal", "assigned")
    assert (out["responder"], out["queue"]) == ("responder-normal-01", "sms-queue")
    _, out = await runtime.run_pipeline("escalate-conversation", {"conversation_id": "c1"})
    assert (out["queue_name"], out["dispatched"]) == ("escalation-queue", True)


@pytest.mark.parametrize("runtime", ["ecommerce-app/configs/gateway.yaml"], indirect=True)
async def test_ecommerce_gateway_proxies_through_its_middlewares(runtime: AppRuntime) -> None:
    await started(runtime)
    assert (await runtime.handle(request("GET", "/healthz"))).status == 200
    call = request("GET", "/api/products/p1")
    call.headers["origin"] = "http://shop.example"
    response = await runtime.handle(call)
    # the backend host does not exist here: SimpleProxy's 502, after cors and request-id
    assert response.status == 502
    assert payload(response) == {"backend": "users-products:8080",
                                 "error": "backend unavailable", "path": "/api/products/p1"}
    assert response.get_header("Access-Control-Allow-Origin") == "http://shop.example"
    assert response.get_header("X-Request-ID")


@pytest.mark.parametrize("runtime", ["chat-platform/configs/gateway.yaml"], indirect=True)
async def test_chat_gateway_routes_each_prefix_to_its_service(runtime: AppRuntime) -> None:
    await started(runtime)
    for method, path, backend in [("POST", "/api/webhooks/twilio", "conversation:8082"),
                                  ("GET", "/api/admin/stats", "api:8081"),
                                  ("POST", "/api/conversations/c1/close", "conversation:8082")]:
        response = await runtime.handle(request(method, path, {"a": 1}))
        assert response.status == 502, path
        assert payload(response)["backend"] == backend  # type: ignore[index]
        assert response.get_header("X-Frame-Options") == "DENY"  # security-headers ran
    assert (await runtime.handle(request("DELETE", "/api/users/u1"))).status == 405


@pytest.mark.parametrize("runtime", ["api-gateway-modular-config.yaml"], indirect=True)
async def test_api_gateway_modular_runs_as_modular_configures_it(runtime: AppRuntime) -> None:
    # `address`/`readTimeoutSeconds`/`logRoutes` are not modular's keys: ignored, as in Go,
    # so the server keeps modular's default 0.0.0.0:8080 and chimux its default CORS
    report = validate_report(GO / "api-gateway-modular-config.yaml")
    assert report.errors == []
    assert {w.key for w in report.warnings} == {
        "httpserver.address", "httpserver.readTimeoutSeconds", "httpserver.writeTimeoutSeconds",
        "chimux.logRoutes"}
    await started(runtime)
    assert runtime.address == ("0.0.0.0", 8080)
    call = request("GET", "/api/users")
    call.headers["origin"] = "http://console.example"
    response = await runtime.handle(call)  # users-service does not resolve here
    assert (response.status, response.body) == (502, b"Backend service unavailable\n")
    assert response.get_header("Access-Control-Allow-Origin") == "http://console.example"
    preflight = request("OPTIONS", "/api/orders")
    preflight.headers["origin"] = "http://console.example"
    assert (await runtime.handle(preflight)).status == 204
