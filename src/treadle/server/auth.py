"""Who is calling: authenticators turn a request into a `Principal`, routes demand permissions.

Today there are two authenticators: `OpenAccess` (no keys configured: everyone is an anonymous
admin) and `APIKeyAuth` (a key in `Authorization: Bearer <key>` or `X-API-Key: <key>`). Keys
are kept as SHA-256 digests and compared in constant time against every configured key; a key
is never logged or echoed. Tenants, roles and JWTs come later as further authenticators that
fill in `Principal.tenant_id` and `Principal.roles`; routes already declare what they need
(`requires("read")`, `requires("write")`), so adding RBAC changes no route.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fastapi import Request

from treadle.server.errors import ApiError

Permission = Literal["read", "write", "admin"]

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "write", "admin"}),
    "admin": frozenset({"read", "write", "admin"}),
    "editor": frozenset({"read", "write"}),
    "viewer": frozenset({"read"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. `tenant_id` None means every tenant (single-tenant deployments)."""

    id: str
    kind: str = "anonymous"
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"admin"}))
    tenant_id: str | None = None

    def can(self, permission: str) -> bool:
        return any(permission in ROLE_PERMISSIONS.get(role, ()) for role in self.roles)


ANONYMOUS = Principal("anonymous")


class Authenticator(Protocol):
    """Resolves the caller of a request, or raises `ApiError(401)`."""

    async def authenticate(self, request: Request, token: str | None) -> Principal: ...


class OpenAccess:
    """No authentication: every caller is an anonymous admin."""

    async def authenticate(self, request: Request, token: str | None) -> Principal:
        return ANONYMOUS


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class APIKeyAuth:
    """Static API keys: a sequence of keys, or a mapping of key name → key.

    The name (default `key-1`, `key-2`, …) identifies the caller in logs and, later, audit
    records; the key itself is only held as a digest.
    """

    def __init__(self, keys: Iterable[str] | Mapping[str, str]) -> None:
        named = (dict(keys) if isinstance(keys, Mapping)
                 else {f"key-{i}": key for i, key in enumerate(keys, 1)})
        if not named or any(not key for key in named.values()):
            raise ValueError("API keys must be non-empty strings")
        self._keys = [(name, _digest(key)) for name, key in named.items()]

    async def authenticate(self, request: Request, token: str | None) -> Principal:
        if not token:
            raise _unauthorized("missing_credentials",
                                "send an API key: `Authorization: Bearer <key>` or `X-API-Key`")
        given = _digest(token)
        found: str | None = None
        for name, digest in self._keys:  # no early exit: the time taken names no key
            if hmac.compare_digest(given, digest):
                found = name
        if found is None:
            raise _unauthorized("invalid_credentials", "the API key is not valid")
        return Principal(found, kind="api_key")


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def request_token(request: Request) -> str | None:
    """The credentials a request carries: `X-API-Key`, else an `Authorization: Bearer` token."""
    headers = request.headers
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def current_principal(request: Request) -> Principal:
    """Who is calling (401 when the credentials are missing or wrong)."""
    from treadle.server.state import state_of

    principal = await state_of(request).auth.authenticate(request, request_token(request))
    request.state.principal = principal
    return principal


def requires(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency demanding `permission` of the caller (401 unauthenticated, 403 without).

    One plain function of the request (no sub-dependencies): it runs on every call.
    """

    async def check(request: Request) -> Principal:
        principal = await current_principal(request)
        if not principal.can(permission):
            raise ApiError(403, "forbidden", f"this needs the {permission!r} permission")
        return principal

    check.__name__ = f"requires_{permission}"
    return check


SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API key as bearer token"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def make_authenticator(
    api_keys: Iterable[str] | Mapping[str, str] | None, auth: Authenticator | None
) -> Authenticator:
    if auth is not None:
        return auth
    if api_keys is None:
        return OpenAccess()
    return APIKeyAuth(api_keys)
