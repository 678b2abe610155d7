"""Storage modules: storage.sqlite, database.workflow (SQLite or PostgreSQL), storage.local.

Database modules give `step.db_query` / `step.db_exec` a DB-API connection through
`connection()`. Statements run in autocommit mode (each `db_exec` is its own transaction).
On PostgreSQL the Go project's placeholders (`?` for database/sql drivers, `$1` for lib/pq)
are translated to psycopg's, so queries written for the Go engine run unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from treadle.errors import require
from treadle.modules.base import BuildContext, Module
from treadle.modules.registry import register
from treadle.stores.sqlite import enable_wal

_INIT_SQL = {
    "description": "Treadle extension: SQL run at start (e.g. `CREATE TABLE IF NOT EXISTS`), "
                   "a string or a list of statements.",
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
}


def _statements(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v) for v in value if str(v).strip()]
    return []


class SQLiteDatabase(Module):
    """One SQLite connection shared by the application's steps (WAL mode by default)."""

    type = "storage.sqlite"

    def __init__(self, name: str, config: dict[str, Any], path: str, *,
                 wal: bool = True, init_sql: list[str] | None = None) -> None:  # fmt: skip
        super().__init__(name, config)
        self.path = path
        self.wal = wal
        self.init_sql = init_sql or []
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        if self.path != ":memory:" and not self.path.startswith("file:"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               uri=self.path.startswith("file:"))  # fmt: skip
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
        if self.wal and self.path != ":memory:":
            enable_wal(conn, 5.0)
            conn.execute("PRAGMA synchronous = NORMAL")
        for statement in self.init_sql:
            conn.executescript(statement)
        self._conn = conn

    async def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def connection(self) -> sqlite3.Connection | None:
        return self._conn

    async def health_check(self) -> tuple[bool, str]:
        if self._conn is None:
            return False, "not connected"
        self._conn.execute("SELECT 1").fetchone()
        return True, "ok"


def _sqlite_path(value: str, ctx: BuildContext) -> str:
    if value == ":memory:" or value.startswith("file:"):
        return value
    return str(ctx.path(value))


@register(
    "storage.sqlite",
    category="database",
    provides=("database",),
    doc="""
A SQLite database for `step.db_query` / `step.db_exec` (`database: <this module>`, `?`
placeholders). `dbPath` is relative to the config file (its folder is created);
`:memory:` works for tests. WAL mode is on unless `walMode: false`. `init_sql` (a Treadle
extension) runs at start, for `CREATE TABLE IF NOT EXISTS ...`. Reported by health.checker.
""",
    schema={
        "type": "object",
        "properties": {
            "dbPath": {"type": "string", "default": "data/workflow.db",
                       "description": "Database file."},
            "maxConnections": {"type": "integer", "minimum": 1, "default": 5,
                               "description": "Accepted for compatibility (one connection)."},
            "walMode": {"type": "boolean", "default": True,
                        "description": "Write-ahead logging."},
            "init_sql": _INIT_SQL,
        },
    },
    example="""
- name: db
  type: storage.sqlite
  config:
    dbPath: data/app.db
    init_sql:
      - CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, name TEXT NOT NULL)
""",
)
def _sqlite(name: str, config: dict[str, Any], ctx: BuildContext) -> SQLiteDatabase:
    path = _sqlite_path(str(config.get("dbPath") or "data/workflow.db"), ctx)
    return SQLiteDatabase(name, config, path, wal=config.get("walMode") is not False,
                          init_sql=_statements(config.get("init_sql")))  # fmt: skip


# -- PostgreSQL -----------------------------------------------------------------------------


