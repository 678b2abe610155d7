"""The SQLite store: durable and embedded, the CLI's and the server's default.

WAL mode, `synchronous=NORMAL` by default (`?synchronous=full` in the URL for FULL), one
transaction per append. Several processes may share one file: writes take the database lock
with `BEGIN IMMEDIATE` and wait up to `busy_timeout` (`?busy_timeout=5000` ms) for it.

Statements run synchronously on the caller's thread: one commit costs tens of microseconds,
far less than a hop to a worker thread would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from treadle.errors import JournalConflictError, StoreError
from treadle.journal import Event, ExecutionStatus, ExecutionSummary, Page, Signal
from treadle.stores.base import (
    Events,
    ListQuery,
    RowUpdate,
    Signals,
    Summaries,
    decode_cursor,
    encode_cursor,
)
from treadle.stores.sql import migrations, queries

_Q = queries("sqlite")
_SYNCHRONOUS = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


def sqlite_path(url: str) -> tuple[str, dict[str, str]]:
    """`sqlite:///rel.db` → `rel.db`, `sqlite:////abs.db` → `/abs.db`, plus query options."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc and parts.netloc not in ("", "localhost"):
        path = f"{parts.netloc}/{path}"
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return path or ":memory:", options


class SQLiteStore:
    """A `Store` in one SQLite file."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path, options = sqlite_path(url)
        sync = options.get("synchronous", "normal").lower()
        if sync not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}, not {sync!r}")
        self._synchronous = _SYNCHRONOUS[sync]
        self._busy_timeout = int(options.get("busy_timeout", "5000"))
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    # -- connection ---------------------------------------------------------------------------

    async def open(self) -> None:
        self.connection()

    def connection(self) -> sqlite3.Connection:
        if self._conn is None:
            with self._lock:
                if self._conn is None:
                    self._conn = self._connect()
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            folder = os.path.dirname(self.path)
            if folder:
                os.makedirs(folder, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False,
            timeout=self._busy_timeout / 1000,
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout={self._busy_timeout}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._migrate(conn)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS treadle_migrations "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM treadle_migrations")}
            for version, sql in migrations("sqlite"):
                if version in done:
                    continue
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO treadle_migrations VALUES (?, ?)", (version, time.time())
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.connection()
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.path}: cannot take the write lock: {exc}") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- executions ---------------------------------------------------------------------------

    async def create(
        self, row: ExecutionSummary, events: Sequence[Event]
    ) -> tuple[ExecutionSummary, bool]:
        with self._write() as conn:
            if row.idempotency_key is not None:
                found = conn.execute(_Q["get_by_key"], (row.idempotency_key,)).fetchone()
                if found is not None:
                    return _row(found), False
            values = _row_values(row)
            values["last_seq"] = events[-1].seq if events else 0
            try:
                conn.execute(_Q["insert_execution"], values)
            except sqlite3.IntegrityError as exc:
                raise JournalConflictError(f"execution {row.id} already exists") from exc
            conn.executemany(_Q["insert_event"], [_event_values(ev) for ev in events])
        stored = _row_from_values(values)
        return stored, True

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
        last = events[-1] if events else None
        last_seq = last.seq if last else expected_seq
        updated_at = last.created_at if last else time.time()
        if last is not None and last.seq != expected_seq + len(events):
            raise JournalConflictError(f"event seqs do not follow seq {expected_seq}")
        with self._write() as conn:
            if update is None:
                cur = conn.execute(
                    _Q["advance"], (last_seq, updated_at, execution_id, expected_seq, owner)
                )
            else:
                cur = conn.execute(
                    _Q["advance_with_status"],
                    (last_seq, updated_at, str(update.status), update.wake_at,
                     update.finished_at, update.error, execution_id, expected_seq, owner),
                )
            if cur.rowcount != 1:
                raise JournalConflictError(
                    f"execution {execution_id}: journal is not at seq {expected_seq} "
                    f"owned by {owner!r}"
                )
            if len(events) == 1:
                conn.execute(_Q["insert_event"], _event_values(events[0]))
            elif events:
                conn.executemany(_Q["insert_event"], [_event_values(ev) for ev in events])
            if consume_signal is not None:
                conn.execute(_Q["consume_signal"], (consume_signal, execution_id))

    async def get(self, execution_id: str) -> ExecutionSummary | None:
        with self._lock:
            found = self.connection().execute(_Q["get_execution"], (execution_id,)).fetchone()
        return None if found is None else _row(found)

    async def events(
        self, execution_id: str, *, after: int = 0, limit: int | None = None
    ) -> Events:
        with self._lock:
            rows = self.connection().execute(
                _Q["select_events"], (execution_id, after, -1 if limit is None else limit)
            ).fetchall()
        return [Event(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    async def list(self, query: ListQuery) -> Page[ExecutionSummary]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("workflow", query.workflow),
            ("status", None if query.status is None else str(query.status)),
            ("parent_id", query.parent_id),
            ("tenant_id", query.tenant_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.created_after is not None:
            clauses.append("created_at >= ?")
            params.append(query.created_after)
        if query.created_before is not None:
            clauses.append("created_at < ?")
            params.append(query.created_before)
        if query.cursor:
            created, ident = decode_cursor(query.cursor)
            clauses.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params.extend([created, created, ident])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM executions {where} ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(query.limit + 1)
        with self._lock:
            rows = [_row(r) for r in self.connection().execute(sql, params).fetchall()]
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            return Page(rows[: query.limit], encode_cursor(last.created_at, last.id))
        return Page(rows)

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
    ) -> Summaries:
        with self._write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    _Q["claim_candidates"],
                    {"now": now, "due_only": int(due_only), "execution_id": execution_id,
                     "limit": limit},
                )
            ]
            return [
                _row(conn.execute(_Q["take_lease"], (owner, lease_until, ident)).fetchone())
                for ident in ids
            ]

    async def renew(self, owner: str, execution_ids: Sequence[str], lease_until: float) -> int:
        if not execution_ids:
            return 0
        with self._write() as conn:
            return sum(
                conn.execute(_Q["renew"], (lease_until, owner, ident)).rowcount
                for ident in execution_ids
            )

    async def release(self, execution_id: str, owner: str) -> None:
        with self._write() as conn:
            conn.execute(_Q["release"], (execution_id, owner))

    # -- signals and retention ----------------------------------------------------------------

    async def send_signal(self, execution_id: str, name: str, payload: Any, now: float) -> int:
        encoded = json.dumps(payload)
        with self._write() as conn:
            if conn.execute(_Q["get_execution"], (execution_id,)).fetchone() is None:
                raise JournalConflictError(f"execution {execution_id} does not exist")
            cur = conn.execute(_Q["insert_signal"], (execution_id, name, encoded, now))
            return int(cur.lastrowid or 0)

    async def signals(self, execution_id: str) -> Signals:
        with self._lock:
            rows = self.connection().execute(_Q["select_signals"], (execution_id,)).fetchall()
        return [Signal(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    async def prune(self, finished_before: float) -> int:
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(_Q["prunable"], (finished_before,))]
            for ident in ids:
                conn.execute(_Q["delete_events"], (ident,))
                conn.execute(_Q["delete_signals"], (ident,))
                conn.execute(_Q["delete_execution"], (ident,))
            return len(ids)


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _event_values(ev: Event) -> tuple[str, int, str, str, float]:
    return (ev.execution_id, ev.seq, ev.type, json.dumps(ev.data), ev.created_at)


_ROW_FIELDS = (
    "id", "workflow", "version", "status", "created_at", "updated_at", "finished_at",
    "idempotency_key", "parent_id", "error", "queue", "priority", "tenant_id", "owner",
    "lease_until", "wake_at", "last_seq",
)


def _row_values(row: ExecutionSummary) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _ROW_FIELDS}
    values["status"] = str(row.status)
    return values


def _row_from_values(values: dict[str, Any]) -> ExecutionSummary:
    return ExecutionSummary(**{**values, "status": ExecutionStatus(values["status"])})


def _row(found: sqlite3.Row) -> ExecutionSummary:
    return _row_from_values({name: found[name] for name in _ROW_FIELDS})
