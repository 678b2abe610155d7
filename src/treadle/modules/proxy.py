"""Reverse proxies: http.simple_proxy, reverseproxy and http.proxy.

The Go project has two: its own `SimpleProxy` (`http.simple_proxy`: path prefix -> backend
URL, a handler that `workflows: http: routes:` name) and the CrisisTextLine/modular
`reverseproxy` module, which both `reverseproxy` and `http.proxy` load and which reads the
application's top-level `reverseproxy:` section (backends, chi route patterns, a default
backend, per-backend path and header rewriting).

Both forward with one pooled `httpx.AsyncClient` per module (`Forwarder`), the way Go's
`httputil.ReverseProxy` does: method, path, query, body and end-to-end headers go to the
backend, hop-by-hop headers (`Connection` and the ones it names, `Keep-Alive`,
`Transfer-Encoding`, ...) do not; the client's address is appended to `X-Forwarded-For`, and
`X-Forwarded-Host`/`X-Forwarded-Proto` say what the client asked for; the original `Host`
header is kept (Go's default). The backend's status, headers (every `Set-Cookie`) and body
come back unchanged — a gzipped body stays gzipped. Responses are read whole, up to a limit
(`maxResponseBytes`, 10 MiB by default), and each request has a deadline covering the
connection, the request and the whole response.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from treadle.modules.base import BuildContext, Module
from treadle.modules.handlers import go_json
from treadle.modules.registry import register
from treadle.modules.web import Handler, HTTPRequest, HTTPResponse, text_response

logger = logging.getLogger("treadle.proxy")

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RESPONSE = 10 * 1024 * 1024

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
})  # fmt: skip
"""Headers that belong to one connection (RFC 9110 7.6.1), never forwarded."""

_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"})


class BackendError(Exception):
    """A backend could not be reached or did not answer in time; `kind` is `unavailable`,
    `timeout` or `too_large`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Backend:
    """Where requests go: an absolute http(s) URL, maybe with a base path and query."""

    name: str
    scheme: str
    netloc: str
    path: str
    query: str

    @classmethod
    def parse(cls, name: str, url: Any, what: str) -> Backend:
        if not isinstance(url, str) or not url.strip():
            raise ValueError(f"{what} must be a URL string like 'http://host:8080', "
                             f"not {url!r}")  # fmt: skip
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{what} must be an http:// or https:// URL with a host, "
                             f"not {url!r}")  # fmt: skip
        return cls(name, parts.scheme, parts.netloc, parts.path, parts.query)

    @property
    def host(self) -> str:
        """host:port without credentials (for messages and `use_backend`)."""
        return self.netloc.rpartition("@")[2]

    def url(self, raw_path: str, query: str) -> str:
        """Go's `NewSingleHostReverseProxy` target: the paths joined with one slash, the
        backend's query first."""
        joined = _join(self.path, raw_path)
        both = "&".join(q for q in (self.query, query) if q)
        return f"{self.scheme}://{self.netloc}{joined}" + (f"?{both}" if both else "")


def _join(a: str, b: str) -> str:
    """Go's `singleJoiningSlash`."""
    if a.endswith("/") and b.startswith("/"):
        return a + b[1:]
    if not a.endswith("/") and not b.startswith("/"):
        return f"{a}/{b}"
    return a + b


@dataclass(slots=True)
class Rewrite:
    """What a backend changes in the forwarded request (modular's `header_rewriting`)."""

    host: str | None = None
    """The Host header to send; None keeps the client's."""
    set_headers: dict[str, str] = field(default_factory=dict)
    remove_headers: tuple[str, ...] = ()


def _connection_tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


def outgoing_headers(request: HTTPRequest, rewrite: Rewrite | None = None
                     ) -> list[tuple[bytes, bytes]]:  # fmt: skip
    """The headers sent to the backend (see the module docs)."""
    drop = HOP_BY_HOP | _connection_tokens(request.header("connection")) | _FORWARDED
    drop |= {"content-length"}  # recomputed for the body sent
    out = {k: v for k, v in request.headers.items() if k not in drop}
    prior = request.header("x-forwarded-for")
    if request.client:
        out["x-forwarded-for"] = f"{prior}, {request.client}" if prior else request.client
    elif prior:
        out["x-forwarded-for"] = prior
    if request.header("host"):
        out["x-forwarded-host"] = request.headers["host"]
    out["x-forwarded-proto"] = request.scheme or "http"
    if rewrite is not None:
        if rewrite.host:
            out["host"] = rewrite.host
        for name, value in rewrite.set_headers.items():
            out[name.lower()] = value
        for name in rewrite.remove_headers:
            out.pop(name.lower(), None)
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]


