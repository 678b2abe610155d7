"""HTTP primitives shared by the HTTP modules, the HTTP trigger and the ASGI app.

A handler is `async def handler(request: HTTPRequest) -> HTTPResponse`; a middleware wraps
one (`middleware.wrap(handler) -> handler`). The `Router` matches requests the way Go's
`net/http.ServeMux` (Go 1.22 patterns) does, which is what `GoCodeAlone/workflow` routes
with:

* `{name}` matches one path segment, `{name...}` the rest of the path (possibly empty, last
  segment only), a trailing `/` everything below it, `{$}` only the path itself;
* the most specific pattern wins, whatever the registration order (`/items/new` beats
  `/items/{id}`; a pattern with a method beats one without); two patterns that overlap with
  neither more specific conflict (an error when the routes are built);
* a `GET` route also answers `HEAD`; a path that matches with another method gets
  `405 Method Not Allowed` with an `Allow` header, no match at all `404 page not found`;
* the same method and path registered twice: the first one is kept (Go's router skips the
  duplicate);
* wildcard values are percent-decoded segment by segment (`%2F` stays inside a segment).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Relation = Literal["more", "less", "equal", "disjoint", "conflict"]


@dataclass(slots=True)
class HTTPRequest:
    """One request, fully read."""

    method: str
    path: str
    """The percent-decoded path."""
    raw_path: str = ""
    """The path as sent (percent-encoded), for matching segment by segment."""
    query_string: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    """Lower-cased names; repeated headers joined with `, `."""
    body: bytes = b""
    client: str = ""
    scheme: str = "http"
    path_params: dict[str, str] = field(default_factory=dict)
    route_pattern: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    """Per-request values set by middleware (`request_id`, `auth_claims`, ...)."""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query_string, keep_blank_values=True)


@dataclass(slots=True)
class HTTPResponse:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def set_header(self, name: str, value: str) -> None:
        lowered = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lowered]
        self.headers.append((name, value))

    def get_header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


Handler = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


class Middleware(Protocol):
    """An `http.middleware.*` module."""

    def wrap(self, handler: Handler) -> Handler: ...


def json_response(body: Any, status: int = 200) -> HTTPResponse:
    data = json.dumps(body, separators=(",", ":")).encode()
    return HTTPResponse(status, [("Content-Type", "application/json")], data)


def text_response(text: str, status: int) -> HTTPResponse:
    """What Go's `http.Error` writes: the text, a newline, text/plain."""
    return HTTPResponse(status, [("Content-Type", "text/plain; charset=utf-8"),
                                 ("X-Content-Type-Options", "nosniff")],
                        (text + "\n").encode())  # fmt: skip


# -- patterns -------------------------------------------------------------------------------

