"""Tenant isolation, over every operation of `/openapi.json`.

Tenant B's principals aim every operation at tenant A's resources (and name tenant A in
filters and bodies). An operation on A's resource must answer B exactly as it answers for a
resource that does not exist (404, or the same 403 when B lacks the permission): nothing
tells that it exists. Every other answer must hold none of A's data, and A's resources must
be untouched afterwards. New operations are covered by being in the document; a new kind of
path parameter fails `test_every_path_parameter_is_known` until `RESOURCES` learns it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import finished, sse_events, start
from .tenancykit import (
    OPERATIONS,
    RESOURCES,
    SHARED,
    STREAMING,
    World,
    build_world,
    ok,
    request_for,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("tenancy"))


def test_every_path_parameter_is_known() -> None:
    for path, _, op in OPERATIONS:
        for param in op.get("parameters", []):
            if param["in"] == "path":
                assert param["name"] in RESOURCES or param["name"] in SHARED, (path, param)


def _principal(world: World, kind: str) -> httpx.Client:
    if kind == "owner-token":
        return world.as_user(world.b, "owner")
    if kind == "admin-key":
        return world.as_key(world.b, "admin")
    return world.as_key(world.b, "viewer")


def _send(client: httpx.Client, method: str, url: str, params: dict[str, str],
          body: Any) -> httpx.Response:
    if body is None:
        return client.request(method.upper(), url, params=params)
    return client.request(method.upper(), url, params=params, json=body)


def _code(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").startswith("application/json"):
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return str(data["error"]["code"])
    return None


@pytest.mark.parametrize("principal", ["owner-token", "admin-key", "viewer-key"])
@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS,
                         ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
def test_tenant_b_cannot_reach_tenant_a(world: World, principal: str, path: str, method: str,
                                        op: dict[str, Any]) -> None:
    url, params, body, targets = request_for(path, op, world.a)
    with _principal(world, principal) as b:
        response = _send(b, method, url, params, body)
        assert response.status_code < 500, response.text
        if targets:
            missing_url, missing_params, missing_body, _ = request_for(path, op, None)
            missing = _send(b, method, missing_url, missing_params, missing_body)
            assert (response.status_code, _code(response)) == (
                missing.status_code, _code(missing)), (response.text, missing.text)
            if principal == "viewer-key":
                assert response.status_code in (403, 404), response.text
            elif op["x-permission"] == "instance":  # refused to every tenant, whatever the id
                assert response.status_code == 403, response.text
            else:
                assert response.status_code == 404, response.text
        elif path not in STREAMING:
            for marker in world.a.markers():
                assert marker not in response.text, (marker, response.text)
            if isinstance(body, dict) and body.get("tenant_id") == "tenant-a":
                assert response.status_code == 403, response.text


def test_tenant_a_is_untouched(world: World) -> None:
    """Runs after the sweep (file order): everything of A is still there, as it was."""
    a = world.a
    with world.as_user(a, "owner") as c:
        assert finished(c, a.execution)["status"] == "completed"
        assert finished(c, a.failed_execution)["status"] == "failed"
        assert ok(c.get(f"/api/v1/projects/{a.project}"))["name"] == "payments"
        ok(c.get(f"/api/v1/tenants/{a.id}"))
        ok(c.get(f"/api/v1/api-keys/{a.keys['viewer'].id}"))
        assert ok(c.get(f"/api/v1/users/{a.users['editor'].email}"))["role"] == "editor"
        breakpoints = ok(c.get("/api/v1/pipelines/doomed/breakpoints"))["breakpoints"]
        assert [bp["id"] for bp in breakpoints] == [a.breakpoint]
        assert ok(c.get(f"/api/v1/dlq/pipelines/doomed/{a.failed_execution}"))["id"] == (
            a.failed_execution)
        listed = ok(c.get("/api/v1/executions", params={"limit": 1000}))["items"]
        assert {item["tenant_id"] for item in listed} == {a.id}
    with world.as_key(a, "viewer") as c:
        ok(c.get("/api/v1/auth/me"))


@pytest.mark.parametrize("path", [
    "/api/v1/executions", "/api/v1/tenants", "/api/v1/projects", "/api/v1/users",
    "/api/v1/api-keys", "/api/v1/audit", "/api/v1/pipelines/doomed/breakpoints",
    "/api/v1/dlq/pipelines/doomed",
])
def test_listings_hold_only_the_callers_tenant(world: World, path: str) -> None:
    with world.as_user(world.b, "owner") as b, world.root() as root:
        mine = ok(b.get(path, params={"tenant_id": world.a.id}))
        every = ok(root.get(path))
    text = json.dumps(mine)
    assert not any(marker in text for marker in world.a.markers())
    tenants = set(re.findall(r'"tenant_id": "([^"]+)"', text))
    assert tenants <= {world.b.id}
    if path == "/api/v1/tenants":
        assert [t["id"] for t in mine["items"]] == [world.b.id]
        assert {world.a.id, world.b.id} <= {t["id"] for t in every["items"]}
    elif path in ("/api/v1/executions", "/api/v1/users", "/api/v1/api-keys", "/api/v1/projects",
                  "/api/v1/audit"):
        assert tenants == {world.b.id}
        everything = json.dumps(every)  # the instance admin sees both
        assert f'"tenant_id": "{world.a.id}"' in everything


def test_a_tenant_cannot_start_work_for_another(world: World) -> None:
    with world.as_user(world.b, "editor") as b:
        refused = b.post("/api/v1/executions", json={"workflow": "greet", "input": "x",
                                                    "tenant_id": world.a.id})
        assert refused.status_code == 403
        mine = start(b, "greet", "b")
        assert finished(b, mine)["tenant_id"] == world.b.id


def test_the_dashboard_counts_only_the_callers_tenant(world: World) -> None:
    with world.as_user(world.b, "viewer") as b, world.as_user(world.a, "viewer") as a:
        theirs = ok(b.get("/api/v1/dashboard/metrics", params={"tenant": world.a.id}))
        b_total = len(ok(b.get("/api/v1/executions", params={"limit": 1000}))["items"])
        assert theirs["summary"]["total_executions"] == b_total
        a_total = len(ok(a.get("/api/v1/executions", params={"limit": 1000}))["items"])
        assert ok(a.get("/api/v1/dashboard/metrics"))["summary"]["total_executions"] == a_total


def test_the_live_stream_carries_only_the_callers_tenant(world: World) -> None:
    with world.client(world.b.users["viewer"].access_token) as b, \
            b.stream("GET", "/api/v1/executions/live", params={"tenant": world.a.id}) as stream:
        assert stream.status_code == 200
        events = sse_events(stream)
        assert next(events) == {"comment": "subscribed"}
        with world.as_user(world.a, "editor") as a:
            theirs = start(a, "greet", "secret-of-a")
            finished(a, theirs)
        with world.as_user(world.b, "editor") as bw:
            mine = start(bw, "greet", "b")
        seen: list[dict[str, Any]] = []
        for event in events:
            seen.append(event)
            data = event.get("data")
            if (isinstance(data, dict) and data.get("execution_id") == mine
                    and event.get("event") == "execution.completed"):
                break
    assert all(theirs not in json.dumps(event) for event in seen)
    assert all("secret-of-a" not in json.dumps(event) for event in seen)


def test_metrics_are_for_instances(world: World) -> None:
    """Prometheus numbers are labelled with every tenant's name: only instance principals may
    read them."""
    with world.root() as root:
        assert root.get("/metrics").status_code == 200
    for client in (world.as_user(world.b, "owner"), world.as_key(world.b, "admin")):
        with client:
            response = client.get("/metrics")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


def test_an_instance_admin_reaches_every_tenant(world: World) -> None:
    with world.root() as root:
        for tenant in (world.a, world.b):
            ok(root.get(f"/api/v1/executions/{tenant.execution}"))
            ok(root.get(f"/api/v1/projects/{tenant.project}"))
            ok(root.get(f"/api/v1/users/{tenant.users['viewer'].email}"))
        ids = {t["id"] for t in ok(root.get("/api/v1/tenants"))["items"]}
        assert {world.a.id, world.b.id} <= ids
        only_a = ok(root.get("/api/v1/users", params={"tenant_id": world.a.id}))["items"]
        assert {u["tenant_id"] for u in only_a} == {world.a.id} and len(only_a) == 4


def test_a_tenant_can_be_deleted_by_instance_admins_only(tmp_path: Path) -> None:
    for world in build_world(tmp_path):
        with world.as_user(world.a, "owner") as owner:
            assert owner.delete(f"/api/v1/tenants/{world.a.id}").status_code == 403
            assert owner.delete(f"/api/v1/tenants/{world.b.id}").status_code == 403
        with world.root() as root:
            assert root.delete(f"/api/v1/tenants/{world.a.id}").status_code == 204
            assert root.get(f"/api/v1/tenants/{world.a.id}").status_code == 404
            assert root.get(f"/api/v1/users/{world.a.users['owner'].email}").status_code == 404
            ok(root.get(f"/api/v1/executions/{world.a.execution}"))  # executions stay
            assert root.delete(f"/api/v1/tenants/{world.a.id}").status_code == 404
        with world.as_key(world.a, "admin") as gone:  # its keys and tokens stop working
            assert gone.get("/api/v1/executions").status_code == 401
        with world.as_user(world.a, "viewer") as gone:
            assert gone.get("/api/v1/executions").status_code == 401
        with world.as_user(world.b, "viewer") as b:
            ok(b.get("/api/v1/executions"))
