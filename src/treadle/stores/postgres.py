"""The PostgreSQL store: the production and multi-machine backend.

Many worker processes on many hosts share one database. Every operation is one SQL statement
in autocommit mode, so one round trip and one commit (except an append without events, see
`_write`). An append inserts one journal row per batch of events (migration 004), guarded by
the lease (the execution's row locked FOR SHARE) and the journal's head (its last batch); the
primary key `(execution_id, first_seq)` rejects a racing writer.
Claims take rows with `SELECT … FOR UPDATE SKIP LOCKED`.

URL: `postgresql://user:pass@host:5432/db?schema=treadle&pool_max=10`. Options Treadle reads
(everything else goes to libpq unchanged, e.g. `sslmode`, `application_name`, `options`):

- `schema`: the schema holding Treadle's tables (created if missing; default: the connection's
  `search_path`, usually `public`).
- `pool_min` / `pool_max`: connection pool size (default 1 / 10).
- `pool_timeout`: seconds to wait for a free connection (default 30).
- `prepare_threshold`: executions of a statement before psycopg prepares it server-side
  (default 5; `none` never prepares, for PgBouncer in transaction mode).

Migrations (`stores/sql/postgres/NNN_*.sql`) run on `open()` in one transaction under an
advisory lock, so several processes may start at once; applied versions are recorded in
`treadle_migrations`.

Wake-ups (`Notifier`): triggers (migration 003) `NOTIFY` the schema's channel when work becomes
claimable, a signal arrives or an execution finishes; `listen()` holds one connection of its
own on `LISTEN`, reconnecting when it drops. Locks (`Locker`): session advisory locks, each on a
connection of its own (see `treadle.stores.locks`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from treadle.errors import JournalConflictError, StoreError, require
from treadle.journal import Event, ExecutionStatus, ExecutionSummary, Page, Signal
from treadle.stores.base import (
    ClaimLimits,
    Events,
    ListQuery,
    Record,
    RecordQuery,
    RowUpdate,
    Signals,
    Summaries,
    choose_within_limits,
    decode_cursor,
    paginate,
)
from treadle.stores.locks import advisory_lock
from treadle.stores.notify import PushListener, listen_postgres
from treadle.stores.sql import migrations, queries, record_filters, record_from_row, record_values

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

_Q = queries("postgres")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_OPTIONS = ("schema", "pool_min", "pool_max", "pool_timeout", "prepare_threshold")
_PRUNE_BATCH = 1000
_GET = f"{_Q['select_rows']} {_Q['get']}"
_GET_BY_KEY = f"{_Q['select_rows']} {_Q['get_by_key']}"
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
# Event data is the engine's own JSON (trees by construction): no cycle bookkeeping, ~25% less
# encoding time. A cyclic value would still fail (RecursionError) before anything is written.
_dump_batch = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False).encode


def postgres_options(url: str) -> tuple[str, dict[str, str]]:
    """Split a URL into the libpq conninfo and Treadle's own options."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _OPTIONS:
            ours[key] = value
        else:
            theirs.append((key, value))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    conninfo = urlunsplit((scheme, parts.netloc, parts.path, urlencode(theirs), parts.fragment))
    return conninfo, ours


async def open_pool(
    conninfo: str,
    *,
    schema: str | None,
    min_size: int,
    max_size: int,
    timeout: float,
    name: str,
    setup: Callable[[AsyncConnection[Any]], Awaitable[None]],
    describe: str,
    connection_class: type[Any] | None = None,
    **connection_options: Any,
) -> AsyncConnectionPool:
    """An open autocommit pool (search_path set to `schema` when given), after running
    `setup` (migrations) on one connection; StoreError naming `describe` if that fails."""
    psycopg = require("psycopg", "postgres")
    pool_module = require("psycopg_pool", "postgres")
    kwargs = connection_kwargs(conninfo, schema, **connection_options)
    pool: AsyncConnectionPool = pool_module.AsyncConnectionPool(
        conninfo, min_size=min_size, max_size=max_size, timeout=timeout, kwargs=kwargs,
        open=False, name=name, connection_class=connection_class or psycopg.AsyncConnection,
    )
    try:
        await pool.open(wait=True, timeout=timeout)
        async with pool.connection() as conn:
            await setup(conn)
    except psycopg.Error as exc:
        await pool.close()
        raise StoreError(f"cannot open {describe}: {exc}") from exc
    except BaseException:
        await pool.close()
        raise
    return pool


