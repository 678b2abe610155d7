"""cache.redis and cache.modular's redis backend on the machine's Redis: YAML pipelines that
set and get through them, expiry, prefixes, database selection and start failures. Every test
uses a key prefix of its own and deletes its keys afterwards."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import treadle
from stores.storekit import require_service
from treadle.apps import build_app
from treadle.apptest import run_test_file
from treadle.modules.redis_cache import CacheError, ModularRedisCache, RedisCache

pytestmark = pytest.mark.services

ADDRESS = os.environ.get("TREADLE_TEST_REDIS_ADDRESS", "127.0.0.1:6379")
HOST, _, PORT = ADDRESS.rpartition(":")

Make = Callable[..., Awaitable[RedisCache]]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh key prefix; its keys (in databases 0 and 5) are deleted afterwards."""
    require_service("Redis", HOST, int(PORT))
    value = f"treadle-cache-test:{uuid.uuid4().hex[:12]}:"
    yield value
    for db in (0, 5):
        with redis.Redis(host=HOST, port=int(PORT), db=db) as client:
            keys = list(client.scan_iter(match=f"{value}*"))
            if keys:
                client.delete(*keys)


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    """A plain client on database 0, to look at what the modules stored."""
    with redis.Redis(host=HOST, port=int(PORT)) as client:
        yield client


@pytest.fixture
async def caches(prefix: str) -> AsyncIterator[Make]:
    """`make(name, cls=RedisCache, **config)`: a started cache on the test server and
    prefix, stopped after the test."""
    made: list[RedisCache] = []

    async def make(name: str = "cache", cls: type[RedisCache] = RedisCache,
                   **config: Any) -> RedisCache:  # fmt: skip
        cache = cls(name, {"address": ADDRESS, "prefix": prefix, **config})
        await cache.start()
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.stop()


async def until(condition: Callable[[], Any], deadline: float = 5.0) -> None:
    """Wait until `condition()` (maybe async) is true, polling, at most `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < end, "condition not met before the deadline"
        await asyncio.sleep(0.02)


APP = """
modules:
  - name: sessions
    type: {type}
    config:
      {backend}address: "{address}"
      prefix: "{prefix}"
pipelines:
  remember:
    steps:
      - name: user
        type: step.cache_set
        config: {{cache: sessions, key: "user:{{{{ .id }}}}", value: "{{{{ .user }}}}"}}
      - name: text
        type: step.cache_set
        config: {{cache: sessions, key: "text:{{{{ .id }}}}", value: "{{{{ json .user }}}}",
                 ttl: 90s}}
  recall:
    steps:
      - name: user
        type: step.cache_get
        config: {{cache: sessions, key: "user:{{{{ .id }}}}", output: user}}
      - name: greet
        type: step.set
        config: {{values: {{greeting: "hello {{{{ .user.name }}}}"}}}}
      - name: text
        type: step.cache_get
        config: {{cache: sessions, key: "text:{{{{ .id }}}}", output: text}}
      - name: missing
        type: step.cache_get
        config: {{cache: sessions, key: "nobody:{{{{ .id }}}}", output: nobody}}
  strict:
    steps:
      - name: must
        type: step.cache_get
        config: {{cache: sessions, key: "nobody", miss_ok: false}}
