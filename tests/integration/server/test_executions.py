"""The executions API on a real server: start, list, get, events, timeline, cancel, signal,
retry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from treadle.server import schemas

from .conftest import finished, start, wait_for


def status_of(client: httpx.Client, execution_id: str) -> str:
    status: str = client.get(f"/api/v1/executions/{execution_id}").json()["status"]
    return status


def suspended(client: httpx.Client, execution_id: str) -> None:
    wait_for(lambda: status_of(client, execution_id) == "suspended", what="suspension")


def test_start_returns_201_with_id_and_location(client: httpx.Client) -> None:
    response = client.post("/api/v1/executions", json={"workflow": "greet", "input": "ann"})
    assert response.status_code == 201
    body = response.json()
    schemas.StartOut.model_validate(body)
    assert body["created"] is True and body["workflow"] == "greet"
    assert response.headers["location"] == f"/api/v1/executions/{body['id']}"
    view = finished(client, body["id"])
    schemas.ExecutionOut.model_validate(view)
    assert view["output"] == {"greeting": "hello ann"}
    assert view["input"] == "ann" and view["args"] == ["ann"]
    assert view["trigger"]["type"] == "api"
    assert [s["name"] for s in view["steps"]] == ["hello"]
    assert view["steps"][0]["status"] == "completed"


def test_start_with_positional_args_and_metadata(client: httpx.Client) -> None:
    response = client.post("/api/v1/executions", headers={"X-Request-ID": "req-42"}, json={
        "workflow": "pair", "args": [2, 3], "metadata": {"customer": "c1"}, "tenant_id": "acme",
    })
    assert response.status_code == 201, response.text
    view = finished(client, response.json()["id"])
    assert view["output"] == 6
    assert view["metadata"] == {"customer": "c1"}
    assert view["trigger"] == {"type": "api", "request_id": "req-42"}
    assert view["tenant_id"] == "acme"


def test_idempotency_key_returns_the_first_execution(client: httpx.Client) -> None:
    body = {"workflow": "greet", "input": "bob", "idempotency_key": "greet-bob"}
    first = client.post("/api/v1/executions", json=body)
    second = client.post("/api/v1/executions", json=body)
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["created"] is False
    other = client.post("/api/v1/executions", json={**body, "input": "eve"})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert other.json()["error"]["details"]["execution_id"] == first.json()["id"]


def test_list_filters_and_paginates(client: httpx.Client) -> None:
    ids = {start(client, "greet", f"n{i}") for i in range(5)}
    failed = start(client, "order", {"id": 9, "card": "declined"})
    for ex_id in [*ids, failed]:
        finished(client, ex_id)

    page = client.get("/api/v1/executions", params={"workflow": "greet"}).json()
    schemas.ExecutionPage.model_validate(page)
    assert {item["id"] for item in page["items"]} == ids
    assert page["next_cursor"] is None

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"workflow": "greet", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/executions", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and set(seen) == ids

    failures = client.get("/api/v1/executions", params={"status": "failed"}).json()["items"]
    assert [item["id"] for item in failures] == [failed]
    assert failures[0]["error"] == "card declined"
    both = client.get("/api/v1/executions", params={"pipeline": "order"}).json()["items"]
    assert [item["id"] for item in both] == [failed]

    created = [item["created_at"] for item in
               client.get("/api/v1/executions", params={"limit": 100}).json()["items"]]
    assert created == sorted(created, reverse=True)  # newest first
    newest, oldest = created[0], created[-1]
    since = client.get("/api/v1/executions", params={"since": newest}).json()["items"]
    assert since and all(item["created_at"] >= newest for item in since)
    until = client.get("/api/v1/executions", params={"until": oldest}).json()["items"]
    assert until == []
    future = client.get("/api/v1/executions", params={"since": "2999-01-01T00:00:00Z"})
    assert future.json()["items"] == []


def test_events_are_the_journal_with_paging(client: httpx.Client) -> None:
    ex_id = start(client, "order", {"id": 1})
    finished(client, ex_id)
    page = client.get(f"/api/v1/executions/{ex_id}/events").json()
    schemas.EventPage.model_validate(page)
    events = page["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "execution.started"
    assert events[0]["data"]["workflow"] == "order"
    assert events[-1]["type"] == "execution.completed"
    assert page["next_after"] is None

    first = client.get(f"/api/v1/executions/{ex_id}/events", params={"limit": 3}).json()
    assert [e["seq"] for e in first["items"]] == [1, 2, 3] and first["next_after"] == 3
    rest = client.get(f"/api/v1/executions/{ex_id}/events",
                      params={"after": first["next_after"], "limit": 1000}).json()
    assert [e["seq"] for e in rest["items"]] == list(range(4, len(events) + 1))


def test_timeline_has_the_seed_format(client: httpx.Client) -> None:
    ex_id = start(client, "order", {"id": 7}, idempotency_key="ord-7", metadata={"total": 89.97})
    finished(client, ex_id)
    response = client.get(f"/api/v1/executions/{ex_id}/timeline")
    assert response.status_code == 200
    timeline = response.json()
    schemas.TimelineOut.model_validate(timeline)
    assert set(timeline) >= {"execution_id", "pipeline", "tenant", "status", "started_at",
                             "completed_at", "duration_ms", "trigger", "steps", "metadata"}
    assert timeline["execution_id"] == ex_id and timeline["pipeline"] == "order"
    assert timeline["status"] == "completed" and timeline["duration_ms"] >= 0
    assert timeline["started_at"].endswith("Z") and len(timeline["started_at"]) == 24
    assert timeline["metadata"] == {"total": 89.97, "idempotency_key": "ord-7"}
    assert timeline["trigger"]["type"] == "api"
    steps = timeline["steps"]
    assert [s["name"] for s in steps] == ["validate", "check_inventory", "charge"]
    charge = steps[2]
    assert set(charge) >= {"name", "type", "status", "started_at", "duration_ms", "input",
                           "output", "attempts"}
    assert charge["status"] == "completed" and charge["attempts"] == 1
    assert charge["input"] == {"id": 7}  # its single argument
    assert charge["output"] == {"charge_id": "ch_7", "status": "succeeded"}


def test_timeline_of_a_failed_execution_shows_the_error(client: httpx.Client) -> None:
    ex_id = start(client, "order", {"id": 2, "card": "declined"})
    assert finished(client, ex_id)["status"] == "failed"
    timeline = client.get(f"/api/v1/executions/{ex_id}/timeline").json()
    assert timeline["status"] == "failed"
    assert timeline["error"]["type"] == "ValueError"
    charge = timeline["steps"][-1]
    assert charge["name"] == "charge" and charge["status"] == "failed"
    assert charge["error"]["message"] == "card declined"


def test_signal_resumes_a_waiting_execution(client: httpx.Client) -> None:
    ex_id = start(client, "approval", {"items": [1, 2]})
    suspended(client, ex_id)
    response = client.post(f"/api/v1/executions/{ex_id}/signals",
                           json={"name": "approve", "payload": {"by": "ann"}})
    assert response.status_code == 202
    assert response.json() == {"id": ex_id, "status": "accepted", "signal": "approve"}
    view = finished(client, ex_id)
    assert view["output"]["decision"] == {"by": "ann"}
    again = client.post(f"/api/v1/executions/{ex_id}/signals", json={"name": "approve"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "execution_finished"


def test_cancel_a_waiting_execution(client: httpx.Client) -> None:
    ex_id = start(client, "approval", {})
    suspended(client, ex_id)
    response = client.post(f"/api/v1/executions/{ex_id}/cancel", json={"reason": "not needed"})
    assert response.status_code == 200, response.text
    assert response.json() == {"id": ex_id, "status": "cancelled"}
    view = client.get(f"/api/v1/executions/{ex_id}").json()
    assert view["status"] == "cancelled" and view["error"]["message"] == "not needed"
    again = client.post(f"/api/v1/executions/{ex_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"] == {"code": "execution_finished",
                                     "message": f"execution {ex_id} is cancelled",
                                     "details": {"status": "cancelled"}}


def test_retry_starts_a_linked_execution_with_the_same_input(client: httpx.Client) -> None:
    failed = start(client, "order", {"id": 3, "card": "declined"}, metadata={"source": "web"})
    assert finished(client, failed)["status"] == "failed"
    response = client.post(f"/api/v1/executions/{failed}/retry")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["retry_of"] == failed and body["id"] != failed
    retried = finished(client, body["id"])
    assert retried["input"] == {"id": 3, "card": "declined"}
    assert retried["metadata"] == {"source": "web", "retry_of": failed}
    assert retried["trigger"] == {"type": "retry", "execution_id": failed}

    ok = start(client, "greet", "x")
    finished(client, ok)
    refused = client.post(f"/api/v1/executions/{ok}/retry")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "not_retryable"


def test_retry_with_idempotency_key_happens_once(client: httpx.Client) -> None:
    failed = start(client, "order", {"id": 4, "card": "declined"})
    finished(client, failed)
    one = client.post(f"/api/v1/executions/{failed}/retry", json={"idempotency_key": "r-4"})
    two = client.post(f"/api/v1/executions/{failed}/retry", json={"idempotency_key": "r-4"})
    assert (one.status_code, two.status_code) == (201, 200)
    assert one.json()["id"] == two.json()["id"]


@pytest.mark.parametrize("path", ["", "/events", "/timeline"])
def test_a_fifty_step_execution_is_served(client: httpx.Client, path: str) -> None:
    ex_id = start(client, "fifty", 0)
    finished(client, ex_id)
    assert client.get(f"/api/v1/executions/{ex_id}{path}").status_code == 200


def test_replay_modes(client: httpx.Client) -> None:
    execution_id = start(client, "greet", {"name": "ann"})
    original = finished(client, execution_id)
    exact = client.post(f"/api/v1/executions/{execution_id}/replay", json={"mode": "exact"})
    assert exact.status_code == 201, exact.text
    body = exact.json()
    assert body["replay_of"] == execution_id and body["mode"] == "exact"
    replayed = finished(client, body["id"])
    assert replayed["output"] == original["output"]
    assert replayed["metadata"]["replay_of"] == execution_id
    modified = client.post(f"/api/v1/executions/{execution_id}/replay",
                           json={"mode": "modified", "modifications": {"name": "bob"}})
    assert modified.status_code == 201
    assert finished(client, modified.json()["id"])["input"] == {"name": "bob"}
    missing = client.post(f"/api/v1/executions/{execution_id}/replay",
                          json={"mode": "step_from"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "invalid_replay"
    unknown = client.post(f"/api/v1/executions/{execution_id}/replay",
                          json={"mode": "step_from", "from_step": "nope"})
    assert unknown.status_code == 400 and "no step 'nope'" in unknown.json()["error"]["message"]
    bad_mode = client.post(f"/api/v1/executions/{execution_id}/replay", json={"mode": "x"})
    assert bad_mode.status_code == 422
    gone = client.post("/api/v1/executions/no-such/replay", json={})
    assert gone.status_code == 404


def test_mock_run(client: httpx.Client) -> None:
    inventory = "check_inventory"
    body = {"mocks": {inventory: {"output": {"available": False, "reason": "mocked_out"},
                                  "delay_ms": 20}},
            "trigger_data": {"id": 9, "sku": "SKU-1", "card": "declined"}}
    started = client.post("/api/v1/pipelines/order/mock", json=body)
    assert started.status_code == 201, started.text
    view = finished(client, started.json()["id"])
    assert view["status"] == "completed"
    assert view["output"] == {"ok": False, "reason": "mocked_out"}  # the real step says available
    assert view["metadata"]["mock_run"] is True
    steps = {s["name"]: s for s in view["steps"]}
    assert steps[inventory].get("mocked") is True and not steps["validate"].get("mocked")
    unknown = client.post("/api/v1/pipelines/no-such-pipeline/mock", json=body)
    assert unknown.status_code == 400
    bad = client.post("/api/v1/pipelines/order/mock",
                      json={"mocks": {inventory: {"delay_ms": -1}}})
    assert bad.status_code == 422
