"""The audit log: every administrative action, per tenant, for admins only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from treadle.engine.audit_log import REDACTED, redact

from .conftest import finished, start, wait_for
from .tenancykit import OPERATIONS, World, build_world, ok


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


# Operations that change something but are neither administration nor an operator's decision
# on an execution: starting work and sending it data, and the login flow (failures of which
# are audited by `test_failed_logins_of_known_users_are_recorded`).
NOT_AUDITED = {"POST /api/v1/executions", "POST /api/v1/executions/{execution_id}/signals",
               "POST /api/v1/pipelines/{pipeline}/mock", "POST /api/v1/auth/login",
               "POST /api/v1/auth/refresh", "POST /api/v1/auth/logout"}


def _paused(client: httpx.Client, execution_id: str) -> None:
    def check() -> bool:
        return bool(ok(client.get(f"/api/v1/executions/{execution_id}/breakpoint"))["paused"])

    wait_for(check, 10, f"{execution_id} to pause")


def test_every_change_is_audited(world: World) -> None:
    """Each operation that changes something is done once for real; each leaves its entry,
    and every such operation of `/openapi.json` is in this walk or in `NOT_AUDITED`."""
    a = world.a
    done: dict[str, tuple[str, str]] = {}  # operation → the (action, target) it must leave
    with world.root() as root:
        ok(root.post("/api/v1/tenants", json={"id": "short-lived"}), 201)
        done["POST /api/v1/tenants"] = ("tenant.create", "tenant:short-lived")
        assert root.delete("/api/v1/tenants/short-lived").status_code == 204
        done["DELETE /api/v1/tenants/{tenant_id}"] = ("tenant.delete", "tenant:short-lived")
    with world.as_user(a, "owner") as c:
        project = ok(c.post("/api/v1/projects", json={"name": "walk"}), 201)["id"]
        done["POST /api/v1/projects"] = ("project.create", f"project:{project}")
        assert c.delete(f"/api/v1/projects/{project}").status_code == 204
        done["DELETE /api/v1/projects/{project_id}"] = ("project.delete", f"project:{project}")
        user = ok(c.post("/api/v1/users", json={"email": "walk@tenant-a.test",
                                                "password": "long-enough-1"}), 201)["id"]
        done["POST /api/v1/users"] = ("user.create", f"user:{user}")
        ok(c.patch(f"/api/v1/users/{user}", json={"name": "Walker"}))
        done["PATCH /api/v1/users/{user_id}"] = ("user.update", f"user:{user}")
        assert c.delete(f"/api/v1/users/{user}").status_code == 204
        done["DELETE /api/v1/users/{user_id}"] = ("user.delete", f"user:{user}")
        key = ok(c.post("/api/v1/api-keys", json={"name": "walk"}), 201)["id"]
        done["POST /api/v1/api-keys"] = ("api_key.create", f"api_key:{key}")
        assert c.delete(f"/api/v1/api-keys/{key}").status_code == 204
        done["DELETE /api/v1/api-keys/{key_id}"] = ("api_key.revoke", f"api_key:{key}")

        bp = ok(c.post("/api/v1/pipelines/greet/breakpoints", json={"step": "hello"}), 201)["id"]
        done["POST /api/v1/pipelines/{pipeline}/breakpoints"] = ("breakpoint.set",
                                                                 f"breakpoint:{bp}")
        paused = {action: start(c, "greet", action) for action in
                  ("resume", "skip", "abort", "cancel")}
        for action, execution in paused.items():
            _paused(c, execution)
            if action == "cancel":
                assert c.post(f"/api/v1/executions/{execution}/cancel").status_code in (
                    200, 202)
                done["POST /api/v1/executions/{execution_id}/cancel"] = (
                    "execution.cancel", f"execution:{execution}")
            else:
                ok(c.post(f"/api/v1/executions/{execution}/breakpoint/{action}"), 202)
                done[f"POST /api/v1/executions/{{execution_id}}/breakpoint/{action}"] = (
                    f"breakpoint.{action}", f"execution:{execution}")
        assert c.delete(f"/api/v1/pipelines/greet/breakpoints/{bp}").status_code == 204
        done["DELETE /api/v1/pipelines/{pipeline}/breakpoints/{breakpoint_id}"] = (
            "breakpoint.remove", f"breakpoint:{bp}")
        finished(c, paused["resume"])

        ok(c.post(f"/api/v1/executions/{paused['resume']}/replay", json={"mode": "exact"}), 201)
        done["POST /api/v1/executions/{execution_id}/replay"] = (
            "execution.replay", f"execution:{paused['resume']}")
        ok(c.post(f"/api/v1/executions/{a.failed_execution}/retry"), 201)
        done["POST /api/v1/executions/{execution_id}/retry"] = (
            "execution.retry", f"execution:{a.failed_execution}")

        letters = [start(c, "doomed", {"n": n}) for n in range(2)]
        for letter in letters:
            finished(c, letter)
        ok(c.post(f"/api/v1/dlq/pipelines/doomed/{letters[0]}/replay"), 201)
        done["POST /api/v1/dlq/pipelines/{pipeline}/{message_id}/replay"] = (
            "dlq.replay", f"execution:{letters[0]}")
        assert c.delete(f"/api/v1/dlq/pipelines/doomed/{letters[1]}").status_code == 204
        done["DELETE /api/v1/dlq/pipelines/{pipeline}/{message_id}"] = (
            "dlq.discard", f"execution:{letters[1]}")
        ok(c.post("/api/v1/dlq/pipelines/doomed/replay-all"))
        done["POST /api/v1/dlq/pipelines/{pipeline}/replay-all"] = ("dlq.replay_all",
                                                                    "pipeline:doomed")
        log = {(e["action"], e["target"]) for e in entries(c)}  # all in A's log: A's admins see
    with world.root() as root:
        log |= {(e["action"], e["target"]) for e in entries(root, tenant_id="short-lived")}

    changing = {f"{m.upper()} {p}" for p, m, _ in OPERATIONS if m != "get"}
    assert changing == set(done) | NOT_AUDITED
    missing = {op: entry for op, entry in done.items() if entry not in log}
    assert not missing, missing
