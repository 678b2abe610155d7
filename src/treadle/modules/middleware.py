"""HTTP middleware modules: http.middleware.auth, cors, logging, ratelimit, requestid,
securityheaders (the Go project's config keys).

As in the Go engine, CORS middleware applies to every route of its router (so preflight
`OPTIONS` requests are answered before routing); the others apply to the routes that list
them in `middlewares:` (a trigger route, an inline pipeline trigger or a
`workflows.http.routes` entry), in the order listed.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from treadle.modules.base import BuildContext, Module, ModuleSet
from treadle.modules.registry import register
from treadle.modules.web import Handler, HTTPRequest, HTTPResponse, text_response

logger = logging.getLogger("treadle.http")


def _strings(value: Any, default: list[str]) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        return [v.strip() for v in value.split(",")]
    return list(default)


# -- auth -----------------------------------------------------------------------------------


class AuthMiddleware(Module):
    type = "http.middleware.auth"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.auth_type = str(config.get("authType") or "Bearer")
        self.providers: list[Any] = []

    async def init(self, modules: ModuleSet) -> None:
        # Go's http-auth-provider-wiring: every module that authenticates is a provider.
        self.providers = [m for m in modules.values()
                          if m is not self and callable(getattr(m, "authenticate", None))]

    def wrap(self, handler: Handler) -> Handler:
        prefix = self.auth_type + " "

        async def auth(request: HTTPRequest) -> HTTPResponse:
            header = request.header("authorization")
            if not header:
                return text_response("Authorization header required", 401)
            if not header.startswith(prefix):
                return text_response(f"{self.auth_type} authorization required", 401)
            token = header[len(prefix):]
            for provider in self.providers:
                try:
                    ok, claims = provider.authenticate(token)
                except Exception:
                    logger.warning("auth provider %r failed", getattr(provider, "name", "?"))
                    continue
                if ok:
                    request.state["auth_claims"] = claims
                    return await handler(request)
            return text_response("Invalid credentials", 401)

        return auth


@register(
    "http.middleware.auth",
    category="middleware",
    provides=("http.middleware",),
    doc="""
Requires `Authorization: <authType> <token>` on the routes that list it and checks the token
with every authenticating module of the application (`auth.jwt`). A missing or wrong header,
or a token no provider accepts, is `401`. The accepted token's claims reach the pipeline as
`meta.auth_claims` (and in `meta._http_request.auth_claims`).
""",
    schema={
        "type": "object",
        "properties": {
            "authType": {"enum": ["Bearer", "Basic", "ApiKey"], "default": "Bearer",
                         "description": "Authorization scheme to require."},
        },
    },
    example="""
- name: require-login
  type: http.middleware.auth
  config: {authType: Bearer}
""",
)
def _auth(name: str, config: dict[str, Any], ctx: BuildContext) -> AuthMiddleware:
    return AuthMiddleware(name, config)


# -- cors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CORSPolicy:
    """Cross-origin answers: a request whose `Origin` is allowed (`*` allows any) gets it
    echoed back with the allowed methods and headers (and credentials, max age); `OPTIONS`
    is answered `preflight_status` before routing. `vary` adds `Vary: Origin`; `omit_empty`
    leaves out the methods and headers lines when their lists are empty."""

    origins: list[str]
    methods: list[str]
    headers: list[str]
    credentials: bool = False
    max_age: int = 0
    preflight_status: int = 200
    vary: bool = True
    omit_empty: bool = False

    def wrap(self, handler: Handler) -> Handler:
        async def cors(request: HTTPRequest) -> HTTPResponse:
            origin = request.header("origin")
            if request.method == "OPTIONS":
                response = HTTPResponse(self.preflight_status)
            else:
                response = await handler(request)
            if origin is not None and ("*" in self.origins or origin in self.origins):
                response.set_header("Access-Control-Allow-Origin", origin)
                if self.methods or not self.omit_empty:
                    response.set_header("Access-Control-Allow-Methods", ", ".join(self.methods))
                if self.headers or not self.omit_empty:
                    response.set_header("Access-Control-Allow-Headers", ", ".join(self.headers))
                if self.vary:
                    response.set_header("Vary", "Origin")
                if self.credentials:
                    response.set_header("Access-Control-Allow-Credentials", "true")
                if self.max_age > 0:
                    response.set_header("Access-Control-Max-Age", str(self.max_age))
            return response

        return cors


class CORSMiddleware(Module):
    type = "http.middleware.cors"
    is_global = True

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.policy = CORSPolicy(
            origins=_strings(config.get("allowedOrigins"), ["*"]),
            methods=_strings(config.get("allowedMethods"),
                             ["GET", "POST", "PUT", "DELETE", "OPTIONS"]),
            headers=_strings(config.get("allowedHeaders"), ["Content-Type", "Authorization"]),
            credentials=config.get("allowCredentials") is True,
            max_age=int(config.get("maxAge") or 0))

    def wrap(self, handler: Handler) -> Handler:
        return self.policy.wrap(handler)


@register(
    "http.middleware.cors",
    category="middleware",
    provides=("http.middleware",),
    doc="""