def translate_placeholders(query: str) -> tuple[str, list[int] | None]:
    """psycopg's `%s` form of a query written with `?` or `$N` placeholders.

    Returns the query and, for `$N` placeholders, the parameter index of each `%s` (so `$2 ..
    $1` reorders, `$1 .. $1` repeats). Quoted text, quoted identifiers and comments are left
    alone; a literal `%` is doubled.
    """
    out: list[str] = []
    order: list[int] = []
    numbered = False
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if query[end] == ch:
                    if end + 1 < n and query[end + 1] == ch:
                        end += 2
                        continue
                    break
                end += 1
            out.append(query[i:end + 1].replace("%", "%%"))
            i = end + 1
        elif ch == "-" and query.startswith("--", i):
            end = query.find("\n", i)
            end = n if end < 0 else end
            out.append(query[i:end].replace("%", "%%"))
            i = end
        elif ch == "?":
            out.append("%s")
            order.append(len(order))
            i += 1
        elif ch == "$" and i + 1 < n and query[i + 1].isdigit():
            end = i + 1
            while end < n and query[end].isdigit():
                end += 1
            out.append("%s")
            order.append(int(query[i + 1:end]) - 1)
            numbered = True
            i = end
        elif ch == "%":
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out), (order if numbered else None)


class _PgCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self.lastrowid = None

    def execute(self, query: str, params: Any = ()) -> Any:
        text, order = translate_placeholders(query)
        values = list(params or ())
        if order is not None:
            values = [values[i] for i in order]
        return self._cursor.execute(text, values)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _PgConnection:
    """A psycopg connection whose cursors take the Go project's placeholders."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def cursor(self) -> _PgCursor:
        return _PgCursor(self._conn.cursor())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class WorkflowDatabase(Module):
    """database.workflow: SQLite (a file path or `file:` URI) or PostgreSQL (a DSN)."""

    type = "database.workflow"

    def __init__(self, name: str, config: dict[str, Any], driver: str, dsn: str,
                 init_sql: list[str]) -> None:  # fmt: skip
        super().__init__(name, {k: v for k, v in config.items() if k != "dsn"})
        self.driver = driver
        self._dsn = dsn
        self.init_sql = init_sql
        self._sqlite: SQLiteDatabase | None = None
        self._pg: _PgConnection | None = None

    def __repr__(self) -> str:
        return f"<WorkflowDatabase {self.name!r} driver={self.driver}>"

    async def start(self) -> None:
        if self.driver == "sqlite":
            self._sqlite = SQLiteDatabase(self.name, {}, self._dsn, init_sql=self.init_sql)
            await self._sqlite.start()
            return
        psycopg = require("psycopg", "postgres")
        conn = await asyncio.to_thread(psycopg.connect, self._dsn, autocommit=True)
        for statement in self.init_sql:
            conn.execute(statement)
        self._pg = _PgConnection(conn)

    async def stop(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.stop()
            self._sqlite = None
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    def connection(self) -> Any:
        return self._sqlite.connection() if self._sqlite is not None else self._pg

    async def health_check(self) -> tuple[bool, str]:
        if self._sqlite is not None:
            return await self._sqlite.health_check()
        if self._pg is None:
            return False, "not connected"
        self._pg.execute("SELECT 1")
        return True, "ok"


_DRIVERS = {"sqlite": "sqlite", "sqlite3": "sqlite", "postgres": "postgres",
            "postgresql": "postgres", "pgx": "postgres"}  # fmt: skip


@register(
    "database.workflow",
    category="database",
    provides=("database",),
    doc="""
A SQL database for `step.db_query` / `step.db_exec`: `driver: sqlite3` (`dsn` a file path
relative to the config file, or a `file:` URI) or `driver: postgres` (`dsn` a PostgreSQL
URL or key/value string; needs `pip install 'treadle[postgres]'`). On PostgreSQL, `?` and
`$1` placeholders are translated, so Go-engine queries run unchanged. `init_sql` (Treadle
extension) runs at start. The DSN is never logged.
""",
    schema={
        "type": "object",
        "required": ["driver", "dsn"],
        "properties": {
            "driver": {"enum": sorted(_DRIVERS), "description": "Database driver."},
            "dsn": {"type": "string", "minLength": 1, "description": "Connection string."},
            "maxOpenConns": {"type": "integer", "minimum": 1, "default": 25,
                             "description": "Accepted for compatibility."},
            "maxIdleConns": {"type": "integer", "minimum": 0, "default": 5,
                             "description": "Accepted for compatibility."},
            "init_sql": _INIT_SQL,
        },
    },
    example="""
