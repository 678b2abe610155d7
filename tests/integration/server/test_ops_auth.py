"""Health, readiness, OpenAPI, Prometheus metrics, and API-key authentication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import treadle
from treadle.observability.metrics import MetricsObserver
from treadle.server import Principal
from treadle.server.errors import ApiError

from .conftest import Server, finished, start, start_server
from .workflows import REGISTRY

KEY = "s3cret-key-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_health_readiness_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v1/executions", "/api/v1/executions/{execution_id}",
                 "/api/v1/executions/{execution_id}/timeline", "/api/v1/executions/live",
                 "/api/v1/executions/diff", "/api/v1/dashboard/metrics", "/metrics"):
        assert path in paths, path
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert paths["/api/v1/executions"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert paths["/metrics"]["get"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "security" not in paths["/healthz"]["get"]


def test_readyz_is_503_when_the_store_is_gone(server: Server, client: httpx.Client) -> None:
    store = server.engine.store

    async def broken(execution_id: str) -> None:
        raise OSError("disk on fire")

    original = store.get
    store.get = broken  # type: ignore[method-assign]
    try:
        response = client.get("/readyz")
    finally:
        store.get = original  # type: ignore[method-assign]
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"


def test_metrics_after_runs(client: httpx.Client) -> None:
    for ex_id in (start(client, "order", {"id": 1}),
                  start(client, "order", {"id": 2, "card": "declined"}),
                  start(client, "greet", "x", tenant_id="acme")):
        finished(client, ex_id)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    ok = ("workflow_pipeline_executions_total",
          (("pipeline", "order"), ("status", "completed"), ("tenant", "")))
    failed = ("workflow_pipeline_executions_total",
              (("pipeline", "order"), ("status", "failed"), ("tenant", "")))
    assert got[ok] == 1.0 and got[failed] == 1.0
    assert got[("workflow_pipeline_executions_total",
                (("pipeline", "greet"), ("status", "completed"), ("tenant", "acme")))] == 1.0
    assert got[("workflow_step_executions_total",
                (("pipeline", "order"), ("status", "completed"), ("step", "validate")))] == 2.0
    assert got[("workflow_step_executions_total",
                (("pipeline", "order"), ("status", "failed"), ("step", "charge")))] == 1.0
    assert got[("workflow_step_duration_seconds_count",
                (("pipeline", "order"), ("step", "charge"), ("tenant", ""),
                 ("type", "step")))] == 2.0
    assert got[("workflow_pipeline_duration_seconds_count",
                (("pipeline", "order"), ("tenant", "")))] == 2.0
    assert got[("workflow_pipeline_active_executions",
                (("pipeline", "order"), ("tenant", "")))] == 0.0
    assert got[("workflow_pipeline_error_rate", (("pipeline", "order"), ("tenant", "")))] == 0.5
    assert got[("workflow_step_error_rate", (("pipeline", "order"), ("step", "charge")))] == 0.5
    assert got[("workflow_event_store_events_total", (("type", "execution.started"),))] == 3.0


async def test_metrics_count_retries_and_step_types() -> None:
    attempts = {"n": 0}

    async def call() -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("try again")
        return "ok"

    flaky = treadle.StepFunction(
        call, name="flaky", timeout=None, compensate=None, step_type="step.http_call",
        policy=treadle.RetryPolicy(retries=2, initial_delay=0.001, jitter=False))

    registry = treadle.Registry()

    @treadle.workflow(name="flaky", registry=registry)
    async def wf(ctx: treadle.Context) -> str:
        result: str = await flaky()
        return result

    metrics = MetricsObserver()
    engine = treadle.Engine(registry=registry, observers=[metrics])
    assert await (await engine.start(wf)).result() == "ok"
    await engine.close()
    value = metrics.registry.get_sample_value
    assert value("workflow_step_retries_total",
                 {"pipeline": "flaky", "step": "flaky", "tenant": ""}) == 2.0
    assert value("workflow_step_duration_seconds_count", {
        "pipeline": "flaky", "step": "flaky", "type": "step.http_call", "tenant": ""}) == 3.0


def test_two_apps_do_not_share_metrics(tmp_path: Path) -> None:
    from treadle.server import create_app

    one = create_app(treadle.Engine(registry=REGISTRY))
    two = create_app(treadle.Engine(registry=REGISTRY))
    assert one.state.treadle.metrics.registry is not two.state.treadle.metrics.registry


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Server]:
    engine = treadle.Engine(f"sqlite:///{tmp_path}/auth.db", registry=REGISTRY)
    srv = start_server(engine, api_keys={"ci": KEY, "ops": "another-key"})
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/executions"),
    ("POST", "/api/v1/executions"),
    ("GET", "/api/v1/executions/x"),
    ("GET", "/api/v1/executions/x/timeline"),
    ("GET", "/api/v1/executions/live"),
    ("GET", "/api/v1/executions/diff?left=a&right=b"),
    ("GET", "/api/v1/dashboard/metrics"),
    ("GET", "/metrics"),
])
def test_auth_is_required_when_keys_are_set(secured: Server, method: str, path: str) -> None:
    with secured.client() as c:
        missing = c.request(method, path, json={"workflow": "greet"})
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_credentials"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = c.request(method, path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_credentials"
        assert "nope" not in wrong.text


def test_keys_work_as_bearer_or_header(secured: Server) -> None:
    with secured.client(Authorization=f"Bearer {KEY}") as bearer:
        ex_id = start(bearer, "greet", "authed")
        assert finished(bearer, ex_id)["output"] == {"greeting": "hello authed"}
        assert bearer.get("/metrics").status_code == 200
    with secured.client(**{"X-API-Key": "another-key"}) as header:
        assert header.get(f"/api/v1/executions/{ex_id}/timeline").status_code == 200
    with secured.client(Authorization="Basic " + KEY) as basic:
        assert basic.get("/api/v1/executions").status_code == 401


def test_open_endpoints_stay_open(secured: Server) -> None:
    with secured.client() as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/openapi.json").status_code == 200


def test_public_metrics_option(tmp_path: Path) -> None:
    from treadle.server import Settings

    srv = start_server(treadle.Engine(registry=REGISTRY), api_keys=[KEY],
                       settings=Settings(public_metrics=True))
    try:
        with srv.client() as c:
            assert c.get("/metrics").status_code == 200
            assert c.get("/api/v1/executions").status_code == 401
    finally:
        srv.stop()


def test_without_keys_everything_is_open(client: httpx.Client) -> None:
    assert client.get("/api/v1/executions").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_empty_keys_are_refused() -> None:
    from treadle.server import create_app

    with pytest.raises(ValueError, match="non-empty"):
        create_app(treadle.Engine(registry=REGISTRY), api_keys=[""])


class TenantAuth:
    """A stand-in for the coming tenant authenticator: the key names the tenant."""

    async def authenticate(self, request: object, token: str | None) -> Principal:
        if token not in ("acme", "globex"):
            raise ApiError(401, "invalid_credentials", "no")
        return Principal(token, kind="api_key", tenant_id=token)


def test_a_tenant_sees_only_its_executions(tmp_path: Path) -> None:
    srv = start_server(treadle.Engine(f"sqlite:///{tmp_path}/t.db", registry=REGISTRY),
                       auth=TenantAuth())
    try:
        with srv.client(Authorization="Bearer acme") as acme, \
                srv.client(Authorization="Bearer globex") as globex:
            mine = start(acme, "greet", "a")
            theirs = start(globex, "greet", "g")
            assert finished(acme, mine)["tenant_id"] == "acme"
            finished(globex, theirs)
            for path in ("", "/events", "/timeline"):
                response = acme.get(f"/api/v1/executions/{theirs}{path}")
                assert response.status_code == 404, path
            assert acme.post(f"/api/v1/executions/{theirs}/cancel").status_code == 404
            assert acme.get("/api/v1/executions/diff",
                            params={"left": mine, "right": theirs}).status_code == 404
            listed = acme.get("/api/v1/executions").json()["items"]
            assert [item["id"] for item in listed] == [mine]
            forced = acme.get("/api/v1/executions", params={"tenant_id": "globex"}).json()
            assert [item["id"] for item in forced["items"]] == [mine]
            other = acme.post("/api/v1/executions",
                              json={"workflow": "greet", "input": "x", "tenant_id": "globex"})
            assert other.status_code == 403
            dashboard = acme.get("/api/v1/dashboard/metrics").json()
            assert dashboard["summary"]["total_executions"] == 1
    finally:
        srv.stop()
