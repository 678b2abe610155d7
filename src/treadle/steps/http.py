"""HTTP steps: step.request_parse, step.json_response, step.http_call, step.webhook_verify,
step.delegate.

The HTTP request that triggered a pipeline is in `meta["_http_request"]` (JSON, so it is part
of the journaled execution input):
`{"method", "path", "route_pattern", "path_params", "query", "headers", "body"}` where `body` is
the raw body as text (or `body_base64`). As in the Go project the trigger data also holds
`method`, `path`, the path and query parameters and the parsed JSON `body`.
"""

from __future__ import annotations

import base64
import inspect
import json
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from treadle.engine.current import current_step
from treadle.errors import require
from treadle.steps._context import PipelineContext
from treadle.steps._durations import parse_duration
from treadle.steps.errors import CircuitOpenError, HTTPStatusError, StepFailedError
from treadle.steps.registry import Checker, register


def http_request(ctx: PipelineContext) -> dict[str, Any]:
    """The triggering HTTP request from `meta["_http_request"]` (empty when there is none)."""
    req = ctx.meta.get("_http_request")
    return req if isinstance(req, dict) else {}


def request_header(req: Mapping[str, Any], name: str) -> str | None:
    headers = req.get("headers") or {}
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return str(value[0] if isinstance(value, list) and value else value)
    return None


