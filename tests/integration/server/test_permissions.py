"""Roles over every operation of `/openapi.json`.

Each operation states what it needs of its caller (`x-permission`, read from the route's
dependencies). `POLICY` says what it must need, by path and method, so a new route falls under
a rule without anyone writing a line here; then every principal of a tenant — users with each
role, API keys with each key role — and an instance key send every operation: a principal
without the permission gets 403 `forbidden` (before anything is looked up or changed), one with
it gets past the check (the request aims at resources that do not exist, so it changes
nothing of the tenant's).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from treadle.server.auth import ROLE_PERMISSIONS

from .tenancykit import OPERATIONS, STREAMING, World, build_world, request_for

PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("post", "/api/v1/auth/login"),
          ("post", "/api/v1/auth/refresh"), ("post", "/api/v1/auth/logout")}
ADMINISTRATION = ("/api/v1/users", "/api/v1/api-keys", "/api/v1/audit")
PRINCIPALS = ["owner", "admin", "editor", "viewer", "admin-key", "editor-key", "viewer-key",
              "instance-key"]


def policy(method: str, path: str) -> str:
    """What an operation must demand: reading is `read`, changing is `write`; accounts, keys
    and the audit log are `admin`; tenants are made and removed, and instance-wide metrics
    read, by instance admins."""
    if (method, path) in PUBLIC:
        return "public"
    if path == "/api/v1/auth/me":
        return "authenticated"
    if path == "/metrics" or (path.startswith("/api/v1/tenants") and method != "get"):
        return "instance"
    if path.startswith(ADMINISTRATION) or (path.startswith("/api/v1/projects")
                                           and method != "get"):
        return "admin"
    return "read" if method == "get" else "write"


def test_every_operation_declares_what_the_policy_says() -> None:
    declared = {f"{m.upper()} {p}": op.get("x-permission") for p, m, op in OPERATIONS}
    wanted = {f"{m.upper()} {p}": policy(m, p) for p, m, _ in OPERATIONS}
    assert declared == wanted


def allowed(principal: str, permission: str) -> bool:
    if principal == "instance-key" or permission in ("public", "authenticated"):
        return True
    if permission == "instance":
        return False
    return permission in ROLE_PERMISSIONS[principal.removesuffix("-key")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("permissions"))


def _client(world: World, principal: str) -> httpx.Client:
    if principal == "instance-key":
        return world.root()
    if principal.endswith("-key"):
        return world.as_key(world.a, principal.removesuffix("-key"))
    return world.as_user(world.a, principal)


def _send(client: httpx.Client, method: str, url: str, params: dict[str, str],
          body: Any) -> tuple[int, Any]:
    extra: dict[str, Any] = {} if body is None else {"json": body}
    with client.stream(method.upper(), url, params=params, **extra) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, None  # a live stream: its status is the answer
        response.read()
        json = response.headers.get("content-type", "").startswith("application/json")
        return response.status_code, response.json() if json else response.text


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS,
                         ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
def test_every_role_on_every_operation(world: World, principal: str, path: str, method: str,
                                       op: dict[str, Any]) -> None:
    url, params, body, _ = request_for(path, op, None)
    if path in STREAMING:
        params = {}  # the global stream: no execution to look up
    with _client(world, principal) as client:
        status, answer = _send(client, method, url, params, body)
    permission = op["x-permission"]
    assert status < 500, answer
    if permission == "public":  # the credentials a public operation checks are in its body
        with world.client() as anonymous:
            assert status == _send(anonymous, method, url, params, body)[0], answer
    elif allowed(principal, permission):
        assert status not in (401, 403), (principal, permission, status, answer)
    else:
        assert status == 403, (principal, permission, status, answer)
        assert answer["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("path", "method", "op"),
                         [o for o in OPERATIONS if o[2]["x-permission"] != "public"],
                         ids=[f"{m.upper()} {p}" for p, m, o in OPERATIONS
                              if o["x-permission"] != "public"])
def test_every_guarded_operation_refuses_strangers(world: World, path: str, method: str,
                                                   op: dict[str, Any]) -> None:
    url, params, body, _ = request_for(path, op, None)
    for headers in ({}, {"Authorization": "Bearer trd_0123456789abcdef_not-a-real-secret"},
                    {"X-API-Key": "wrong"}):
        with world.client() as client:
            client.headers.update(headers)
            status, answer = _send(client, method, url, params, body)
        assert status == 401, (headers, status, answer)