class Forwarder:
    """Sends requests to backends over one connection pool (created on first use in the
    running loop, closed by `close`)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE) -> None:  # fmt: skip
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            from treadle.errors import require

            httpx = require("httpx", "http")
            client = httpx.AsyncClient(timeout=self.timeout or None, follow_redirects=False,
                                       trust_env=False)  # fmt: skip
            for name in list(client.headers.keys()):
                del client.headers[name]  # no default User-Agent / Accept-Encoding
            self._client = client
        return self._client

    async def forward(self, request: HTTPRequest, backend: Backend, raw_path: str,
                      rewrite: Rewrite | None = None) -> HTTPResponse:  # fmt: skip
        """The backend's answer to `request` sent to `raw_path` on `backend`; BackendError
        when it cannot be reached, is too slow or answers too much."""
        import httpx

        client = self._http()
        url = backend.url(raw_path, request.query_string)
        outgoing = client.build_request(request.method, url,
                                        headers=outgoing_headers(request, rewrite),
                                        content=request.body)  # fmt: skip
        try:
            async with asyncio.timeout(self.timeout or None):
                response = await client.send(outgoing, stream=True)
                try:
                    body = await self._read(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise BackendError("timeout", f"{backend.host} did not answer within "
                               f"{self.timeout:g}s") from exc  # fmt: skip
        except httpx.HTTPError as exc:
            raise BackendError("unavailable", f"{backend.host}: {type(exc).__name__}: "
                               f"{exc or 'connection failed'}") from exc  # fmt: skip
        headers = _incoming_headers(response.headers.raw, head=request.method == "HEAD")
        return HTTPResponse(response.status_code, headers, body)

    async def _read(self, response: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():  # as sent: a gzipped body stays gzipped
            size += len(chunk)
            if size > self.max_response_bytes:
                raise BackendError("too_large", f"the backend's response is larger than "
                                   f"{self.max_response_bytes} bytes")  # fmt: skip
            chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _incoming_headers(raw: list[tuple[bytes, bytes]], *, head: bool = False,
                      ) -> list[tuple[str, str]]:  # fmt: skip
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
    named = set()
    for key, value in headers:
        if key.lower() == "connection":
            named |= _connection_tokens(value)
    drop = HOP_BY_HOP | named
    if not head:  # the server sets it for the body sent; a HEAD keeps the backend's
        drop = drop | {"content-length"}
    return [(k, v) for k, v in headers if k.lower() not in drop]


def _timeout(config: dict[str, Any], *keys: str) -> float:
    from treadle.steps._durations import parse_duration

    for key in keys:
        value = config.get(key)
        if value not in (None, ""):
            return parse_duration(value, key)
    return DEFAULT_TIMEOUT


def _max_bytes(config: dict[str, Any], key: str) -> int:
    value = config.get(key, DEFAULT_MAX_RESPONSE)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive number of bytes, not {value!r}")
    return value


def _log(module: str, request: HTTPRequest, exc: BackendError) -> None:
    logger.warning("proxy %s: %s %s: %s", module, request.method, request.path, exc)


# -- http.simple_proxy ----------------------------------------------------------------------


class SimpleProxy(Module):
    """Go's SimpleProxy: the longest matching path prefix picks the backend."""

    type = "http.simple_proxy"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        targets = config.get("targets") or {}
        if not isinstance(targets, dict):
            raise ValueError("targets must be a mapping of path prefix -> backend URL")
        self.targets: dict[str, Backend] = {}
        for prefix, url in targets.items():
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise ValueError(f"targets: prefix {prefix!r} must start with '/'")
            self.targets[prefix] = Backend.parse(prefix, url, f"targets.{prefix}")
        self.prefixes = sorted(self.targets, key=len, reverse=True)
        self.strip_prefix = bool(config.get("stripPrefix", False))
        self.forwarder = Forwarder(_timeout(config, "timeout"),
                                   _max_bytes(config, "maxResponseBytes"))  # fmt: skip

    def backend_for(self, path: str) -> tuple[str, Backend] | None:
        for prefix in self.prefixes:
            if path.startswith(prefix):
                return prefix, self.targets[prefix]
        return None

    async def handle_http(self, request: HTTPRequest) -> HTTPResponse:
        found = self.backend_for(request.path)
        if found is None:
            return text_response("no backend configured for path", 502)
        prefix, backend = found
        raw = request.raw_path or urllib.parse.quote(request.path)
        if self.strip_prefix:
            raw = _strip(raw, request.path, prefix)
        try:
            return await self.forwarder.forward(request, backend, raw)
        except BackendError as exc:
            _log(self.name, request, exc)
            error = "backend timeout" if exc.kind == "timeout" else (
                "backend response too large" if exc.kind == "too_large" else
                "backend unavailable")  # fmt: skip
            body = go_json({"backend": backend.host, "error": error, "path": request.path})
            status = 504 if exc.kind == "timeout" else 502
            return HTTPResponse(status, [("Content-Type", "application/json")], body)

    async def stop(self) -> None:
        await self.forwarder.close()