def raw_body(req: Mapping[str, Any]) -> bytes:
    if isinstance(req.get("body_base64"), str):
        return base64.b64decode(req["body_base64"])
    body = req.get("body")
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def _str_list(schema_doc: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": schema_doc}


# -- step.request_parse ---------------------------------------------------------------------


def _match_pattern(pattern: str, path: str) -> dict[str, str]:
    names = pattern.strip("/").split("/")
    parts = path.strip("/").split("/")
    out: dict[str, str] = {}
    for i, seg in enumerate(names):
        if seg.startswith("{") and seg.endswith("}"):
            name = seg[1:-1]
            if name.endswith("..."):
                out[name[:-3]] = "/".join(parts[i:])
            elif i < len(parts):
                out[name] = parts[i]
    return out


@register(
    "step.request_parse",
    pure=True,
    doc="""
Extracts path parameters, query parameters, headers and the body of the HTTP request that
triggered the pipeline. Path parameters come from the route pattern (`/orders/{id}`); the body
is the trigger's parsed JSON `body`, else the raw request body parsed as JSON or form data.
""",
    schema={
        "type": "object",
        "properties": {
            "path_params": _str_list("Path parameters to extract (output `path_params`)."),
            "query_params": _str_list("Query parameters to extract (output `query`)."),
            "headers": _str_list("Request headers to extract (output `headers`)."),
            "parse_body": {"type": "boolean", "default": False,
                           "description": "Parse the request body (output `body`)."},
        },
        "additionalProperties": False,
    },
    outputs={"path_params": "name → value", "query": "name → value",
             "headers": "name → value", "body": "the parsed body"},
    example="""
- name: parse-request
  type: step.request_parse
  config:
    path_params: [id]
    query_params: [expand]
    parse_body: true
""",
)
async def request_parse(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    req = http_request(ctx)
    output: dict[str, Any] = {}
    if config.get("path_params"):
        known = dict(req.get("path_params") or {})
        if not known and req.get("route_pattern") and req.get("path"):
            known = _match_pattern(str(req["route_pattern"]), str(req["path"]))
        params: dict[str, Any] = {}
        for name in config["path_params"]:
            if name in known:
                params[name] = known[name]
            elif name in ctx.trigger:  # the Go HTTP trigger puts URL params in trigger data
                params[name] = ctx.trigger[name]
        output["path_params"] = params
    if config.get("query_params"):
        query = req.get("query") or {}
        values: dict[str, Any] = {}
        for name in config["query_params"]:
            value = query.get(name, ctx.trigger.get(name) if not req else None)
            if isinstance(value, list):
                value = value[0] if value else None
            if value not in (None, ""):
                values[name] = value
        output["query"] = values
    if config.get("headers"):
        output["headers"] = {n: v for n in config["headers"]
                             if (v := request_header(req, n)) is not None}  # fmt: skip
    if config.get("parse_body"):
        body = _parse_body(req, ctx)
        if body is not None:
            output["body"] = body
    return output


def _parse_body(req: Mapping[str, Any], ctx: PipelineContext) -> Any:
    for source in (ctx.trigger, ctx.current):
        if isinstance(source.get("body"), dict):
            return source["body"]
    raw = raw_body(req)
    if not raw:
        return None
    content_type = (request_header(req, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return {k: v[0] if len(v) == 1 else v
                for k, v in urllib.parse.parse_qs(raw.decode()).items()}  # fmt: skip
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


# -- step.json_response ---------------------------------------------------------------------


@register(
    "step.json_response",
    pure=True,
    doc="""
Ends the pipeline with an HTTP JSON response: `status`, `headers` and a body from `body`
(templates rendered) or from the dotted path `body_from`. The output carries `status` and
`body`, plus `response_status`, `response_headers` and `response_body` (the JSON text), which
the HTTP trigger writes back (the Go project's response rule).
""",
    schema={
        "type": "object",
        "properties": {
            "status": {"type": "integer", "minimum": 100, "maximum": 599, "default": 200,
                       "description": "HTTP status code."},
            "headers": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Extra response headers."},
            "body": {"description": "Response body (any JSON; templates rendered)."},
            "body_from": {"type": "string",
                          "description": "Dotted path of the body (`steps.get.row`)."},
        },
        "additionalProperties": False,
    },
    raw_keys=("body_from",),
    stops=lambda output: True,
    outputs={"status": "the status code", "body": "the body",
             "response_status": "for the HTTP trigger", "response_headers": "for the trigger",
             "response_body": "the body as JSON text"},
    example="""
- name: respond
  type: step.json_response
  config:
    status: 200
    body_from: steps.get-company.row
""",
)
async def json_response(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    status = int(config.get("status") or 200)
    body: Any = None
    if config.get("body_from"):
        body = ctx.lookup(str(config["body_from"]), default=None)
    elif "body" in config:
        body = config["body"]
    headers = {"Content-Type": "application/json", **(config.get("headers") or {})}
    output: dict[str, Any] = {"status": status, "response_status": status,
                              "response_headers": headers}  # fmt: skip
    if body is not None:
        output["body"] = body
        output["response_body"] = json.dumps(body, separators=(",", ":"))
    else:
        output["response_body"] = ""
    if config.get("headers"):
        output["headers"] = dict(config["headers"])
    return output


# -- step.http_call -------------------------------------------------------------------------


class _Breaker:
    """A per-host circuit breaker: opens after `threshold` failures in a row, lets one trial
    call through after `reset` seconds, closes on its success."""

    __slots__ = ("failures", "opened_at")

    def __init__(self) -> None:
        self.failures = 0
        self.opened_at: float | None = None

    def allow(self, reset: float) -> bool:
        if self.opened_at is None:
            return True
        if time.monotonic() - self.opened_at >= reset:
            self.opened_at = time.monotonic()  # half-open: one trial, the rest wait again
            return True
        return False

    def record(self, ok: bool, threshold: int) -> None:
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= threshold:
            self.opened_at = time.monotonic()


_breakers: dict[str, _Breaker] = {}
_ssl: list[Any] = []


def breaker_for(url: str) -> _Breaker:
    """The circuit breaker of `url`'s host (scheme://host:port)."""
    parts = urllib.parse.urlsplit(url)
    return _breakers.setdefault(f"{parts.scheme}://{parts.netloc}", _Breaker())


def reset_breakers() -> None:
    """Close every circuit breaker (for tests)."""
    _breakers.clear()


def _client() -> Any:
    """A client for one call (closed after it); the TLS context is built once per process."""
    httpx = require("httpx", "http")
    if not _ssl:
        _ssl.append(httpx.create_ssl_context())
    return httpx.AsyncClient(follow_redirects=False, verify=_ssl[0])


def _check_http_call(config: dict[str, Any], checker: Checker) -> None:
    for key in ("timeout",):
        if key in config and not str(config[key]).startswith(("{{", "${")):
            try:
                parse_duration(config[key], key)
            except ValueError as exc:
                checker.fail(str(exc), key)
    cb = config.get("circuit_breaker") or {}
    if "timeout" in cb:
        try:
            parse_duration(cb["timeout"], "circuit_breaker.timeout")
        except ValueError as exc:
            checker.fail(str(exc), "circuit_breaker.timeout")


_HTTP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "minLength": 1, "description": "Request URL (templates)."},
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                   "default": "GET", "description": "HTTP method."},
        "headers": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "Request headers (templates)."},
        "body": {"description": "JSON body (templates). Without body or body_from, methods "
                               "other than GET/HEAD send the whole context."},
        "body_from": {"type": "string", "description": "Dotted path of the JSON body."},
        "timeout": {"type": ["string", "number"], "default": "30s",
                    "description": "Request timeout (Go duration)."},
        "error_on_status": {"type": "boolean", "default": True,
                            "description": "Fail the step on a 4xx/5xx response."},
        "idempotency_key": {"type": "string",
                            "description": "Sent as the Idempotency-Key header (templates)."},
        "idempotent": {"type": "boolean", "default": False,
                       "description": "Send an Idempotency-Key even without idempotency_key: "
                                      "the step call's own key (`<execution id>:<position>`), "
                                      "stable across retries and resumes."},
        "idempotency_header": {"type": "string", "default": "Idempotency-Key"},
        "auth": {"type": "object", "description": "{type: bearer, token} or "
                                                 "{type: basic, username, password}."},
        "circuit_breaker": {
            "type": "object",
            "description": "Per-host breaker (on by default).",
            "properties": {
                "enabled": {"type": "boolean", "default": True},
                "failure_threshold": {"type": "integer", "minimum": 1, "default": 5},
                "timeout": {"type": ["string", "number"], "default": "30s",
                            "description": "Time open before a trial call."},
                "fallback": {"type": "object", "description": "{type: static, response: "
                                                             "{status, body}} used when open."},
            },
        },
    },
    "additionalProperties": False,
}


