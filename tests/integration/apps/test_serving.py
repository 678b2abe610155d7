"""Applications served by a real uvicorn server, exercised over HTTP with httpx."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

Serve = Callable[..., Any]


async def test_rest_crud_on_sqlite(serve_app: Serve) -> None:
    async with serve_app("crud.yaml") as s:
        c = s.client
        created = await c.post("/items", json={"name": "pen", "qty": 3})
        assert created.status_code == 201, created.text
        item_id = created.json()["id"]
        assert created.headers["location"] == f"/items/{item_id}"
        await c.post("/items", json={"name": "cup"})
        bad = await c.post("/items", json={"qty": -1})
        assert bad.status_code == 400 and "name" in bad.json()["error"]

        got = await c.get(f"/items/{item_id}")
        assert got.json() == {"id": item_id, "name": "pen", "qty": 3}
        listed = await c.get("/items")
        assert [i["name"] for i in listed.json()] == ["cup", "pen"]

        updated = await c.put(f"/items/{item_id}", json={"name": "pencil", "qty": 5})
        assert updated.json() == {"id": item_id, "updated": True}
        assert (await c.get(f"/items/{item_id}")).json()["name"] == "pencil"
        assert (await c.put("/items/nope", json={"name": "x", "qty": 1})).status_code == 404

        assert (await c.delete(f"/items/{item_id}")).status_code == 204
        missing = await c.get(f"/items/{item_id}")
        assert missing.status_code == 404 and missing.json() == {"error": "item not found"}
        assert (await c.patch(f"/items/{item_id}")).status_code == 405
        assert (await c.get("/healthz")).json()["status"] == "healthy"

        # every request is a journaled execution
        execution_id = missing.headers["x-treadle-execution-id"]
        execution = await s.runtime.engine.get(execution_id)
        assert execution.workflow == "pipeline:get-item"
        names = [st.name for st in execution.steps]
        assert names[:3] == ["parse", "get", "found"] and names[-1] == "not-found"


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(b"it-is-a-secret", body, hashlib.sha256).hexdigest()


async def test_webhook_intake_with_hmac(serve_app: Serve) -> None:
    async with serve_app("webhook.yaml") as s:
        body = json.dumps({"action": "opened", "number": 7}).encode()
        ok = await s.client.post("/webhooks/github", content=body, headers={
            "X-Hub-Signature-256": _sign(body), "X-GitHub-Event": "pull_request",
            "Content-Type": "application/json"})
        assert ok.status_code == 202 and ok.json() == {"received": True}
        forged = await s.client.post("/webhooks/github", content=body, headers={
            "X-Hub-Signature-256": _sign(b"other"), "Content-Type": "application/json"})
        assert forged.status_code == 401
        unsigned = await s.client.post("/webhooks/github", content=body)
        assert unsigned.status_code == 401
        conn = s.runtime.modules["db"].connection()
        rows = conn.execute("SELECT event, payload FROM deliveries").fetchall()
        assert rows == [("pull_request", '{"action":"opened","number":7}')]


async def test_event_driven_pipeline_over_the_broker(serve_app: Serve) -> None:
    async with serve_app("events.yaml") as s:
        for order in ("o-1", "o-2"):
            accepted = await s.client.post("/orders", json={"id": order})
            assert accepted.status_code == 202 and accepted.json() == {"accepted": order}
        await s.runtime.modules["events"].drain()
        _, subscription = s.runtime.subscriptions[0]
        for handle in subscription.handles:
            await handle.result()
        shipments = await s.client.get("/shipments")
        assert sorted(r["order_id"] for r in shipments.json()) == ["o-1", "o-2"]


async def test_scheduled_job_driven_by_an_explicit_tick(serve_app: Serve) -> None:
    slot = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
    async with serve_app("scheduled.yaml") as s:
        scheduler, job = s.runtime.jobs[0]
        scheduler.jobs[0].next_fire = slot
        fired = await scheduler.tick(slot + timedelta(seconds=5))
        assert [when for _, when in fired] == [slot]
        await job.handles[-1].result()
        await scheduler.tick(slot + timedelta(seconds=10))  # not due again: nothing fires
        await scheduler.tick(slot + timedelta(minutes=15))
        await job.handles[-1].result()
        runs = (await s.client.get("/runs")).json()
        assert runs == [{"slot": "2026-05-04T09:30:00Z"}, {"slot": "2026-05-04T09:45:00Z"}]


async def test_config_routes_win_over_the_mounted_app(serve_app: Serve) -> None:
    started: list[str] = []

    async def healthz(request: object) -> JSONResponse:
        return JSONResponse({"from": "control-plane"})

    async def api(request: object) -> JSONResponse:
        return JSONResponse({"from": "control-plane", "api": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        started.append("up")
        yield
        started.append("down")

    plane = Starlette(routes=[Route("/healthz", healthz), Route("/api/v1/x", api)],
                      lifespan=lifespan)
    async with serve_app("crud.yaml", fallback=plane) as s:
        assert started == ["up"]
        assert (await s.client.get("/healthz")).json()["status"] == "healthy"  # the config's
        assert (await s.client.get("/api/v1/x")).json() == {"from": "control-plane",
                                                             "api": True}
        created = await s.client.post("/items", json={"name": "x"})
        assert created.status_code == 201
    assert started == ["up", "down"]


@pytest.mark.parametrize("path", ["/items/..%2F..%2Fetc", "/items/%00"])
async def test_odd_paths_do_not_break_routing(serve_app: Serve, path: str) -> None:
    async with serve_app("crud.yaml") as s:
        response = await s.client.get(path)
        assert response.status_code == 404



async def test_the_control_plane_is_served_behind_the_config_routes(serve_app: Serve) -> None:
    from treadle.server import create_app

    def plane(runtime: Any) -> Any:
        return create_app(runtime.engine, recover=False, close_engine=False)

    async with serve_app("crud.yaml", control_plane_factory=plane) as s:
        created = await s.client.post("/items", json={"name": "kept"})
        execution_id = created.headers["x-treadle-execution-id"]
        listed = await s.client.get("/api/v1/executions")
        assert listed.status_code == 200
        assert execution_id in listed.text
        one = await s.client.get(f"/api/v1/executions/{execution_id}")
        assert one.status_code == 200 and "pipeline:create-item" in one.text
        assert (await s.client.get("/healthz")).json()["checks"] == {
            "db": {"status": "healthy", "message": "ok"}}  # the config's health.checker
