"""cache.redis: a key → value cache on a Redis server (the Go project's `RedisCache`).

```python
cache = RedisCache("cache", {"address": "127.0.0.1:6379", "prefix": "app:"})
await cache.start()                      # connects and PINGs; CacheError naming module and address
await cache.set("user:1", {"n": "ann"})  # SET app:user:1 '{"n":"ann"}' PX 3600000
await cache.get("user:1")                # {'n': 'ann'}; None when the key is missing
await cache.delete("user:1")
await cache.stop()
```

The same interface as `MemoryCache` (`get`/`set`/`delete`/`clear`), but async, so
`step.cache_get` / `step.cache_set` await it, and shared by every process on the server.

Config and behaviour follow the Go factory: `address` (`host:port`, default
`localhost:6379`), `password`, `db`, `prefix` (default `wf:`, put before every key; an
empty prefix keeps the default, as in Go) and `defaultTTL` (default `1h`; `0` never
expires). A `set` with no TTL or a TTL of 0 uses `defaultTTL`, as Go's `Set` does.

Values: strings are stored as they are (a Go service on the same keys reads the same text);
other values (mappings, lists, numbers, booleans) are stored as compact JSON. `get` returns
text that is a JSON object or array decoded — so a mapping written by `step.cache_set`
comes back a mapping — and any other text as a string (numbers and booleans come back as
their text, as Go returns them). The password never appears in a log or an error.

`cache.modular` with `backend: redis` is `ModularRedisCache`: the same keys, but with
`cache.modular`'s meaning of the TTL (default `5m`; an explicit 0 never expires).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from treadle.errors import TreadleError, describe, require
from treadle.modules.base import BuildContext, Module
from treadle.modules.registry import register

logger = logging.getLogger("treadle.modules")

DEFAULT_ADDRESS = "localhost:6379"
DEFAULT_PREFIX = "wf:"
"""The Go factory's defaults (its `DefaultTTL` is one hour)."""


class CacheError(TreadleError):
    """A cache could not reach its server: connect, read or write failed."""


def encode_value(value: Any) -> bytes:
    """Strings (and bytes) as they are, anything else as compact JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def decode_value(raw: bytes) -> Any:
    """A JSON object or array decoded; any other text as a string."""
    text = raw.decode("utf-8", errors="replace")
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _address(value: str) -> tuple[str, int]:
    """`host:port` (`[::1]:6379` for IPv6; the port defaults to 6379)."""
    host, sep, port = value.rpartition(":")
    if not sep or host.endswith(":") or not port.isdigit():  # no port, or a bare IPv6 address
        host, port = value, "6379"
    return host.strip("[]") or "localhost", int(port)


class RedisCache(Module):
    """Keys of a Redis database, each under `prefix` (see the module docs)."""

    type = "cache.redis"
    ZERO_TTL_IS_DEFAULT = True
    """Go's `Set`: a TTL of 0 means the module's default."""
    DEFAULT_TTL = "1h"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        from treadle.steps._durations import parse_duration_or

        self.address = str(config.get("address") or DEFAULT_ADDRESS)
        if "://" in self.address or "@" in self.address:
            raise ValueError("address must be host:port (the password goes in `password`)")
        self.host, self.port = _address(self.address)
        self.password = str(config.get("password") or "") or None
        db = config.get("db", 0)
        if isinstance(db, bool) or not isinstance(db, int) or db < 0:
            raise ValueError(f"db must be a database number (0 or more), not {db!r}")
        self.db = db
        self.prefix = str(config.get("prefix") or DEFAULT_PREFIX)
        self.default_ttl = parse_duration_or(config.get("defaultTTL"), "defaultTTL",
                                             self.DEFAULT_TTL)  # fmt: skip
        self.connect_timeout = parse_duration_or(config.get("connectTimeout"), "connectTimeout",
                                                 "5s")  # fmt: skip
        self.client: Any = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.address} db {self.db}>"

    def key(self, key: str) -> str:
        """The Redis key of `key` (with the prefix)."""
        return self.prefix + key

    def _where(self) -> str:
        return f"{self.type} {self.name!r} (Redis at {self.address}, db {self.db})"

    @contextlib.contextmanager
    def _command(self, what: str) -> Iterator[None]:
        """Any failure of the Redis command inside as a CacheError naming the cache."""
        try:
            yield
        except CacheError:
            raise
        except Exception as exc:
            raise CacheError(f"{self._where()}: {what} failed: {describe(exc)}") from exc

    def _client(self) -> Any:
        if self.client is None:
            raise CacheError(f"{self._where()}: not started")
        return self.client

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and PING, once (a server that is not there fails the start at once rather
        than after retries); once connected, commands retry a lost connection 3 times."""
        if self.client is not None:
            return
        aioredis = require("redis.asyncio", "redis")
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff, NoBackoff

        client = aioredis.Redis(host=self.host, port=self.port, db=self.db,
                                password=self.password, retry=Retry(NoBackoff(), 0),
                                socket_connect_timeout=self.connect_timeout or None,
                                client_name=f"treadle:{self.name}")  # fmt: skip
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            raise CacheError(f"{self._where()}: ping failed: {describe(exc)}") from exc
        client.set_retry(Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3))
        self.client = client
        logger.info("cache %r: connected to Redis at %s, db %d", self.name, self.address,
                    self.db)  # fmt: skip

    async def stop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception as exc:
                logger.warning("cache %r: closing the Redis connection failed: %s",
                               self.name, describe(exc))  # fmt: skip

    async def health_check(self) -> tuple[bool, str]:
        if self.client is None:
            return False, "not connected to Redis"
        try:
            await self.client.ping()
        except Exception as exc:
            return False, describe(exc)
        return True, "connected"

    # -- the cache interface ---------------------------------------------------------------

    async def get(self, key: str) -> Any:
        """The value, or None when the key is missing (or expired)."""
        with self._command(f"get {key!r}"):
            raw = await self._client().get(self.key(key))
        return None if raw is None else decode_value(raw)

    def _ttl(self, ttl: float | None) -> float:
        if ttl is None or (ttl == 0 and self.ZERO_TTL_IS_DEFAULT):
            return self.default_ttl
        return ttl

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store `value` for `ttl` seconds (None, and for cache.redis 0: the default;
        a resulting 0 never expires)."""
        seconds = self._ttl(ttl)
        px = max(1, round(seconds * 1000)) if seconds > 0 else None
        with self._command(f"set {key!r}"):
            await self._client().set(self.key(key), encode_value(value), px=px)

    async def delete(self, key: str) -> bool:
        """Remove `key`; whether it was there."""
        with self._command(f"delete {key!r}"):
            return bool(await self._client().delete(self.key(key)))

    async def clear(self) -> None:
        """Remove every key under this cache's prefix (SCAN, then DEL in batches)."""
        client = self._client()
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix) + "*"
        batch: list[bytes] = []
        async for found in client.scan_iter(match=pattern, count=500):
            batch.append(found)
            if len(batch) >= 500:
                await client.delete(*batch)
                batch.clear()
        if batch:
            await client.delete(*batch)