- name: orders-db
  type: database.workflow
  config:
    driver: postgres
    dsn: "${DATABASE_URL}"
""",
)
def _workflow_db(name: str, config: dict[str, Any], ctx: BuildContext) -> WorkflowDatabase:
    driver = _DRIVERS.get(str(config.get("driver") or "").lower())
    if driver is None:
        raise ValueError(f"driver {config.get('driver')!r} is not supported "
                         "(sqlite3 or postgres)")  # fmt: skip
    dsn = str(config.get("dsn") or "")
    if not dsn:
        raise ValueError("database.workflow needs a 'dsn'")
    if driver == "sqlite":
        dsn = _sqlite_path(dsn.removeprefix("sqlite://").removeprefix("sqlite3://"), ctx)
    return WorkflowDatabase(name, config, driver, dsn, _statements(config.get("init_sql")))


# -- storage.local --------------------------------------------------------------------------


class LocalStorage(Module):
    """Files under `rootDir`; paths cannot escape it."""

    type = "storage.local"

    def __init__(self, name: str, config: dict[str, Any], root: Path) -> None:
        super().__init__(name, config)
        self.root = root

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def resolve(self, path: str) -> Path:
        root = self.root.resolve()
        target = (root / str(path).lstrip("/")).resolve()
        if target != root and root not in target.parents:
            raise ValueError(f"path {path!r} is outside the storage root")
        return target

    def write(self, path: str, data: bytes | str) -> int:
        target = self.resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        raw = data.encode() if isinstance(data, str) else data
        target.write_bytes(raw)
        return len(raw)

    def read(self, path: str) -> bytes:
        return self.resolve(path).read_bytes()

    def delete(self, path: str) -> bool:
        target = self.resolve(path)
        if target.is_file():
            target.unlink()
            return True
        return False

    def list_files(self, prefix: str = "") -> list[str]:
        base = self.resolve(prefix) if prefix else self.root.resolve()
        if not base.exists():
            return []
        root = self.root.resolve()
        return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file())

    def handle(self, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """For step.delegate: `write` {path, content}, `read` {path}, `delete` {path},
        `list` {prefix}."""
        path = str(data.get("path") or "")
        if action == "write":
            return {"path": path, "size": self.write(path, str(data.get("content", "")))}
        if action == "read":
            return {"path": path, "content": self.read(path).decode(errors="replace")}
        if action == "delete":
            return {"path": path, "deleted": self.delete(path)}
        if action == "list":
            return {"files": self.list_files(str(data.get("prefix") or ""))}
        raise ValueError(f"storage.local {self.name!r} has no action {action!r} "
                         "(write, read, delete, list)")  # fmt: skip


@register(
    "storage.local",
    category="storage",
    provides=("storage", "service"),
    doc="""
Files on the local disk under `rootDir` (relative to the config file; created at start).
From Python: `write(path, data)`, `read(path)`, `delete(path)`, `list_files(prefix)`; from a
pipeline: `step.delegate` with `action` write / read / delete / list. Paths are confined to
the root.
""",
    schema={
        "type": "object",
        "required": ["rootDir"],
        "properties": {
            "rootDir": {"type": "string", "default": "./data/storage",
                        "description": "Root folder."},
        },
    },
    example="""
- name: files
  type: storage.local
  config: {rootDir: ./data/files}
""",
)
def _local(name: str, config: dict[str, Any], ctx: BuildContext) -> LocalStorage:
    return LocalStorage(name, config, ctx.path(str(config.get("rootDir") or "./data/storage")))


__all__ = ["LocalStorage", "SQLiteDatabase", "WorkflowDatabase", "translate_placeholders"]
