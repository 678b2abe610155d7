"""The PostgreSQL instance store (psycopg 3, async, pooled): `pip install 'treadle[postgres]'`.

`postgresql://user:pass@host/db?schema=app&pool_max=10` — the same URL options as the
journal's PostgreSQL store (`schema`, `pool_min`, `pool_max`, `pool_timeout`). The tables are
created on `open()` under an advisory lock. An update is one transaction: the version-checked
`UPDATE` and the history `INSERT` commit together, so many processes on many hosts may
transition the same instances: exactly one writer of a given version wins.
"""

from __future__ import annotations

import asyncio
import builtins
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from treadle.errors import StoreError, require
from treadle.statemachine.errors import InstanceExistsError
from treadle.statemachine.sql import queries, statements
from treadle.statemachine.sqlite import (
    entry_from_row,
    entry_params,
    instance_from_row,
    instance_params,
)
from treadle.statemachine.store import HistoryEntry, Instance
from treadle.stores.postgres import open_pool, postgres_options

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

_Q = queries("postgres")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresInstanceStore:
    """An `InstanceStore` in PostgreSQL."""

    def __init__(self, url: str, *, namespace: str = "default") -> None:
        self.url = url
        self.namespace = namespace
        self._conninfo, options = postgres_options(url)
        self.schema = options.get("schema") or None
        if self.schema is not None and not _IDENTIFIER.match(self.schema):
            raise ValueError(f"schema must be a plain identifier, not {self.schema!r}")
        self._min_size = int(options.get("pool_min", "1"))
        self._max_size = int(options.get("pool_max", "10"))
        self._timeout = float(options.get("pool_timeout", "30"))
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()
        self._psycopg: Any = None

    async def open(self) -> None:
        async with self._opening:
            if self._pool is None:
                await self._open()

    async def _open(self) -> None:
        self._psycopg = require("psycopg", "postgres")
        rows = require("psycopg.rows", "postgres")
        self._pool = await open_pool(
            self._conninfo, schema=self.schema, min_size=self._min_size,
            max_size=self._max_size, timeout=self._timeout, name="treadle-statemachine",
            setup=self._create_schema, describe="the state machine store",
            row_factory=rows.dict_row,
        )

    async def _create_schema(self, conn: AsyncConnection[Any]) -> None:
        sql = require("psycopg.sql", "postgres")
        async with conn.transaction():
            await conn.execute(_Q["schema_lock"])
            if self.schema is not None:
                await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(self.schema)))
            for statement in statements(_Q["schema"]):
                await conn.execute(statement)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        try:
            async with self._pool.connection() as conn:
                yield conn
        except self._psycopg.Error as exc:
            raise StoreError(f"state machine store: {exc}") from exc

    async def insert(self, instance: Instance, entry: HistoryEntry) -> None:
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(_Q["insert_instance"],
                                     instance_params(self.namespace, instance))
            if cur.rowcount != 1:
                raise InstanceExistsError(f"instance {instance.id!r} already exists")
            await conn.execute(_Q["insert_history"], entry_params(self.namespace, entry))

    async def get(self, instance_id: str) -> Instance | None:
        async with self._connection() as conn:
            cur = await conn.execute(_Q["get_instance"],
                                     {"namespace": self.namespace, "id": instance_id})
            row = await cur.fetchone()
        return None if row is None else instance_from_row(row)

    async def list(
        self, *, workflow_type: str | None = None, state: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Instance]:
        params = {"namespace": self.namespace, "workflow_type": workflow_type, "state": state,
                  "limit": limit}  # fmt: skip
        async with self._connection() as conn:
            cur = await conn.execute(_Q["list_instances"], params)
            rows = await cur.fetchall()
        return [instance_from_row(r) for r in rows]

    async def update(self, instance: Instance, expected_version: int,
                     entry: HistoryEntry) -> bool:  # fmt: skip
        params = instance_params(self.namespace, instance)
        params["expected"] = expected_version
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(_Q["update_instance"], params)
            if cur.rowcount != 1:
                return False
            await conn.execute(_Q["insert_history"], entry_params(self.namespace, entry))
            return True

    async def history(self, instance_id: str) -> builtins.list[HistoryEntry]:
        async with self._connection() as conn:
            cur = await conn.execute(_Q["history"],
                                     {"namespace": self.namespace, "id": instance_id})
            rows = await cur.fetchall()
        return [entry_from_row(r) for r in rows]

    async def delete(self, instance_id: str) -> bool:
        params = {"namespace": self.namespace, "id": instance_id}
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_Q["delete_history"], params)
            cur = await conn.execute(_Q["delete_instance"], params)
            return cur.rowcount == 1


__all__ = ["PostgresInstanceStore"]
