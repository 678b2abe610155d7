"""Roles: viewer reads, editor writes, admin administers, owner owns; API keys shown once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from treadle.stores.base import Record, RecordQuery, open_store

from .tenancykit import World, build_world, ok

ACTIONS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    # (permission it needs, method, path, body)
    ("read", "GET", "/api/v1/executions", None),
    ("read", "GET", "/api/v1/projects", None),
    ("read", "GET", "/api/v1/dashboard/metrics", None),
    ("write", "POST", "/api/v1/executions", {"workflow": "greet", "input": "matrix"}),
    ("write", "POST", "/api/v1/pipelines/doomed/breakpoints", {"step": "never-called"}),
    ("admin", "GET", "/api/v1/users", None),
    ("admin", "GET", "/api/v1/api-keys", None),
    ("admin", "GET", "/api/v1/audit", None),
    ("admin", "POST", "/api/v1/projects", {"name": "matrix"}),
]
ALLOWED = {"viewer": {"read"}, "editor": {"read", "write"}, "admin": {"read", "write", "admin"},
           "owner": {"read", "write", "admin"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("roles"))


@pytest.mark.parametrize("via", ["token", "key"])
@pytest.mark.parametrize("role", ["owner", "admin", "editor", "viewer"])
def test_role_matrix(world: World, role: str, via: str) -> None:
    if via == "key" and role == "owner":
        pytest.skip("keys are admin at most")
    client = world.as_user(world.a, role) if via == "token" else world.as_key(world.a, role)
    with client:
        me = ok(client.get("/api/v1/auth/me"))
        assert me["tenant_id"] == world.a.id and me["roles"] == [role]
        assert me["kind"] == ("user" if via == "token" else "api_key")
        for permission, method, path, body in ACTIONS:
            response = client.request(method, path, json=body)
            if permission in ALLOWED[role]:
                assert response.status_code in (200, 201), (role, path, response.text)
            else:
                assert response.status_code == 403, (role, path, response.text)
                assert response.json()["error"]["code"] == "forbidden"


def test_nobody_grants_a_role_above_their_own(world: World) -> None:
    a = world.a
    with world.as_user(a, "admin") as admin:
        refused = admin.post("/api/v1/users", json={"email": "x@tenant-a.test", "role": "owner",
                                                    "password": "long-enough-1"})
        assert refused.status_code == 403
        owner_email = a.users["owner"].email
        assert admin.patch(f"/api/v1/users/{owner_email}",
                           json={"role": "viewer"}).status_code == 403
        assert admin.delete(f"/api/v1/users/{owner_email}").status_code == 403
        assert admin.patch(f"/api/v1/users/{a.users['viewer'].email}",
                           json={"role": "owner"}).status_code == 403
        made = ok(admin.post("/api/v1/users", json={
            "email": "Second.Admin@Tenant-A.test", "role": "admin",
            "password": "long-enough-1"}), 201)
        assert made["email"] == "second.admin@tenant-a.test"  # e-mails are lower-cased
        assert "password" not in json.dumps(made) and "hash" not in json.dumps(made)
        assert admin.post("/api/v1/users", json={
            "email": "second.admin@tenant-a.test", "password": "long-enough-1",
        }).status_code == 409
        assert admin.post("/api/v1/users", json={
            "email": "short@tenant-a.test", "password": "short"}).status_code == 422
        assert admin.post("/api/v1/api-keys", json={"name": "k", "role": "owner"}
                          ).status_code == 422
    with world.as_key(a, "admin") as admin_key:
        assert admin_key.post("/api/v1/users", json={
            "email": "y@tenant-a.test", "role": "owner", "password": "long-enough-1",
        }).status_code == 403
        ok(admin_key.post("/api/v1/api-keys", json={"name": "sub", "role": "admin"}), 201)
    with world.as_user(a, "editor") as editor:
        assert editor.patch(f"/api/v1/users/{a.users['editor'].email}",
                            json={"role": "admin"}).status_code == 403
        mine = ok(editor.get(f"/api/v1/users/{a.users['editor'].email}"))  # self: allowed
        assert mine["role"] == "editor"
        assert editor.get(f"/api/v1/users/{a.users['viewer'].email}").status_code == 403
    with world.as_user(a, "owner") as owner:
        assert owner.post("/api/v1/tenants", json={"id": "sneaky"}).status_code == 403


def test_the_last_owner_stays(tmp_path: Path) -> None:
    for world in build_world(tmp_path):
        b = world.b
        owner_email = b.users["owner"].email
        with world.as_user(b, "owner") as owner:
            for change in ({"role": "admin"}, {"disabled": True}):
                refused = owner.patch(f"/api/v1/users/{owner_email}", json=change)
                assert refused.status_code == 409, refused.text
                assert refused.json()["error"]["code"] == "last_owner"
            assert owner.delete(f"/api/v1/users/{owner_email}").status_code == 409
            second = b.users["admin"].email
            assert ok(owner.patch(f"/api/v1/users/{second}", json={"role": "owner"}))[
                "role"] == "owner"
            assert ok(owner.patch(f"/api/v1/users/{owner_email}", json={"role": "admin"}))[
                "role"] == "admin"
        with world.as_user(b, "admin") as new_owner:  # the token follows the stored role
            assert ok(new_owner.get("/api/v1/auth/me"))["roles"] == ["owner"]
            assert new_owner.delete(f"/api/v1/users/{second}").status_code == 409
            assert new_owner.delete(f"/api/v1/users/{owner_email}").status_code == 204
        with world.as_user(b, "owner") as removed:
            assert removed.get("/api/v1/executions").status_code == 401
        with world.root() as root:  # instance admins may do anything but break the rule
            assert root.patch(f"/api/v1/users/{second}", json={"role": "viewer"}
                              ).status_code == 409


def test_a_demoted_user_loses_the_permission_at_once(world: World) -> None:
    a = world.a
    with world.as_user(a, "owner") as owner:
        ok(owner.patch(f"/api/v1/users/{a.users['editor'].email}", json={"role": "viewer"}))
    try:
        with world.as_user(a, "editor") as editor:
            assert editor.post("/api/v1/executions", json={"workflow": "greet", "input": "x"}
                               ).status_code == 403
    finally:
        with world.as_user(a, "owner") as owner:
            ok(owner.patch(f"/api/v1/users/{a.users['editor'].email}", json={"role": "editor"}))


def _records(world: World, kind: str) -> list[Record]:
    async def read() -> list[Record]:
        store = open_store(world.server.engine.store.url)
        await store.open()
        try:
            return (await store.list_records(RecordQuery(kind, limit=1000))).items
        finally:
            await store.close()

    return asyncio.run(read())


def test_api_keys_are_shown_once_and_kept_hashed(world: World) -> None:
    with world.as_user(world.a, "admin") as admin:
        created = ok(admin.post("/api/v1/api-keys", json={"name": "ci", "role": "editor"}), 201)
        key = created["key"]
        assert key.startswith(f"trd_{created['id']}_") and created["prefix"] == (
            f"trd_{created['id']}_…")
        assert created["role"] == "editor" and created["tenant_id"] == world.a.id
        shown = ok(admin.get(f"/api/v1/api-keys/{created['id']}"))
        listed = ok(admin.get("/api/v1/api-keys"))["items"]
        assert "key" not in shown and key not in json.dumps(listed)
        assert shown["last_used_at"] is None
    stored = {r.key: r for r in _records(world, "api_key")}[created["id"]]
    assert key not in json.dumps(stored.data)
    assert stored.data["digest"] == hashlib.sha256(key.encode()).hexdigest()
    for user in _records(world, "user"):
        assert str(user.data["password_hash"]).startswith("$argon2id$")
    with world.client(key) as c:
        ok(c.post("/api/v1/executions", json={"workflow": "greet", "input": "by key"}), 201)
        tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    with world.client(tampered) as bad:
        assert bad.get("/api/v1/executions").json()["error"]["code"] == "invalid_credentials"
    with world.as_user(world.a, "admin") as admin:
        assert ok(admin.get(f"/api/v1/api-keys/{created['id']}"))["last_used_at"] is not None
        assert admin.delete(f"/api/v1/api-keys/{created['id']}").status_code == 204
        assert admin.get(f"/api/v1/api-keys/{created['id']}").status_code == 404
    with world.client(key) as c:
        assert c.get("/api/v1/executions").status_code == 401


def test_an_expired_key_is_refused(world: World) -> None:
    with world.as_user(world.a, "admin") as admin:
        created = ok(admin.post("/api/v1/api-keys", json={"name": "brief", "role": "viewer",
                                                         "expires_in_days": 1}), 201)
        assert created["expires_at"] is not None
    with world.client(created["key"]) as c:
        ok(c.get("/api/v1/executions"))
    record = {r.key: r for r in _records(world, "api_key")}[created["id"]]

    async def expire() -> None:
        store = open_store(world.server.engine.store.url)
        await store.open()
        await store.put_record(Record(record.kind, record.key,
                                      {**record.data, "expires_at": time.time() - 1},
                                      record.created_at, record.tenant_id))
        await store.close()

    asyncio.run(expire())
    with world.client(created["key"]) as c:
        assert c.get("/api/v1/executions").status_code == 401


def test_projects_belong_to_a_tenant(world: World) -> None:
    with world.as_user(world.a, "admin") as admin:
        made = ok(admin.post("/api/v1/projects", json={"name": "checkout",
                                                       "description": "the shop"}), 201)
        assert made["tenant_id"] == world.a.id and made["id"].startswith("prj_")
        assert made["created_by"] == world.a.users["admin"].email
        names = [p["name"] for p in ok(admin.get("/api/v1/projects"))["items"]]
        assert "checkout" in names
        assert admin.delete(f"/api/v1/projects/{made['id']}").status_code == 204
        assert admin.get(f"/api/v1/projects/{made['id']}").status_code == 404
    with world.root() as root:
        assert root.post("/api/v1/projects", json={"name": "x"}).json()["error"]["code"] == (
            "tenant_required")
        assert root.post("/api/v1/projects", json={"name": "x", "tenant_id": "nope"}
                         ).status_code == 404
        made = ok(root.post("/api/v1/projects", json={"name": "ops",
                                                      "tenant_id": world.b.id}), 201)
        assert made["tenant_id"] == world.b.id


def test_listings_page_with_cursors(world: World) -> None:
    with world.root() as root:
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = ok(root.get("/api/v1/users", params=params))
            seen += [u["id"] for u in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) >= 8
        bad = root.get("/api/v1/users", params={"cursor": "garbage"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


def test_tenant_ids_are_unique_and_well_formed(world: World) -> None:
    with world.root() as root:
        again = root.post("/api/v1/tenants", json={"id": world.a.id})
        assert again.status_code == 409 and again.json()["error"]["code"] == "tenant_exists"
        assert root.post("/api/v1/tenants", json={"id": "Bad Id"}).status_code == 422
        taken = root.post("/api/v1/tenants", json={"id": "tenant-c", "owner": {
            "email": world.a.users["viewer"].email, "password": "long-enough-1"}})
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "user_exists"
        assert root.get("/api/v1/tenants/tenant-c").status_code == 404


def test_an_email_of_any_characters_makes_a_user_and_a_location(world: World) -> None:
    """Found by fuzzing as a tenant: a non-Latin-1 e-mail failed in the `Location` header
    after the user was stored (a 500)."""
    with world.as_user(world.a, "owner") as owner:
        made = owner.post("/api/v1/users", json={"email": "zoë.名前@tenant-a.test",
                                                 "password": "long-enough-1"})
        assert made.status_code == 201, made.text
        location = made.headers["location"]
        assert location == "/api/v1/users/zo%C3%AB.%E5%90%8D%E5%89%8D@tenant-a.test"
        assert ok(owner.get(location))["email"] == "zoë.名前@tenant-a.test"
