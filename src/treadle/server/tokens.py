"""JWT access and refresh tokens (HS256), for users who log in with e-mail and password.

An access token (`typ: access`, 15 minutes by default) authenticates API calls like a key; a
refresh token (`typ: refresh`, 7 days) buys a new pair once. Claims: `sub` (the e-mail),
`tid` (tenant), `role`, `ver` (the user's token version: a new password or disabling the user
bumps it, which ends every token issued before), `jti`, `fam` (the login a refresh chain
descends from), `iat`, `exp`, `iss` (`treadle`).

Refresh tokens rotate: using one records its `jti` (a `refresh_used` record, created only
once, so two concurrent uses cannot both win); a refresh token used a second time is taken
for a stolen one and its whole family is revoked (a `refresh_revoked` record), so the thief's
and the owner's chains both end and the user logs in again. Both records expire with the
tokens and are pruned.

The secret comes from `create_app(jwt_secret=...)` or `TREADLE_JWT_SECRET` (32 bytes at
least). Without one, a random secret is made per process: tokens then die with the process
and are not accepted by other server processes.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt

ISSUER = "treadle"
ALGORITHM = "HS256"
REFRESH_USED = "refresh_used"
REFRESH_REVOKED = "refresh_revoked"

TokenType = Literal["access", "refresh"]


class InvalidToken(Exception):
    """A token that is malformed, badly signed, expired or of the wrong type (`reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    tenant_id: str
    role: str
    version: int
    jti: str
    family: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int

    def view(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "token_type": "bearer", "expires_in": self.expires_in,
                "refresh_expires_in": self.refresh_expires_in}


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class Tokens:
    """Issues and checks tokens with one HS256 secret."""

    def __init__(self, secret: str | bytes | None = None, *, access_seconds: float = 900.0,
                 refresh_seconds: float = 7 * 86400.0) -> None:
        self.ephemeral = secret is None or secret == ""
        raw = secrets.token_bytes(32) if self.ephemeral else secret
        assert raw is not None
        self._secret = raw.encode() if isinstance(raw, str) else raw
        if len(self._secret) < 32:
            raise ValueError("the JWT secret must be at least 32 bytes long")
        if access_seconds <= 0 or refresh_seconds <= 0:
            raise ValueError("token lifetimes must be positive")
        self.access_seconds = access_seconds
        self.refresh_seconds = refresh_seconds

    def __repr__(self) -> str:  # never the secret
        return f"Tokens(ephemeral={self.ephemeral})"

    def issue(self, sub: str, tenant_id: str, role: str, version: int,
              family: str | None = None, now: float | None = None) -> tuple[TokenPair, Claims]:
        """A new pair; the refresh token's claims come back too."""
        now = time.time() if now is None else now
        family = family or uuid.uuid4().hex
        base = {"sub": sub, "tid": tenant_id, "role": role, "ver": version, "iss": ISSUER,
                "iat": int(now), "fam": family}
        access_exp = now + self.access_seconds
        refresh_exp = now + self.refresh_seconds
        refresh_jti = uuid.uuid4().hex
        access = self._encode({**base, "typ": "access", "jti": uuid.uuid4().hex,
                               "exp": int(access_exp)})
        refresh = self._encode({**base, "typ": "refresh", "jti": refresh_jti,
                                "exp": int(refresh_exp)})
        pair = TokenPair(access, refresh, int(self.access_seconds), int(self.refresh_seconds))
        return pair, Claims(sub, tenant_id, role, version, refresh_jti, family, refresh_exp)

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str, typ: TokenType) -> Claims:
        """The claims of a valid token of type `typ`, else `InvalidToken`."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid") from exc
        if claims.get("typ") != typ:
            raise InvalidToken("wrong_type")
        sub, tid, role, ver = (claims.get("sub"), claims.get("tid"), claims.get("role"),
                               claims.get("ver"))
        jti, fam = claims.get("jti"), claims.get("fam")
        if not (isinstance(sub, str) and isinstance(tid, str) and isinstance(role, str)
                and isinstance(ver, int) and isinstance(jti, str) and isinstance(fam, str)):
            raise InvalidToken("invalid")
        return Claims(sub, tid, role, ver, jti, fam, float(claims["exp"]))