"""


@pytest.mark.parametrize("kind", ["cache.redis", "cache.modular"])
async def test_yaml_pipelines_set_and_get_through_redis(
        kind: str, prefix: str, raw: redis.Redis, tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    backend = "backend: redis\n      " if kind == "cache.modular" else ""
    app.write_text(textwrap.dedent(APP.format(type=kind, backend=backend, address=ADDRESS,
                                              prefix=prefix)))  # fmt: skip
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    runtime = build_app(app, engine)
    user = {"name": "ann", "roles": ["admin"], "age": 7}
    async with runtime:
        cache = runtime.modules["sessions"]
        assert isinstance(cache, RedisCache) and cache.type == kind
        _, out = await runtime.run_pipeline("remember", {"id": 1, "user": user})
        assert out["cached"] is True
        # What Redis holds: JSON for the mapping, the rendered text (`json` sorts keys, as
        # Go's encoder does) as it is.
        assert raw.get(f"{prefix}user:1") == b'{"name":"ann","roles":["admin"],"age":7}'
        assert raw.get(f"{prefix}text:1") == b'{"age":7,"name":"ann","roles":["admin"]}'
        default_ms = 3_600_000 if kind == "cache.redis" else 300_000
        assert default_ms - 60_000 < raw.pttl(f"{prefix}user:1") <= default_ms
        assert 30_000 < raw.pttl(f"{prefix}text:1") <= 90_000
        _, out = await runtime.run_pipeline("recall", {"id": 1})
        assert out["user"] == user and out["greeting"] == "hello ann"  # a mapping again
        assert out["text"] == user
        assert out["nobody"] == "" and out["cache_hit"] is False  # the last get missed
        with pytest.raises(treadle.ExecutionFailedError, match="cache miss for key 'nobody'"):
            await runtime.run_pipeline("strict", {})
        assert await cache.health_check() == (True, "connected")
    assert cache.client is None  # the app's stop closed the connection
    await engine.close()


async def test_strings_stay_strings_and_other_values_are_json(
        caches: Make, prefix: str, raw: redis.Redis) -> None:
    cache = await caches()
    raw.set(f"{prefix}from-go", "plain text from a Go service")
    assert await cache.get("from-go") == "plain text from a Go service"
    for key, value, stored, read in [
        ("s", "hello", b"hello", "hello"),
        ("m", {"a": {"b": [1, None]}}, b'{"a":{"b":[1,null]}}', {"a": {"b": [1, None]}}),
        ("l", [1, "x"], b'[1,"x"]', [1, "x"]),
        ("n", 42, b"42", "42"),
        ("u", "ünï", "ünï".encode(), "ünï"),
    ]:
        await cache.set(key, value)
        assert raw.get(prefix + key) == stored
        assert await cache.get(key) == read
    assert await cache.delete("s") is True and await cache.delete("s") is False
    assert await cache.get("s") is None and raw.exists(f"{prefix}s") == 0


async def test_keys_expire_after_their_ttl(caches: Make, prefix: str, raw: redis.Redis) -> None:
    cache = await caches(defaultTTL="2m")
    await cache.set("short", "soon gone", ttl=1)
    assert 0 < raw.pttl(f"{prefix}short") <= 1000
    await cache.set("default", "x", ttl=0)  # Go: 0 means the module's default
    assert 60_000 < raw.pttl(f"{prefix}default") <= 120_000
    await cache.set("none", "x")
    assert 60_000 < raw.pttl(f"{prefix}none") <= 120_000
    assert await cache.get("short") == "soon gone"
    await until(lambda: raw.exists(f"{prefix}short") == 0)  # Redis expired it
    assert await cache.get("short") is None

    forever = await caches("forever", defaultTTL="0")
    await forever.set("k", "v", ttl=0)
    assert raw.pttl(f"{prefix}k") == -1  # no default: no expiry
    modular = await caches("modular", cls=ModularRedisCache)
    await modular.set("m0", "v", ttl=0)
    await modular.set("m", "v")
    assert raw.pttl(f"{prefix}m0") == -1  # cache.modular: an explicit 0 never expires
    assert 240_000 < raw.pttl(f"{prefix}m") <= 300_000


async def test_the_prefix_separates_caches(caches: Make, prefix: str, raw: redis.Redis) -> None:
    first = await caches("first", prefix=f"{prefix}a?:")  # a glob character, matched as is
    second = await caches("second", prefix=f"{prefix}ab:")
    await first.set("k", "one")
    await second.set("k", "two")
    assert raw.get(f"{prefix}a?:k") == b"one" and raw.get(f"{prefix}ab:k") == b"two"
    assert await first.get("k") == "one" and await second.get("k") == "two"
    await first.clear()  # only its own keys: `a?:*` as a pattern would match `ab:k` too
    assert await first.get("k") is None and raw.get(f"{prefix}a?:k") is None
    assert await second.get("k") == "two"
    default = await caches("default", prefix="")
    assert default.key("k") == "wf:k"  # an empty prefix keeps Go's default


async def test_db_selects_the_redis_database(caches: Make, prefix: str,
                                             raw: redis.Redis) -> None:  # fmt: skip
    cache = await caches(db=5)
    await cache.set("k", "in five")
    assert raw.get(f"{prefix}k") is None
    with redis.Redis(host=HOST, port=int(PORT), db=5) as five:
        assert five.get(f"{prefix}k") == b"in five"
    assert await cache.get("k") == "in five"


async def test_start_fails_naming_module_and_address_never_the_password(
        caplog: pytest.LogCaptureFixture) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now
    secret = f"pw-{uuid.uuid4().hex}"
    cache = RedisCache("sessions", {"address": closed, "password": secret})
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(CacheError) as err:
        await cache.start()
    assert time.monotonic() - started < 5  # no retries before the start fails
    message = str(err.value)
    assert message.startswith(f"cache.redis 'sessions' (Redis at {closed}, db 0): ping failed")
    assert "ConnectionError" in message
    chain = [message]
    cause: BaseException | None = err.value.__cause__
    while cause is not None:
        chain.append(repr(cause))
        cause = cause.__cause__ or cause.__context__
    assert all(secret not in text for text in chain)
    assert secret not in caplog.text and secret not in repr(cache)
    assert cache.client is None
    with pytest.raises(CacheError, match="not started"):
        await cache.set("k", "v")



def test_treadle_test_state_stores_can_be_a_redis_cache(prefix: str, raw: redis.Redis,
                                                        tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "stateful_test.yaml"
    path.write_text(textwrap.dedent(f"""\
        yaml: |
          modules:
            - name: sessions
              type: cache.redis
              config: {{address: "{ADDRESS}", prefix: "{prefix}"}}
          pipelines:
            take-turn:
              steps:
                - {{name: read, type: step.cache_get, config: {{cache: sessions, key: game-1}}}}
                - name: write
                  type: step.cache_set
                  config: {{cache: sessions, key: game-1, value: {{turn: p2}}}}
        tests:
          game:
            state:
              seed:
                sessions: {{game-1: {{turn: p1}}}}
            sequence:
              - name: turn
                pipeline: take-turn
                assertions:
                  - step: read
                    output: {{value: {{turn: p1}}, cache_hit: true}}
                  - state: {{sessions: {{game-1: {{turn: p2}}}}}}
        """))
    case = run_test_file(path).case("game")
    assert case.passed, [str(f) for f in case.failures]
    assert raw.get(f"{prefix}game-1") == b'{"turn":"p2"}'
