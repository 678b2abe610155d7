"""The HTTP trigger: a route's request starts a pipeline; its output becomes the response.

As in the Go project (`module/http_trigger.go`):

* **trigger data**: `method`, `path`, the path parameters, the first value of each query
  parameter, the JSON `body` when it is an object, then the route's static `params`;
* **meta**: `_http_request` = `{method, path, route_pattern, path_params, query, headers,
  body}` (`body` the raw text, or `body_base64`), plus `request_id` / `auth_claims` when
  middleware set them;
* **response**: the pipeline's `response_status` (+ `response_headers`, `response_body`, as
  `step.json_response` sets them); else its `_pipeline_output` as JSON with 200; else
  `202 {"status": "workflow triggered"}`. A failed pipeline whose failed step has an
  `error_status` answers that status with `{"error": message}`; any other failure is
  `500 Error triggering workflow: ...` (text, as Go's `http.Error`).

The inline pipeline of a Go route whose handler is an `api.query` / `api.command` module is
answered as those handlers answer: without a `response_status`, `200` with the pipeline's
output as JSON; a failure (other than a step's `error_status`) `500 {"error": message}`.

Every response carries `X-Treadle-Execution-Id`. A pipeline still running after the
timeout (route `timeout`, else the http.server's `writeTimeout`, default 30s) is answered
`202` with its execution id and goes on running. Pipelines start lazily (`Engine.start(lazy=
True)`): one stopped by a shutdown before its first write left nothing behind and is answered
`503` (send it again).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from typing import Any

from treadle.errors import ExecutionCancelledError, ExecutionFailedError, ExecutionNotFoundError
from treadle.modules.web import Handler, HTTPRequest, HTTPResponse, json_response, text_response
from treadle.triggers.base import Dispatcher
from treadle.triggers.spec import HTTPRouteSpec

DEFAULT_TIMEOUT = 30.0
STEP_ERROR = "treadle.pipelines.errors.PipelineStepError"
EXECUTION_HEADER = "X-Treadle-Execution-Id"


def canonical_header(name: str) -> str:
    """Go's canonical header form: `x-hub-signature-256` → `X-Hub-Signature-256`."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def request_meta(request: HTTPRequest) -> dict[str, Any]:
    """The JSON form of a request that steps read as `meta._http_request`."""
    query = urllib.parse.parse_qs(request.query_string, keep_blank_values=True)
    out: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "route_pattern": request.route_pattern,
        "path_params": dict(request.path_params),
        "query": query,
        "headers": {canonical_header(k): v for k, v in request.headers.items()},
        "remote_addr": request.client,
    }
    try:
        out["body"] = request.body.decode()
    except UnicodeDecodeError:
        out["body_base64"] = base64.b64encode(request.body).decode()
    claims = request.state.get("auth_claims")
    if claims is not None:
        out["auth_claims"] = claims
    return out


def trigger_data(request: HTTPRequest, params: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"method": request.method, "path": request.path}
    data.update(request.path_params)
    for key, values in urllib.parse.parse_qs(request.query_string).items():
        if values:
            data[key] = values[0]
    if request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if isinstance(body, dict):
            data["body"] = body
    data.update(params)
    return data


def _status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def response_from(result: Any) -> HTTPResponse | None:
    """The response a pipeline's `response_status` / headers / body describe, or None."""
    if not isinstance(result, dict) or "response_status" not in result:
        return None
    status = _status(result["response_status"])
    if status is None or not 100 <= status <= 599:
        return None
    response = HTTPResponse(status)
    headers = result.get("response_headers")
    if isinstance(headers, dict):
        for key, value in headers.items():
            if isinstance(value, list):
                response.headers.extend((str(key), str(v)) for v in value)
            else:
                response.set_header(str(key), str(value))
    body = result.get("response_body")
    if isinstance(body, str):
        response.body = body.encode()
    return response


class HTTPTriggerRoute:
    """The handler of one trigger route."""

    def __init__(self, spec: HTTPRouteSpec, dispatcher: Dispatcher,
                 timeout: float | None = None) -> None:  # fmt: skip
        self.spec = spec
        self.dispatcher = dispatcher
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT

    async def __call__(self, request: HTTPRequest) -> HTTPResponse:
        spec = self.spec
        request.route_pattern = spec.path
        meta: dict[str, Any] = {"_http_request": request_meta(request)}
        for key in ("request_id", "auth_claims"):
            if key in request.state:
                meta[key] = request.state[key]
        started = time.perf_counter()
        try:
            handle = await self.dispatcher.start(spec.target, trigger_data(request, spec.params),
                                                 meta=meta, lazy=True)  # fmt: skip
        except Exception as exc:
            return text_response(f"Error triggering workflow: {exc}", 500)
        try:
            result = await handle.result(self.timeout)
        except TimeoutError:
            await self.dispatcher.engine.persist(handle.id)  # the id we answer must exist
            response = json_response({"status": "workflow triggered",
                                      "execution_id": handle.id}, 202)  # fmt: skip
        except ExecutionFailedError as exc:
            self.dispatcher.observe(spec.target, "failed", started)
            response = _failure_response(exc, json_errors=bool(spec.cqrs))
        except ExecutionCancelledError as exc:
            self.dispatcher.observe(spec.target, "cancelled", started)
            response = text_response(f"Error triggering workflow: {exc}", 500)
        except ExecutionNotFoundError:
            # Stopped (the server is shutting down) before its first write: it left no trace,
            # so the request can simply be sent again.
            return json_response({"error": "the server stopped before the pipeline ran; "
                                           "retry the request"}, 503)
        else:
            self.dispatcher.observe(spec.target, "completed", started)
            response = response_from(result) or await self._fallback(handle.id, result)
        response.headers.append((EXECUTION_HEADER, handle.id))
        return response

    async def _fallback(self, execution_id: str, result: Any) -> HTTPResponse:
        """No response_status in the output: look for a json_response step's output (the
        output may be a `_pipeline_output`), then the `_pipeline_output` itself."""
        execution = await self.dispatcher.engine.get(execution_id)
        outputs = [s.output for s in execution.steps if isinstance(s.output, dict)]
        for output in reversed(outputs):
            found = response_from(output)
            if found is not None:
                return found
        if self.spec.cqrs:
            return json_response(result, 200)
        if any("_pipeline_output" in o for o in outputs) and result is not None:
            return json_response(result, 200)
        return json_response({"status": "workflow triggered"}, 202)


def _failure_response(exc: ExecutionFailedError, *, json_errors: bool = False) -> HTTPResponse:
    error = exc.error
    args = error.get("args") if isinstance(error.get("args"), list) else None
    if error.get("type") == STEP_ERROR and args and len(args) >= 3:
        status = _status(args[2])
        if status is not None and 400 <= status <= 599:
            return json_response({"error": str(args[0])}, status)
    message = error.get("message") or str(exc)
    if json_errors:
        return json_response({"error": str(message)}, 500)
    return text_response(f"Error triggering workflow: {message}", 500)


def route_handler(spec: HTTPRouteSpec, dispatcher: Dispatcher, middlewares: list[Any],
                  timeout: float | None = None) -> Handler:  # fmt: skip
    """The route's trigger handler wrapped in its middlewares (first listed runs first)."""
    handler: Handler = HTTPTriggerRoute(spec, dispatcher, timeout)
    for middleware in reversed(middlewares):
        handler = middleware.wrap(handler)
    return handler


__all__ = ["EXECUTION_HEADER", "HTTPTriggerRoute", "canonical_header", "request_meta",
           "response_from", "route_handler", "trigger_data"]  # fmt: skip