@register(
    "step.http_call",
    doc="""
Makes an outbound HTTP request with httpx. The response is the output: `status_code`, `status`,
`headers` and `body` (parsed JSON, else text). A 4xx/5xx response fails the step unless
`error_on_status: false` (5xx, 408 and 429 failures are retryable with the step's `retry`).
`idempotency_key` (or `idempotent: true`) sends an Idempotency-Key header that stays the same
across retries and resumes. A per-host circuit breaker opens after `failure_threshold`
consecutive failures (transport errors and 5xx) and fails fast — or answers with its static
`fallback` — until `timeout` has passed.
""",
    schema=_HTTP_SCHEMA,
    raw_keys=("body_from",),
    check=_check_http_call,
    outputs={"status_code": "response status", "status": "e.g. `200 OK`",
             "headers": "response headers", "body": "parsed JSON or text"},
    example="""
- name: charge
  type: step.http_call
  retry: {max_attempts: 3, backoff: exponential, initial_delay: 200ms}
  config:
    url: "https://payments.example/charges"
    method: POST
    body: {amount: "{{ .total }}", order: "{{ .order_id }}"}
    idempotency_key: "charge-{{ .order_id }}"
    timeout: 10s
""",
)
async def http_call(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    url = str(config["url"])
    method = str(config.get("method") or "GET").upper()
    headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
    content: bytes | None = None
    if config.get("body_from"):
        content = json.dumps(ctx.lookup(str(config["body_from"]), default=None)).encode()
    elif config.get("body") is not None:
        body = config["body"]
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    elif method not in ("GET", "HEAD"):
        content = json.dumps(ctx.current).encode()
    if content is not None:
        headers.setdefault("Content-Type", "application/json")
    key = config.get("idempotency_key")
    if not key and config.get("idempotent"):
        step = current_step()
        key = step.idempotency_key if step else f"{ctx.meta.get('execution_id', '')}:{ctx.step}"
    if key:
        headers[str(config.get("idempotency_header") or "Idempotency-Key")] = str(key)
    _auth(config.get("auth"), headers)
    cb = config.get("circuit_breaker") or {}
    breaker = breaker_for(url) if cb.get("enabled", True) else None
    threshold = int(cb.get("failure_threshold", 5))
    if breaker is not None and not breaker.allow(parse_duration(cb.get("timeout", "30s"))):
        fallback = cb.get("fallback")
        if isinstance(fallback, dict) and isinstance(fallback.get("response"), dict):
            resp = fallback["response"]
            return {"status_code": resp.get("status", 503), "body": resp.get("body"),
                    "headers": {}, "fallback": True}  # fmt: skip
        raise CircuitOpenError(f"http_call step {ctx.step!r}: circuit open for {url}")
    httpx = require("httpx", "http")
    timeout = parse_duration(config.get("timeout", "30s"), "timeout")
    try:
        async with _client() as client:
            response = await client.request(method, url, headers=headers, content=content,
                                            timeout=timeout)  # fmt: skip
    except httpx.HTTPError as exc:
        if breaker is not None:
            breaker.record(False, threshold)
        raise ConnectionError(f"http_call step {ctx.step!r}: {method} {url} failed: "
                              f"{type(exc).__name__}: {exc}") from exc  # fmt: skip
    if breaker is not None:
        breaker.record(response.status_code < 500, threshold)
    output = _response_output(response)
    if response.status_code >= 400 and config.get("error_on_status", True):
        raise HTTPStatusError(f"http_call step {ctx.step!r}: HTTP {response.status_code}: "
                              f"{response.text[:500]}", response.status_code)  # fmt: skip
    return output


def _auth(auth: Any, headers: dict[str, str]) -> None:
    if not isinstance(auth, dict):
        return
    kind = auth.get("type")
    if kind == "bearer" and auth.get("token"):
        headers["Authorization"] = f"Bearer {auth['token']}"
    elif kind == "basic":
        token = base64.b64encode(f"{auth.get('username', '')}:{auth.get('password', '')}"
                                 .encode()).decode()  # fmt: skip
        headers["Authorization"] = f"Basic {token}"


def _response_output(response: Any) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    for key, value in response.headers.multi_items():
        name = "-".join(p.capitalize() for p in key.split("-"))
        if name in headers:
            prior = headers[name]
            headers[name] = [*prior, value] if isinstance(prior, list) else [prior, value]
        else:
            headers[name] = value
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status_code": response.status_code,
            "status": f"{response.status_code} {response.reason_phrase}".strip(),
            "headers": headers, "body": body}  # fmt: skip