@functools.cache
def _cursor_keeping_connection() -> type[Any]:
    """psycopg's AsyncConnection, running every `execute` on one cursor it keeps.

    psycopg's own `execute` makes a cursor per statement, and with it new adapters whose
    dumper lookups are redone every time: ~20 µs of CPU per statement here. The store reads
    every result before its next statement on the connection, as this requires.
    """
    base: Any = require("psycopg", "postgres").AsyncConnection

    class CursorKeepingConnection(base):  # type: ignore[misc]
        _kept: Any = None

        async def execute(self, query: Any, params: Any = None, *,
                          prepare: bool | None = None, binary: bool = False) -> Any:
            cursor = self._kept
            if cursor is None or cursor.closed or binary:
                cursor = self.cursor(binary=binary)
                if not binary:
                    self._kept = cursor
            return await cursor.execute(query, params, prepare=prepare)

    return CursorKeepingConnection


def connection_kwargs(conninfo: str, schema: str | None, **options: Any) -> dict[str, Any]:
    """Keyword arguments for psycopg's connect: autocommit, search_path set to `schema`."""
    kwargs: dict[str, Any] = {"autocommit": True, **options}
    if schema is not None:
        kwargs["options"] = f"-c search_path={schema}"
        existing = dict(parse_qsl(urlsplit(conninfo).query)).get("options")
        if existing:
            kwargs["options"] = f"{existing} {kwargs['options']}"
    return kwargs


