"""Fixtures of the state machine tests: instance stores over every backend."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from treadle.statemachine import InstanceStore, open_instance_store

PG_URL = os.environ.get("TREADLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["memory", "sqlite",
                        pytest.param("postgres", marks=pytest.mark.services)])
def sm_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh instance store URL per backend (PostgreSQL in its own schema)."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/sm.db"
    else:
        if not _pg_reachable():
            if os.environ.get("TREADLE_REQUIRE_SERVICES") == "1":
                pytest.fail("PostgreSQL is not reachable")
            pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
        schema = f"treadle_sm_{uuid.uuid4().hex[:12]}"
        yield f"{PG_URL}?schema={schema}"
        _drop_schema(schema)


@pytest.fixture
async def sm_store(sm_store_url: str) -> AsyncIterator[InstanceStore]:
    store = open_instance_store(sm_store_url, namespace="test")
    await store.open()
    yield store
    await store.close()