class ModularRedisCache(RedisCache):
    """`cache.modular` with `backend: redis`: cache.modular's TTL meaning on Redis."""

    type = "cache.modular"
    ZERO_TTL_IS_DEFAULT = False
    DEFAULT_TTL = "5m"


CONNECTION_SCHEMA: dict[str, Any] = {
    "address": {"type": "string", "default": DEFAULT_ADDRESS,
                "description": "Redis server, `host:port`."},
    "password": {"type": "string",
                 "description": "Redis password (never logged; `${REDIS_PASSWORD}`)."},
    "db": {"type": "integer", "minimum": 0, "default": 0, "description": "Database number."},
    "prefix": {"type": "string", "default": DEFAULT_PREFIX,
               "description": "Put before every key (an empty prefix keeps the default)."},
    "connectTimeout": {"type": ["string", "number"], "default": "5s",
                       "description": "Longest wait to connect."},
}  # fmt: skip
"""The connection keys shared by cache.redis and cache.modular's redis backend."""


@register(
    "cache.redis",
    category="infrastructure",
    provides=("cache",),
    doc="""
A cache on a Redis server (redis-py; `pip install 'treadle[redis]'`) for `step.cache_get` /
`step.cache_set`, shared by every process using the server and kept across restarts. Every
key is stored under `prefix`. A step's `ttl` (or, when it gives none or `0`, `defaultTTL`)
becomes the key's expiry in Redis; a `defaultTTL` of `0` never expires.

Strings are stored as they are, so Go services reading the same keys see the same text;
other values (mappings, lists, numbers) are stored as JSON, and text that is a JSON object
or array is read back decoded: a mapping cached by `step.cache_set` comes back a mapping,
and so does JSON text (`value: "{{ json .user }}"`, or written by a Go service). Numbers
and booleans come back as their text. A missing key is a miss (`cache_hit: false`).

The module connects and sends `PING` at start, and fails the start naming the module and
the address when Redis does not answer. The password is never logged or shown in errors.
""",
    schema={
        "type": "object",
        "properties": {
            **CONNECTION_SCHEMA,
            "defaultTTL": {"type": ["string", "number"], "default": "1h",
                           "description": "TTL when a step gives none or `0` (`0`: no "
                                          "expiry)."},
        },
    },
    example="""
- name: cache
  type: cache.redis
  config:
    address: "${REDIS_ADDR:-localhost:6379}"
    password: "${REDIS_PASSWORD:-}"
    prefix: "orders:"
    defaultTTL: 30m
""",
)
def _redis_cache(name: str, config: dict[str, Any], ctx: BuildContext) -> RedisCache:
    return RedisCache(name, config)


__all__ = ["CONNECTION_SCHEMA", "CacheError", "ModularRedisCache", "RedisCache",
           "decode_value", "encode_value"]  # fmt: skip