class PostgresStore:
    """A `Store` in a PostgreSQL database (psycopg 3, async, pooled)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conninfo, options = postgres_options(url)
        self.schema = options.get("schema") or None
        if self.schema is not None and not _IDENTIFIER.match(self.schema):
            raise ValueError(f"schema must be a plain identifier, not {self.schema!r}")
        self._min_size = int(options.get("pool_min", "1"))
        self._max_size = int(options.get("pool_max", "10"))
        if not 0 <= self._min_size <= self._max_size or self._max_size < 1:
            raise ValueError("need 0 <= pool_min <= pool_max and pool_max >= 1")
        self._timeout = float(options.get("pool_timeout", "30"))
        threshold = options.get("prepare_threshold", "5").lower()
        self._prepare_threshold = None if threshold == "none" else int(threshold)
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()
        self._psycopg: Any = None

    # -- connection ---------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._opening:
            if self._pool is None:
                await self._open()

    async def _open(self) -> None:
        self._psycopg = require("psycopg", "postgres")
        self._pool = await open_pool(
            self._conninfo, schema=self.schema, min_size=self._min_size,
            max_size=self._max_size, timeout=self._timeout, name="treadle",
            setup=self._migrate, describe=self._redacted(),
            connection_class=_cursor_keeping_connection(),
            prepare_threshold=self._prepare_threshold,
        )

    async def _migrate(self, conn: AsyncConnection[Any]) -> None:
        sql = require("psycopg.sql", "postgres")
        async with conn.transaction():
            await conn.execute(_Q["migrate_lock"], {"schema": self.schema})
            if self.schema is not None:
                await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(self.schema)))
            await conn.execute(_Q["migrations_table"])
            cur = await conn.execute(_Q["applied_migrations"])
            done = {version for (version,) in await cur.fetchall()}
            for version, script in migrations("postgres"):
                if version in done:
                    continue
                await conn.execute(script)
                await conn.execute(_Q["record_migration"],
                                   {"version": version, "applied_at": time.time()})

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _connection(self) -> _Checkout:
        """`async with self._connection() as conn`: a pooled connection in autocommit mode."""
        return _Checkout(self)

    async def _one(self, name: str, params: dict[str, Any]) -> Any:
        async with self._connection() as conn:
            cur = await conn.execute(_Q[name], params)
            return await cur.fetchone()

    async def _all(self, name: str, params: dict[str, Any]) -> list[Any]:
        async with self._connection() as conn:
            cur = await conn.execute(_Q[name], params)
            return await cur.fetchall()

    def _redacted(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        return f"postgresql://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"

    # -- executions ---------------------------------------------------------------------------

    async def create(
        self, row: ExecutionSummary, events: Sequence[Event]
    ) -> tuple[ExecutionSummary, bool]:
        stored = replace(row, last_seq=events[-1].seq if events else 0)
        params = {name: getattr(row, name) for name in _ROW_FIELDS[:-1]}  # not last_seq
        params["status"] = str(row.status)
        params["types"], params["events"] = _encode_batch(events)
        params["first"] = events[0].seq if events else 1
        params["last"] = stored.last_seq
        while True:
            async with self._connection() as conn:
                try:
                    cur = await conn.execute(_Q["create"], params)
                except self._psycopg.errors.UniqueViolation as exc:
                    raise JournalConflictError(f"execution {row.id} already exists") from exc
                found = await cur.fetchone()
                if found is not None and found[0] == 1:
                    return stored, True
                if row.idempotency_key is None:  # pragma: no cover - ON CONFLICT needs a key
                    raise StoreError(f"execution {row.id} was not inserted")
                cur = await conn.execute(_GET_BY_KEY, {"key": row.idempotency_key})
                existing = await cur.fetchone()
            if existing is not None:
                return _row(existing), False
            # The holder of the key was pruned in between: the key is free again.

    async def append(
        self,
        execution_id: str,
        events: Sequence[Event],
        *,
        expected_seq: int,
        owner: str | None,
        update: RowUpdate | None = None,
        consume_signal: int | None = None,
    ) -> None:
        if events and (events[0].seq != expected_seq + 1
                       or events[-1].seq != expected_seq + len(events)):
            raise JournalConflictError(f"event seqs do not follow seq {expected_seq}")
        params: dict[str, Any] = {"id": execution_id, "expected": expected_seq, "owner": owner}
        if not events and update is None and consume_signal is None:
            found = await self._one("check_position", params)
            landed = found is not None and found[0] == 1
        else:
            if events:
                params["types"], params["events"] = _encode_batch(events)
                params["last"], params["at"] = events[-1].seq, events[-1].created_at
            else:
                params.update(types=None, events=None, last=expected_seq, at=None)
            name = "append"
            if update is not None:
                name = "append_update"
                params.update(status=str(update.status), wake_at=update.wake_at,
                              finished_at=update.finished_at, error=update.error)
            elif consume_signal is not None:
                name = "append_signal"
            if name != "append":
                params["signal"] = consume_signal
            landed = await self._write(name, params, lock=not events)
        if not landed:
            raise JournalConflictError(
                f"execution {execution_id}: journal is not at seq {expected_seq} "
                f"owned by {owner!r}"
            )

    async def _write(self, name: str, params: dict[str, Any], *, lock: bool) -> bool:
        """Run an append statement: whether it landed (False: head or owner differ)."""
        async with self._connection() as conn:
            try:
                if lock:  # no batch for the primary key to guard: take the row first
                    async with conn.transaction():
                        await conn.execute(_Q["lock_execution"], params)
                        cur = await conn.execute(_Q[name], params)
                        found = await cur.fetchone()
                    return found is not None and found[0] == 1
                cur = await conn.execute(_Q[name], params)
            except self._psycopg.errors.UniqueViolation:
                return False  # another writer's batch starts at the same seq
            if name == "append":
                return cur.rowcount == 1
            found = await cur.fetchone()
            return found is not None and found[0] == 1

    async def get(self, execution_id: str) -> ExecutionSummary | None:
        async with self._connection() as conn:
            cur = await conn.execute(_GET, {"id": execution_id})
            found = await cur.fetchone()
        return None if found is None else _row(found)

    async def events(
        self, execution_id: str, *, after: int = 0, limit: int | None = None
    ) -> Events:
        batches = await self._all("events", {"id": execution_id, "after": after,
                                             "limit": limit})
        found = [Event(execution_id, seq, kind, data, at)
                 for (batch,) in batches for seq, kind, data, at in batch if seq > after]
        return found if limit is None else found[:limit]

    async def list(self, query: ListQuery) -> Page[ExecutionSummary]:
        clauses: list[str] = []
        params: dict[str, Any] = {"limit": query.limit + 1}
        for column, value in (
            ("workflow", query.workflow),
            ("status", None if query.status is None else str(query.status)),
            ("parent_id", query.parent_id),
            ("tenant_id", query.tenant_id),
        ):
            if value is not None:
                clauses.append(f"{column} = %({column})s::text")
                params[column] = value
        if query.created_after is not None:
            clauses.append("created_at >= %(after)s::float8")
            params["after"] = query.created_after
        if query.created_before is not None:
            clauses.append("created_at < %(before)s::float8")
            params["before"] = query.created_before
        if query.cursor:
            params["cursor_at"], params["cursor_id"] = decode_cursor(query.cursor)
            clauses.append("(created_at, id) < (%(cursor_at)s::float8, %(cursor_id)s::text)")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_Q['select_rows']}{where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            rows = [_row(r) for r in await cur.fetchall()]
        return paginate(rows, query.limit)

    # -- leases -------------------------------------------------------------------------------

    async def claim(
        self,
        owner: str,
        *,
        now: float,
        lease_until: float,
        limit: int,
        execution_id: str | None = None,
        due_only: bool = False,
        queues: Sequence[str] | None = None,
        limits: ClaimLimits | None = None,
    ) -> Summaries:
        if limit <= 0:
            return []
        params: dict[str, Any] = {
            "now": now, "queues": None if queues is None else list(queues),
            "limit": limit if limits is None else max(limit * 10, 500),
        }
        if execution_id is not None:
            name = "claim_one_candidate"
            params.update(id=execution_id, due_only=due_only)
        else:
            name = "claim_due_candidates" if due_only else "claim_candidates"
        async with self._connection() as conn, conn.transaction():
            if limits is not None:
                await conn.execute(_Q["claim_lock"])
            cur = await conn.execute(_Q[name], params)
            candidates = [(i, q, w, p) for i, q, w, p in await cur.fetchall()]
            running: list[tuple[str, str, str | None]] = []
            recent: dict[str, int] = {}
            if limits is not None and candidates:
                cur = await conn.execute(_Q["running_usage"], {"now": now})
                running = [(q, w, p) for q, w, p in await cur.fetchall()]
                if limits.queue_rate:
                    cur = await conn.execute(_Q["recent_starts"],
                                             {"since": now - limits.rate_window})
                    recent = {q: int(n) for q, n in await cur.fetchall()}
            chosen = choose_within_limits(candidates, running, recent, limits, limit)
            if not chosen:
                return []
            cur = await conn.execute(_Q["take_leases"], {
                "owner": owner, "lease_until": lease_until, "now": now, "ids": chosen})
            rows = {r.id: r for r in (_row(found) for found in await cur.fetchall())}
        return [rows[ident] for ident in chosen]

    async def depth(self, queue: str) -> int:
        found = await self._one("depth", {"queue": queue})
        return int(found[0])

    async def renew(self, owner: str, execution_ids: Sequence[str], lease_until: float) -> int:
        if not execution_ids:
            return 0
        async with self._connection() as conn:
            cur = await conn.execute(_Q["renew"], {"owner": owner, "ids": list(execution_ids),
                                                   "lease_until": lease_until})
            return cur.rowcount

    async def release(self, execution_id: str, owner: str) -> None:
        async with self._connection() as conn:
            await conn.execute(_Q["release"], {"id": execution_id, "owner": owner})

    # -- signals and retention ----------------------------------------------------------------

    async def send_signal(self, execution_id: str, name: str, payload: Any, now: float) -> int:
        found = await self._one("send_signal", {"id": execution_id, "name": name,
                                                "payload": _dumps(payload), "created_at": now})
        if found is None:
            raise JournalConflictError(f"execution {execution_id} does not exist")
        return int(found[0])

    async def signals(self, execution_id: str) -> Signals:
        rows = await self._all("signals", {"id": execution_id})
        return [Signal(*r) for r in rows]

    async def prune(self, finished_before: float) -> int:
        total = 0
        while True:
            found = await self._one("prune", {"before": finished_before, "batch": _PRUNE_BATCH})
            count = int(found[0]) if found else 0
            total += count
            if count < _PRUNE_BATCH:
                return total

    # -- wake-ups and locks -------------------------------------------------------------------

    def listen(self) -> PushListener:
        return PushListener(self._redacted(),
                            functools.partial(listen_postgres, self._dedicated_connection))

    async def _dedicated_connection(self) -> AsyncConnection[Any]:
        """A new connection outside the pool (for LISTEN and for locks)."""
        psycopg = require("psycopg", "postgres")
        kwargs = connection_kwargs(self._conninfo, self.schema, prepare_threshold=None)
        async with asyncio.timeout(self._timeout):
            conn: AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
                self._conninfo, **kwargs)
        return conn

    async def next_wake(self, queues: Sequence[str] | None, now: float) -> float | None:
        found = await self._one("next_wake", {
            "now": now, "queues": None if queues is None else list(queues)})
        return None if found is None or found[0] is None else float(found[0])

    def lock(
        self, name: str, *, timeout: float | None, ttl: float
    ) -> AbstractAsyncContextManager[None]:
        return advisory_lock(self._dedicated_connection, self.schema, name, timeout,
                             self._redacted())

    # -- records ------------------------------------------------------------------------------

    async def put_record(self, record: Record, *, create_only: bool = False) -> bool:
        async with self._connection() as conn:
            cur = await conn.execute(_Q["insert_record" if create_only else "upsert_record"],
                                     record_values(record))
            return bool(cur.rowcount)

    async def get_record(self, kind: str, key: str) -> Record | None:
        found = await self._one("select_record", {"kind": kind, "key": key})
        return None if found is None else record_from_row(found)

    async def list_records(self, query: RecordQuery) -> Page[Record]:
        rows = await self._all("list_records", record_filters(query))
        return paginate([record_from_row(r) for r in rows], query.limit)

    async def delete_record(self, kind: str, key: str) -> bool:
        async with self._connection() as conn:
            cur = await conn.execute(_Q["delete_record"], {"kind": kind, "key": key})
            return bool(cur.rowcount)

    async def prune_records(self, now: float, kind: str | None = None) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(_Q["prune_records"], {"now": now, "kind": kind})
            return int(cur.rowcount)


class _Checkout:
    """A pooled connection for one `async with`: `getconn` / `putconn` directly (the pool's
    own `connection()` would also commit on exit, a lock and a generator per call for nothing:
    every statement runs in autocommit, and `conn.transaction()` blocks finish their own).
    psycopg errors become StoreError."""

    __slots__ = ("_cancels", "_conn", "_pool", "_store", "_task")

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def __aenter__(self) -> AsyncConnection[Any]:
        store = self._store
        if store._pool is None:
            await store.open()
        assert store._pool is not None
        self._pool = store._pool
        self._task = asyncio.current_task()
        self._cancels = 0 if self._task is None else self._task.cancelling()
        try:
            self._conn: AsyncConnection[Any] = await self._pool.getconn()
        except store._psycopg.Error as exc:
            raise StoreError(f"{store._redacted()}: {exc}") from exc
        return self._conn

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self._pool.putconn(self._conn)
        store = self._store
        if exc is not None:
            if isinstance(exc, store._psycopg.Error):
                raise StoreError(f"{store._redacted()}: {exc}") from exc
            return
        if self._task is not None and self._task.cancelling() > self._cancels:
            # The pool waits for a connection with asyncio.wait_for, which on Python 3.11 can
            # swallow a cancellation that arrives as the wait ends (CPython gh-86296): a
            # cancelled caller would carry on as if nothing happened. Deliver it.
            raise asyncio.CancelledError()


_ROW_FIELDS = (
    "id", "workflow", "version", "status", "created_at", "updated_at", "finished_at",
    "idempotency_key", "parent_id", "error", "queue", "priority", "tenant_id", "partition_key",
    "started_at", "owner", "lease_until", "wake_at", "last_seq",
)


def _encode_batch(events: Sequence[Event]) -> tuple[str, str]:
    """A batch's event types as a text[] literal, and its events as one JSON array of
    [seq, type, data, created_at] (see queries.sql): the whole batch is encoded at once."""
    types = "{" + ",".join([_array_item(ev.type) for ev in events]) + "}"
    return types, _dump_batch([[ev.seq, ev.type, ev.data, float(ev.created_at)]
                               for ev in events])


@functools.lru_cache(maxsize=1024)
def _array_item(text: str) -> str:
    """`text` quoted as an element of a PostgreSQL array literal (event types are few)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _row(found: Sequence[Any]) -> ExecutionSummary:
    values = dict(zip(_ROW_FIELDS, found, strict=True))
    values["status"] = ExecutionStatus(values["status"])
    return ExecutionSummary(**values)
