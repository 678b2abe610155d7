"""`POST /api/v1/executions` answers the same through its shortcut as through FastAPI's handler.

The start route (`routes/executions._StartRoute`) serves a JSON body that validates without
FastAPI's request machinery and hands everything else to FastAPI's handler. An app with
`dependency_overrides` always takes FastAPI's handler: the same requests to both servers must
get the same statuses and bodies (execution ids and request ids aside).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import treadle
from treadle.server.routes import executions

from .conftest import Server, start_server
from .workflows import REGISTRY

KEY = "shortcut-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON_TYPE = {"Content-Type": "application/json"}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    fast = start_server(treadle.Engine(f"sqlite:///{tmp_path}/fast.db", registry=REGISTRY),
                        api_keys=[KEY])
    slow = start_server(treadle.Engine(f"sqlite:///{tmp_path}/slow.db", registry=REGISTRY),
                        api_keys=[KEY])
    app: Any = slow.uvicorn.config.app
    app.dependency_overrides[executions._may_write] = executions._may_write
    try:
        yield fast, slow
    finally:
        fast.stop()
        slow.stop()


CASES: list[tuple[str, dict[str, str], bytes]] = [
    ("valid", {**AUTH, **JSON_TYPE}, b'{"workflow": "greet", "input": "ann"}'),
    ("args", {**AUTH, **JSON_TYPE}, b'{"workflow": "pair", "args": [1, 2]}'),
    ("+json", {**AUTH, "Content-Type": "application/vnd.x+json; charset=utf-8"},
     b'{"workflow": "greet", "input": "ann"}'),
    ("idempotent", {**AUTH, **JSON_TYPE},
     b'{"workflow": "greet", "input": "ann", "idempotency_key": "k-1"}'),
    ("idempotent again", {**AUTH, **JSON_TYPE},
     b'{"workflow": "greet", "input": "ann", "idempotency_key": "k-1"}'),
    ("idempotency conflict", {**AUTH, **JSON_TYPE},
     b'{"workflow": "greet", "input": "bob", "idempotency_key": "k-1"}'),
    ("unknown workflow", {**AUTH, **JSON_TYPE}, b'{"workflow": "nope"}'),
    ("wrong arity", {**AUTH, **JSON_TYPE}, b'{"workflow": "pair", "args": [1]}'),
    ("invalid", {**AUTH, **JSON_TYPE}, b'{"workflow": 5, "extra": true}'),
    ("input and args", {**AUTH, **JSON_TYPE}, b'{"workflow": "greet", "input": 1, "args": []}'),
    ("NaN", {**AUTH, **JSON_TYPE}, b'{"workflow": "greet", "input": NaN}'),
    ("malformed", {**AUTH, **JSON_TYPE}, b'{"workflow": '),
    ("empty", {**AUTH, **JSON_TYPE}, b""),
    ("not an object", {**AUTH, **JSON_TYPE}, b"[1, 2]"),
    ("text/plain", {**AUTH, "Content-Type": "text/plain"}, b'{"workflow": "greet"}'),
    ("no content type", AUTH, b'{"workflow": "greet", "input": "ann"}'),
    ("no key", JSON_TYPE, b'{"workflow": "greet", "input": "ann"}'),
    ("wrong key", {"Authorization": "Bearer nope", **JSON_TYPE}, b'{"workflow": "greet"}'),
    ("no key, malformed", JSON_TYPE, b"{"),
]


def _comparable(body: Any) -> Any:
    """The body without what differs by nature between two servers."""
    if isinstance(body, dict):
        return {k: _comparable(v) for k, v in body.items()
                if k not in ("id", "execution_id", "request_id")}
    if isinstance(body, list):
        return [_comparable(v) for v in body]
    return body


def test_the_shortcut_answers_like_fastapi(
    pair: tuple[Server, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = pair
    looked_at: list[bytes] = []
    json_model = executions._json_model

    def spy(model: Any, content_type: str | None, raw: bytes) -> Any:
        looked_at.append(raw)
        return json_model(model, content_type, raw)

    monkeypatch.setattr(executions, "_json_model", spy)
    with fast.client() as f, slow.client() as s:
        for name, headers, content in CASES:
            got = f.post("/api/v1/executions", content=content, headers=headers)
            want = s.post("/api/v1/executions", content=content, headers=headers)
            assert got.status_code == want.status_code, (name, got.text, want.text)
            assert _comparable(got.json()) == _comparable(want.json()), (name, got.text,
                                                                         want.text)
            assert ("location" in got.headers) == ("location" in want.headers), name
    assert looked_at == [content for _, _, content in CASES]  # the fast server's requests only
