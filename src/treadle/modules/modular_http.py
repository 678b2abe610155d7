"""httpserver.modular and chimux.router: the CrisisTextLine/modular HTTP server and Chi router
that the Go engine loads for these types, configured as modular configures them — from the
application's top-level `httpserver:` and `chimux:` sections, with modular's keys and
defaults (`modules/httpserver/config.go`, `modules/chimux/config.go`).

They are an `http.server` and an `http.router` for everything else (routes, triggers,
several servers), so only the configuration and the router's CORS differ.
"""

from __future__ import annotations

from typing import Any

from treadle.modules.base import BuildContext
from treadle.modules.http import HTTPRouter, HTTPServer
from treadle.modules.middleware import CORSPolicy
from treadle.modules.registry import register
from treadle.modules.web import Handler

_DURATION = {"type": "string", "description": ""}


def section(ctx: BuildContext, key: str, config: dict[str, Any]) -> dict[str, Any]:
    """The top-level section `key` with the module's own `config:` merged over it."""
    found = ctx.sections.get(key) or {}
    if not isinstance(found, dict):
        raise ValueError(f"the top-level {key} section must be a mapping")
    return {**found, **config}


# -- httpserver.modular -------------------------------------------------------------------


class ModularHTTPServer(HTTPServer):
    """modular's HTTP server: `host` / `port` (0.0.0.0:8080) and its timeouts."""

    type = "httpserver.modular"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        host = config.get("host") or "0.0.0.0"
        port = config.get("port") or 8080
        if not isinstance(host, str):
            raise ValueError(f"host must be a string, not {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be a number from 0 to 65535, not {port!r}")
        tls = config.get("tls")
        if isinstance(tls, dict) and tls.get("enabled") is True:
            raise ValueError("tls is not supported: terminate TLS in front of Treadle")
        timeouts = {}
        for ours, theirs, default in (("readTimeout", "read_timeout", "15s"),
                                      ("writeTimeout", "write_timeout", "15s"),
                                      ("idleTimeout", "idle_timeout", "60s")):  # fmt: skip
            value = config.get(theirs) or default
            if not isinstance(value, str):
                raise ValueError(f"{theirs} must be a duration such as \"15s\", not {value!r}")
            timeouts[ours] = value
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(name, {"address": address, **timeouts})
        self.config = config


_HTTPSERVER_KEYS = {
    "host": {"type": "string", "default": "0.0.0.0", "description": "Interface to listen on."},
    "port": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 8080,
             "description": "Port to listen on."},
    "read_timeout": {**_DURATION, "default": "15s", "description": "Accepted (Go: the "
                                                                   "request read deadline)."},
    "write_timeout": {**_DURATION, "default": "15s", "description": "As http.server's "
                                                                    "writeTimeout."},
    "idle_timeout": {**_DURATION, "default": "60s", "description": "Keep-alive timeout."},
    "shutdown_timeout": {**_DURATION, "default": "30s", "description": "Accepted."},
    "max_header_bytes": {"type": "integer", "description": "Accepted."},
    "tls": {"type": "object", "description": "Only `enabled: false` (TLS is refused)."},
}


@register(
    "httpserver.modular",
    category="http",
    provides=("http.server",),
    section="httpserver",
    doc="""
The CrisisTextLine/modular HTTP server the Go engine loads for this type, as an
`http.server`. Its config is the application's top-level `httpserver:` section (keys in the
module's own `config:` are merged over it), with modular's keys and defaults: `host`
(`0.0.0.0`), `port` (`8080`), `read_timeout` / `write_timeout` (`15s`), `idle_timeout`
(`60s`); `shutdown_timeout` and `max_header_bytes` are accepted, `tls` is refused when
enabled. Other keys are not modular's and are ignored with a warning — as in Go, where the
older examples' `address: ":8090"` or `readTimeoutSeconds` leave the server on 0.0.0.0:8080.
""",
    schema={"type": "object", "properties": _HTTPSERVER_KEYS},
    example="""
- name: server
  type: httpserver.modular
# and at the top level of the file:
# httpserver:
#   port: 8090
#   write_timeout: 30s
""",
)
def _httpserver(name: str, config: dict[str, Any], ctx: BuildContext) -> ModularHTTPServer:
    return ModularHTTPServer(name, section(ctx, "httpserver", config))


