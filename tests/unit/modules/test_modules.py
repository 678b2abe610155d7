"""Behaviour of each built-in module type."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from treadle.modules import BuildContext
from treadle.modules.auth import JWTAuth, JWTError, decode_jwt, encode_jwt
from treadle.modules.base import normalise_config
from treadle.modules.http import StaticFileServer, parse_address
from treadle.modules.infra import HealthChecker, MemoryCache, MetricsCollector, Scheduler
from treadle.modules.messaging import (
    BrokerError,
    BrokerFullError,
    EventBusBroker,
    MemoryBroker,
    WebhookSender,
)
from treadle.modules.nats_broker import DEFAULT_URL, NatsBroker, redact_url
from treadle.modules.redis_cache import CacheError, ModularRedisCache, decode_value, encode_value
from treadle.modules.registry import default_registry
from treadle.modules.storage import LocalStorage, translate_placeholders
from treadle.modules.web import HTTPRequest, HTTPResponse


def build(type_: str, config: dict[str, Any], tmp_path: Path, name: str = "m") -> Any:
    spec = default_registry.get(type_)
    return spec.factory(name, normalise_config(spec.aliases, config),
                        BuildContext(base_dir=tmp_path))


def req(method: str = "GET", path: str = "/", **kw: Any) -> HTTPRequest:
    return HTTPRequest(method, path, path, **kw)


@pytest.mark.parametrize(("address", "expected"), [
    (":8080", ("0.0.0.0", 8080)), ("127.0.0.1:9000", ("127.0.0.1", 9000)),
    ("[::1]:81", ("::1", 81)), ("", ("127.0.0.1", 8080)), ("localhost", ("localhost", 8080)),
])
def test_listen_addresses_read_as_go_writes_them(address: str,
                                                 expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected
    with pytest.raises(ValueError):
        parse_address(":http")


# -- storage --------------------------------------------------------------------------------


async def test_sqlite_storage_runs_init_sql_in_wal_mode(tmp_path: Path) -> None:
    db = build("storage.sqlite", {"dbPath": "data/x.db",
                                  "init_sql": ["CREATE TABLE t (v TEXT)"]}, tmp_path)
    await db.start()
    conn = db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("INSERT INTO t VALUES (?)", ["a"])
    assert (tmp_path / "data" / "x.db").exists()
    assert await db.health_check() == (True, "ok")
    await db.stop()
    assert db.connection() is None and (await db.health_check())[0] is False


async def test_workflow_database_on_sqlite(tmp_path: Path) -> None:
    db = build("database.workflow", {"driver": "sqlite3", "dsn": "w.db",
                                     "init_sql": "CREATE TABLE t (v INTEGER)"}, tmp_path)
    assert "w.db" not in repr(db)  # the DSN is never shown
    await db.start()
    db.connection().execute("INSERT INTO t VALUES (1)")
    assert db.connection().execute("SELECT count(*) FROM t").fetchone()[0] == 1
    await db.stop()


def test_postgres_placeholders_are_translated() -> None:
    assert translate_placeholders("SELECT * FROM t WHERE a = ? AND b = ?") == (
        "SELECT * FROM t WHERE a = %s AND b = %s", None)
    assert translate_placeholders("UPDATE t SET a = $2 WHERE id = $1 OR p = $1") == (
        "UPDATE t SET a = %s WHERE id = %s OR p = %s", [1, 0, 0])
    assert translate_placeholders("SELECT '?', \"a?\", 5 % 2 -- what?\n, ?") == (
        "SELECT '?', \"a?\", 5 %% 2 -- what?\n, %s", None)


async def test_local_storage_is_confined_to_its_root(tmp_path: Path) -> None:
    files = build("storage.local", {"rootDir": "files"}, tmp_path)
    assert isinstance(files, LocalStorage)
    await files.start()
    assert files.handle("write", {"path": "a/b.txt", "content": "hi"})["size"] == 2
    assert files.handle("read", {"path": "a/b.txt"})["content"] == "hi"
    assert files.handle("list", {})["files"] == ["a/b.txt"]
    with pytest.raises(ValueError, match="outside the storage root"):
        files.read("../../etc/passwd")
    assert files.handle("delete", {"path": "a/b.txt"})["deleted"] is True


# -- messaging ------------------------------------------------------------------------------


async def test_broker_delivers_in_order_to_every_subscriber() -> None:
    broker = MemoryBroker("b", {})
    got: list[tuple[str, bytes]] = []

    async def slow(msg: bytes) -> None:
        await asyncio.sleep(0)
        got.append(("slow", msg))

    broker.subscribe("t", slow)
    broker.subscribe("t", lambda msg: got.append(("fast", msg)))
    broker.subscribe("other", lambda msg: got.append(("other", msg)))
    await broker.start()
    for i in range(3):
        await broker.publish("t", {"i": i})
    await broker.drain()
    assert [m for who, m in got if who == "slow"] == [b'{"i":0}', b'{"i":1}', b'{"i":2}']
    assert [m for who, m in got if who == "fast"] == [b'{"i":0}', b'{"i":1}', b'{"i":2}']
    await broker.stop()


async def test_a_full_queue_fails_the_publish() -> None:
    broker = MemoryBroker("b", {"maxQueueSize": 1, "deliveryTimeout": "10ms"})
    broker.subscribe("t", lambda msg: None)  # not started: nothing drains the queue
    await broker.publish("t", "one")
    with pytest.raises(BrokerFullError):
        await broker.publish("t", "two")


async def test_the_eventbus_bridge_is_the_in_memory_broker(tmp_path: Path) -> None:
    bus = build("messaging.broker.eventbus", {"maxQueueSize": 5}, tmp_path)
    assert isinstance(bus, EventBusBroker) and isinstance(bus, MemoryBroker)
    assert bus.max_queue == 5
    got: list[bytes] = []
    sub = bus.subscribe("t", got.append)
    await bus.start()
    await bus.handle("publish", {"topic": "t", "message": {"a": 1}})
    await bus.drain()
    sub.unsubscribe()
    await bus.publish("t", "gone")
    await bus.drain()
    assert got == [b'{"a":1}']
    with pytest.raises(ValueError, match=r"messaging\.broker\.eventbus 'm' has no action"):
        bus.handle("send", {})
    await bus.stop()


def test_nats_urls_are_shown_without_credentials() -> None:
    assert redact_url("nats://ann:s3cret@db:4222") == "nats://ann:***@db:4222"
    assert redact_url("nats://tok3n@db:4222") == "nats://***@db:4222"
    assert redact_url("ann:pw@a:4222, tls://b:4222") == "ann:***@a:4222,tls://b:4222"
    assert redact_url(DEFAULT_URL) == "nats://127.0.0.1:4222"


async def test_nats_broker_config_and_use_before_start(tmp_path: Path) -> None:
    default = build("messaging.nats", {}, tmp_path, name="events")
    assert isinstance(default, NatsBroker) and default.servers == [DEFAULT_URL]
    assert default.connection_name == "treadle:events" and default.max_reconnects == 60
    nats = build("messaging.nats", {"url": "nats://u:pw@a:4222,nats://b:4222",
                                    "connectTimeout": "500ms", "maxReconnects": -1},
                 tmp_path)  # fmt: skip
    assert nats.servers == ["nats://u:pw@a:4222", "nats://b:4222"]
    assert "pw" not in repr(nats) and nats.connect_timeout == 0.5
    assert build("messaging.nats", {"url": ["nats://a:1"]}, tmp_path).servers == ["nats://a:1"]
    with pytest.raises(ValueError, match="not a NATS subject"):
        nats.subscribe("orders placed", lambda msg: None)
    with pytest.raises(BrokerError, match="not connected to NATS"):
        await nats.publish("orders", {})
    assert await nats.health_check() == (False, "not connected to NATS")


async def test_a_failing_subscriber_does_not_stop_delivery() -> None:
    broker = MemoryBroker("b", {})
    seen: list[bytes] = []

    def handler(msg: bytes) -> None:
        seen.append(msg)
        raise RuntimeError("boom")

    broker.subscribe("t", handler)
    await broker.start()
    await broker.publish("t", b"1")
    await broker.publish("t", b"2")
    await broker.drain()
    assert seen == [b"1", b"2"] and broker.failed == 2
    await broker.stop()


async def test_webhook_sender_retries_then_dead_letters() -> None:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503 if len(calls) < 3 else 200, text="ok")

    sender = WebhookSender("w", {"maxRetries": 3})
    sender.transport = httpx.MockTransport(answer)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    sender.sleep = sleep
    out = await sender.handle("send", {"url": "http://hooks.test/x", "payload": {"a": 1}})
    assert out["status_code"] == 200 and out["attempts"] == 3 and slept == [1.0, 2.0]
    sender.transport = httpx.MockTransport(lambda r: httpx.Response(400))
    with pytest.raises(Exception, match="HTTP 400"):
        await sender.send("http://hooks.test/y", {})
    assert sender.dead_letters[-1]["error"] == "HTTP 400"


# -- cache, health, metrics -----------------------------------------------------------------


def test_cache_expires_entries_and_evicts_the_least_recent() -> None:
    cache = MemoryCache("c", {"defaultTTL": "1m", "maxItems": 2})
    now = [100.0]
    cache.clock = lambda: now[0]
    cache.set("a", 1)
    cache.set("b", 2, ttl=0)
    now[0] += 61
    assert cache.get("a") is None and cache.get("b") == 2
    cache.set("c", 3)
    cache.set("d", 4)
    assert cache.get("b") is None and cache.get("d") == 4


def test_cache_modular_is_in_memory_unless_the_backend_is_redis(tmp_path: Path) -> None:
    for config in ({}, {"backend": "memory", "defaultTTL": "1m"}):
        memory = build("cache.modular", config, tmp_path)
        assert type(memory) is MemoryCache
        memory.set("k", {"a": 1})  # sync, as steps and apptest have always used it
        assert memory.get("k") == {"a": 1} and memory.get("other") is None
    shared = build("cache.modular", {"backend": "redis", "address": "cache:6380",
                                     "password": "s3cret", "db": 2}, tmp_path)  # fmt: skip
    assert isinstance(shared, ModularRedisCache) and shared.type == "cache.modular"
    assert (shared.host, shared.port, shared.db, shared.prefix) == ("cache", 6380, 2, "wf:")
    assert shared.default_ttl == 300 and shared._ttl(0) == 0  # cache.modular: 0 never expires
    assert "s3cret" not in repr(shared)
    with pytest.raises(ValueError, match="backend must be"):
        build("cache.modular", {"backend": "memcached"}, tmp_path)


async def test_redis_cache_config_follows_the_go_factory(tmp_path: Path) -> None:
    default = build("cache.redis", {}, tmp_path, name="cache")
    assert (default.host, default.port, default.db) == ("localhost", 6379, 0)
    assert default.prefix == "wf:" and default.key("u:1") == "wf:u:1"
    assert default.default_ttl == 3600 and default._ttl(None) == default._ttl(0) == 3600
    assert default._ttl(2.5) == 2.5
    assert build("cache.redis", {"prefix": ""}, tmp_path).prefix == "wf:"  # as in Go
    assert build("cache.redis", {"defaultTTL": "0"}, tmp_path)._ttl(0) == 0
    ipv6 = build("cache.redis", {"address": "[::1]:7000"}, tmp_path)
    assert (ipv6.host, ipv6.port) == ("::1", 7000)
    for bad in ({"address": "redis://:pw@h:6379"}, {"address": "u:pw@h:6379"}):
        with pytest.raises(ValueError, match="host:port") as err:
            build("cache.redis", bad, tmp_path)
        assert "pw" not in str(err.value)
    with pytest.raises(ValueError, match="db must be"):
        build("cache.redis", {"db": -1}, tmp_path)
    with pytest.raises(CacheError, match=r"cache\.redis 'cache' .*not started"):
        await default.get("k")
    assert await default.health_check() == (False, "not connected to Redis")


def test_redis_cache_values_are_strings_or_json() -> None:
    assert encode_value("{{ plain }}") == b"{{ plain }}" and encode_value(b"\x00") == b"\x00"
    assert encode_value({"n": "ann", "tags": [1, 2]}) == b'{"n":"ann","tags":[1,2]}'
    assert encode_value(42) == b"42" and encode_value(True) == b"true"
    assert decode_value(b'{"n":"ann"}') == {"n": "ann"} and decode_value(b"[1]") == [1]
    assert decode_value(b"42") == "42" and decode_value(b"{not json") == "{not json"
    assert decode_value("é".encode()) == "é"


async def test_health_checker_reports_each_module() -> None:
    from treadle.modules import ModuleSet

    class Good:
        async def health_check(self) -> tuple[bool, str]:
            return True, "ok"

    class Bad:
        async def health_check(self) -> tuple[bool, str]:
            raise OSError("disk gone")

    health = HealthChecker("h", {})
    modules = ModuleSet({"good": Good(), "h": health}, ["good", "h"])
    await modules.start()
    ok = await health._health(req())
    assert ok.status == 200 and json.loads(ok.body)["checks"]["good"]["status"] == "healthy"
    assert (await health._ready(req())).status == 200
    health.checks["bad"] = Bad().health_check
    bad = await health._health(req())
    assert bad.status == 503
    assert json.loads(bad.body)["checks"]["bad"]["message"] == "OSError: disk gone"
    await modules.stop()
    assert (await health._ready(req())).status == 503
    assert [r[1] for r in health.http_routes()] == ["/healthz", "/readyz", "/livez"]


def test_metrics_render_prometheus_text() -> None:
    metrics = MetricsCollector("m", {"namespace": "shop"})
    metrics.observe_http("GET", "/items/{id}", 200, 0.02)
    metrics.observe_pipeline("get-item", "completed", 0.01)
    text = metrics.render()
    assert 'shop_http_requests_total{method="GET",route="/items/{id}",status="200"} 1' in text
    assert 'shop_http_request_duration_seconds_bucket{method="GET",route="/items/{id}",' \
           'le="0.025"} 1' in text
    assert 'shop_pipeline_executions_total{pipeline="get-item",status="completed"} 1' in text


# -- scheduler ------------------------------------------------------------------------------


async def test_scheduler_fires_due_jobs_once_per_slot() -> None:
    sched = Scheduler("s", {})
    start = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    sched.now = lambda: start
    fired: list[datetime] = []

    async def record(when: datetime) -> None:
        fired.append(when)

    job = sched.schedule("j", "*/5 * * * *", record)
    assert job.next_fire == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert await sched.tick(start + timedelta(minutes=1)) == []
    await sched.tick(datetime(2026, 1, 1, 10, 5, tzinfo=UTC))
    await sched.tick(datetime(2026, 1, 1, 10, 5, 59, tzinfo=UTC))
    # a long pause: fires once, for the latest missed slot
    await sched.tick(datetime(2026, 1, 1, 11, 2, tzinfo=UTC))
    assert fired == [datetime(2026, 1, 1, 10, 5, tzinfo=UTC),
                     datetime(2026, 1, 1, 11, 0, tzinfo=UTC)]


async def test_schedules_are_utc_unless_a_timezone_is_given() -> None:
    sched = Scheduler("s", {})
    sched.now = lambda: datetime(2026, 7, 1, 0, 0, tzinfo=UTC)

    async def nothing(when: datetime) -> None:
        return None

    utc = sched.schedule("utc", "0 9 * * *", nothing)
    paris = sched.schedule("paris", "0 9 * * *", nothing, timezone="Europe/Paris")
    every = sched.schedule("every", "@every 90s", nothing)
    assert utc.next_fire == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert paris.next_fire == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # CEST is UTC+2
    assert every.next_fire == datetime(2026, 7, 1, 0, 1, 30, tzinfo=UTC)


# -- auth -----------------------------------------------------------------------------------


def test_jwt_round_trip_expiry_and_tampering() -> None:
    token = encode_jwt({"sub": "1", "exp": 2_000_000_000}, "k")
    assert decode_jwt(token, "k", now=1_000)["sub"] == "1"
    with pytest.raises(JWTError, match="expired"):
        decode_jwt(token, "k", now=2_000_000_001)
    with pytest.raises(JWTError, match="signature"):
        decode_jwt(token, "other")
    head, body, sig = token.split(".")
    with pytest.raises(JWTError):
        decode_jwt(f"{head}.{body}x.{sig}", "k")
    none_alg = encode_jwt({"sub": "1"}, "k").split(".")
    import base64

    none_alg[0] = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(JWTError, match="unexpected signing method"):
        decode_jwt(".".join(none_alg), "k")


async def test_jwt_module_users_and_secret_hygiene(tmp_path: Path) -> None:
    seed = tmp_path / "users.json"
    seed.write_text(json.dumps([{"id": "7", "data": {"email": "a@x", "password": "pw",
                                                      "role": "admin"}}]))
    auth = build("auth.jwt", {"secret": "s3cr3t-value", "token_expiry": "1h",
                              "seedFile": "users.json"}, tmp_path)
    assert isinstance(auth, JWTAuth)
    assert "s3cr3t-value" not in repr(auth) and "secret" not in auth.config
    await auth.start()
    login = auth.handle("login", {"body": {"email": "a@x", "password": "pw"}})
    claims = auth.verify(login["token"])
    assert claims["sub"] == "7" and claims["role"] == "admin" and claims["iss"] == "workflow"
    assert claims["exp"] - claims["iat"] == 3600
    assert auth.handle("login", {"body": {"email": "a@x", "password": "no"}})["error"]
    reg = auth.handle("register", {"body": {"email": "b@x", "password": "pw2"}})
    assert auth.authenticate(reg["token"])[0] is True
    assert auth.authenticate("garbage") == (False, {})
    unset = build("auth.jwt", {"secret": "${JWT_SECRET}"}, tmp_path)
    with pytest.raises(ValueError, match="unexpanded"):
        await unset.start()


# -- middleware -----------------------------------------------------------------------------


async def _ok(request: HTTPRequest) -> HTTPResponse:
    return HTTPResponse(200, [], json.dumps(request.state).encode())


async def test_auth_middleware_checks_tokens_with_the_jwt_module(tmp_path: Path) -> None:
    from treadle.modules import ModuleSet

    auth = build("auth.jwt", {"secret": "k"}, tmp_path, name="auth")
    mw = build("http.middleware.auth", {}, tmp_path, name="mw")
    await ModuleSet({"auth": auth, "mw": mw}, ["auth", "mw"]).start()
    handler = mw.wrap(_ok)
    assert (await handler(req())).status == 401
    assert (await handler(req(headers={"authorization": "Basic x"}))).body == \
        b"Bearer authorization required\n"
    assert (await handler(req(headers={"authorization": "Bearer nope"}))).status == 401
    good = await handler(req(headers={"authorization": "Bearer " + auth.issue({"sub": "u"})}))
    assert good.status == 200 and json.loads(good.body)["auth_claims"]["sub"] == "u"


async def test_cors_answers_preflight_and_echoes_allowed_origins(tmp_path: Path) -> None:
    cors = build("http.middleware.cors", {"allowedOrigins": ["https://a.example"],
                                          "maxAge": 60}, tmp_path)
    handler = cors.wrap(_ok)
    pre = await handler(req("OPTIONS", headers={"origin": "https://a.example"}))
    assert pre.status == 200 and pre.get_header("Access-Control-Allow-Origin") == \
        "https://a.example" and pre.get_header("Access-Control-Max-Age") == "60"
    other = await handler(req(headers={"origin": "https://evil.example"}))
    assert other.get_header("Access-Control-Allow-Origin") is None


async def test_rate_limit_is_a_token_bucket_per_client(tmp_path: Path) -> None:
    limit = build("http.middleware.ratelimit", {"requestsPerMinute": 60, "burstSize": 2},
                  tmp_path)
    now = [0.0]
    limit.clock = lambda: now[0]
    handler = limit.wrap(_ok)
    statuses = [(await handler(req(client="1.1.1.1"))).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert (await handler(req(client="2.2.2.2"))).status == 200
    now[0] += 1.0
    assert (await handler(req(client="1.1.1.1"))).status == 200


async def test_request_id_and_security_headers(tmp_path: Path) -> None:
    rid = build("http.middleware.requestid", {}, tmp_path)
    sec = build("http.middleware.securityheaders", {"contentSecurityPolicy": "default-src 'self'"},
                tmp_path)
    handler = sec.wrap(rid.wrap(_ok))
    given = await handler(req(headers={"x-request-id": "abc"}))
    assert given.get_header("X-Request-ID") == "abc"
    fresh = await handler(req())
    assert len(fresh.get_header("X-Request-ID") or "") == 36
    assert fresh.get_header("X-Frame-Options") == "DENY"
    assert fresh.get_header("Content-Security-Policy") == "default-src 'self'"
    assert fresh.get_header("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"


# -- static files ---------------------------------------------------------------------------


async def test_static_files_with_spa_fallback_and_no_escape(tmp_path: Path) -> None:
    (tmp_path / "ui" / "assets").mkdir(parents=True)
    (tmp_path / "ui" / "index.html").write_text("<html>app</html>")
    (tmp_path / "ui" / "assets" / "app.js").write_text("x=1")
    (tmp_path / "secret.txt").write_text("no")
    files = build("static.fileserver", {"root": "ui", "prefix": "/ui/"}, tmp_path)
    assert isinstance(files, StaticFileServer)
    assert files.http_routes()[0][:2] == ("GET", "/ui/{path...}")

    async def get(path: str) -> HTTPResponse:
        return await files.handle(HTTPRequest("GET", path, path, path_params={"path": path}))

    js = await get("assets/app.js")
    assert js.body == b"x=1" and "javascript" in (js.get_header("Content-Type") or "")
    assert js.get_header("Cache-Control") == "public, max-age=3600"
    assert (await get("orders/42")).body == b"<html>app</html>"  # SPA route
    assert (await get("missing.png")).status == 404
    assert (await get("../secret.txt")).status == 404