Cross-origin resource sharing for every route of the application (as the Go engine wires it
globally): a request whose `Origin` is allowed gets the `Access-Control-Allow-*` headers
(the origin echoed back), and preflight `OPTIONS` requests are answered `200` before routing.
""",
    schema={
        "type": "object",
        "properties": {
            "allowedOrigins": {"type": "array", "items": {"type": "string"}, "default": ["*"],
                               "description": "Allowed origins (`*` for any)."},
            "allowedMethods": {"type": "array", "items": {"type": "string"},
                               "default": ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
                               "description": "Allowed methods."},
            "allowedHeaders": {"type": "array", "items": {"type": "string"},
                               "default": ["Content-Type", "Authorization"],
                               "description": "Allowed request headers."},
            "allowCredentials": {"type": "boolean", "default": False,
                                 "description": "Send Access-Control-Allow-Credentials."},
            "maxAge": {"type": "integer", "minimum": 0,
                       "description": "Access-Control-Max-Age in seconds."},
        },
    },
    example="""
- name: cors
  type: http.middleware.cors
  config:
    allowedOrigins: ["https://app.example.com"]
    allowCredentials: true
""",
)
def _cors(name: str, config: dict[str, Any], ctx: BuildContext) -> CORSMiddleware:
    return CORSMiddleware(name, config)


# -- logging --------------------------------------------------------------------------------

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}  # fmt: skip


class LoggingMiddleware(Module):
    type = "http.middleware.logging"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.level = _LEVELS.get(str(config.get("logLevel") or "info").lower(), logging.INFO)

    def wrap(self, handler: Handler) -> Handler:
        async def log(request: HTTPRequest) -> HTTPResponse:
            start = time.perf_counter()
            response = await handler(request)
            logger.log(self.level, "%s %s %d %.1fms", request.method, request.path,
                       response.status, (time.perf_counter() - start) * 1000)
            return response

        return log


@register(
    "http.middleware.logging",
    category="middleware",
    provides=("http.middleware",),
    doc="Logs each request (method, path, status, duration) on the `treadle.http` logger at "
        "`logLevel`. Never logs headers or bodies.",
    schema={
        "type": "object",
        "properties": {
            "logLevel": {"enum": ["debug", "info", "warn", "error"], "default": "info",
                         "description": "Level of the request log lines."},
        },
    },
    example="""
- name: access-log
  type: http.middleware.logging
  config: {logLevel: info}
""",
)
def _logging(name: str, config: dict[str, Any], ctx: BuildContext) -> LoggingMiddleware:
    return LoggingMiddleware(name, config)


# -- ratelimit ------------------------------------------------------------------------------


class RateLimitMiddleware(Module):
    """A token bucket per client address: `burstSize` tokens, refilled at the rate."""

    type = "http.middleware.ratelimit"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        burst = config.get("burstSize")
        self.burst = int(burst) if isinstance(burst, int | float) and burst > 0 else 10
        per_hour = config.get("requestsPerHour")
        per_minute = config.get("requestsPerMinute")
        if isinstance(per_hour, int | float) and per_hour > 0:
            self.rate = float(per_hour) / 3600.0
        elif isinstance(per_minute, int | float) and per_minute > 0:
            self.rate = float(per_minute) / 60.0
        else:
            self.rate = 1.0
        self.clients: dict[str, tuple[float, float]] = {}
        self.clock = time.monotonic

    def allow(self, client: str) -> tuple[bool, float]:
        """Take a token for `client`; `(allowed, seconds until the next token)`."""
        now = self.clock()
        tokens, last = self.clients.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self.clients[client] = (tokens, now)
            return False, (1.0 - tokens) / self.rate
        self.clients[client] = (tokens - 1.0, now)
        if len(self.clients) > 100_000:  # forget the idle ones
            horizon = now - self.burst / self.rate
            self.clients = {k: v for k, v in self.clients.items() if v[1] >= horizon}
        return True, 0.0

    def wrap(self, handler: Handler) -> Handler:
        async def limit(request: HTTPRequest) -> HTTPResponse:
            ok, wait = self.allow(request.client)
            if not ok:
                response = text_response("Rate limit exceeded", 429)
                response.set_header("Retry-After", str(max(1, int(wait + 0.999))))
                return response
            return await handler(request)

        return limit


@register(
    "http.middleware.ratelimit",
    category="middleware",
    provides=("http.middleware",),
    doc="""
