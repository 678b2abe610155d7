"""SQLite-only checks: a database made by earlier migrations upgrades to the schema of record."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from treadle.journal.model import ExecutionStatus, ExecutionSummary
from treadle.stores.sql import migrations
from treadle.stores.sqlite import SQLiteStore, enable_wal


def _schema(path: Path) -> dict[tuple[str, str], str]:
    conn = sqlite3.connect(path)
    try:
        return {(kind, name): " ".join(sql.split()) for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")}
    finally:
        conn.close()


def _apply(path: Path, up_to: int) -> None:
    """The database as a release that knew migrations up to `up_to` left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE treadle_migrations "
                     "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
        for version, sql in migrations("sqlite"):
            if version <= up_to:
                conn.executescript(sql)
                conn.execute("INSERT INTO treadle_migrations VALUES (?, 0)", (version,))
    finally:
        conn.close()


async def test_upgrade_from_v2_keeps_rows_and_matches_a_fresh_schema(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    _apply(old, 2)
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute(
        "INSERT INTO executions (id, workflow, status, created_at, updated_at, idempotency_key, "
        "parent_id, queue, priority, tenant_id) VALUES "
        "('p', 'wf', 'completed', 1, 2, 'key-1', NULL, 'default', 0, 't'), "
        "('c', 'wf', 'running', 3, 4, NULL, 'p', 'q', 5, NULL)")
    conn.close()
    fresh = tmp_path / "fresh.db"
    for path in (old, fresh):
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        await store.close()
    assert _schema(old) == _schema(fresh)
    upgraded = sqlite3.connect(old)
    assert [v for (v,) in upgraded.execute("SELECT version FROM treadle_migrations")] == [
        v for v, _ in migrations("sqlite")]
    assert upgraded.execute(
        "SELECT id, status, idempotency_key, parent_id, queue, priority, tenant_id "
        "FROM executions ORDER BY id").fetchall() == [
        ("c", "running", None, "p", "q", 5, None),
        ("p", "completed", "key-1", None, "default", 0, "t")]
    with pytest.raises(sqlite3.IntegrityError):  # idempotency keys stay unique
        upgraded.execute("INSERT INTO executions (id, workflow, status, created_at, updated_at, "
                         "idempotency_key) VALUES ('x', 'wf', 'pending', 5, 5, 'key-1')")
    upgraded.close()


async def test_a_creation_writes_few_b_trees(tmp_path: Path) -> None:
    """No rowid B-tree beside the id's; the parent and idempotency-key indexes hold only rows
    that have one, the queue index only pending rows, yet they serve the lookups by them (what
    a creation and a completion commit, page-wise)."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 't.db'}")
    await store.open()
    try:
        row = ExecutionSummary("e0", "wf", ExecutionStatus.PENDING, 1.0, 1.0,
                               idempotency_key="k")
        assert (await store.create(row, []))[1]
        again, created = await store.create(
            ExecutionSummary("e1", "wf", ExecutionStatus.PENDING, 2.0, 2.0, idempotency_key="k"),
            [])
        assert (again.id, created) == ("e0", False)
        running = ExecutionSummary("e2", "wf", ExecutionStatus.RUNNING, 3.0, 3.0, owner="me")
        assert (await store.create(running, []))[1]
        assert await store.depth("default") == 1
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    try:
        indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                                    " AND tbl_name = 'executions'").fetchall())
        assert not [n for n in indexes if n.startswith("sqlite_autoindex")], indexes
        assert "WHERE idempotency_key IS NOT NULL" in indexes["idx_executions_idempotency"]
        assert "WHERE parent_id IS NOT NULL" in indexes["idx_executions_parent"]
        assert "WHERE status = 'pending'" in indexes["idx_executions_pending"]
        assert conn.execute("SELECT count(*) FROM executions INDEXED BY idx_executions_pending"
                            " WHERE status = 'pending'").fetchone()[0] == 1
        for where, index in (("idempotency_key = 'k'", "idx_executions_idempotency"),
                             ("parent_id = 'k'", "idx_executions_parent"),
                             ("queue = 'default' AND status = 'pending'",
                              "idx_executions_pending")):
            plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT count(*) FROM executions "
                                f"WHERE {where}").fetchall()
            assert index in str(plan), plan
    finally:
        conn.close()


def test_wal_is_enabled_once_another_opener_lets_go_of_a_new_file(tmp_path: Path) -> None:
    # Processes opening a new database at once race for the lock that switching to WAL
    # takes; SQLite answers "locked" at once there, so the store retries until its timeout.
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE t (x)")
    opener = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(opener, 0.01)  # past its timeout it gives up with SQLite's error
    release = threading.Timer(0.05, holder.execute, ("COMMIT",))  # the other process, later
    release.start()
    enable_wal(opener, 10.0)
    release.join()
    assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
    opener.close()
