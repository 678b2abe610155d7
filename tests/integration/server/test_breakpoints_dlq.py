"""Breakpoints and dead letters over HTTP, on a real server: set, pause, decide, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

import treadle
from treadle.server import Settings
from treadle.server.auth import Principal
from treadle.server.errors import ApiError
from treadle.stores import RecordQuery

from .conftest import Server, finished, start, start_server, wait_for

REGISTRY = treadle.Registry()
charged: list[int] = []
quoted: list[int] = []
prepared: list[int] = []


@treadle.step
async def quote(order: dict[str, Any]) -> dict[str, Any]:
    quoted.append(order["amount"])
    return {"total": order["amount"] * 10}


@treadle.step
async def charge_total(total: int) -> dict[str, Any]:
    charged.append(total)
    if total > 10_000:
        raise ValueError(f"declined: {total}")
    return {"charged": total}


@treadle.workflow(name="pay", registry=REGISTRY, dead_letter=True)
async def pay(ctx: treadle.Context, order: dict[str, Any]) -> dict[str, Any]:
    priced = await quote(order)
    return await charge_total(priced["total"])


@treadle.step
async def prepare(order: dict[str, Any]) -> dict[str, Any]:
    prepared.append(order["amount"])
    return order


@treadle.workflow(name="ship", registry=REGISTRY)
async def ship(ctx: treadle.Context, order: dict[str, Any]) -> dict[str, Any]:
    priced = await quote(await prepare(order))
    return await charge_total(priced["total"])


class TenantAuth:
    """The key names the tenant (a stand-in authenticator for isolation tests)."""

    async def authenticate(self, request: object, token: str | None) -> Principal:
        if token not in ("acme", "globex", "root"):
            raise ApiError(401, "invalid_credentials", "no")
        return Principal(token, kind="api_key", tenant_id=None if token == "root" else token)


@pytest.fixture
def srv(tmp_path: Path) -> Any:
    charged.clear()
    quoted.clear()
    prepared.clear()
    server = start_server(treadle.Engine(f"sqlite:///{tmp_path}/bp.db", registry=REGISTRY))
    yield server
    server.stop()


def paused(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/v1/executions/{execution_id}/breakpoint").json()
        return body if body["paused"] else None

    return wait_for(check, 10, f"{execution_id} to pause")


def test_set_list_pause_inspect_and_resume_with_a_new_input(srv: Server) -> None:
    with srv.client() as client:
        made = client.post("/api/v1/pipelines/pay/breakpoints", json={
            "step": "charge_total", "condition": "steps.quote.total > 100", "ttl": "1h",
            "notify": ["ops@example.com"]})
        assert made.status_code == 201, made.text
        bp = made.json()
        assert (bp["workflow"], bp["step"], bp["action"]) == ("pay", "charge_total", "pause")
        assert bp["notify"] == ["ops@example.com"] and bp["expires_at"] is not None
        listed = client.get("/api/v1/pipelines/pay/breakpoints").json()["breakpoints"]
        assert [x["id"] for x in listed] == [bp["id"]]
        small = start(client, "pay", {"amount": 5})  # total 50: the condition is false
        assert finished(client, small)["output"] == {"charged": 50}
        big = start(client, "pay", {"amount": 20})
        hit = paused(client, big)
        assert hit["step"] == "charge_total" and hit["input"] == [200]
        assert hit["steps"] == {"quote": {"total": 200}} and hit["breakpoint_id"] == bp["id"]
        assert client.get(f"/api/v1/executions/{big}").json()["status"] == "suspended"
        assert 200 not in charged
        decided = client.post(f"/api/v1/executions/{big}/breakpoint/resume",
                              json={"input": [150]})
        assert decided.status_code == 202, decided.text
        assert decided.json() == {"execution_id": big, "action": "resume",
                                  "step": "charge_total", "position": 1}
        assert finished(client, big)["output"] == {"charged": 150}
        again = client.post(f"/api/v1/executions/{big}/breakpoint/resume")
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_paused"
        assert client.delete(f"/api/v1/pipelines/pay/breakpoints/{bp['id']}").status_code == 204
        assert client.delete(f"/api/v1/pipelines/pay/breakpoints/{bp['id']}").status_code == 404
        assert client.get("/api/v1/pipelines/pay/breakpoints").json()["breakpoints"] == []


def test_replay_a_paused_execution_from_an_earlier_step(srv: Server) -> None:
    """At a breakpoint the operator looks, replays from an earlier step (the steps before it
    return their recorded outputs: `prepare` is not called again; `quote` runs live), decides
    for the replay when it reaches the breakpoint too, and aborts the original."""
    with srv.client() as client:
        client.post("/api/v1/pipelines/ship/breakpoints", json={
            "step": "charge_total", "condition": "steps.quote.total > 100"})
        original = start(client, "ship", {"amount": 20})
        assert paused(client, original)["steps"] == {"prepare": {"amount": 20},
                                                      "quote": {"total": 200}}
        replayed = client.post(f"/api/v1/executions/{original}/replay",
                               json={"mode": "step_from", "from_step": "quote"})
        assert replayed.status_code == 201, replayed.text
        again = replayed.json()["id"]
        hit = paused(client, again)  # charge_total runs live: the breakpoint holds it too
        assert hit["input"] == [200]
        assert client.post(f"/api/v1/executions/{again}/breakpoint/resume",
                           json={"input": [100]}).status_code == 202
        done = finished(client, again)
        assert done["output"] == {"charged": 100}
        assert done["metadata"]["replay_of"] == original
        assert done["metadata"]["replay_mode"] == "step_from"
        assert client.post(f"/api/v1/executions/{original}/breakpoint/abort").status_code == 202
        assert finished(client, original)["status"] == "cancelled"
        assert prepared == [20]  # recorded for the replay, not run again
        assert quoted == [20, 20] and charged == [100]  # live from `quote` on


def test_skip_and_abort(srv: Server) -> None:
    with srv.client() as client:
        client.post("/api/v1/pipelines/pay/breakpoints", json={"step": "charge_total"})
        skipped = start(client, "pay", {"amount": 1})
        paused(client, skipped)
        assert client.post(f"/api/v1/executions/{skipped}/breakpoint/skip",
                           json={"output": {"charged": 0}}).status_code == 202
        done = finished(client, skipped)
        assert done["output"] == {"charged": 0} and charged == []
        aborted = start(client, "pay", {"amount": 2})
        paused(client, aborted)
        assert client.post(f"/api/v1/executions/{aborted}/breakpoint/abort",
                           json={"reason": "suspicious"}).status_code == 202
        ended = finished(client, aborted)
        assert ended["status"] == "cancelled" and ended["error"]["message"] == "suspicious"
        audit = wait_for(lambda: _audit(srv), 30, "audit entries")
        assert {"breakpoint.set", "breakpoint.skip", "breakpoint.abort"} <= set(audit)


def _audit(server: Server) -> list[str]:
    import asyncio

    async def actions() -> list[str]:
        page = await server.engine.store.list_records(RecordQuery("audit", limit=100))
        return [str(r.data["action"]) for r in page.items]

    return asyncio.run(actions())


@pytest.mark.parametrize(("body", "code"), [
    ({"step": "charge_total", "condition": "steps.x >"}, 400),
    ({"step": "charge_total", "ttl": "forever"}, 400),
    ({"step": "charge_total", "ttl": "0s"}, 400),
    ({"step": "charge_total", "action": "explode"}, 422),
    ({"condition": "true"}, 422),
])
def test_bad_breakpoints_are_refused(srv: Server, body: dict[str, Any], code: int) -> None:
    with srv.client() as client:
        response = client.post("/api/v1/pipelines/pay/breakpoints", json=body)
        assert response.status_code == code, response.text
        assert set(response.json()["error"]) == {"code", "message", "details"}
        assert client.get("/api/v1/pipelines/pay/breakpoints").json()["breakpoints"] == []


def test_a_paused_execution_survives_a_server_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/restart.db"
    first = start_server(treadle.Engine(url, registry=REGISTRY, lease_seconds=1))
    try:
        with first.client() as client:
            client.post("/api/v1/pipelines/pay/breakpoints", json={"step": "charge_total"})
            execution = start(client, "pay", {"amount": 3})
            paused(client, execution)
    finally:
        first.stop()
    second = start_server(treadle.Engine(url, registry=REGISTRY, lease_seconds=1),
                          recover=True)
    try:
        with second.client() as client:
            hit = paused(client, execution)
            assert hit["input"] == [30]
            assert client.post(f"/api/v1/executions/{execution}/breakpoint/resume"
                               ).status_code == 202
            assert finished(client, execution)["output"] == {"charged": 30}
            assert charged == [30]
    finally:
        second.stop()


def test_dead_letters_list_get_replay_and_discard(srv: Server) -> None:
    with srv.client() as client:
        ids = [start(client, "pay", {"amount": 2000 + i}) for i in range(3)]
        for ident in ids:
            assert finished(client, ident)["status"] == "failed"
        listed = client.get("/api/v1/dlq/pipelines/pay").json()
        assert listed["depth"] == 3 and listed["pipeline"] == "pay"
        assert 'workflow_dlq_depth{pipeline="pay"} 3.0' in client.get("/metrics").text
        assert [m["id"] for m in listed["messages"]] == ids[::-1]
        message = client.get(f"/api/v1/dlq/pipelines/pay/{ids[0]}").json()
        assert message["trigger_data"] == [{"amount": 2000}]
        assert message["failed_step"] == "charge_total"
        assert message["error"]["message"] == "declined: 20000"
        assert "traceback" not in message["error"]
        replayed = client.post(f"/api/v1/dlq/pipelines/pay/{ids[0]}/replay")
        assert replayed.status_code == 201, replayed.text
        new = replayed.json()["execution_id"]
        assert replayed.json()["replay_of"] == ids[0]
        assert finished(client, new)["metadata"]["dlq_of"] == ids[0]
        assert client.get(f"/api/v1/dlq/pipelines/pay/{ids[0]}").status_code == 404
        assert client.delete(f"/api/v1/dlq/pipelines/pay/{ids[1]}").status_code == 204
        assert 'workflow_dlq_depth{pipeline="pay"} 2.0' in client.get("/metrics").text
        assert client.delete(f"/api/v1/dlq/pipelines/pay/{ids[1]}").status_code == 404
        everything = client.post("/api/v1/dlq/pipelines/pay/replay-all").json()
        assert [r["replay_of"] for r in everything["replayed"]] == [ids[2], new]
        assert everything["count"] == 2
        for replay in everything["replayed"]:  # they fail again, into the queue
            assert finished(client, replay["execution_id"])["status"] == "failed"
        page = client.get("/api/v1/dlq/pipelines/pay", params={"limit": 1}).json()
        assert len(page["messages"]) == 1 and page["next_cursor"] is not None
        assert client.get("/api/v1/dlq/pipelines/pay",
                          params={"cursor": "garbage"}).status_code == 400


def test_tenants_see_only_their_breakpoints_and_letters(tmp_path: Path) -> None:
    server = start_server(treadle.Engine(f"sqlite:///{tmp_path}/t.db", registry=REGISTRY),
                          auth=TenantAuth())
    try:
        with server.client(Authorization="Bearer acme") as acme, \
                server.client(Authorization="Bearer globex") as globex:
            bp = acme.post("/api/v1/pipelines/pay/breakpoints",
                           json={"step": "charge_total"}).json()
            assert globex.get("/api/v1/pipelines/pay/breakpoints").json()["breakpoints"] == []
            assert globex.delete(
                f"/api/v1/pipelines/pay/breakpoints/{bp['id']}").status_code == 404
            theirs = start(globex, "pay", {"amount": 4})  # globex is not paused by acme's
            assert finished(globex, theirs)["output"] == {"charged": 40}
            mine = start(acme, "pay", {"amount": 4})
            paused(acme, mine)
            for action in ("resume", "skip", "abort"):
                response = globex.post(f"/api/v1/executions/{mine}/breakpoint/{action}")
                assert response.status_code == 404
            assert globex.get(f"/api/v1/executions/{mine}/breakpoint").status_code == 404
            acme.post(f"/api/v1/executions/{mine}/breakpoint/resume")
            finished(acme, mine)
            acme.delete(f"/api/v1/pipelines/pay/breakpoints/{bp['id']}")
            failed = start(acme, "pay", {"amount": 5000})
            finished(acme, failed)
            assert globex.get("/api/v1/dlq/pipelines/pay").json()["messages"] == []
            for method, path in (("GET", f"/api/v1/dlq/pipelines/pay/{failed}"),
                                 ("POST", f"/api/v1/dlq/pipelines/pay/{failed}/replay"),
                                 ("DELETE", f"/api/v1/dlq/pipelines/pay/{failed}")):
                assert globex.request(method, path).status_code == 404, path
            assert globex.post("/api/v1/dlq/pipelines/pay/replay-all").json()["count"] == 0
            assert [m["id"] for m in acme.get("/api/v1/dlq/pipelines/pay").json()["messages"]] \
                == [failed]
    finally:
        server.stop()


def test_replays_retries_and_cancels_are_audited(srv: Server) -> None:
    with srv.client() as client:
        failed = start(client, "pay", {"amount": 5000})
        assert finished(client, failed)["status"] == "failed"
        assert client.post(f"/api/v1/executions/{failed}/retry").status_code == 201
        replayed = client.post(f"/api/v1/executions/{failed}/replay",
                               json={"mode": "modified", "modifications": {"amount": 1}})
        assert replayed.status_code == 201
        client.post("/api/v1/pipelines/pay/breakpoints", json={"step": "charge_total"})
        waiting = start(client, "pay", {"amount": 1})
        paused(client, waiting)
        assert client.post(f"/api/v1/executions/{waiting}/cancel").status_code in (200, 202)
        wanted = {"breakpoint.set", "execution.retry", "execution.replay", "execution.cancel"}

        def audited() -> bool:
            return wanted <= set(_audit(srv))

        wait_for(audited, 30, "audit entries")


@treadle.workflow(name="fleeting", registry=REGISTRY,
                  dead_letter=treadle.DeadLetter(retention=0.3))
async def fleeting(ctx: treadle.Context, order: dict[str, Any]) -> dict[str, Any]:
    return await charge_total(order["amount"])


def test_a_serving_app_deletes_letters_past_their_retention(tmp_path: Path) -> None:
    settings = Settings(reclaim_seconds=0.05, prune_seconds=0.05)
    server = start_server(treadle.Engine(f"sqlite:///{tmp_path}/ret.db", registry=REGISTRY),
                          recover=True, settings=settings)
    try:
        with server.client() as client:
            failed = start(client, "fleeting", {"amount": 50_000})
            assert finished(client, failed)["status"] == "failed"
            store = server.engine.store

            def stored() -> list[str]:
                async def keys() -> list[str]:
                    page = await store.list_records(RecordQuery("dlq", limit=10))
                    return [r.key for r in page.items]

                return asyncio.run(keys())  # as `_audit` reads: the store from this thread

            assert [k.rsplit("/", 1)[-1] for k in stored()] == [failed]
            wait_for(lambda: stored() == [], 10, "the letter to be deleted")
            assert client.get("/api/v1/dlq/pipelines/fleeting").json()["depth"] == 0
    finally:
        server.stop()
