"""step.db_query / step.db_exec on a real SQLite file; step.cache_get/set; step.publish."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import treadle
from pipekit import LoadApp
from treadle.errors import ConfigError


class SQLiteModule:
    """Stands in for a storage.sqlite module: a DB-API connection on a file."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False)

    def connection(self) -> sqlite3.Connection:
        return self.conn


@pytest.fixture
def db(tmp_path: Path) -> Any:
    module = SQLiteModule(tmp_path / "app.db")
    module.conn.execute("CREATE TABLE companies (id INTEGER PRIMARY KEY, name TEXT, logo BLOB)")
    module.conn.execute("INSERT INTO companies (name, logo) VALUES ('Acme', x'6869')")
    module.conn.commit()
    yield module
    module.conn.close()


ALL_QUERY = "SELECT name, logo FROM companies WHERE name != ? ORDER BY id"
CRUD = """
pipelines:
  crud:
    steps:
      - name: insert
        type: step.db_exec
        config:
          database: app-db
          query: "INSERT INTO companies (name) VALUES (?)"
          params: ["{{ .name }}"]
      - name: get-company
        type: step.db_query
        config:
          database: app-db
          query: "SELECT id, name FROM companies WHERE id = ?"
          params: ["{{ .steps.insert.last_id }}"]
          mode: single
      - name: all
        type: step.db_query
        config:
          database: app-db
          query: "{ALL_QUERY}"
          params: ["Robert'); DROP TABLE companies;--"]
      - name: none
        type: step.db_query
        config:
          database: app-db
          query: "SELECT id FROM companies WHERE id = ?"
          params: [999]
          mode: single
"""


async def test_db_exec_and_query(load_app: LoadApp, engine: treadle.Engine, db: Any) -> None:
    app = load_app(CRUD.replace("{ALL_QUERY}", ALL_QUERY), modules={"app-db": db})
    eid, out = await app.run_pipeline(engine, "crud", {"name": "Globex"})
    assert out["affected_rows"] == 1 and out["last_id"] == "2"
    assert out["rows"] == [{"name": "Acme", "logo": "hi"}, {"name": "Globex", "logo": None}]
    assert out["count"] == 2
    assert out["row"] == {} and out["found"] is False  # `none` ran last
    steps = {s.name: s for s in (await engine.get(eid)).steps}
    assert steps["get-company"].output == {"row": {"id": 2, "name": "Globex"}, "found": True}
    assert steps["all"].input == [{"database": "app-db", "query": ALL_QUERY,
                                   "params": ["Robert'); DROP TABLE companies;--"]}]
    rows = db.conn.execute("SELECT name FROM companies ORDER BY id").fetchall()
    assert rows == [("Acme",), ("Globex",)]


async def test_single_mode_row(load_app: LoadApp, engine: treadle.Engine, db: Any) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: get-company
            type: step.db_query
            config: {database: db, query: "SELECT id, name FROM companies WHERE id = ?",
                     params: ["{{ .id }}"], mode: single}
    """, modules={"db": db})
    _, out = await app.run_pipeline(engine, "p", {"id": 1})
    assert out["row"] == {"id": 1, "name": "Acme"} and out["found"] is True


def test_sql_templates_are_rejected(load_app: LoadApp) -> None:
    with pytest.raises(ConfigError, match=r"steps\[0\].config.query.*must not contain template"):
        load_app("""
        pipelines:
          p:
            steps:
              - name: bad
                type: step.db_query
                config: {database: db, query: "SELECT * FROM t WHERE id = {{ .id }}"}
        """)


async def test_sql_errors_roll_back_and_missing_module(load_app: LoadApp,
                                                       engine: treadle.Engine, db: Any) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: bad
            type: step.db_exec
            config: {database: db, query: "INSERT INTO nope VALUES (1)"}
    """, modules={"db": db})
    with pytest.raises(treadle.ExecutionFailedError, match="no such table: nope"):
        await app.run_pipeline(engine, "p", {})
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: q
            type: step.db_query
            config: {database: missing-db, query: "SELECT 1"}
    """, name="b.yaml", modules={"db": db})
    with pytest.raises(treadle.ExecutionFailedError,
                       match="database 'missing-db' is not defined in the application"):
        await app.run_pipeline(engine, "p", {})


class MemoryCache:
    def __init__(self) -> None:
        self.data: dict[str, tuple[Any, float | None]] = {}

    def get(self, key: str) -> Any:
        value, expires = self.data.get(key, (None, None))
        return None if expires is not None and expires < time.monotonic() else value

    async def set(self, key: str, value: Any, ttl: float | None) -> None:
        self.data[key] = (value, None if ttl is None else time.monotonic() + ttl)


async def test_cache_set_and_get(load_app: LoadApp, engine: treadle.Engine) -> None:
    cache = MemoryCache()
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: miss
            type: step.cache_get
            config: {cache: cache, key: "user:{{ .id }}", output: before}
          - name: put
            type: step.cache_set
            config: {cache: cache, key: "user:{{ .id }}", value: "{{ json .user }}", ttl: 5m}
          - name: hit
            type: step.cache_get
            config: {cache: cache, key: "user:{{ .id }}"}
      strict:
        steps:
          - name: must
            type: step.cache_get
            config: {cache: cache, key: other, miss_ok: false}
    """, modules={"cache": cache})
    _, out = await app.run_pipeline(engine, "p", {"id": 3, "user": {"n": "ann"}})
    assert out["before"] == "" and out["cached"] is True
    assert out["value"] == '{"n":"ann"}' and out["cache_hit"] is True
    assert cache.data["user:3"][1] is not None
    with pytest.raises(treadle.ExecutionFailedError, match="cache miss for key 'other'"):
        await app.run_pipeline(engine, "strict", {})


async def test_publish_to_a_broker(load_app: LoadApp, engine: treadle.Engine) -> None:
    sent: list[tuple[str, Any]] = []

    class Broker:
        def publish(self, topic: str, message: Any) -> None:
            sent.append((topic, message))

    app = load_app("""
    pipelines:
      p:
        steps:
          - name: explicit
            type: step.publish
            config: {broker: events, topic: "order.{{ .kind }}", payload: {id: "{{ .id }}"}}
          - name: whole
            type: step.publish
            config: {broker: events, topic: all}
          - name: nowhere
            type: step.publish
            config: {topic: lost}
    """, modules={"events": Broker()})
    _, out = await app.run_pipeline(engine, "p", {"id": 1, "kind": "created"})
    assert sent[0] == ("order.created", {"id": 1})
    assert sent[1][0] == "all" and sent[1][1]["published"] is True
    assert out["published"] is False and out["topic"] == "lost"