# -- chimux.router --------------------------------------------------------------------------


def _strings(config: dict[str, Any], key: str, default: list[str]) -> list[str]:
    value = config.get(key)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return list(value)


class ChiMuxRouter(HTTPRouter):
    """modular's Chi router: an http.router whose CORS (modular's, with its defaults) wraps
    every route of the application."""

    type = "chimux.router"
    is_global = True

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        if config.get("basepath"):
            raise ValueError("basepath is not supported (prefix the routes instead)")
        origins = _strings(config, "allowed_origins", ["*"])
        methods = _strings(config, "allowed_methods",
                           ["GET", "POST", "PUT", "DELETE", "OPTIONS"])
        headers = _strings(config, "allowed_headers", [
            "Origin", "Accept", "Content-Type", "X-Requested-With", "Authorization"])
        max_age = config.get("max_age", 300)
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueError(f"max_age must be a number of seconds, not {max_age!r}")
        self.cors = CORSPolicy(origins, methods, headers,
                               credentials=config.get("allow_credentials") is True,
                               max_age=max_age, preflight_status=204, vary=False,
                               omit_empty=True)  # fmt: skip

    def wrap(self, handler: Handler) -> Handler:
        """modular's corsMiddleware: an allowed `Origin` is echoed with the allowed methods,
        headers, credentials and max age; `OPTIONS` is answered `204` before routing."""
        return self.cors.wrap(handler)


_STRINGS = {"type": "array", "items": {"type": "string"}}
_CHIMUX_KEYS = {
    "allowed_origins": {**_STRINGS, "default": ["*"], "description": "CORS origins."},
    "allowed_methods": {**_STRINGS, "default": ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
                        "description": "CORS methods."},
    "allowed_headers": {**_STRINGS, "default": ["Origin", "Accept", "Content-Type",
                                                "X-Requested-With", "Authorization"],
                        "description": "CORS request headers."},
    "allow_credentials": {"type": "boolean", "default": False,
                          "description": "Send Access-Control-Allow-Credentials."},
    "max_age": {"type": "integer", "minimum": 0, "default": 300,
                "description": "Access-Control-Max-Age in seconds."},
    "timeout": {"type": "integer", "description": "Accepted, not enforced (milliseconds)."},
    "basepath": {"type": "string", "description": "Refused when set."},
}


@register(
    "chimux.router",
    category="http",
    provides=("http.router",),
    section="chimux",
    doc="""
The CrisisTextLine/modular Chi router the Go engine loads for this type, as an `http.router`
(same patterns and precedence). Its config is the application's top-level `chimux:`
section (keys in the module's own `config:` merged over it) with modular's keys: like
modular, it answers CORS for every route of the application with its defaults —
`allowed_origins` `["*"]` (an allowed `Origin` is echoed back), `allowed_methods`,
`allowed_headers`, `allow_credentials` (false), `max_age` (300) — and answers `OPTIONS`
`204` before routing. `timeout` is accepted and not enforced; `basepath` is refused. Other
keys (the older examples' `logRoutes`) are not modular's and are ignored with a warning.
""",
    schema={"type": "object", "properties": _CHIMUX_KEYS},
    example="""
- name: router
  type: chimux.router
# and at the top level of the file:
# chimux:
#   allowed_origins: ["https://app.example.com"]
""",
)
def _chimux(name: str, config: dict[str, Any], ctx: BuildContext) -> ChiMuxRouter:
    return ChiMuxRouter(name, section(ctx, "chimux", config))


__all__ = ["ChiMuxRouter", "ModularHTTPServer", "section"]
