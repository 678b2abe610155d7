"""HTTP modules: http.server, http.router, static.fileserver."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Any

from treadle.modules.base import BuildContext, Module
from treadle.modules.registry import register
from treadle.modules.web import Handler, HTTPRequest, HTTPResponse, Router, text_response

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def parse_address(address: str | None) -> tuple[str, int]:
    """`(host, port)` from a Go listen address: `:8080` (every interface, as in Go),
    `127.0.0.1:9000`, `[::1]:8080`, `localhost`; empty means 127.0.0.1:8080."""
    text = (address or "").strip()
    if not text:
        return DEFAULT_HOST, DEFAULT_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.isdigit():
        host, port_text = "", text
    else:
        host, port_text = text, ""
    if port_text and not port_text.isdigit():
        raise ValueError(f"address {address!r}: port {port_text!r} is not a number")
    port = int(port_text) if port_text else DEFAULT_PORT
    if not 0 <= port <= 65535:
        raise ValueError(f"address {address!r}: port {port} is out of range")
    return host or "0.0.0.0", port


def _duration(config: dict[str, Any], key: str) -> float | None:
    from treadle.steps._durations import parse_duration

    value = config.get(key)
    return None if value in (None, "") else parse_duration(value, key)


class HTTPServer(Module):
    """Where the application's routes are served (`treadle serve` listens here)."""

    type = "http.server"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.address = str(config.get("address") or "")
        self.host, self.port = parse_address(self.address)
        self.read_timeout = _duration(config, "readTimeout")
        self.write_timeout = _duration(config, "writeTimeout")
        self.idle_timeout = _duration(config, "idleTimeout")


_DURATION = {"type": ["string", "number"]}


@register(
    "http.server",
    category="http",
    provides=("http.server",),
    doc="""
The HTTP server the application's routes are served on. `treadle serve` listens on its
`address` (Go form: `:8080` is every interface, `127.0.0.1:8080` one; without an http.server
module the default is 127.0.0.1:8080); `--host`/`--port` override it. `writeTimeout` bounds
how long an HTTP-triggered pipeline may take before the request is answered `202` with the
execution id (it keeps running); `idleTimeout` is the keep-alive timeout.

An application may have several servers (a public API and an admin port, say): each listens
on its own address and serves the routes of its routers — a router belongs to the server
its `workflows: http:` section names (`server:`), else to the server it `dependsOn`, else
to the first server. The first server also carries the control plane, and `--host`/`--port`
apply to it only. Two servers cannot share a port.
""",
    schema={
        "type": "object",
        "properties": {
            "address": {"type": "string",
                        "description": "Host:port to listen on (`:8080` is every interface, "
                                       "`127.0.0.1:9000` one); absent: 127.0.0.1:8080."},
            "readTimeout": {**_DURATION, "description": "Accepted for compatibility."},
            "writeTimeout": {**_DURATION, "default": "30s",
                             "description": "Longest wait for an HTTP-triggered pipeline."},
            "idleTimeout": {**_DURATION, "description": "Keep-alive timeout."},
        },
    },
    example="""
- name: web
  type: http.server
  config:
    address: ":${PORT:-8080}"
""",
)
def _http_server(name: str, config: dict[str, Any], ctx: BuildContext) -> HTTPServer:
    return HTTPServer(name, config)


class HTTPRouter(Module):
    """Routes requests to handlers (Go ServeMux semantics, see `treadle.modules.web`)."""

    type = "http.router"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.router = Router()
        self.global_middlewares: list[Any] = []

    def add_route(self, method: str, path: str, handler: Handler, owner: str = "") -> bool:
        """Register a route; False when the same method and path was already there."""
        return self.router.add(method, path, handler, owner) is not None