def _strip(raw: str, path: str, prefix: str) -> str:
    """`raw` without `prefix` (matched on the decoded `path`), always starting with `/`."""
    rest = raw[len(prefix):] if raw.startswith(prefix) else urllib.parse.quote(
        path[len(prefix):])  # fmt: skip
    return rest if rest.startswith("/") else "/" + rest


_DURATION = {"type": ["string", "number"]}
_MAX_BYTES = {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_RESPONSE}


@register(
    "http.simple_proxy",
    category="http",
    provides=("http.handler",),
    doc="""
A reverse proxy, as the Go project's SimpleProxy: `targets` maps path prefixes to backend
URLs and the longest prefix the request path starts with picks the backend (a plain string
prefix, as in Go: `/api` also matches `/apiary`). It is an HTTP handler: the routes of a
`workflows: http:` section that name it (`handler: <name>`) are forwarded — the full
request path by default, appended to the backend URL's path (Go's
`NewSingleHostReverseProxy`); `stripPrefix: true` (a Treadle addition) removes the matched
prefix first. A path no prefix matches answers `502 no backend configured for path`.

Forwarding: method, query, body and end-to-end headers as received, hop-by-hop headers
dropped, `X-Forwarded-For` appended, `X-Forwarded-Host`/`-Proto` set, the client's `Host`
kept; the backend's status, headers and body returned as they are. A backend that cannot
be reached answers `502` with Go's JSON `{"backend":"host:port","error":"backend
unavailable","path":"/..."}`; one slower than `timeout` (default 30s; the Go module has
none) `504` with `"error":"backend timeout"`; a response over `maxResponseBytes` `502`
with `"error":"backend response too large"`.
""",
    schema={
        "type": "object",
        "properties": {
            "targets": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Path prefix -> backend URL (`http://host:port`)."},
            "stripPrefix": {"type": "boolean", "default": False,
                            "description": "Remove the matched prefix before forwarding."},
            "timeout": {**_DURATION, "default": "30s",
                        "description": "Deadline of one forwarded request (Go duration or "
                                       "seconds)."},
            "maxResponseBytes": {**_MAX_BYTES,
                                 "description": "Largest backend response passed on."},
        },
    },
    example="""
- name: api-proxy
  type: http.simple_proxy
  config:
    targets:
      /api/users: "http://users:8080"
      /api/orders: "http://orders:8080"
""",
)
def _simple_proxy(name: str, config: dict[str, Any], ctx: BuildContext) -> SimpleProxy:
    return SimpleProxy(name, config)


# -- reverseproxy / http.proxy -----------------------------------------------------------------

SUPPORTED_KEYS = ("backend_services", "routes", "default_backend", "composite_routes",
                  "backend_configs", "request_timeout", "timeout", "forward_headers",
                  "max_response_bytes")  # fmt: skip