Limits requests per client address with a token bucket: `burstSize` requests at once,
refilled at `requestsPerMinute` (or `requestsPerHour`, which wins when set). Over the limit:
`429 Rate limit exceeded` with `Retry-After`.
""",
    schema={
        "type": "object",
        "properties": {
            "requestsPerMinute": {"type": "number", "exclusiveMinimum": 0, "default": 60,
                                  "description": "Sustained rate per client."},
            "requestsPerHour": {"type": "number", "exclusiveMinimum": 0,
                                "description": "Sustained rate per client, per hour."},
            "burstSize": {"type": "integer", "minimum": 1, "default": 10,
                          "description": "Requests allowed at once."},
        },
    },
    example="""
- name: limit
  type: http.middleware.ratelimit
  config: {requestsPerMinute: 120, burstSize: 20}
""",
)
def _ratelimit(name: str, config: dict[str, Any], ctx: BuildContext) -> RateLimitMiddleware:
    return RateLimitMiddleware(name, config)


# -- requestid ------------------------------------------------------------------------------


class RequestIDMiddleware(Module):
    type = "http.middleware.requestid"
    header = "X-Request-ID"

    def wrap(self, handler: Handler) -> Handler:
        async def request_id(request: HTTPRequest) -> HTTPResponse:
            rid = request.header(self.header) or str(uuid.uuid4())
            request.state["request_id"] = rid
            response = await handler(request)
            response.set_header(self.header, rid)
            return response

        return request_id


@register(
    "http.middleware.requestid",
    category="middleware",
    provides=("http.middleware",),
    doc="""
Gives each request an id: the incoming `X-Request-ID`, else a new UUID. It is echoed in the
response's `X-Request-ID` and reaches the pipeline as `meta.request_id`.
""",
    schema={"type": "object", "properties": {}},
    example="""
- name: request-id
  type: http.middleware.requestid
""",
)
def _requestid(name: str, config: dict[str, Any], ctx: BuildContext) -> RequestIDMiddleware:
    return RequestIDMiddleware(name, config)


# -- securityheaders ------------------------------------------------------------------------


class SecurityHeadersMiddleware(Module):
    type = "http.middleware.securityheaders"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        headers: list[tuple[str, str]] = []
        if config.get("contentSecurityPolicy"):
            headers.append(("Content-Security-Policy", str(config["contentSecurityPolicy"])))
        headers.append(("X-Frame-Options", str(config.get("frameOptions") or "DENY")))
        headers.append(("X-Content-Type-Options",
                        str(config.get("contentTypeOptions") or "nosniff")))
        hsts = config.get("hstsMaxAge", 31536000)
        if isinstance(hsts, int) and hsts > 0:
            headers.append(("Strict-Transport-Security", f"max-age={hsts}; includeSubDomains"))
        headers.append(("Referrer-Policy",
                        str(config.get("referrerPolicy") or "strict-origin-when-cross-origin")))
        headers.append(("Permissions-Policy", str(config.get("permissionsPolicy") or
                                                  "camera=(), microphone=(), geolocation=()")))
        self.headers = headers

    def wrap(self, handler: Handler) -> Handler:
        async def secure(request: HTTPRequest) -> HTTPResponse:
            response = await handler(request)
            for name, value in self.headers:
                response.set_header(name, value)
            return response

        return secure


@register(
    "http.middleware.securityheaders",
    category="middleware",
    provides=("http.middleware",),
    doc="Adds security headers to responses: Content-Security-Policy (when set), "
        "X-Frame-Options, X-Content-Type-Options, Strict-Transport-Security, Referrer-Policy "
        "and Permissions-Policy.",
    schema={
        "type": "object",
        "properties": {
            "contentSecurityPolicy": {"type": "string", "description": "CSP header value."},
            "frameOptions": {"enum": ["DENY", "SAMEORIGIN"], "default": "DENY",
                             "description": "X-Frame-Options."},
            "contentTypeOptions": {"type": "string", "default": "nosniff",
                                   "description": "X-Content-Type-Options."},
            "hstsMaxAge": {"type": "integer", "minimum": 0, "default": 31536000,
                           "description": "HSTS max-age in seconds (0: no header)."},
            "referrerPolicy": {"type": "string", "default": "strict-origin-when-cross-origin",
                               "description": "Referrer-Policy."},
            "permissionsPolicy": {"type": "string",
                                  "default": "camera=(), microphone=(), geolocation=()",
                                  "description": "Permissions-Policy."},
        },
    },
    example="""
- name: secure
  type: http.middleware.securityheaders
  config: {frameOptions: SAMEORIGIN}
""",
)
def _security(name: str, config: dict[str, Any], ctx: BuildContext) -> SecurityHeadersMiddleware:
    return SecurityHeadersMiddleware(name, config)


__all__ = ["AuthMiddleware", "CORSMiddleware", "LoggingMiddleware", "RateLimitMiddleware",
           "RequestIDMiddleware", "SecurityHeadersMiddleware"]  # fmt: skip
