"""Schemathesis-style: random requests to every operation of `/openapi.json`; never a 5xx.

Parameters and bodies are drawn from the spec's parameter names with hostile values (control
characters, huge numbers, wrong types, deep JSON), plus well-formed bodies that reach deeper.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import treadle
from treadle.server import create_app

from .conftest import Server, start_server
from .workflows import REGISTRY

SPEC = create_app(treadle.Engine(registry=REGISTRY)).openapi()
STREAMING = {"/api/v1/executions/live"}  # endless by design; fuzzed by test_errors
OPERATIONS = [(path, method, op) for path, ops in SPEC["paths"].items() if path not in STREAMING
              for method, op in ops.items()]

texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "1e309", "nan", "null", "true", "greet", "order", "24h",
                     "1.5:abc", "x" * 300, "\u0000", "../..", "%00", "2026-01-01T00:00:00Z"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
    | st.just("\ud800"),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)
start_bodies = st.fixed_dictionaries(
    {"workflow": st.sampled_from(["greet", "order", "pair", "fifty", "nope"])},
    optional={"input": json_values, "args": st.lists(json_values, max_size=3),
              "idempotency_key": texts, "metadata": json_values, "tenant_id": texts,
              "priority": json_values, "version": texts},
)
bodies = st.one_of(st.none(), json_values, start_bodies,
                   st.fixed_dictionaries({"name": texts}, optional={"payload": json_values}),
                   st.fixed_dictionaries({}, optional={"reason": json_values,
                                                       "idempotency_key": json_values}))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path: Path = tmp_path_factory.mktemp("fuzz")
    srv = start_server(treadle.Engine(f"sqlite:///{path}/fuzz.db", registry=REGISTRY))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS,
                         ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_request_is_a_server_error(
    fuzzed: Server, path: str, method: str, op: dict[str, Any], data: st.DataObject
) -> None:
    params: dict[str, str] = {}
    url = path
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = data.draw(texts.filter(bool), label=param["name"])
            url = url.replace("{" + param["name"] + "}", quote(value, safe=""))
        elif param["in"] == "query" and data.draw(st.booleans()):
            params[param["name"]] = data.draw(texts, label=param["name"])
    kwargs: dict[str, Any] = {"params": params}
    if method in ("post", "put", "patch"):
        body = data.draw(bodies, label="body")
        if body is not None:  # ASCII-escaped, so lone surrogates reach the server
            kwargs["content"] = json.dumps(body).encode()
            kwargs["headers"] = {"content-type": "application/json"}
    with fuzzed.client() as client:
        response = client.request(method.upper(), url, **kwargs)
    assert response.status_code < 500, (method, url, kwargs, response.text)
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}