# -- step.delegate --------------------------------------------------------------------------


@register(
    "step.delegate",
    doc="""
Hands the request to a named service module: `await service.handle(action, data)` (or a
plain callable `service(action, data)`), where `data` is the trigger data plus the HTTP
request under `_http_request`. A mapping result is merged into the output.
""",
    schema={
        "type": "object",
        "required": ["service"],
        "properties": {
            "service": {"type": "string", "minLength": 1, "description": "Module name."},
            "action": {"type": "string", "description": "Action passed to the service."},
        },
        "additionalProperties": False,
    },
    outputs={"delegated_to": "the service name", "(result keys)": "the service's result"},
    example="""
- name: legacy
  type: step.delegate
  config: {service: orders-service, action: create}
""",
)
async def delegate(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    name = str(config["service"])
    service = ctx.module(name, "service")
    handle = getattr(service, "handle", None) or (service if callable(service) else None)
    if handle is None:
        raise StepFailedError(f"delegate step {ctx.step!r}: service {name!r} has no handle()")
    data = dict(ctx.trigger)
    if http_request(ctx):
        data["_http_request"] = http_request(ctx)
    result = handle(config.get("action"), data)
    if inspect.isawaitable(result):
        result = await result
    output: dict[str, Any] = {"delegated_to": name}
    if isinstance(result, Mapping):
        output.update(result)
    elif result is not None:
        output["result"] = result
    return output


__all__ = ["breaker_for", "http_request", "raw_body", "request_header", "reset_breakers"]
