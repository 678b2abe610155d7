"""The SQLite instance store (standard library `sqlite3`).

`sqlite:///path.db` (may be the engine's own database file: the tables are
`statemachine_instances` and `statemachine_history`). WAL mode; several threads and processes
may share the file. An update is one `BEGIN IMMEDIATE` transaction: the version-checked
`UPDATE` and the history `INSERT` commit together or not at all.

Statements run on the caller's thread, as in the journal's SQLite store: each costs tens of
microseconds. Use one store object per thread (each has its own connection).
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from treadle.statemachine.errors import InstanceExistsError
from treadle.statemachine.sql import queries, statements
from treadle.statemachine.store import HistoryEntry, Instance
from treadle.stores.sqlite import enable_wal, sqlite_path

_Q = queries("sqlite")


def instance_from_row(row: Mapping[str, Any]) -> Instance:
    data = row["data"]
    return Instance(
        id=row["id"], workflow_type=row["workflow_type"], current_state=row["current_state"],
        previous_state=row["previous_state"] or "",
        data=json.loads(data) if isinstance(data, str) else dict(data or {}),
        version=int(row["version"]), created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]), completed=bool(row["completed"]),
        error=row["error"] or "",
    )


def entry_from_row(row: Mapping[str, Any]) -> HistoryEntry:
    data = row["data"]
    return HistoryEntry(
        instance_id=row["instance_id"], version=int(row["version"]),
        transition=row["transition"], from_state=row["from_state"], to_state=row["to_state"],
        data=json.loads(data) if isinstance(data, str) else dict(data or {}),
        at=float(row["at"]), auto=bool(row["auto"]),
    )


def instance_params(namespace: str, instance: Instance) -> dict[str, Any]:
    return {
        "namespace": namespace, "id": instance.id, "workflow_type": instance.workflow_type,
        "current_state": instance.current_state, "previous_state": instance.previous_state,
        "data": json.dumps(instance.data, separators=(",", ":")), "version": instance.version,
        "created_at": instance.created_at, "updated_at": instance.updated_at,
        "completed": instance.completed, "error": instance.error,
    }


def entry_params(namespace: str, entry: HistoryEntry) -> dict[str, Any]:
    return {
        "namespace": namespace, "instance_id": entry.instance_id, "version": entry.version,
        "transition": entry.transition, "from_state": entry.from_state,
        "to_state": entry.to_state, "data": json.dumps(entry.data, separators=(",", ":")),
        "at": entry.at, "auto": entry.auto,
    }


class SQLiteInstanceStore:
    """An `InstanceStore` in one SQLite file."""

    def __init__(self, url: str, *, namespace: str = "default") -> None:
        self.url = url
        self.namespace = namespace
        self.path, options = sqlite_path(url)
        self._busy_timeout = int(options.get("busy_timeout", "5000"))
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    async def open(self) -> None:
        self._connection()

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is None:
                if self.path != ":memory:" and os.path.dirname(self.path):
                    os.makedirs(os.path.dirname(self.path), exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=self._busy_timeout / 1000)  # fmt: skip
                conn.row_factory = sqlite3.Row
                enable_wal(conn, self._busy_timeout / 1000)
                conn.execute(f"PRAGMA busy_timeout={self._busy_timeout}")
                with _transaction(conn):
                    for statement in statements(_Q["schema"]):
                        conn.execute(statement)
                self._conn = conn
            return self._conn

    async def insert(self, instance: Instance, entry: HistoryEntry) -> None:
        with self._lock:
            conn = self._connection()
            try:
                with _transaction(conn):
                    conn.execute(_Q["insert_instance"], instance_params(self.namespace, instance))
                    conn.execute(_Q["insert_history"], entry_params(self.namespace, entry))
            except sqlite3.IntegrityError as exc:
                raise InstanceExistsError(f"instance {instance.id!r} already exists") from exc

    async def get(self, instance_id: str) -> Instance | None:
        with self._lock:
            row = self._connection().execute(
                _Q["get_instance"], {"namespace": self.namespace, "id": instance_id}).fetchone()
        return None if row is None else instance_from_row(row)

    async def list(
        self, *, workflow_type: str | None = None, state: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Instance]:
        params = {"namespace": self.namespace, "workflow_type": workflow_type, "state": state,
                  "limit": -1 if limit is None else limit}  # fmt: skip
        with self._lock:
            rows = self._connection().execute(_Q["list_instances"], params).fetchall()
        return [instance_from_row(r) for r in rows]

    async def update(self, instance: Instance, expected_version: int,
                     entry: HistoryEntry) -> bool:  # fmt: skip
        params = instance_params(self.namespace, instance)
        params["expected"] = expected_version
        with self._lock:
            conn = self._connection()
            with _transaction(conn):
                if conn.execute(_Q["update_instance"], params).rowcount != 1:
                    return False
                conn.execute(_Q["insert_history"], entry_params(self.namespace, entry))
            return True

    async def history(self, instance_id: str) -> builtins.list[HistoryEntry]:
        with self._lock:
            rows = self._connection().execute(
                _Q["history"], {"namespace": self.namespace, "id": instance_id}).fetchall()
        return [entry_from_row(r) for r in rows]

    async def delete(self, instance_id: str) -> bool:
        params = {"namespace": self.namespace, "id": instance_id}
        with self._lock:
            conn = self._connection()
            with _transaction(conn):
                conn.execute(_Q["delete_history"], params)
                return conn.execute(_Q["delete_instance"], params).rowcount == 1


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` … `COMMIT`, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


__all__ = ["SQLiteInstanceStore"]
