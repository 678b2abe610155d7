"""The HTTP binding of a state machine engine, framework-agnostic.

`http_routes(engine)` returns `Route(method, pattern, handler)` values; `handler(request)` is
an async function of a request mapping — `{"method", "path", "path_params", "query",
"headers", "body"}`, the body as text, bytes or already-parsed JSON — returning
`(status, body)` with a JSON-serialisable body. The serving layer mounts them.

| method | pattern (under the prefix) | |
| --- | --- | --- |
| GET | `/definitions` | the definitions (Go YAML shape) |
| GET | `/instances?workflowType=&state=&limit=` | `{instances, count}` |
| POST | `/instances` | create: `{workflowType, id?, data?}` → 201 |
| GET | `/instances/{id}` | the instance and the events it accepts now |
| GET | `/instances/{id}/history` | `{history}` |
| POST, PUT | `/instances/{id}/transition` | `{transition \\| event, data?}` → the result |

Errors are `{"error": message}`: 400 bad request, 404 unknown instance or definition,
409 id taken or a lost race (retry), 422 the event is not valid now or a hook rejected it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from treadle.errors import NotSerializableError
from treadle.statemachine.engine import StateMachineEngine
from treadle.statemachine.errors import (
    DefinitionError,
    HookError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidTransitionError,
    StateMachineError,
    TransitionConflictError,
)

Request = Mapping[str, Any]
Response = tuple[int, Any]
Handler = Callable[[Request], Awaitable[Response]]

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (InstanceNotFoundError, 404),
    (DefinitionError, 404),
    (InstanceExistsError, 409),
    (TransitionConflictError, 409),
    (InvalidTransitionError, 422),
    (HookError, 422),
)


@dataclass(frozen=True, slots=True)
class Route:
    """One route: `{name}` segments of `pattern` arrive in `request["path_params"]`."""

    method: str
    pattern: str
    handler: Handler


class BadRequest(Exception):
    pass


def _body(request: Request) -> dict[str, Any]:
    body = request.get("body")
    if body is None or body in ("", b""):
        return {}
    if isinstance(body, bytes | bytearray):
        body = body.decode()
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, Mapping):
        raise BadRequest("the body must be a JSON object")
    return dict(body)


def _query(request: Request, name: str) -> str | None:
    value = (request.get("query") or {}).get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value in (None, "") else str(value)


def _guard(fn: Callable[[Request], Awaitable[Response]]) -> Handler:
    async def handler(request: Request) -> Response:
        try:
            return await fn(request)
        except (BadRequest, NotSerializableError) as exc:
            return 400, {"error": str(exc)}
        except StateMachineError as exc:
            for kind, status in _STATUS:
                if isinstance(exc, kind):
                    return status, {"error": str(exc), "type": type(exc).__name__}
            return 500, {"error": str(exc), "type": type(exc).__name__}

    handler.__qualname__ = getattr(fn, "__qualname__", "handler")
    return handler


def http_routes(engine: StateMachineEngine, prefix: str | None = None) -> list[Route]:
    """The routes of `engine`, under `prefix` (default `/api/v1/statemachines/<name>`)."""
    base = (f"/api/v1/statemachines/{engine.name}" if prefix is None else prefix).rstrip("/")

    def path_id(request: Request) -> str:
        return str((request.get("path_params") or {}).get("id", ""))

    async def definitions(request: Request) -> Response:
        defs = [engine.definitions[n].to_json() for n in sorted(engine.definitions)]
        return 200, {"definitions": defs}

    async def list_instances(request: Request) -> Response:
        limit = _query(request, "limit")
        if limit is not None and not limit.isdigit():
            raise BadRequest("limit must be a non-negative integer")
        rows = await engine.list(_query(request, "workflowType"), _query(request, "state"),
                                 None if limit is None else int(limit))  # fmt: skip
        return 200, {"instances": [i.to_json() for i in rows], "count": len(rows)}

    async def create(request: Request) -> Response:
        body = _body(request)
        kind = body.get("workflowType") or body.get("workflow_type")
        if not isinstance(kind, str) or not kind:
            raise BadRequest("workflowType is required")
        data = body.get("data") or {}
        if not isinstance(data, Mapping):
            raise BadRequest("data must be an object")
        ident = body.get("id") or body.get("instanceId")
        instance = await engine.create_instance(kind, None if ident is None else str(ident),
                                                data)  # fmt: skip
        return 201, instance.to_json()

    async def get(request: Request) -> Response:
        instance = await engine.get(path_id(request))
        out = instance.to_json()
        definition = engine.definitions.get(instance.workflow_type)
        out["availableTransitions"] = ([] if definition is None
                                       else definition.events_from(instance.current_state))
        return 200, out

    async def history(request: Request) -> Response:
        entries = await engine.history(path_id(request))
        return 200, {"history": [e.to_json() for e in entries]}

    async def transition(request: Request) -> Response:
        body = _body(request)
        event = body.get("transition") or body.get("event")
        if not isinstance(event, str) or not event:
            raise BadRequest("transition (or event) is required")
        data = body.get("data") or {}
        if not isinstance(data, Mapping):
            raise BadRequest("data must be an object")
        result = await engine.transition(path_id(request), event, data)
        return 200, result.to_json()

    return [
        Route("GET", f"{base}/definitions", _guard(definitions)),
        Route("GET", f"{base}/instances", _guard(list_instances)),
        Route("POST", f"{base}/instances", _guard(create)),
        Route("GET", f"{base}/instances/{{id}}", _guard(get)),
        Route("GET", f"{base}/instances/{{id}}/history", _guard(history)),
        Route("POST", f"{base}/instances/{{id}}/transition", _guard(transition)),
        Route("PUT", f"{base}/instances/{{id}}/transition", _guard(transition)),
    ]


__all__ = ["Handler", "Request", "Response", "Route", "http_routes"]