"""Keys of modular's `ReverseProxyConfig` (plus the Go examples' `timeout` and
`forward_headers`, and `max_response_bytes`) that Treadle reads; any other is an error."""

_HOSTNAME_MODES = ("preserve_original", "use_backend", "use_custom")


def chi_pattern(pattern: str) -> str:
    """A chi route pattern as a ServeMux one: `/api/*` -> `/api/` (everything below),
    `/*` -> `/`, `/users/{id}` as is, an exact path ending in `/` -> `.../{$}`."""
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ValueError(f"route pattern {pattern!r} must start with '/'")
    if pattern.endswith("/*"):
        pattern = pattern[:-1]
    elif pattern.endswith("*") and "*" not in pattern[:-1]:
        raise ValueError(f"route pattern {pattern!r}: a wildcard must be a whole segment "
                         "(`/api/*`)")  # fmt: skip
    elif pattern.endswith("/") and pattern != "/":
        pattern += "{$}"
    if "*" in pattern:
        raise ValueError(f"route pattern {pattern!r}: `*` is only supported at the end")
    if any(":" in part for part in pattern.split("{")[1:]):
        raise ValueError(f"route pattern {pattern!r}: regular-expression parameters "
                         "(`{id:[0-9]+}`) are not supported")  # fmt: skip
    return pattern


@dataclass(slots=True)
class _BackendPlan:
    backend: Backend
    strip: str = ""
    prefix: str = ""
    rewrite: Rewrite = field(default_factory=Rewrite)


class ReverseProxy(Module):
    """The modular reverseproxy module: routes to named backends, registered on a router."""

    type = "reverseproxy"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        unknown = sorted(k for k in config if k not in SUPPORTED_KEYS)
        if unknown:
            raise ValueError(f"reverseproxy keys not supported by Treadle: "
                             f"{', '.join(unknown)} (supported: {', '.join(SUPPORTED_KEYS)})")
        self.backends = self._backends(config)
        self.routes: dict[str, str] = {}
        """ServeMux pattern -> backend id."""
        for pattern, backend in _mapping(config, "routes").items():
            self._route(f"routes.{pattern}", pattern, backend)
        for key, spec in _mapping(config, "composite_routes").items():
            if not isinstance(spec, dict):
                raise ValueError(f"composite_routes.{key} must be a mapping")
            names = spec.get("backends") or []
            if not isinstance(names, list) or len(names) != 1:
                raise ValueError(f"composite_routes.{key}: only a single backend is supported "
                                 "(responses of several backends are not combined)")
            self._route(f"composite_routes.{key}", spec.get("pattern") or key, names[0])
        default = config.get("default_backend")
        if default:
            self._route("default_backend", "/*", default)
        self.forwarder = Forwarder(_timeout(config, "request_timeout", "timeout"),
                                   _max_bytes(config, "max_response_bytes"))  # fmt: skip
        self.router_name = ""

    def _backends(self, config: dict[str, Any]) -> dict[str, _BackendPlan]:
        services = _mapping(config, "backend_services")
        details = _mapping(config, "backend_configs")
        out: dict[str, _BackendPlan] = {}
        for bid in [*services, *(b for b in details if b not in services)]:
            extra = details.get(bid) or {}
            if not isinstance(extra, dict):
                raise ValueError(f"backend_configs.{bid} must be a mapping")
            url = extra.get("url") or services.get(bid)
            where = f"backend_configs.{bid}.url" if extra.get("url") else f"backend_services.{bid}"
            plan = _BackendPlan(Backend.parse(bid, url, where))
            unknown = sorted(set(extra) - {"url", "path_rewriting", "header_rewriting"})
            if unknown:
                raise ValueError(f"backend_configs.{bid}: not supported by Treadle: "
                                 f"{', '.join(unknown)}")  # fmt: skip
            paths = extra.get("path_rewriting") or {}
            bad = sorted(set(paths) - {"strip_base_path", "base_path_rewrite"})
            if bad:
                raise ValueError(f"backend_configs.{bid}.path_rewriting: not supported by "
                                 f"Treadle: {', '.join(bad)}")  # fmt: skip
            plan.strip = str(paths.get("strip_base_path") or "")
            plan.prefix = str(paths.get("base_path_rewrite") or "")
            plan.rewrite = _header_rewrite(bid, extra.get("header_rewriting") or {}, plan.backend)
            out[bid] = plan
        if not out:
            raise ValueError("reverseproxy needs backend_services (id -> URL)")
        return out

    def _route(self, where: str, pattern: Any, backend: Any) -> None:
        if not isinstance(backend, str) or backend not in self.backends:
            known = ", ".join(sorted(self.backends))
            if isinstance(backend, str) and "," in backend:
                raise ValueError(f"{where}: backend groups ({backend!r}) are not supported")
            raise ValueError(f"{where}: unknown backend {backend!r} (backend_services: {known})")
        self.routes.setdefault(chi_pattern(pattern), backend)

    def http_routes(self) -> list[tuple[str, str, Handler]]:
        return [("", pattern, self._handler(bid)) for pattern, bid in self.routes.items()]

    def _handler(self, bid: str) -> Handler:
        plan = self.backends[bid]

        async def proxy(request: HTTPRequest) -> HTTPResponse:
            raw = request.raw_path or urllib.parse.quote(request.path)
            if plan.strip and raw.startswith(plan.strip):
                raw = raw[len(plan.strip):]
                raw = raw if raw.startswith("/") else "/" + raw
            if plan.prefix:
                raw = _join(plan.prefix, raw)
            try:
                return await self.forwarder.forward(request, plan.backend, raw, plan.rewrite)
            except BackendError as exc:
                _log(self.name, request, exc)
                if exc.kind == "timeout":
                    return text_response("Gateway timeout", 504)
                if exc.kind == "too_large":
                    return text_response("Backend response too large", 502)
                return text_response("Backend service unavailable", 502)

        return proxy

    async def stop(self) -> None:
        await self.forwarder.close()


