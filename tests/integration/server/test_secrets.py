"""No password, key, token, hash or digest in any response or log line (but the one answer
that hands a key or a token out)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from treadle.stores.base import RecordQuery, open_store

from .tenancykit import JWT_SECRET, ROOT_KEY, World, build_world, login, ok

WRONG_PASSWORD = "wrong-password-that-must-not-echo"
LONG_PASSWORD = "secret-long-password-" + "z" * 2000
NEW_PASSWORD = "the-new-password-after-reset"


def _scenario(world: World) -> list[str]:
    """Everything a client may do with credentials; the secrets it used on the way."""
    used = [WRONG_PASSWORD, LONG_PASSWORD, NEW_PASSWORD]
    a = world.a
    viewer = a.users["viewer"]
    with world.client() as anon:
        anon.post("/api/v1/auth/login", json={"email": viewer.email, "password": WRONG_PASSWORD})
        anon.post("/api/v1/auth/login", json={"email": "who@x.test", "password": WRONG_PASSWORD})
        anon.post("/api/v1/auth/login", json={"email": viewer.email, "password": LONG_PASSWORD})
        anon.post("/api/v1/auth/login", json={"email": viewer.email, "password": 12345})
        anon.post("/api/v1/auth/refresh", json={"refresh_token": viewer.access_token})
        first = ok(anon.post("/api/v1/auth/refresh", json={"refresh_token": viewer.refresh_token}))
        anon.post("/api/v1/auth/refresh", json={"refresh_token": viewer.refresh_token})  # reused
        anon.post("/api/v1/auth/logout", json={"refresh_token": first["refresh_token"]})
        used += [first["access_token"], first["refresh_token"]]
    with world.client(viewer.access_token + "x") as bad, \
            world.client(a.keys["viewer"].key[:-2] + "zz", header="x-api-key") as bad_key, \
            world.client(ROOT_KEY + "x") as bad_root:
        for client in (bad, bad_key, bad_root):
            client.get("/api/v1/executions")
    with world.as_user(a, "owner") as owner:
        made = ok(owner.post("/api/v1/users", json={"email": "leak@tenant-a.test",
                                                    "password": "first-password-1"}), 201)
        owner.patch(f"/api/v1/users/{made['id']}", json={"password": NEW_PASSWORD})
        owner.patch(f"/api/v1/users/{made['id']}", json={"password": "short"})
        owner.post("/api/v1/users", json={"email": "leak@tenant-a.test",
                                          "password": "first-password-1"})
        key = ok(owner.post("/api/v1/api-keys", json={"name": "leaky", "role": "admin"}), 201)
        used += ["first-password-1", key["key"]]
        owner.get(f"/api/v1/api-keys/{key['id']}")
        owner.get("/api/v1/api-keys")
        owner.get("/api/v1/users")
        owner.delete(f"/api/v1/api-keys/{key['id']}")
        owner.get("/api/v1/audit")
        owner.get("/api/v1/auth/me")
    with world.root() as root:
        root.get("/api/v1/audit")
        root.get("/api/v1/users")
        root.get("/api/v1/api-keys")
    with world.client() as anon:
        login(anon, viewer)
        used += [viewer.access_token, viewer.refresh_token]
    return used


def _stored_secrets(world: World) -> list[str]:
    """The password hashes and key digests at rest (they must not leave the server either)."""

    async def read() -> list[str]:
        store = open_store(world.server.engine.store.url)
        await store.open()
        try:
            out: list[str] = []
            for kind, field in (("user", "password_hash"), ("api_key", "digest")):
                page = await store.list_records(RecordQuery(kind, limit=1000))
                out += [str(r.data[field]) for r in page.items]
            return out
        finally:
            await store.close()

    return asyncio.run(read())


def _visible_text(response: httpx.Response) -> str:
    """What a response shows, less the secret it exists to hand out."""
    text = response.text
    if response.request.method == "POST" and response.status_code in (200, 201):
        path = response.request.url.path
        body = response.json()
        if path == "/api/v1/api-keys":
            body.pop("key")
        elif path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
            body.pop("access_token")
            body.pop("refresh_token")
        text = json.dumps(body)
    return text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


def test_no_secret_leaves_the_server(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="treadle")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    for world in build_world(tmp_path):
        used = _scenario(world)
        secrets = {*world.secrets(), *used, *_stored_secrets(world), JWT_SECRET}
        secrets = {s for s in secrets if len(s) >= 8}
        assert len(world.responses) > 50
        statuses = {r.status_code for r in world.responses}
        assert {200, 201, 204, 401, 409, 422} <= statuses
        for response in world.responses:
            shown = _visible_text(response)
            for secret in secrets:
                assert secret not in shown, (response.request.method, response.request.url,
                                             response.status_code)
    server_logs = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(r.getMessage() for r in server_logs)
    for event in ("failed login", "used twice", "refused an access token", "refused an API key",
                  "refused an instance key"):
        assert event in logged  # the log is not empty: the checks below check something
    for record in server_logs:
        line = record.getMessage() + (record.exc_text or "")
        for secret in secrets:
            assert secret not in line, record.name
