"""Every bad request gets a JSON error with the right 4xx code; nothing a client sends is a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import finished, start

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/executions/{id}"),
    ("GET", "/api/v1/executions/{id}/events"),
    ("GET", "/api/v1/executions/{id}/timeline"),
    ("POST", "/api/v1/executions/{id}/cancel"),
    ("POST", "/api/v1/executions/{id}/retry"),
    ("GET", "/api/v1/executions/live?execution_id={id}"),
    ("GET", "/api/v1/executions/diff?left={id}&right={id}"),
])
def test_unknown_execution_is_404(client: httpx.Client, method: str, path: str) -> None:
    error = error_of(client.request(method, path.format(id=UNKNOWN)), 404)
    assert error["code"] == "execution_not_found"
    assert UNKNOWN in error["message"]


def test_signal_to_unknown_execution_is_404(client: httpx.Client) -> None:
    response = client.post(f"/api/v1/executions/{UNKNOWN}/signals", json={"name": "x"})
    assert error_of(response, 404)["code"] == "execution_not_found"


@pytest.mark.parametrize("ident", ["x" * 201, "a%00b", "%0A", "%7F"])
def test_odd_ids_are_404_not_errors(client: httpx.Client, ident: str) -> None:
    assert error_of(client.get(f"/api/v1/executions/{ident}"), 404)["code"] == (
        "execution_not_found")


def test_malformed_json_is_400(client: httpx.Client) -> None:
    response = client.post("/api/v1/executions", content=b'{"workflow": "greet",',
                           headers={"content-type": "application/json"})
    assert error_of(response, 400)["code"] == "malformed_json"


@pytest.mark.parametrize("body", [
    {"workflow": 42},
    {"workflow": ""},
    {"workflow": "greet", "args": "not-a-list"},
    {"workflow": "greet", "priority": "high"},
    {"workflow": "greet", "metadata": [1, 2]},
    {"workflow": "greet", "input": 1, "args": [1]},
    {"workflow": "greet", "unknown_field": 1},
    {"workflow": "greet", "idempotency_key": "a\u0000b"},
    {"workflow": "greet", "start_at": "yesterday"},
    {"input": "no workflow"},
    [1, 2, 3],
    "a string",
])
def test_wrong_types_are_422_with_pydantic_details(client: httpx.Client, body: Any) -> None:
    error = error_of(client.post("/api/v1/executions", json=body), 422)
    assert error["code"] == "validation_error"
    assert error["details"] and all({"loc", "msg", "type"} == set(d) for d in error["details"])


def test_validation_details_point_at_the_field(client: httpx.Client) -> None:
    error = error_of(client.post("/api/v1/executions", json={"workflow": 42}), 422)
    assert error["details"][0]["loc"] == ["body", "workflow"]


@pytest.mark.parametrize("raw", [
    b'{"workflow": "greet", "input": NaN}',
    b'{"workflow": "greet", "input": [Infinity]}',
    b'{"workflow": "greet", "input": ' + b"[" * 100 + b"]" * 100 + b"}",
])
def test_json_the_journal_cannot_hold_is_422(client: httpx.Client, raw: bytes) -> None:
    response = client.post("/api/v1/executions", content=raw,
                           headers={"content-type": "application/json"})
    assert error_of(response, 422)["code"] == "validation_error"


def test_absurdly_deep_json_is_a_4xx(client: httpx.Client) -> None:
    raw = b'{"workflow": "greet", "input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post("/api/v1/executions", content=raw,
                           headers={"content-type": "application/json"})
    assert response.status_code in (400, 413, 422)
    assert "error" in response.json()


def test_body_too_large_is_413(client: httpx.Client) -> None:
    big = {"workflow": "greet", "input": "x" * (2 << 20)}
    assert error_of(client.post("/api/v1/executions", json=big), 413)["code"] == (
        "payload_too_large")


def test_unknown_workflow_is_400(client: httpx.Client) -> None:
    error = error_of(client.post("/api/v1/executions", json={"workflow": "nope"}), 400)
    assert error["code"] == "workflow_not_found"
    assert "greet" in error["details"]["known"]
    version = client.post("/api/v1/executions", json={"workflow": "greet", "version": "9"})
    assert error_of(version, 400)["code"] == "workflow_not_found"


def test_arguments_the_workflow_does_not_take_are_400(client: httpx.Client) -> None:
    response = client.post("/api/v1/executions", json={"workflow": "pair", "args": [1]})
    assert error_of(response, 400)["code"] == "invalid_arguments"
    response = client.post("/api/v1/executions", json={"workflow": "greet", "args": [1, 2]})
    assert error_of(response, 400)["code"] == "invalid_arguments"


@pytest.mark.parametrize("cursor", ["garbage", "nan:x", "inf:abc", "1.5:", "1.5:a\u0001b"])
def test_bad_cursor_is_400(client: httpx.Client, cursor: str) -> None:
    response = client.get("/api/v1/executions", params={"cursor": cursor})
    assert error_of(response, 400)["code"] == "invalid_cursor"


@pytest.mark.parametrize("params", [
    {"status": "exploded"}, {"limit": 0}, {"limit": 1001}, {"limit": "many"},
    {"since": "last tuesday"}, {"cursor": "x" * 501},
])
def test_bad_list_parameters_are_422(client: httpx.Client, params: dict[str, Any]) -> None:
    assert error_of(client.get("/api/v1/executions", params=params), 422)["code"] == (
        "validation_error")


def test_bad_events_parameters_are_422(client: httpx.Client) -> None:
    ex_id = start(client, "greet", "a")
    for params in ({"after": -1}, {"limit": 0}, {"after": "x"}):
        response = client.get(f"/api/v1/executions/{ex_id}/events", params=params)
        assert error_of(response, 422)["code"] == "validation_error"


def test_bad_signal_bodies(client: httpx.Client) -> None:
    ex_id = start(client, "approval", {})
    path = f"/api/v1/executions/{ex_id}/signals"
    assert error_of(client.post(path, json={}), 422)["code"] == "validation_error"
    assert error_of(client.post(path, json={"name": ""}), 422)["code"] == "validation_error"
    assert error_of(client.post(path, content=b"{", headers={"content-type": "application/json"}),
                    400)["code"] == "malformed_json"
    assert client.post(path, json={"name": "approve", "payload": 1}).status_code == 202
    finished(client, ex_id)


def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    assert error_of(client.get("/api/v1/nothing-here"), 404)["code"] == "not_found"
    assert error_of(client.delete("/api/v1/executions"), 405)["code"] == "method_not_allowed"


def test_diff_needs_both_sides(client: httpx.Client) -> None:
    ex_id = start(client, "greet", "a")
    finished(client, ex_id)
    assert error_of(client.get("/api/v1/executions/diff", params={"left": ex_id}),
                    422)["code"] == "validation_error"
    missing = client.get("/api/v1/executions/diff", params={"left": ex_id, "right": UNKNOWN})
    assert error_of(missing, 404)["details"] == {"side": "right"}


@pytest.mark.parametrize("period", ["forever", "0h", "91d", "-1h", "1y", "24"])
def test_bad_dashboard_period_is_400(client: httpx.Client, period: str) -> None:
    response = client.get("/api/v1/dashboard/metrics", params={"period": period})
    assert error_of(response, 400)["code"] == "invalid_period"


def test_live_after_needs_an_execution(client: httpx.Client) -> None:
    response = client.get("/api/v1/executions/live", params={"after": 3})
    assert error_of(response, 400)["code"] == "bad_request"


def test_streamed_body_too_large_is_413(client: httpx.Client) -> None:
    def chunks() -> Any:
        yield b'{"workflow": "greet", "input": "'
        for _ in range(24):
            yield b"x" * 65536
        yield b'"}'

    response = client.post("/api/v1/executions", content=chunks(),
                           headers={"content-type": "application/json"})
    assert error_of(response, 413)["code"] == "payload_too_large"


def test_lone_surrogates_are_refused_on_input(client: httpx.Client) -> None:
    for raw in (b'{"workflow": "greet", "input": "\\ud800"}',
                b'{"workflow": "greet", "input": {"\\udfff": 1}}',
                b'{"workflow": "greet", "input": 1, "metadata": {"k": ["\\ud800"]}}'):
        response = client.post("/api/v1/executions", content=raw,
                               headers={"content-type": "application/json"})
        assert error_of(response, 422)["code"] == "validation_error"


def test_any_string_a_workflow_produced_can_be_served(client: httpx.Client) -> None:
    ex_id = client.post("/api/v1/executions", json={"workflow": "odd"}).json()["id"]
    view = finished(client, ex_id)
    assert view["output"] == {"text": "lone \ud800 surrogate"}
    for path in ("/timeline", "/events"):
        assert client.get(f"/api/v1/executions/{ex_id}{path}").status_code == 200
    diff = client.get("/api/v1/executions/diff", params={"left": ex_id, "right": ex_id})
    assert diff.status_code == 200


def test_a_full_queue_answers_429_and_writes_nothing(tmp_path: Any) -> None:
    import treadle

    from .conftest import start_server
    from .workflows import REGISTRY

    engine = treadle.Engine(f"sqlite:///{tmp_path}/q.db", registry=REGISTRY,
                            queues=[treadle.Queue("small", max_depth=1)])
    srv = start_server(engine)
    try:
        with srv.client() as client:
            body = {"workflow": "greet", "input": {"name": "a"}, "queue": "small"}
            assert client.post("/api/v1/executions", json=body).status_code == 201
            full = client.post("/api/v1/executions", json=body)
            assert full.status_code == 429
            error = full.json()["error"]
            assert error["code"] == "queue_full" and error["details"]["max_depth"] == 1
            listed = client.get("/api/v1/executions").json()
            assert len(listed["items"]) == 1
    finally:
        srv.stop()