def _mapping(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a mapping")
    return value


def _header_rewrite(bid: str, spec: Any, backend: Backend) -> Rewrite:
    if not isinstance(spec, dict):
        raise ValueError(f"backend_configs.{bid}.header_rewriting must be a mapping")
    bad = sorted(set(spec) - {"hostname_handling", "custom_hostname", "set_headers",
                              "remove_headers"})  # fmt: skip
    if bad:
        raise ValueError(f"backend_configs.{bid}.header_rewriting: not supported by Treadle: "
                         f"{', '.join(bad)}")  # fmt: skip
    mode = spec.get("hostname_handling") or "preserve_original"
    if mode not in _HOSTNAME_MODES:
        raise ValueError(f"backend_configs.{bid}.header_rewriting.hostname_handling must be "
                         f"one of {', '.join(_HOSTNAME_MODES)}, not {mode!r}")  # fmt: skip
    host = backend.host if mode == "use_backend" else (
        str(spec.get("custom_hostname") or "") or None if mode == "use_custom" else None)
    set_headers = {str(k): str(v) for k, v in (spec.get("set_headers") or {}).items()}
    remove = tuple(str(h) for h in spec.get("remove_headers") or ())
    for text in [*set_headers, *set_headers.values(), host or ""]:
        if not text.isprintable() or not text.isascii():
            raise ValueError(f"backend_configs.{bid}.header_rewriting: {text!r} is not a "
                             "printable ASCII header name or value")  # fmt: skip
    return Rewrite(host, set_headers, remove)


_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_REVERSEPROXY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "backend_services": {**_STRINGS, "description": "Backend id -> base URL."},
        "routes": {**_STRINGS, "description": "chi pattern (`/api/*`, `/health`, "
                                              "`/users/{id}`) -> backend id."},
        "default_backend": {"type": "string",
                            "description": "Backend of every path no route matches (`/*`)."},
        "composite_routes": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {
                "pattern": {"type": "string"},
                "backends": {"type": "array", "items": {"type": "string"}},
                "strategy": {"type": "string"}},
            "additionalProperties": False},
            "description": "Routes to one backend each (combining several is not "
                           "supported)."},
        "backend_configs": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {
                "url": {"type": "string", "description": "Overrides backend_services."},
                "path_rewriting": {"type": "object", "properties": {
                    "strip_base_path": {"type": "string"},
                    "base_path_rewrite": {"type": "string"}}, "additionalProperties": False},
                "header_rewriting": {"type": "object", "properties": {
                    "hostname_handling": {"enum": list(_HOSTNAME_MODES)},
                    "custom_hostname": {"type": "string"},
                    "set_headers": _STRINGS,
                    "remove_headers": {"type": "array", "items": {"type": "string"}}},
                    "additionalProperties": False}},
            "additionalProperties": False},
            "description": "Per-backend URL, path and request-header rewriting."},
        "request_timeout": {**_DURATION, "default": "30s",
                            "description": "Deadline of one forwarded request."},
        "timeout": {**_DURATION, "description": "Read as request_timeout (seconds), as the "
                                                "Go examples write it."},
        "forward_headers": {"type": "array", "items": {"type": "string"},
                            "description": "Accepted and ignored, as by modular: every "
                                           "end-to-end header is forwarded."},
        "max_response_bytes": {**_MAX_BYTES,
                               "description": "Largest backend response passed on."},
    },
}

