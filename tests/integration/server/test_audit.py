"""The audit log: every administrative action, per tenant, for admins only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from treadle.server.audit import REDACTED, redact

from .tenancykit import World, build_world, ok


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("audit"))


def entries(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = ok(client.get("/api/v1/audit", params=query))
        out += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def test_admin_actions_are_recorded(world: World) -> None:
    a = world.a
    with world.as_user(a, "admin") as admin:
        log = entries(admin)
    actions = [(e["action"], e["target"]) for e in log]
    assert ("tenant.create", f"tenant:{a.id}") in actions
    assert ("user.create", f"user:{a.users['owner'].email}") in actions
    for role in ("admin", "editor", "viewer"):
        assert ("user.create", f"user:{a.users[role].email}") in actions
        assert ("api_key.create", f"api_key:{a.keys[role].id}") in actions
    assert ("project.create", f"project:{a.project}") in actions
    made = next(e for e in log if e["target"] == f"user:{a.users['admin'].email}")
    assert made["actor"] == {"id": a.users["owner"].email, "kind": "user", "roles": ["owner"]}
    assert made["details"] == {"role": "admin"} and made["tenant_id"] == a.id
    assert made["client"] == "127.0.0.1"
    created = next(e for e in log if e["action"] == "tenant.create")
    assert created["actor"]["kind"] == "instance_key" and created["actor"]["id"] == "root"
    times = [e["at"] for e in log]
    assert times == sorted(times, reverse=True)  # newest first


def test_changes_and_removals_are_recorded(world: World) -> None:
    a = world.a
    with world.as_user(a, "owner") as owner:
        user = ok(owner.post("/api/v1/users", json={"email": "temp@tenant-a.test",
                                                    "password": "long-enough-1"}), 201)
        ok(owner.patch(f"/api/v1/users/{user['id']}", json={"role": "editor",
                                                            "password": "another-one-2"}))
        assert owner.delete(f"/api/v1/users/{user['id']}").status_code == 204
        key = ok(owner.post("/api/v1/api-keys", json={"name": "temp"}), 201)
        assert owner.delete(f"/api/v1/api-keys/{key['id']}").status_code == 204
        log = entries(owner, target=f"user:{user['id']}")
        assert [e["action"] for e in log] == ["user.delete", "user.update", "user.create"]
        assert log[1]["details"] == {"changed": ["password", "role"],
                                     "role": {"from": "viewer", "to": "editor"}}
        revoked = entries(owner, action="api_key.revoke")
        assert revoked[0]["target"] == f"api_key:{key['id']}"
        assert revoked[0]["details"] == {"name": "temp", "role": "viewer"}


def test_failed_logins_of_known_users_are_recorded(world: World) -> None:
    viewer = world.a.users["viewer"]
    with world.client() as anon:
        assert anon.post("/api/v1/auth/login", json={
            "email": viewer.email, "password": "guessing-wrong"}).status_code == 401
    with world.as_user(world.a, "admin") as admin:
        failed = entries(admin, action="auth.login_failed")
    assert failed[0]["actor"]["id"] == viewer.email
    assert failed[0]["details"] == {"reason": "wrong_password"}
    assert "guessing-wrong" not in str(failed)


def test_a_tenant_sees_only_its_entries(world: World) -> None:
    with world.as_user(world.b, "owner") as b:
        log = entries(b, tenant_id=world.a.id)  # the filter cannot reach another tenant
    assert log and {e["tenant_id"] for e in log} == {world.b.id}
    text = str(log)
    assert not any(marker in text for marker in world.a.markers())
    with world.root() as root:
        everything = entries(root)
        only_a = entries(root, tenant_id=world.a.id)
    assert {e["tenant_id"] for e in everything} >= {world.a.id, world.b.id}
    assert {e["tenant_id"] for e in only_a} == {world.a.id}


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_admins_read_the_log(world: World, role: str) -> None:
    for client in (world.as_user(world.a, role), world.as_key(world.a, role)):
        with client:
            response = client.get("/api/v1/audit")
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "forbidden"


def test_filters_and_pages(world: World) -> None:
    owner = world.a.users["owner"].email
    with world.as_user(world.a, "owner") as c:
        everything = entries(c)
        paged = entries(c, limit=2)
        assert [e["id"] for e in paged] == [e["id"] for e in everything]
        users = entries(c, action="user.*")
        assert users and all(e["action"].startswith("user.") for e in users)
        by_owner = entries(c, actor=owner)
        assert by_owner and all(e["actor"]["id"] == owner for e in by_owner)
        now = datetime.now(UTC)
        assert entries(c, since=(now + timedelta(minutes=5)).isoformat()) == []
        assert entries(c, until=(now - timedelta(days=1)).isoformat()) == []
        oldest = everything[-1]
        assert entries(c, until=oldest["at"]) == []
        middle = everything[len(everything) // 2]["at"]
        newer = entries(c, since=middle)
        older = entries(c, until=middle)
        assert len(newer) + len(older) == len(everything)
        bad = c.get("/api/v1/audit", params={"cursor": "nope"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


def test_secret_looking_details_are_redacted() -> None:
    details = {"mode": "exact", "password": "p", "api_key": "k", "refresh_token": "t",
               "nested": {"Authorization": "Bearer x", "key": "k", "key_id": "kept"},
               "list": [{"secret": "s"}], "nan": float("nan"), "obj": object}
    cleaned = redact(details)
    assert cleaned["mode"] == "exact" and cleaned["nested"]["key_id"] == "kept"
    for path in (("password",), ("api_key",), ("refresh_token",), ("nested", "Authorization"),
                 ("nested", "key")):
        value: Any = cleaned
        for part in path:
            value = value[part]
        assert value == REDACTED
    assert cleaned["list"] == [{"secret": REDACTED}] and cleaned["nan"] is None
    assert isinstance(cleaned["obj"], str)
