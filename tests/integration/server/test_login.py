"""Login with e-mail and password: JWT access tokens, rotating refresh tokens, expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

import treadle

from .conftest import start_server
from .tenancykit import FAST, JWT_SECRET, KIT, Account, World, build_world, login, ok


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("login"))


def _fresh(world: World, role: str = "viewer") -> Account:
    """A new login of the tenant A user with `role` (its own refresh chain)."""
    account = world.a.users[role]
    mine = Account(account.email, account.password)
    with world.client() as anon:
        login(anon, mine)
    return mine


def _refresh(world: World, token: str) -> httpx.Response:
    with world.client() as anon:
        return anon.post("/api/v1/auth/refresh", json={"refresh_token": token})


def _forge(claims: dict[str, Any], secret: str = JWT_SECRET) -> str:
    now = int(time.time())
    base = {"iss": "treadle", "iat": now - 60, "exp": now + 600, "jti": "forged", "fam": "f",
            "ver": 0}
    return jwt.encode({**base, **claims}, secret, algorithm="HS256")


def test_login_gives_a_working_pair(world: World) -> None:
    with world.client() as anon:
        response = anon.post("/api/v1/auth/login", json={
            "email": world.a.users["editor"].email.upper(),
            "password": world.a.users["editor"].password})
    body = ok(response)
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert body["refresh_expires_in"] == 7 * 86400
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"],
                        issuer="treadle")
    assert claims["sub"] == world.a.users["editor"].email and claims["tid"] == world.a.id
    assert claims["typ"] == "access" and claims["role"] == "editor"
    with world.client(body["access_token"]) as c:
        me = ok(c.get("/api/v1/auth/me"))
        assert me == {"id": world.a.users["editor"].email, "kind": "user",
                      "tenant_id": world.a.id, "roles": ["editor"],
                      "permissions": ["read", "write"]}


@pytest.mark.parametrize("case", ["wrong password", "unknown e-mail", "disabled"])
def test_failed_logins_look_the_same(world: World, case: str) -> None:
    viewer = world.a.users["viewer"]
    email, password = viewer.email, viewer.password
    if case == "wrong password":
        password = "not-the-password"
    elif case == "unknown e-mail":
        email = "ghost@tenant-a.test"
    else:
        with world.as_user(world.a, "owner") as owner:
            ok(owner.patch(f"/api/v1/users/{viewer.email}", json={"disabled": True}))
    try:
        with world.client() as anon:
            response = anon.post("/api/v1/auth/login", json={"email": email,
                                                             "password": password})
        assert response.status_code == 401
        assert response.json()["error"] == {"code": "invalid_credentials",
                                            "message": "wrong e-mail or password",
                                            "details": None}
    finally:
        if case == "disabled":
            with world.as_user(world.a, "owner") as owner:
                ok(owner.patch(f"/api/v1/users/{viewer.email}", json={"disabled": False}))
            with world.client() as anon:
                login(anon, viewer)  # disabling ended the old tokens


def test_refresh_rotates_and_a_reused_token_ends_the_chain(world: World) -> None:
    first = _fresh(world)
    second = ok(_refresh(world, first.refresh_token))
    assert second["refresh_token"] != first.refresh_token
    with world.client(second["access_token"]) as c:
        ok(c.get("/api/v1/executions"))
    third = ok(_refresh(world, second["refresh_token"]))
    reused = _refresh(world, first.refresh_token)  # a stolen, already used token
    assert reused.status_code == 401 and reused.json()["error"]["code"] == "invalid_token"
    after_theft = _refresh(world, third["refresh_token"])  # the whole chain is revoked
    assert after_theft.status_code == 401
    other = _fresh(world)  # other logins are not affected
    ok(_refresh(world, other.refresh_token))
    with world.root() as root:
        entries = ok(root.get("/api/v1/audit", params={"action": "auth.refresh_reused"}))
    assert entries["items"][0]["actor"]["id"] == world.a.users["viewer"].email


def test_logout_revokes_the_refresh_chain(world: World) -> None:
    mine = _fresh(world)
    with world.client() as anon:
        assert anon.post("/api/v1/auth/logout",
                         json={"refresh_token": mine.refresh_token}).status_code == 204
    assert _refresh(world, mine.refresh_token).status_code == 401


def test_expired_and_forged_tokens_are_refused(world: World) -> None:
    email = world.a.users["editor"].email
    good = {"sub": email, "tid": world.a.id, "role": "editor"}
    expired = _forge({**good, "typ": "access", "exp": int(time.time()) - 5})
    with world.client(_forge({**good, "typ": "access"})) as c:  # the forger has the secret
        ok(c.get("/api/v1/executions"))
    with world.client(expired) as c:
        response = c.get("/api/v1/executions")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    assert response.headers["www-authenticate"] == "Bearer"
    expired_refresh = _forge({**good, "typ": "refresh", "exp": int(time.time()) - 5})
    assert _refresh(world, expired_refresh).json()["error"]["code"] == "token_expired"
    forged = [
        _forge({**good, "typ": "access"}, secret="another-secret-another-secret-0123"),
        _forge({**good, "typ": "access", "role": "owner", "tid": world.b.id}),  # wrong tenant
        _forge({**good, "typ": "access", "ver": 7}),  # an older password's token version
        _forge({**good, "typ": "refresh"}),  # a refresh token is no access token
        _forge({**good, "typ": "access", "iss": "someone-else"}),
        _forge({**good, "typ": "access", "sub": "ghost@tenant-a.test"}),
        jwt.encode({**good, "typ": "access", "exp": int(time.time()) + 60, "iat": 0,
                    "iss": "treadle", "jti": "x", "fam": "f", "ver": 0}, None,
                   algorithm="none"),
    ]
    for token in forged:
        with world.client(token) as c:
            response = c.get("/api/v1/executions")
        assert response.status_code == 401, token
        assert response.json()["error"]["code"] == "invalid_token"
    access_as_refresh = _fresh(world).access_token
    assert _refresh(world, access_as_refresh).json()["error"]["code"] == "invalid_token"


def test_a_token_takes_its_role_from_the_user_record(world: World) -> None:
    email = world.a.users["viewer"].email
    version = jwt.decode(_fresh(world).access_token, options={"verify_signature": False})["ver"]
    claims_owner = _forge({"sub": email, "tid": world.a.id, "role": "owner", "typ": "access",
                           "ver": version})
    with world.client(claims_owner) as c:  # signed, but the stored role wins
        assert ok(c.get("/api/v1/auth/me"))["roles"] == ["viewer"]
        assert c.get("/api/v1/users").status_code == 403


def test_a_new_password_ends_every_token(world: World) -> None:
    admin = world.a.users["admin"]
    mine = _fresh(world, "admin")
    with world.as_user(world.a, "owner") as owner:
        ok(owner.patch(f"/api/v1/users/{admin.email}", json={"password": "a-brand-new-one"}))
    with world.client(mine.access_token) as c:
        assert c.get("/api/v1/executions").status_code == 401
    assert _refresh(world, mine.refresh_token).status_code == 401
    renewed = Account(admin.email, "a-brand-new-one")
    with world.client() as anon:
        login(anon, renewed)
        assert anon.post("/api/v1/auth/login", json={"email": admin.email,
                                                     "password": admin.password}
                         ).status_code == 401
    admin.password, admin.access_token = renewed.password, renewed.access_token
    admin.refresh_token = renewed.refresh_token


def test_tokens_outlive_a_restart_only_with_the_same_secret(world: World,
                                                            tmp_path: Path) -> None:
    token = _fresh(world).access_token
    url = world.server.engine.store.url
    for secret, status in ((JWT_SECRET, 200), (None, 401)):
        server = start_server(treadle.Engine(url, registry=KIT), api_keys={"r": "k"},
                              jwt_secret=secret, settings=FAST)
        try:
            with server.client(Authorization=f"Bearer {token}") as c:
                assert c.get("/api/v1/executions").status_code == status
        finally:
            server.stop()


def test_short_secrets_are_refused() -> None:
    from treadle.server import create_app

    with pytest.raises(ValueError, match="32 bytes"):
        create_app(treadle.Engine(registry=KIT), jwt_secret="short")


def test_an_open_server_still_checks_treadle_credentials(tmp_path: Path) -> None:
    server = start_server(treadle.Engine(registry=KIT), settings=FAST, jwt_secret=JWT_SECRET)
    try:
        with server.client() as anon:
            ok(anon.post("/api/v1/tenants", json={"id": "solo", "owner": {
                "email": "me@solo.test", "password": "long-enough-1"}}), 201)
            assert ok(anon.get("/api/v1/auth/me"))["kind"] == "anonymous"
            pair = ok(anon.post("/api/v1/auth/login", json={"email": "me@solo.test",
                                                             "password": "long-enough-1"}))
        with server.client(Authorization=f"Bearer {pair['access_token']}") as me:
            assert ok(me.get("/api/v1/auth/me"))["tenant_id"] == "solo"
        with server.client(Authorization="Bearer trd_0123456789abcdef_" + "x" * 43) as bad:
            assert bad.get("/api/v1/executions").status_code == 401
        with server.client(Authorization="Bearer some-legacy-key") as legacy:
            assert ok(legacy.get("/api/v1/auth/me"))["kind"] == "anonymous"
    finally:
        server.stop()


def test_treadle_serve_passes_the_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import treadle.server
    from treadle.cli.app import build_app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(treadle.server, "serve", lambda *args, **kwargs: seen.update(kwargs))
    app = build_app()
    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--store", "memory://"],
                           env={"TREADLE_JWT_SECRET": JWT_SECRET})
    assert result.exit_code == 0, result.output
    assert seen["jwt_secret"] == JWT_SECRET
    result = runner.invoke(app, ["serve", "--store", "memory://", "--jwt-secret", "s" * 32],
                           env={"TREADLE_JWT_SECRET": ""})
    assert result.exit_code == 0 and seen["jwt_secret"] == "s" * 32
    assert "--jwt-secret" in runner.invoke(app, ["serve", "--help"]).output
