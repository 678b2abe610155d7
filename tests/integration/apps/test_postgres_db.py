"""database.workflow on PostgreSQL: db steps with the Go engine's placeholders."""

from __future__ import annotations

import os
import socket
import textwrap
import uuid
from pathlib import Path

import pytest

import treadle
from treadle.apps import build_app

pytestmark = pytest.mark.services

PG_URL = os.environ.get("TREADLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def require_service(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        if os.environ.get("TREADLE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{name} is not reachable at {host}:{port}")
        pytest.skip(f"{name} is not reachable at {host}:{port}")


async def test_db_steps_on_postgres_with_question_marks_and_dollar_numbers(
        tmp_path: Path) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    table = f"items_{uuid.uuid4().hex[:10]}"
    app = tmp_path / "app.yaml"
    app.write_text(textwrap.dedent(f"""
    modules:
      - name: pg
        type: database.workflow
        config:
          driver: postgres
          dsn: "{PG_URL}"
          init_sql: ["CREATE TABLE {table} (id TEXT PRIMARY KEY, name TEXT, pct TEXT)"]
    pipelines:
      put:
        steps:
          - name: insert
            type: step.db_exec
            config:
              database: pg
              query: "INSERT INTO {table} (id, name, pct) VALUES (?, ?, '100%')"
              params: ["{{{{ .id }}}}", "{{{{ .name }}}}"]
          - name: rename
            type: step.db_exec
            config:
              database: pg
              query: "UPDATE {table} SET name = $2 WHERE id = $1"
              params: ["{{{{ .id }}}}", "{{{{ .name }}}}-2"]
          - name: read
            type: step.db_query
            config:
              database: pg
              query: "SELECT id, name, pct FROM {table} WHERE id = $1"
              params: ["{{{{ .id }}}}"]
              mode: single
    """))
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    runtime = build_app(app, engine)
    async with runtime:
        try:
            _, out = await runtime.run_pipeline("put", {"id": "a", "name": "pen"})
            assert out["row"] == {"id": "a", "name": "pen-2", "pct": "100%"}
            health = await runtime.modules["pg"].health_check()
            assert health == (True, "ok")
        finally:
            runtime.modules["pg"].connection().execute(f"DROP TABLE {table}")
    await engine.close()
