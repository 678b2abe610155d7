"""auth.jwt: JWT issue and verify (HMAC SHA-256/384/512 with the standard library), an
in-memory user store with register/login, and the token check of http.middleware.auth.

The secret is never logged nor shown in `repr`. A secret left as an unexpanded `${VAR}`
reference (the variable was not set) is refused at build time instead of being used as a
well-known key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from typing import Any

from treadle.modules.base import BuildContext, Module
from treadle.modules.registry import register

_ALGS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_UNEXPANDED = re.compile(r"^\$\{[^}]*\}$")


class JWTError(ValueError):
    """A token is malformed, badly signed or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise JWTError("malformed token") from exc


def encode_jwt(claims: dict[str, Any], secret: str, alg: str = "HS256") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing = f"{header}.{payload}".encode()
    sig = hmac.new(secret.encode(), signing, _ALGS[alg]).digest()
    return f"{header}.{payload}.{_b64(sig)}"


def decode_jwt(token: str, secret: str, *, now: float | None = None,
               leeway: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """The claims of `token` after checking its HMAC signature, `exp` and `nbf`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError("malformed token")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
    except ValueError as exc:
        raise JWTError("malformed token") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWTError("malformed token")
    digest = _ALGS.get(str(header.get("alg")))
    if digest is None:
        raise JWTError(f"unexpected signing method: {header.get('alg')}")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), digest).digest()
    if not hmac.compare_digest(expected, _unb64(parts[2])):
        raise JWTError("signature is invalid")
    moment = time.time() if now is None else now
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, int | float) and moment > exp + leeway:
        raise JWTError("token is expired")
    if isinstance(nbf, int | float) and moment + leeway < nbf:
        raise JWTError("token is not valid yet")
    return claims


def _hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 200_000)
    return f"pbkdf2_sha256${_b64(salt)}${_b64(digest)}"


def _check_password(password: str, stored: str) -> bool:
    try:
        _, salt, _digest = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(_hash_password(password, _unb64(salt)), stored)


class JWTAuth(Module):
    """Signs and verifies JWTs; keeps users in memory (seeded from `seedFile`)."""

    type = "auth.jwt"

    def __init__(self, name: str, config: dict[str, Any], ctx: BuildContext) -> None:
        super().__init__(name, {k: v for k, v in config.items() if k != "secret"})
        from treadle.steps._durations import parse_duration

        secret = config.get("secret")
        if not isinstance(secret, str) or not secret:
            raise ValueError("auth.jwt needs a 'secret'")
        self._secret = secret
        self.expiry = parse_duration(config.get("tokenExpiry") or "24h", "tokenExpiry")
        self.issuer = str(config.get("issuer") or "workflow")
        seed = config.get("seedFile")
        self.seed_file = ctx.path(seed) if isinstance(seed, str) and seed else None
        self.users: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<JWTAuth {self.name!r} issuer={self.issuer!r}>"

    async def start(self) -> None:
        if _UNEXPANDED.match(self._secret):
            raise ValueError(f"auth.jwt {self.name!r}: the secret is an unexpanded "
                             f"{self._secret} reference (is the variable set?)")
        if self.seed_file is not None and self.seed_file.is_file():
            for seed in json.loads(self.seed_file.read_text()):
                data = dict(seed.get("data") or {})
                email = data.pop("email", None)
                if isinstance(email, str) and email and email not in self.users:
                    self._add_user(str(seed.get("id") or uuid.uuid4()), email,
                                   str(data.pop("name", "")),
                                   str(data.pop("password", "") or secrets.token_urlsafe()),
                                   data)  # fmt: skip

    def _add_user(self, uid: str, email: str, name: str, password: str,
                  metadata: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        user = {"id": uid, "email": email, "name": name, "metadata": metadata,
                "password_hash": _hash_password(password), "createdAt": time.time()}
        self.users[email] = user
        return user

    # -- tokens ---------------------------------------------------------------------------

    def issue(self, claims: dict[str, Any], expires_in: float | None = None) -> str:
        """A signed token with `claims` plus `iss`, `iat` and `exp` (unless given)."""
        now = int(time.time())
        body = {"iss": self.issuer, "iat": now,
                "exp": now + int(self.expiry if expires_in is None else expires_in), **claims}
        return encode_jwt(body, self._secret)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; JWTError otherwise."""
        return decode_jwt(token, self._secret)

    def authenticate(self, token: str) -> tuple[bool, dict[str, Any]]:
        """For http.middleware.auth: `(valid, claims)`."""
        try:
            return True, self.verify(token)
        except JWTError:
            return False, {}

    # -- users (step.delegate: service: <this module>, action: login / register / ...) ------

    def _public(self, user: dict[str, Any]) -> dict[str, Any]:
        return {"id": user["id"], "email": user["email"], "name": user["name"],
                **user["metadata"]}  # fmt: skip

    def _token_for(self, user: dict[str, Any]) -> str:
        claims = {"sub": user["id"], "email": user["email"], "name": user["name"]}
        if user["metadata"].get("role"):
            claims["role"] = user["metadata"]["role"]
        return self.issue(claims)

    def handle(self, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """`register` / `login` ({email, password[, name]} from `body` or the data),
        `verify` / `profile` (a `token`, or the request's bearer token), `issue` ({claims})."""
        body = data.get("body") if isinstance(data.get("body"), dict) else data
        assert isinstance(body, dict)
        if action == "register":
            email, password = body.get("email"), body.get("password")
            if not email or not password:
                return {"error": "email and password are required", "response_status": 400}
            if email in self.users:
                return {"error": "email already registered", "response_status": 409}
            new = self._add_user(str(len(self.users) + 1), str(email),
                                 str(body.get("name") or ""), str(password), {})
            return {"token": self._token_for(new), "user": self._public(new)}
        if action == "login":
            found = self.users.get(str(body.get("email")))
            if found is None or not _check_password(str(body.get("password") or ""),
                                                    found["password_hash"]):
                return {"error": "invalid credentials", "authenticated": False}
            return {"token": self._token_for(found), "user": self._public(found),
                    "authenticated": True}  # fmt: skip
        if action in ("verify", "profile"):
            token = body.get("token") or _bearer(data)
            ok, claims = self.authenticate(str(token or ""))
            return {"valid": ok, "claims": claims}
        if action == "issue":
            wanted = body.get("claims")
            return {"token": self.issue(wanted if isinstance(wanted, dict) else {})}
        raise ValueError(f"auth.jwt {self.name!r} has no action {action!r} "
                         "(register, login, verify, profile, issue)")  # fmt: skip


def _bearer(data: dict[str, Any]) -> str | None:
    req = data.get("_http_request")
    headers = req.get("headers") if isinstance(req, dict) else None
    for key, value in (headers or {}).items():
        if key.lower() == "authorization" and str(value).startswith("Bearer "):
            return str(value)[7:]
    return None


@register(
    "auth.jwt",
    category="auth",
    provides=("auth", "service"),
    doc="""
JWT authentication with HMAC-signed tokens (HS256; HS384/HS512 verified too). It is the
token check of `http.middleware.auth`, and a service for `step.delegate` with the actions
`register`, `login` (`{email, password}` → `{token, user}`), `verify`, `profile` and `issue`
(users are kept in memory, passwords hashed with PBKDF2; `seedFile` preloads them in the Go
project's seed format `[{id, data: {email, name, password, ...}}]`). From Python:
`module.issue(claims)`, `module.verify(token)`. The secret is never logged; an unset
`${JWT_SECRET}` is an error, not a key.
""",
    schema={
        "type": "object",
        "required": ["secret"],
        "properties": {
            "secret": {"type": "string", "minLength": 1,
                       "description": "Signing key (use `${JWT_SECRET}`)."},
            "tokenExpiry": {"type": ["string", "number"], "default": "24h",
                            "description": "Token lifetime (`token_expiry` also accepted)."},
            "issuer": {"type": "string", "default": "workflow", "description": "`iss` claim."},
            "seedFile": {"type": "string", "description": "JSON file of initial users."},
            "responseFormat": {"enum": ["standard", "oauth2"],
                               "description": "Accepted for compatibility."},
        },
    },
    example="""
- name: auth
  type: auth.jwt
  config:
    secret: "${JWT_SECRET}"
    tokenExpiry: 1h
""",
    aliases=(("token_expiry", "tokenExpiry"),),
)
def _jwt(name: str, config: dict[str, Any], ctx: BuildContext) -> JWTAuth:
    return JWTAuth(name, config, ctx)


__all__ = ["JWTAuth", "JWTError", "decode_jwt", "encode_jwt"]
