"""Database steps: step.db_query and step.db_exec, parameterised only.

They use a named module that provides a DB-API connection: `module.connection()` (for example
`storage.sqlite` or `database.workflow`). The SQL text may not contain templates; values go in
`params` (templates rendered, native types kept), bound with the driver's placeholders (`?` for
SQLite, `%s` / `$1` for PostgreSQL drivers).
"""

from __future__ import annotations

from typing import Any

from treadle.steps._context import PipelineContext
from treadle.steps.errors import StepFailedError
from treadle.steps.registry import Checker, register


def _check_sql(config: dict[str, Any], checker: Checker) -> None:
    query = str(config.get("query", ""))
    if "{{" in query or "${" in query:
        checker.fail("query must not contain template expressions (use params instead)",
                     "query")  # fmt: skip


def _connection(config: dict[str, Any], ctx: PipelineContext) -> Any:
    name = str(config["database"])
    module = ctx.module(name, "database")
    connect = getattr(module, "connection", None)
    if connect is None:
        raise StepFailedError(f"step {ctx.step!r}: module {name!r} provides no database "
                              "connection (needs connection())")  # fmt: skip
    conn = connect()
    if conn is None:
        raise StepFailedError(f"step {ctx.step!r}: database {name!r} has no open connection")
    return conn


def _value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode(errors="replace")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # dates, decimals: their text, as the Go driver scan gives


_DB_PROPS: dict[str, Any] = {
    "database": {"type": "string", "minLength": 1, "description": "Database module name."},
    "query": {"type": "string", "minLength": 1, "description": "SQL text (no templates)."},
    "params": {"type": "array", "description": "Positional parameters (templates rendered)."},
}


@register(
    "step.db_query",
    doc="""
Runs a parameterised SELECT against a named database module. `mode: list` (default) outputs
`rows` and `count`; `mode: single` outputs the first row as `row` and `found`.
""",
    schema={
        "type": "object",
        "required": ["database", "query"],
        "properties": {**_DB_PROPS,
                       "mode": {"enum": ["list", "single"], "default": "list",
                                "description": "All rows, or the first one."}},
        "additionalProperties": False,
    },
    raw_keys=("query",),
    check=_check_sql,
    outputs={"rows": "list of rows (list mode)", "count": "number of rows (list mode)",
             "row": "first row or {} (single mode)", "found": "whether a row came back"},
    example="""
- name: get-company
  type: step.db_query
  config:
    database: admin-db
    query: "SELECT id, name FROM companies WHERE id = ?"
    params: ["{{ index .steps \\"parse-request\\" \\"path_params\\" \\"id\\" }}"]
    mode: single
""",
)
async def db_query(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    conn = _connection(config, ctx)
    cursor = conn.cursor()
    try:
        cursor.execute(config["query"], list(config.get("params") or []))
        columns = [d[0] for d in cursor.description or ()]
        single = config.get("mode") == "single"
        raw = cursor.fetchmany(1) if single else cursor.fetchall()
        rows = [{c: _value(v) for c, v in zip(columns, r, strict=False)} for r in raw]
    finally:
        cursor.close()
    if single:
        return {"row": rows[0] if rows else {}, "found": bool(rows)}
    return {"rows": rows, "count": len(rows)}


@register(
    "step.db_exec",
    doc="""
Runs a parameterised INSERT/UPDATE/DELETE against a named database module and commits.
Outputs `affected_rows` and `last_id` (as text, like the Go project).
""",
    schema={
        "type": "object",
        "required": ["database", "query"],
        "properties": dict(_DB_PROPS),
        "additionalProperties": False,
    },
    raw_keys=("query",),
    check=_check_sql,
    outputs={"affected_rows": "rows changed", "last_id": "last inserted row id, as text"},
    example="""
- name: insert-order
  type: step.db_exec
  config:
    database: orders-db
    query: "INSERT INTO orders (id, total) VALUES (?, ?)"
    params: ["{{ .order_id }}", "{{ .total }}"]
""",
)
async def db_exec(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    conn = _connection(config, ctx)
    cursor = conn.cursor()
    try:
        cursor.execute(config["query"], list(config.get("params") or []))
        affected = cursor.rowcount
        last_id = getattr(cursor, "lastrowid", None)
    except Exception:
        if hasattr(conn, "rollback"):
            conn.rollback()
        raise
    finally:
        cursor.close()
    if hasattr(conn, "commit"):
        conn.commit()
    return {"affected_rows": affected, "last_id": str(last_id or 0)}
