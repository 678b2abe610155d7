"""Schemathesis against a real server: every operation of `/openapi.json`, with an API key.

Schemathesis generates requests from the OpenAPI document — valid ones and, in its negative
mode, invalid ones (wrong types, missing fields, bodies that are not JSON) — and sends them to
a uvicorn server on 127.0.0.1, with an instance key and again with a tenant's admin key (the
tenant-scoped code paths). Every answer must be no 5xx, have a documented status and content
type, and match the documented response schema.

Bounded for CI: a fixed seed, deterministic generation, at most `MAX_EXAMPLES` per operation
(about 30 s for the whole API on a 2-CPU machine). The server's registry holds one workflow,
which ends by itself in a millisecond, and no queue worker runs: nothing the fuzzer starts
outlives the test, and the server's shutdown stops whatever still runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import treadle
from treadle.server import create_app

from .conftest import Server, start_server, wait_for

KEY = "schemathesis-key"
MAX_EXAMPLES = 25
TENANT_EXAMPLES = 10  # as a tenant's admin key: fewer, the instance sweep did the breadth
START = "POST /api/v1/executions"
STREAMING = "/api/v1/executions/live"  # endless by design: test_live and test_errors cover it
ENDED_OR_ENQUEUED = {"completed", "failed", "cancelled", "pending"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]

# Known defects, by operation: the failures (check code, status) expected until they are fixed,
# and what is wrong. Only those failures are xfailed; any other fails the test. Remove an entry
# once its operation passes.
KNOWN_DEFECTS: dict[str, tuple[set[tuple[str, int]], str]] = {}

REGISTRY = treadle.Registry()


@treadle.step
async def echo_step(value: Any) -> Any:
    return value


@treadle.workflow(name="echo", registry=REGISTRY)
async def echo(ctx: treadle.Context, value: Any = None) -> Any:
    return await echo_step(value)


CONFIG = schemathesis.Config.from_dict({
    "seed": 20261122,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
    # Generating the data is what `too_slow` times, not the server: on a loaded 2-CPU runner
    # it may take longer than Hypothesis likes without saying anything about the API.
    "suppress-health-check": ["too_slow"],
})
schema = schemathesis.openapi.from_dict(
    create_app(treadle.Engine(registry=REGISTRY), api_keys=[KEY]).openapi(), config=CONFIG,
).exclude(path=STREAMING)


@schema.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    """Half the generated starts name the registered workflow (a random name is only ever
    `workflow_not_found`), so that starts, enqueues and idempotent repeats run for real."""
    if (context.operation is not None and context.operation.label == START
            and isinstance(body, dict) and isinstance(body.get("workflow"), str)
            and len(body["workflow"]) % 2 == 0):
        return {**body, "workflow": "echo"}
    return body


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path: Path = tmp_path_factory.mktemp("schemathesis")
    srv = start_server(treadle.Engine(f"sqlite:///{path}/st.db", registry=REGISTRY),
                       api_keys=[KEY])
    try:
        yield srv
    finally:
        srv.stop()


@schema.parametrize()
def test_every_operation(case: schemathesis.Case, live: Server) -> None:
    _call(case, live, KEY)


def _call(case: schemathesis.Case, live: Server, key: str) -> None:
    try:
        case.call_and_validate(base_url=live.url, headers={"Authorization": f"Bearer {key}"},
                               checks=CHECKS)
    except (FailureGroup, Failure) as exc:
        failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
        expected, defect = KNOWN_DEFECTS.get(case.operation.label, (set(), ""))
        if not expected or any((f.code, getattr(f, "status_code", None)) not in expected
                               for f in failures):
            raise
        pytest.xfail(defect)


@pytest.fixture(scope="module")
def tenant_key(live: Server) -> str:
    """An admin API key of a tenant: the same sweep, through the tenant-scoped code paths."""
    with live.client(Authorization=f"Bearer {KEY}") as root:
        made = root.post("/api/v1/tenants", json={"id": "fuzzed"})
        assert made.status_code == 201, made.text
        key = root.post("/api/v1/api-keys", json={"name": "fuzz", "role": "admin",
                                                  "tenant_id": "fuzzed"})
        assert key.status_code == 201, key.text
        secret: str = key.json()["key"]
        return secret


@settings(max_examples=TENANT_EXAMPLES)
@schema.parametrize()
def test_every_operation_as_a_tenant(case: schemathesis.Case, live: Server,
                                     tenant_key: str) -> None:
    _call(case, live, tenant_key)


def test_the_fuzzer_started_bounded_work(live: Server) -> None:
    """Runs after the sweep (file order): starts did reach the engine, and all of them ended
    by themselves (or were only enqueued, for a worker that never comes)."""
    with live.client(Authorization=f"Bearer {KEY}") as client:

        def statuses() -> set[str] | None:
            page = client.get("/api/v1/executions", params={"limit": 1000})
            assert page.status_code == 200, page.text
            seen = {item["status"] for item in page.json()["items"]}
            return seen if seen and seen <= ENDED_OR_ENQUEUED else None

        assert "completed" in wait_for(statuses, 10, "the fuzzed executions to end")
