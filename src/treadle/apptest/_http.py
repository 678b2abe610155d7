"""HTTP requests of tests when the serving layer (`treadle.apps`) is not installed: the route
is matched against the config's HTTP triggers and dispatched to its pipeline directly, with
the HTTP trigger's conventions (docs/steps.md, "The HTTP request").

Routes: a pipeline's inline `trigger: {type: http, config: {path, method}}`, and top-level
`triggers:` of type `http` — `{routes: [{path, method, workflow|pipeline}]}` or one route
`{route|path, method, workflow}` — whose target is `pipeline:<name>` (or a pipeline name).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from treadle.errors import ExecutionFailedError

if TYPE_CHECKING:
    from treadle.config.model import AppConfig
    from treadle.engine import Engine
    from treadle.pipelines import Application

EXECUTION_HEADER = "X-Treadle-Execution-Id"
Response = tuple[int, dict[str, str], bytes, str]
"""(status, headers, body, execution id)."""
_JSON = {"Content-Type": "application/json"}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _routes(config: AppConfig) -> Iterator[tuple[str, str, str]]:
    """(METHOD, path pattern, pipeline) of every HTTP route of the config."""
    for name, pipeline in config.pipelines.items():
        trig = pipeline.trigger
        if trig is not None and trig.type == "http" and isinstance(trig.config.get("path"), str):
            yield str(trig.config.get("method") or "GET").upper(), trig.config["path"], name
    for trigger in config.triggers.values():
        if trigger.type != "http":
            continue
        routes = trigger.config.get("routes")
        entries = routes if isinstance(routes, list) else [trigger.config]
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            path = entry.get("path") or entry.get("route")
            target = str(entry.get("pipeline") or entry.get("workflow") or "")
            if isinstance(path, str) and target:
                yield (str(entry.get("method") or "GET").upper(), path,
                       target.removeprefix("pipeline:"))  # fmt: skip


def match(pattern: str, path: str) -> dict[str, str] | None:
    """Path parameters when `path` matches `pattern` (`{id}`, `{rest...}`), else None."""
    want = [s for s in pattern.strip("/").split("/") if s]
    got = [s for s in path.strip("/").split("/") if s]
    params: dict[str, str] = {}
    for i, seg in enumerate(want):
        if seg.startswith("{") and seg.endswith("...}"):
            params[seg[1:-4]] = "/".join(got[i:])
            return params
        if i >= len(got):
            return None
        if seg.startswith("{") and seg.endswith("}"):
            params[seg[1:-1]] = urllib.parse.unquote(got[i])
        elif seg != got[i]:
            return None
    return params if len(got) == len(want) else None


async def dispatch(config: AppConfig, application: Application, engine: Engine, method: str,
                   target: str, headers: Mapping[str, str], body: bytes,
                   timeout: float | None) -> Response:  # fmt: skip
    """Serve one request through the config's HTTP routes."""
    path, _, query_string = target.partition("?")
    allowed = False
    for route_method, pattern, pipeline in _routes(config):
        params = match(pattern, path)
        if params is None:
            continue
        if route_method != method.upper():
            allowed = True
            continue
        return await _run(application, engine, pipeline, method.upper(), path, pattern, params,
                          query_string, headers, body, timeout)  # fmt: skip
    if allowed:
        return 405, {"Content-Type": "text/plain"}, b"Method Not Allowed\n", ""
    return 404, {"Content-Type": "text/plain"}, b"404 page not found\n", ""


async def _run(application: Application, engine: Engine, pipeline: str, method: str, path: str,
               pattern: str, params: dict[str, str], query_string: str,
               headers: Mapping[str, str], body: bytes,
               timeout: float | None) -> Response:  # fmt: skip
    query = urllib.parse.parse_qs(query_string, keep_blank_values=True)
    text = body.decode(errors="replace")
    data: dict[str, Any] = {"method": method, "path": path, **params,
                            **{k: v[0] for k, v in query.items() if v}}  # fmt: skip
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        data["body"] = parsed
    meta = {"_http_request": {"method": method, "path": path, "route_pattern": pattern,
                              "path_params": params, "query": query, "headers": dict(headers),
                              "body": text}}  # fmt: skip
    handle = await application.start_pipeline(engine, pipeline, data, meta=meta)
    try:
        output = await handle.result(timeout)
    except ExecutionFailedError as exc:
        args = exc.error.get("args") or []
        code = args[2] if len(args) > 2 and isinstance(args[2], int) else None  # error_status
        message = str(exc.error.get("message", "failed"))
        if code is not None:
            return code, dict(_JSON), _dumps({"error": message}), handle.id
        return 500, {"Content-Type": "text/plain"}, \
            f"Error triggering workflow: {message}\n".encode(), handle.id
    out = output if isinstance(output, dict) else {}
    if out.get("response_status") is not None:
        raw = out.get("response_body", "")
        payload = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
        hdrs = {str(k): str(v) for k, v in (out.get("response_headers") or {}).items()}
        return int(out["response_status"]), hdrs, payload, handle.id
    execution = await engine.get(handle.id)
    if any(isinstance(s.output, dict) and "_pipeline_output" in s.output
           for s in execution.steps):
        return 200, dict(_JSON), _dumps(output), handle.id
    return 202, dict(_JSON), _dumps({"status": "workflow triggered"}), handle.id


__all__ = ["EXECUTION_HEADER", "dispatch", "match"]