_REVERSEPROXY_DOC = """
The CrisisTextLine/modular reverse proxy that the Go engine loads for this type. Its config
is the application's top-level `reverseproxy:` section (as in Go; keys in the module's own
`config:` are merged over it). Each `routes` entry (a chi pattern: `/api/*` is everything
below `/api/`, `/health` exactly that path, `{id}` one segment) and `default_backend` (every
other path) is registered on the router (the one the module `dependsOn`, else the first),
for every method; the most specific route wins. The request path is forwarded as received,
appended to the backend URL's path; `backend_configs.<id>.path_rewriting.strip_base_path`
removes a prefix first and `base_path_rewrite` prepends one. `header_rewriting` sets or
removes request headers and picks the Host header (`preserve_original` — the default —,
`use_backend`, `use_custom` with `custom_hostname`).

Forwarding is as for http.simple_proxy (hop-by-hop headers dropped, `X-Forwarded-*` added,
the answer passed through). Errors are modular's plain-text ones: a backend that cannot be
reached `502 Backend service unavailable`, one slower than `request_timeout` (default 30s;
`timeout` in seconds is read too) `504 Gateway timeout`.

Not supported (an error when configured): tenants, circuit breakers, caching, health
checks, metrics and debug endpoints, feature flags, dry runs, response header rewriting,
endpoint-level rewrites, backend groups and composite routes over several backends.
`forward_headers` is accepted and ignored, as modular does. A `default_backend` makes the
application answer every path, so with `treadle serve` it shadows the control plane.
"""

_REVERSEPROXY_EXAMPLE = """
- name: gateway-proxy
  type: reverseproxy
# and at the top level of the file:
# reverseproxy:
#   backend_services:
#     users: "http://users:8080"
#     web: "http://web:3000"
#   routes:
#     "/api/users/*": users
#   default_backend: web
#   request_timeout: 10s
"""


_HTTP_PROXY_DOC = """
The same module as `reverseproxy` (the Go engine loads the CrisisTextLine/modular reverse
proxy for both types): configured by the application's top-level `reverseproxy:` section,
with the same keys, behaviour and limits — see `reverseproxy`.
"""


def _reverse_proxy(name: str, config: dict[str, Any], ctx: BuildContext) -> ReverseProxy:
    section = ctx.sections.get("reverseproxy") or {}
    if not isinstance(section, dict):
        raise ValueError("the top-level reverseproxy section must be a mapping")
    return ReverseProxy(name, {**section, **config})


for _type in ("reverseproxy", "http.proxy"):
    register(
        _type,
        category="http",
        provides=("http.routes",),
        doc=_REVERSEPROXY_DOC if _type == "reverseproxy" else _HTTP_PROXY_DOC,
        schema=_REVERSEPROXY_SCHEMA,
        example=_REVERSEPROXY_EXAMPLE.replace("type: reverseproxy", f"type: {_type}"),
    )(_reverse_proxy)


__all__ = ["HOP_BY_HOP", "Backend", "BackendError", "Forwarder", "ReverseProxy", "SimpleProxy",
           "chi_pattern", "outgoing_headers"]
