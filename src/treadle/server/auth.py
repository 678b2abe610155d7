"""Who is calling: authenticators turn a request into a `Principal`, routes demand permissions.

`CredentialAuth` is the authenticator `create_app` uses. It accepts, as
`Authorization: Bearer <token>` or `X-API-Key: <token>`:

- **instance keys** (`create_app(api_keys=...)`, `treadle serve --api-key`): operators of the
  whole server, admins of every tenant (`Principal.tenant_id` None);
- **stored API keys** (`trd_<id>_<secret>`, made by `POST /api/v1/api-keys`): a tenant and a
  role (admin, editor or viewer);
- **JWT access tokens** (`POST /api/v1/auth/login`): a user of a tenant with their role, read
  from the user's record on every call (a role change or disabling acts at once).

Without instance keys the server is open: a request without credentials is an anonymous
instance admin, as before tenants existed; credentials that look like Treadle's (a `trd_` key
or a JWT) are still checked and scope the caller. Every comparison of a secret is constant
time; no key, token or password is logged or echoed. Routes declare what they need
(`requires("read" | "write" | "admin")`, `requires_instance(...)`); roles map to permissions in
`ROLE_PERMISSIONS`. The OpenAPI document states each operation's demand as `x-permission`
(`route_permission`), and a test holds every role against it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from fastapi import Request

from treadle.server.accounts import Accounts, looks_like_key
from treadle.server.errors import ApiError
from treadle.server.tokens import InvalidToken, Tokens, looks_like_jwt

logger = logging.getLogger("treadle.server.auth")

_F = TypeVar("_F", bound=Callable[..., Any])

Permission = Literal["read", "write", "admin"]

PERMISSION_ATTRIBUTE = "treadle_permission"
"""Set on the dependencies below: what a route that depends on one demands of its caller
(`read`, `write`, `admin`, `instance` or `authenticated`; see `route_permission`)."""

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "write", "admin"}),
    "admin": frozenset({"read", "write", "admin"}),
    "editor": frozenset({"read", "write"}),
    "viewer": frozenset({"read"}),
}

ROLE_RANK = {"viewer": 0, "editor": 1, "admin": 2, "owner": 3}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: `id`, `kind` (`anonymous`, `instance_key`, `api_key` or `user`), `roles`
    and `tenant_id` (None: an instance admin, who sees every tenant)."""

    id: str
    kind: str = "anonymous"
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"admin"}))
    tenant_id: str | None = None

    def can(self, permission: str) -> bool:
        return any(permission in ROLE_PERMISSIONS.get(role, ()) for role in self.roles)

    @property
    def rank(self) -> int:
        """The highest role's rank (viewer 0 … owner 3); instance admins rank above owners."""
        if self.tenant_id is None:
            return 4
        return max((ROLE_RANK.get(role, -1) for role in self.roles), default=-1)


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

    The name (default `key-1`, `key-2`, …) identifies the caller in logs and audit entries;
    the key itself is only held as a digest.
    """

    def __init__(self, keys: Iterable[str] | Mapping[str, str]) -> None:
        named = (dict(keys) if isinstance(keys, Mapping)
                 else {f"key-{i}": key for i, key in enumerate(keys, 1)})
        if not named or any(not key for key in named.values()):
            raise ValueError("API keys must be non-empty strings")
        self._keys = [(name, _digest(key)) for name, key in named.items()]

    def match(self, token: str) -> str | None:
        """The name of the key `token` is, or None (compared with every key, in constant
        time: the time taken names no key)."""
        given = _digest(token)
        found: str | None = None
        for name, digest in self._keys:
            if hmac.compare_digest(given, digest):
                found = name
        return found

    async def authenticate(self, request: Request, token: str | None) -> Principal:
        if not token:
            raise _missing()
        found = self.match(token)
        if found is None:
            raise _unauthorized("invalid_credentials", "the API key is not valid")
        return Principal(found, kind="instance_key")


class CredentialAuth:
    """Instance keys, stored API keys and JWT access tokens (see the module docs).

    `instance_keys` None makes an open server: no credentials means an anonymous admin.
    """

    def __init__(self, instance_keys: APIKeyAuth | None = None) -> None:
        self.instance_keys = instance_keys

    async def authenticate(self, request: Request, token: str | None) -> Principal:
        from treadle.server.state import state_of

        if not token:
            if self.instance_keys is None:
                return ANONYMOUS
            raise _missing()
        if self.instance_keys is not None:
            name = self.instance_keys.match(token)
            if name is not None:
                return Principal(name, kind="instance_key")
        state = state_of(request)
        if looks_like_key(token):
            key = await state.accounts.verify_key(token)
            if key is None:
                logger.info("refused an API key from %s", _client(request))
                raise _unauthorized("invalid_credentials", "the API key is not valid")
            await state.accounts.mark_used(key)
            return Principal(key.id, kind="api_key", roles=frozenset({key.role}),
                             tenant_id=key.tenant_id)
        if looks_like_jwt(token):
            return await _user_principal(request, state.accounts, state.tokens, token)
        if self.instance_keys is None:
            return ANONYMOUS  # an open server ignores credentials that are not Treadle's
        logger.info("refused an instance key from %s", _client(request))
        raise _unauthorized("invalid_credentials", "the API key is not valid")


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _user_principal(request: Request, accounts: Accounts, tokens: Tokens,
                          token: str) -> Principal:
    try:
        claims = tokens.decode(token, "access")
    except InvalidToken as exc:
        logger.info("refused an access token from %s: %s", _client(request), exc.reason)
        if exc.reason == "expired":
            raise _unauthorized("token_expired", "the access token has expired: refresh it "
                                "(`POST /api/v1/auth/refresh`) or log in again") from None
        raise _unauthorized("invalid_token", "the access token is not valid") from None
    user = await accounts.get_user(claims.sub)
    if (user is None or user.disabled or user.tenant_id != claims.tenant_id
            or user.token_version != claims.version):
        logger.info("refused an access token of %s: the user changed", claims.sub)
        raise _unauthorized("invalid_token", "the access token is no longer valid")
    return Principal(user.email, kind="user", roles=frozenset({user.role}),
                     tenant_id=user.tenant_id)


def _missing() -> ApiError:
    return _unauthorized("missing_credentials",
                         "send an API key: `Authorization: Bearer <key>` or `X-API-Key`")


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


def demands(permission: str) -> Callable[[_F], _F]:
    """Mark a dependency as demanding `permission` (read by `route_permission`)."""

    def mark(fn: _F) -> _F:
        setattr(fn, PERMISSION_ATTRIBUTE, permission)
        return fn

    return mark


demands("authenticated")(current_principal)


def route_permission(dependant: Any) -> str:
    """What a route (its FastAPI `dependant`) demands of the caller: the mark of the first
    marked dependency, depth first, or `public` when none is marked."""
    for sub in dependant.dependencies:
        found = getattr(sub.call, PERMISSION_ATTRIBUTE, None)
        if found is None:
            found = route_permission(sub)
            found = None if found == "public" else found
        if found is not None:
            return str(found)
    return "public"


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
    return demands(permission)(check)


def requires_instance(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """Like `requires`, for instance-wide data (e.g. `/metrics`, labelled with every tenant):
    tenant principals get 403 whatever their role."""
    check_permission = requires(permission)

    async def check(request: Request) -> Principal:
        principal = await check_permission(request)
        if principal.tenant_id is not None:
            raise ApiError(403, "forbidden", "this is instance-wide: it needs an instance key")
        return principal

    check.__name__ = f"requires_instance_{permission}"
    return demands("instance")(check)


SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "an API key, or a JWT access token from `/api/v1/auth/login`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def make_authenticator(
    api_keys: Iterable[str] | Mapping[str, str] | None, auth: Authenticator | None
) -> Authenticator:
    """`auth` when given, else `CredentialAuth` over the instance keys (open without)."""
    if auth is not None:
        return auth
    return CredentialAuth(None if api_keys is None else APIKeyAuth(api_keys))