_LIT, _WILD, _MULTI = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed route pattern: `GET /items/{id}`."""

    method: str
    """Upper case; empty matches every method."""
    path: str
    segments: tuple[tuple[int, str], ...]
    """(kind, literal text or wildcard name); a trailing `_MULTI` with an empty name is the
    anonymous rest of a pattern ending in `/`."""

    @classmethod
    def parse(cls, method: str, path: str) -> Pattern:
        if not path.startswith("/"):
            raise ValueError(f"route path {path!r} must start with '/'")
        parts = path[1:].split("/")
        segments: list[tuple[int, str]] = []
        names: set[str] = set()
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if name == "$":
                    if not last:
                        raise ValueError(f"{{$}} must be the last segment of {path!r}")
                    segments.append((_LIT, ""))
                    continue
                multi = name.endswith("...")
                name = name[:-3] if multi else name
                if not name.isidentifier():
                    raise ValueError(f"bad wildcard {part!r} in route path {path!r}")
                if name in names:
                    raise ValueError(f"wildcard {name!r} appears twice in {path!r}")
                names.add(name)
                if multi and not last:
                    raise ValueError(f"{{{name}...}} must be the last segment of {path!r}")
                segments.append((_MULTI if multi else _WILD, name))
            elif "{" in part or "}" in part:
                raise ValueError(f"bad wildcard segment {part!r} in route path {path!r}")
            elif last and part == "":
                segments.append((_MULTI, ""))
            else:
                segments.append((_LIT, urllib.parse.unquote(part)))
        return cls(method.upper(), path, tuple(segments))

    def match(self, segments: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        mine = self.segments
        for i, (kind, text) in enumerate(mine):
            if kind == _MULTI:
                if text:
                    params[text] = "/".join(segments[i:])
                return params
            if i >= len(segments):
                return None
            seg = segments[i]
            if kind == _LIT:
                if seg != text:
                    return None
            else:
                if seg == "":
                    return None
                params[text] = seg
        return params if len(segments) == len(mine) else None

    def compare(self, other: Pattern) -> Relation:
        """How this pattern relates to `other`: `more` specific, `less`, `equal`, `disjoint`
        (no request matches both) or `conflict` (they overlap, neither is more specific)."""
        path = _compare_paths(self.segments, other.segments)
        if path == "disjoint":
            return "disjoint"
        if self.method and other.method:
            if self.method != other.method:
                return "disjoint"
            method: Relation = "equal"
        elif self.method:
            method = "more"
        elif other.method:
            method = "less"
        else:
            method = "equal"
        if path == "conflict":
            return "conflict"
        if method == "equal":
            return path
        if path in ("equal", method):
            return method
        return "conflict"

    def __str__(self) -> str:
        return f"{self.method} {self.path}" if self.method else self.path


def _compare_paths(a: tuple[tuple[int, str], ...], b: tuple[tuple[int, str], ...]) -> Relation:
    a_more = b_more = False
    for i in range(max(len(a), len(b))):
        sa = a[i] if i < len(a) else None
        sb = b[i] if i < len(b) else None
        if sa is not None and sa[0] == _MULTI:
            if sb is None or sb[0] != _MULTI:
                b_more = True
            break
        if sb is not None and sb[0] == _MULTI:
            a_more = True
            break
        if sa is None or sb is None:
            return "disjoint"
        if sa[0] == _LIT and sb[0] == _LIT:
            if sa[1] != sb[1]:
                return "disjoint"
        elif sa[0] == _LIT:
            if sa[1] == "":
                return "disjoint"
            a_more = True
        elif sb[0] == _LIT:
            if sb[1] == "":
                return "disjoint"
            b_more = True
    if a_more and b_more:
        return "conflict"
    return "more" if a_more else "less" if b_more else "equal"


@dataclass(slots=True)
class Route:
    pattern: Pattern
    handler: Handler
    owner: str = ""
    """Who registered it (a trigger, a module), for error messages."""


def split_path(raw_path: str) -> list[str]:
    """The decoded segments of a request path (after its leading `/`)."""
    return [urllib.parse.unquote(s) for s in raw_path[1:].split("/")] if raw_path else [""]


class Router:
    """Routes requests to handlers with Go ServeMux semantics (see the module docs)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, owner: str = "") -> Route | None:
        """Register a route; None when the same method and path is already there (skipped,
        as Go's router does). Raises ValueError for a bad pattern or a conflict."""
        pattern = Pattern.parse(method, path)
        for route in self.routes:
            if route.pattern.method == pattern.method and route.pattern.path == pattern.path:
                return None
            relation = pattern.compare(route.pattern)
            if relation in ("conflict", "equal"):
                why = ("they match the same requests" if relation == "equal" else
                       "both match some requests and neither is more specific")
                raise ValueError(f"route {pattern} ({owner or 'route'}) conflicts with "
                                 f"{route.pattern} ({route.owner or 'route'}): {why}")
        route = Route(pattern, handler, owner)
        self.routes.append(route)
        return route

    def lookup(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str],
                                                           list[str]]:  # fmt: skip
        """The best route for the request, its path parameters, and — when the path
        matches only with other methods — those methods (for 405)."""
        segments = split_path(raw_path)
        best: Route | None = None
        best_params: dict[str, str] = {}
        allowed: list[str] = []
        method = method.upper()
        for route in self.routes:
            params = route.pattern.match(segments)
            if params is None:
                continue
            rm = route.pattern.method
            if rm and rm != method and not (rm == "GET" and method == "HEAD"):
                allowed.append(rm)
                continue
            if best is None or _better(route.pattern, best.pattern, method):
                best, best_params = route, params
        if best is None and allowed:
            if "GET" in allowed and "HEAD" not in allowed:
                allowed.append("HEAD")
            return None, {}, sorted(set(allowed))
        return best, best_params, []

    def has_path(self, raw_path: str) -> bool:
        segments = split_path(raw_path)
        return any(r.pattern.match(segments) is not None for r in self.routes)


def _better(candidate: Pattern, current: Pattern, method: str) -> bool:
    relation = candidate.compare(current)
    if relation == "more":
        return True
    if relation == "equal" and method == "HEAD":
        return candidate.method == "HEAD" and current.method != "HEAD"
    return False


__all__ = [
    "HTTPRequest",
    "HTTPResponse",
    "Handler",
    "Middleware",
    "Pattern",
    "Route",
    "Router",
    "json_response",
    "split_path",
    "text_response",
]
