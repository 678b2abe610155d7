"""The SQLite store: durable and embedded, the CLI's and the server's default.

WAL mode, `synchronous=NORMAL` by default (`?synchronous=full` in the URL for FULL), one
transaction per append. Several processes may share one file: writes take the database lock
with `BEGIN IMMEDIATE` and wait up to `busy_timeout` (`?busy_timeout=5000` ms) for it.

Statements run synchronously on the caller's thread: one commit costs tens of microseconds,
far less than a hop to a worker thread would. WAL checkpoints, which take milliseconds, run in
a background thread on their own connection instead of inside a commit.

Group commit: `create` and `append` calls made in the same turn of the event loop share one
transaction (each in its own savepoint, so one that is refused does not undo the others), which
is committed before any of them returns. A commit costs a WAL write per page it changed, and
the executions of one group share most of their index pages: under load, many executions
cost little more than one. A call whose task is cancelled before the group commits writes
nothing. Waiting for the group costs a turn of the loop, so while writes come one at a time
(a single sequential workflow) they are committed at once, with a grouped write now and then
to notice when others come.

Wake-ups (`Notifier`) reach the engines of this process that use the same file at once; other
processes cannot be told, so listeners say `complete = False` and their users keep polling.
Locks (`Locker`) are `flock`s on files beside the database (see `treadle.stores.locks`), so
they hold across processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from treadle.errors import JournalConflictError, StoreError
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
from treadle.stores.locks import LocalLocks, file_lock
from treadle.stores.notify import LocalHub, LocalListener
from treadle.stores.sql import migrations, queries, record_filters, record_from_row, record_values

_Q = queries("sqlite")
_SYNCHRONOUS = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}
_ACTIVE = ("pending", "running", "suspended")
_HUBS: weakref.WeakValueDictionary[str, LocalHub] = weakref.WeakValueDictionary()
_HUBS_LOCK = threading.Lock()
T = TypeVar("T")
_SOLO_GROUPS = 8  # after this many single-write groups in a row, write at once...
_PROBE_EVERY = 16  # ...except every 16th write, which waits for a group to see if others come
Work = Callable[[sqlite3.Connection], Any]


def _hub_for(path: str) -> LocalHub:
    """One hub per database file in this process, shared by every store on that file."""
    if path == ":memory:":
        return LocalHub()
    key = os.path.realpath(path)
    with _HUBS_LOCK:
        hub = _HUBS.get(key)
        if hub is None:
            hub = _HUBS[key] = LocalHub()
        return hub


def enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """`PRAGMA journal_mode=WAL`, retried for up to `timeout` seconds: on a new file, several
    processes opening it at once race for the lock that changing the journal mode takes, and
    SQLite answers "database is locked" at once instead of waiting (no busy handler there)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)  # only while opening a database, before anything else runs
        delay = min(delay * 2, 0.05)


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
        self._checkpointer: _Checkpointer | None = None
        self._hub = _hub_for(self.path)
        self._memory_locks = LocalLocks() if self.path == ":memory:" else None
        self._group: list[tuple[Work, asyncio.Future[Any]]] = []
        self._group_loop: asyncio.AbstractEventLoop | None = None
        self._solo = 0  # groups in a row that had a single write
        self._writes = 0

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
        enable_wal(conn, self._busy_timeout / 1000)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout={self._busy_timeout}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._migrate(conn)
        if self.path != ":memory:":
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
            self._checkpointer = _Checkpointer(self.path, self._busy_timeout)
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
        self._commit_group()
        with self._lock:
            if self._checkpointer is not None:
                self._checkpointer.stop()
                self._checkpointer = None
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

    async def _grouped(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in the transaction of this turn's group (see the module docs)."""
        self._writes += 1
        if not self._group and self._solo >= _SOLO_GROUPS and self._writes % _PROBE_EVERY:
            with self._write() as conn:  # nobody to group with lately: no loop turn to wait
                return work(conn)
        loop = asyncio.get_running_loop()
        if self._group and self._group_loop is not loop:
            self._commit_group()  # another loop's group (a store shared across loops)
        future: asyncio.Future[T] = loop.create_future()
        self._group.append((work, future))
        if len(self._group) == 1:
            self._group_loop = loop
            loop.call_soon(self._commit_group)
        return await future

    def _commit_group(self) -> None:
        group, self._group, self._group_loop = self._group, [], None
        group = [(work, future) for work, future in group if not future.done()]
        if not group:
            return
        self._solo = self._solo + 1 if len(group) == 1 else 0
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with self._write() as conn:
                if len(group) == 1:
                    results.append((group[0][1], group[0][0](conn), None))
                else:
                    for work, future in group:
                        conn.execute("SAVEPOINT treadle_group")
                        try:
                            results.append((future, work(conn), None))
                        except Exception as exc:
                            conn.execute("ROLLBACK TO treadle_group")
                            results.append((future, None, exc))
                        conn.execute("RELEASE treadle_group")
        except Exception as exc:  # the transaction failed: nothing of the group landed
            results = [(future, None, exc) for _, future in group]
        for future, value, error in results:
            if future.done():
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    # -- executions ---------------------------------------------------------------------------

    async def create(
        self, row: ExecutionSummary, events: Sequence[Event]
    ) -> tuple[ExecutionSummary, bool]:
        values = _row_values(row)
        batch = _encode_batch(events) if events else None

        def work(conn: sqlite3.Connection) -> sqlite3.Row | None:
            if row.idempotency_key is not None:
                found: sqlite3.Row | None = conn.execute(
                    _ROWS_WHERE + "idempotency_key = ?", (row.idempotency_key,)).fetchone()
                if found is not None:
                    return found
            try:
                conn.execute(_Q["insert_execution"], values)
            except sqlite3.IntegrityError as exc:
                raise JournalConflictError(f"execution {row.id} already exists") from exc
            if batch is not None:
                conn.execute(_Q["insert_batch"], (row.id, events[0].seq, events[-1].seq, batch))
            return None

        existing = await self._grouped(work)
        if existing is not None:
            return _row(existing), False
        if row.owner is None and str(row.status) in _ACTIVE and (
                row.wake_at is not None or row.status != ExecutionStatus.SUSPENDED):
            self._hub.publish("work", row.queue, row.wake_at)
        return _row_from_values({**values, "last_seq": events[-1].seq if events else 0}), True

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
        if events and events[-1].seq != expected_seq + len(events):
            raise JournalConflictError(f"event seqs do not follow seq {expected_seq}")
        batch = _encode_batch(events) if events else None

        def work(conn: sqlite3.Connection) -> None:
            written = 1
            if events:
                written = conn.execute(_Q["append_batch"], {
                    "id": execution_id, "first": events[0].seq, "last": events[-1].seq,
                    "events": batch, "owner": owner, "expected": expected_seq,
                }).rowcount
            if update is not None:
                status_args = (events[-1].created_at if events else time.time(),
                               str(update.status), update.wake_at, update.finished_at,
                               update.error, execution_id)
                if events:
                    conn.execute(_Q["set_status"], status_args)
                else:
                    written = conn.execute(_Q["set_status_checked"],
                                           (*status_args, owner, expected_seq)).rowcount
            elif not events:
                written = conn.execute(_Q["check_position"],
                                       (execution_id, owner, expected_seq)).fetchone()[0]
            if written != 1:
                raise JournalConflictError(
                    f"execution {execution_id}: journal is not at seq {expected_seq} "
                    f"owned by {owner!r}"
                )
            if consume_signal is not None:
                conn.execute(_Q["consume_signal"], (consume_signal, execution_id))

        await self._grouped(work)
        if update is not None and update.status.is_terminal:
            self._hub.publish("done", execution_id)

    async def get(self, execution_id: str) -> ExecutionSummary | None:
        with self._lock:
            found = self.connection().execute(_ROWS_WHERE + "id = ?", (execution_id,)).fetchone()
        return None if found is None else _row(found)

    async def events(
        self, execution_id: str, *, after: int = 0, limit: int | None = None
    ) -> Events:
        with self._lock:
            batches = self.connection().execute(
                _Q["select_batches"], (execution_id, after)
            ).fetchall()
        found: Events = []
        for (encoded,) in batches:
            for seq, kind, data, created_at in json.loads(encoded):
                if seq > after:
                    found.append(Event(execution_id, seq, kind, data, created_at))
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

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
        sql = f"{_ROWS} {where} ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(query.limit + 1)
        with self._lock:
            rows = [_row(r) for r in self.connection().execute(sql, params).fetchall()]
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
        with self._write() as conn:  # BEGIN IMMEDIATE: counting and claiming are atomic
            candidates = [
                (r[0], r[1], r[2], r[3])
                for r in conn.execute(_Q["claim_candidates"], {
                    "now": now, "due_only": int(due_only), "execution_id": execution_id,
                    "limit": limit if limits is None else max(limit * 10, 500),
                    "queues": None if queues is None else json.dumps(list(queues)),
                })
            ]
            running: list[tuple[str, str, str | None]] = []
            recent: dict[str, int] = {}
            if limits is not None and candidates:
                running = [(r[0], r[1], r[2])
                           for r in conn.execute(_Q["running_usage"], {"now": now})]
                if limits.queue_rate:
                    recent = dict(conn.execute(_Q["recent_starts"],
                                               (now - limits.rate_window,)).fetchall())
            chosen = choose_within_limits(candidates, running, recent, limits, limit)
            for ident in chosen:
                conn.execute(_Q["take_lease"], (owner, lease_until, now, ident))
            return [_row(conn.execute(_ROWS_WHERE + "id = ?", (ident,)).fetchone())
                    for ident in chosen]

    async def depth(self, queue: str) -> int:
        with self._lock:
            return int(self.connection().execute(_Q["queue_depth"], (queue,)).fetchone()[0])

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
            released = conn.execute(_Q["release"], (execution_id, owner)).fetchall()
            found = released[0] if released else None
            due = found is not None and found["status"] in _ACTIVE and (
                found["wake_at"] is not None or found["status"] != "suspended"
                or conn.execute(_Q["has_signals"], (execution_id,)).fetchone() is not None)
        if due and found is not None:
            self._hub.publish("work", found["queue"], found["wake_at"])

    # -- signals and retention ----------------------------------------------------------------

    async def send_signal(self, execution_id: str, name: str, payload: Any, now: float) -> int:
        encoded = json.dumps(payload)
        with self._write() as conn:
            if conn.execute(_Q["exists"], (execution_id,)).fetchone() is None:
                raise JournalConflictError(f"execution {execution_id} does not exist")
            cur = conn.execute(_Q["insert_signal"], (execution_id, name, encoded, now))
            sid = int(cur.lastrowid or 0)
            free = conn.execute(_Q["free_sleeper"], (execution_id,)).fetchone()
        self._hub.publish("signal", execution_id)
        if free is not None:
            self._hub.publish("work", free[0])
        return sid

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

    # -- wake-ups and locks -------------------------------------------------------------------

    def listen(self) -> LocalListener:
        return self._hub.listen(complete=self.path == ":memory:")

    async def next_wake(self, queues: Sequence[str] | None, now: float) -> float | None:
        with self._lock:
            found = self.connection().execute(_Q["next_wake"], {
                "now": now, "queues": None if queues is None else json.dumps(list(queues)),
            }).fetchone()
        return None if found is None or found[0] is None else float(found[0])

    def lock(
        self, name: str, *, timeout: float | None, ttl: float
    ) -> AbstractAsyncContextManager[None]:
        if self._memory_locks is not None:
            return self._memory_locks.hold(name, timeout)
        return file_lock(os.path.abspath(self.path), name, timeout)

    # -- records ------------------------------------------------------------------------------

    async def put_record(self, record: Record, *, create_only: bool = False) -> bool:
        values = record_values(record)
        with self._write() as conn:
            query = _Q["insert_record" if create_only else "upsert_record"]
            return bool(conn.execute(query, values).rowcount)

    async def get_record(self, kind: str, key: str) -> Record | None:
        with self._lock:
            found = self.connection().execute(_Q["select_record"], (kind, key)).fetchone()
        return None if found is None else record_from_row(tuple(found))

    async def list_records(self, query: RecordQuery) -> Page[Record]:
        with self._lock:
            rows = self.connection().execute(_Q["list_records"], record_filters(query))
            records = [record_from_row(tuple(r)) for r in rows.fetchall()]
        return paginate(records, query.limit)

    async def delete_record(self, kind: str, key: str) -> bool:
        with self._write() as conn:
            return bool(conn.execute(_Q["delete_record"], (kind, key)).rowcount)

    async def prune_records(self, now: float, kind: str | None = None) -> int:
        with self._write() as conn:
            return int(conn.execute(_Q["prune_records"], {"now": now, "kind": kind}).rowcount)


class _Checkpointer:
    """Moves WAL pages into the database file every `interval` seconds, off the event loop.

    PASSIVE checkpoints never block writers or readers; with auto-checkpoints off on the main
    connection, commits no longer pay for them.
    """

    def __init__(self, path: str, busy_timeout_ms: int, interval: float = 0.5) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(path, busy_timeout_ms, interval),
            name=f"treadle-checkpoint:{os.path.basename(path)}", daemon=True,
        )
        self._thread.start()

    def _run(self, path: str, busy_timeout_ms: int, interval: float) -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=busy_timeout_ms / 1000)
        try:
            while not self._stop.wait(interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    continue  # busy or transient: the next round catches up
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


# Event data reaches the store as fresh JSON copies: no cycles, no NaN, so skip those checks.
_encode = json.JSONEncoder(check_circular=False, allow_nan=False).encode


def _encode_batch(events: Sequence[Event]) -> str:
    return _encode([[ev.seq, ev.type, ev.data, ev.created_at] for ev in events])


_ROW_FIELDS = (
    "id", "workflow", "version", "status", "created_at", "updated_at", "finished_at",
    "idempotency_key", "parent_id", "error", "queue", "priority", "tenant_id", "partition_key",
    "started_at", "owner", "lease_until", "wake_at",
)
_ROWS = _Q["select_rows"]
_ROWS_WHERE = _ROWS + " WHERE "


def _row_values(row: ExecutionSummary) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _ROW_FIELDS}
    values["status"] = str(row.status)
    return values


def _row_from_values(values: dict[str, Any]) -> ExecutionSummary:
    return ExecutionSummary(**{**values, "status": ExecutionStatus(values["status"])})


def _row(found: sqlite3.Row) -> ExecutionSummary:
    return _row_from_values({name: found[name] for name in (*_ROW_FIELDS, "last_seq")})