@register(
    "http.router",
    category="http",
    provides=("http.router",),
    doc="""
Routes requests by method and path, with the patterns and precedence of Go's ServeMux
(`{id}`, `{rest...}`, most specific wins, 405 with `Allow` for a known path and another
method). HTTP triggers, static file servers and health/metrics endpoints register their
routes here: on the router they name, else the one they `dependsOn` (or whose server they
depend on), else the first router. Without any router module the application gets an
implicit one. Like the Go engine, a router ignores a `routes:` list in its config (declare
routes with triggers or `workflows.http.routes`).
""",
    schema={"type": "object", "properties": {}},
    example="""
- name: api
  type: http.router
  dependsOn: [web]
""",
)
def _http_router(name: str, config: dict[str, Any], ctx: BuildContext) -> HTTPRouter:
    return HTTPRouter(name, config)


class StaticFileServer(Module):
    """Serves files under `root` at `prefix`, with an optional single-page-app fallback."""

    type = "static.fileserver"

    def __init__(self, name: str, config: dict[str, Any], root: Path) -> None:
        super().__init__(name, config)
        self.root = root
        prefix = str(config.get("prefix") or "/")
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else "/"
        spa = config.get("spaFallback", config.get("spa", True))
        self.spa_fallback = spa is not False
        self.cache_max_age = int(config.get("cacheMaxAge", 3600))
        self.router_name = str(config.get("router") or "")

    def http_routes(self) -> list[tuple[str, str, Handler]]:
        pattern = self.prefix.rstrip("/") + "/{path...}"
        return [("GET", pattern, self.handle)]

    def _resolve(self, rel: str) -> Path | None:
        root = self.root.resolve()
        target = (root / rel.lstrip("/")).resolve()
        if target != root and root not in target.parents:
            return None  # escapes the root
        if target.is_dir():
            target = target / "index.html"
        return target if target.is_file() else None

    async def handle(self, request: HTTPRequest) -> HTTPResponse:
        rel = request.path_params.get("path", "")
        target = self._resolve(rel)
        if target is None and self.spa_fallback and "." not in rel.rsplit("/", 1)[-1]:
            target = self._resolve("index.html")
        if target is None:
            return text_response("404 page not found", 404)
        body = await asyncio.to_thread(target.read_bytes)
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        cache = ("no-cache" if target.name == "index.html"
                 else f"public, max-age={self.cache_max_age}")  # fmt: skip
        return HTTPResponse(200, [("Content-Type", kind), ("Cache-Control", cache)], body)


@register(
    "static.fileserver",
    category="http",
    provides=("http.routes",),
    doc="""
Serves the files under `root` (relative to the config file) at `prefix` (`GET
<prefix>/{path...}`). A folder serves its `index.html`; with `spaFallback` (default true) a
path with no file extension that matches no file serves the root `index.html`, for
single-page apps. Paths cannot escape `root`. `cacheMaxAge` sets `Cache-Control` (index.html
is `no-cache`).
""",
    schema={
        "type": "object",
        "required": ["root"],
        "properties": {
            "root": {"type": "string", "description": "Folder of the files."},
            "prefix": {"type": "string", "default": "/", "description": "URL prefix."},
            "spaFallback": {"type": "boolean", "default": True,
                            "description": "Serve index.html for unknown paths."},
            "cacheMaxAge": {"type": "integer", "minimum": 0, "default": 3600,
                            "description": "Cache-Control max-age in seconds."},
            "router": {"type": "string", "description": "Router module to register on."},
        },
    },
    example="""
- name: ui
  type: static.fileserver
  config: {root: ./ui/dist, prefix: /ui}
""",
    aliases=(("spa", "spaFallback"),),
)
def _static(name: str, config: dict[str, Any], ctx: BuildContext) -> StaticFileServer:
    root = config.get("root")
    if not isinstance(root, str) or not root:
        raise ValueError("static.fileserver needs a 'root' folder")
    return StaticFileServer(name, config, ctx.path(root))


__all__ = ["HTTPRouter", "HTTPServer", "StaticFileServer", "parse_address"]
