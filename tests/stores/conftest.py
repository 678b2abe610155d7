"""Store fixtures: every test here runs once per backend URL, each in its own namespace.

PostgreSQL tests get a fresh schema (`?schema=…`, dropped afterwards) and Redis tests a fresh
key prefix (`?prefix=…`, its keys deleted afterwards), so they never see each other's data.
The service backends are skipped when their server is unreachable, unless
`TREADLE_REQUIRE_SERVICES=1` turns that into a failure (CI sets it).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from storekit import (
    PG_URL,
    REDIS_URL,
    delete_redis_prefix,
    drop_pg_schema,
    require_service,
    with_option,
)

from treadle.stores import Store, open_store

BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.services),
    pytest.param("redis", marks=pytest.mark.services),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgres":
        require_service("PostgreSQL", "127.0.0.1", 5432)
    elif name == "redis":
        require_service("Redis", "127.0.0.1", 6379)
    return name


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, isolated store URL for this test."""
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{tmp_path}/t.db"
    elif backend == "postgres":
        schema = f"treadle_test_{uuid.uuid4().hex[:12]}"
        yield with_option(PG_URL, "schema", schema)
        drop_pg_schema(schema)
    else:
        prefix = f"treadle-test:{uuid.uuid4().hex[:12]}:"
        yield with_option(REDIS_URL, "prefix", prefix)
        delete_redis_prefix(prefix)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An opened store on `store_url`, closed afterwards."""
    opened = open_store(store_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def peer(store: Store, store_url: str) -> AsyncIterator[Store]:
    """A second handle on the same data (own connections), or the same store for memory://."""
    if store_url.startswith("memory"):
        yield store
        return
    other = open_store(store_url)
    await other.open()
    yield other
    await other.close()
