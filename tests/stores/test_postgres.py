"""PostgreSQL-only checks: the schema of record, migrations, URL options, SKIP LOCKED."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from storekit import PG_URL, T0, drop_pg_schema, ev, make, require_service, with_option

from treadle.errors import JournalConflictError
from treadle.stores import open_store
from treadle.stores.postgres import PostgresStore, postgres_options
from treadle.stores.sql import migrations

pytestmark = pytest.mark.services

ACTIVE = "(ARRAY['pending'::text, 'running'::text, 'suspended'::text])"
# What every migration applied in order must produce: (table, column) -> (type, nullable) and
# index name -> definition ("S." stands for the schema). Adding a migration means updating this.
COLUMNS: dict[tuple[str, str], tuple[str, bool]] = {
    ("executions", "id"): ("text", False),
    ("executions", "workflow"): ("text", False),
    ("executions", "version"): ("text", True),
    ("executions", "status"): ("text", False),
    ("executions", "created_at"): ("double precision", False),
    ("executions", "updated_at"): ("double precision", False),
    ("executions", "finished_at"): ("double precision", True),
    ("executions", "idempotency_key"): ("text", True),
    ("executions", "parent_id"): ("text", True),
    ("executions", "error"): ("text", True),
    ("executions", "queue"): ("text", False),
    ("executions", "priority"): ("integer", False),
    ("executions", "tenant_id"): ("text", True),
    ("executions", "partition_key"): ("text", True),
    ("executions", "started_at"): ("double precision", True),
    ("executions", "owner"): ("text", True),
    ("executions", "lease_until"): ("double precision", True),
    ("executions", "wake_at"): ("double precision", True),
    ("execution_batches", "execution_id"): ("text", False),
    ("execution_batches", "first_seq"): ("bigint", False),
    ("execution_batches", "last_seq"): ("bigint", False),
    ("execution_batches", "created_at"): ("double precision", False),
    ("execution_batches", "types"): ("ARRAY", False),
    ("execution_batches", "events"): ("json", False),
    # A view since migration 004: one row per event, as the table of migration 001 had.
    ("execution_events", "execution_id"): ("text", True),
    ("execution_events", "seq"): ("bigint", True),
    ("execution_events", "type"): ("text", True),
    ("execution_events", "data"): ("json", True),
    ("execution_events", "created_at"): ("double precision", True),
    ("execution_events", "batch_types"): ("ARRAY", True),
    ("execution_events", "batch_created_at"): ("double precision", True),
    ("signals", "id"): ("bigint", False),
    ("signals", "execution_id"): ("text", False),
    ("signals", "name"): ("text", False),
    ("signals", "payload"): ("json", False),
    ("signals", "created_at"): ("double precision", False),
    ("records", "kind"): ("text", False),
    ("records", "key"): ("text", False),
    ("records", "tenant_id"): ("text", True),
    ("records", "data"): ("json", False),
    ("records", "created_at"): ("double precision", False),
    ("records", "expires_at"): ("double precision", True),
    ("treadle_migrations", "version"): ("integer", False),
    ("treadle_migrations", "applied_at"): ("double precision", False),
}
INDEXES: dict[str, str] = {
    "records_pkey": "UNIQUE INDEX records_pkey ON S.records USING btree (kind, key)",
    "idx_records_listing": "INDEX idx_records_listing ON S.records "
    "USING btree (kind, created_at DESC, key DESC)",
    "idx_records_expiry": "INDEX idx_records_expiry ON S.records "
    "USING btree (expires_at) WHERE (expires_at IS NOT NULL)",
    "executions_pkey": "UNIQUE INDEX executions_pkey ON S.executions USING btree (id)",
    "executions_idempotency_key_key": "UNIQUE INDEX executions_idempotency_key_key "
    "ON S.executions USING btree (idempotency_key)",
    "idx_executions_created": "INDEX idx_executions_created ON S.executions "
    "USING btree (created_at DESC, id DESC)",
    "idx_executions_status": "INDEX idx_executions_status ON S.executions "
    "USING btree (status, created_at DESC, id DESC)",
    "idx_executions_workflow": "INDEX idx_executions_workflow ON S.executions "
    "USING btree (workflow, created_at DESC, id DESC)",
    "idx_executions_parent": "INDEX idx_executions_parent ON S.executions "
    "USING btree (parent_id) WHERE (parent_id IS NOT NULL)",
    "idx_executions_tenant": "INDEX idx_executions_tenant ON S.executions "
    "USING btree (tenant_id, created_at DESC, id DESC) WHERE (tenant_id IS NOT NULL)",
    "idx_executions_free": "INDEX idx_executions_free ON S.executions "
    "USING btree (priority DESC, created_at, id) "
    f"WHERE ((owner IS NULL) AND (status = ANY {ACTIVE}))",
    "idx_executions_ready": "INDEX idx_executions_ready ON S.executions "
    "USING btree (priority DESC, created_at, id) WHERE ((owner IS NULL) AND "
    "(status = ANY (ARRAY['pending'::text, 'running'::text])) AND (wake_at IS NULL))",
    "idx_executions_timers": "INDEX idx_executions_timers ON S.executions "
    f"USING btree (wake_at) WHERE ((owner IS NULL) AND (status = ANY {ACTIVE}) "
    "AND (wake_at IS NOT NULL))",
    "idx_executions_leases": "INDEX idx_executions_leases ON S.executions "
    f"USING btree (lease_until) WHERE ((owner IS NOT NULL) AND (status = ANY {ACTIVE}))",
    "idx_executions_pending": "INDEX idx_executions_pending ON S.executions "
    "USING btree (queue) WHERE (status = 'pending'::text)",
    "idx_executions_started": "INDEX idx_executions_started ON S.executions "
    "USING btree (started_at) WHERE (started_at IS NOT NULL)",
    "idx_executions_finished": "INDEX idx_executions_finished ON S.executions "
    "USING btree (finished_at) WHERE (status = ANY "
    "(ARRAY['completed'::text, 'failed'::text, 'cancelled'::text]))",
    "execution_batches_pkey": "UNIQUE INDEX execution_batches_pkey ON S.execution_batches "
    "USING btree (execution_id, first_seq)",
    "idx_execution_batches_types": "INDEX idx_execution_batches_types ON S.execution_batches "
    "USING gin (types)",
    "idx_execution_batches_created": "INDEX idx_execution_batches_created "
    "ON S.execution_batches USING btree (created_at)",
    "signals_pkey": "UNIQUE INDEX signals_pkey ON S.signals USING btree (id)",
    "idx_signals_execution": "INDEX idx_signals_execution ON S.signals "
    "USING btree (execution_id, id)",
    "treadle_migrations_pkey": "UNIQUE INDEX treadle_migrations_pkey "
    "ON S.treadle_migrations USING btree (version)",
}
# Triggers that NOTIFY wake-ups (migration 003): name -> (table, timing and events).
TRIGGERS: dict[str, tuple[str, str]] = {
    "treadle_wake_created": ("executions", "AFTER INSERT"),
    "treadle_wake_released": ("executions", "AFTER UPDATE OF owner"),
    "treadle_wake_finished": ("executions", "AFTER UPDATE OF status"),
    "treadle_wake_signalled": ("signals", "AFTER INSERT"),
}


@pytest.fixture
def schema() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"treadle_test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_pg_schema(name)


def _sync_query(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []


def _catalogue(schema: str) -> tuple[dict[tuple[str, str], tuple[str, bool]], dict[str, str]]:
    columns = {
        (table, column): (kind, nullable == "YES")
        for table, column, kind, nullable in _sync_query(
            "SELECT table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = %s", (schema,))
    }
    indexes = {
        name: definition.removeprefix("CREATE ").replace(f" {schema}.", " S.")
        for name, definition in _sync_query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (schema,))
    }
    return columns, indexes


async def test_fresh_schema_equals_all_migrations_applied(schema: str) -> None:
    store = open_store(with_option(PG_URL, "schema", schema))
    await store.open()
    await store.close()
    columns, indexes = _catalogue(schema)
    assert columns == COLUMNS
    assert indexes == INDEXES
    triggers = {
        name: (table, definition.split(" ON ")[0].split(f" {name} ", 1)[1])
        for name, table, definition in _sync_query(
            "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND NOT t.tgisinternal", (schema,))
    }
    assert triggers == TRIGGERS
    applied = _sync_query(f"SELECT version FROM {schema}.treadle_migrations ORDER BY version")
    assert [v for (v,) in applied] == [v for v, _ in migrations("postgres")]


async def test_concurrent_opens_migrate_once(schema: str) -> None:
    url = with_option(PG_URL, "schema", schema)
    stores = [open_store(url) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await make(stores[0], "a")
        assert await stores[-1].get("a") is not None
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    applied = _sync_query(f"SELECT version FROM {schema}.treadle_migrations")
    assert sorted(v for (v,) in applied) == [v for v, _ in migrations("postgres")]
    reopened = open_store(url)
    await reopened.open()  # nothing left to apply
    await reopened.close()
    assert len(_sync_query(f"SELECT version FROM {schema}.treadle_migrations")) == len(applied)


async def test_schemas_are_isolated(schema: str) -> None:
    other = f"{schema}_b"
    first = open_store(with_option(PG_URL, "schema", schema))
    second = open_store(with_option(PG_URL, "schema", other))
    await first.open()
    await second.open()
    try:
        await make(first, "a")
        assert await second.get("a") is None
        await make(second, "a", workflow="other")
        found = await first.get("a")
        assert found is not None and found.workflow == "wf"
    finally:
        await first.close()
        await second.close()
        drop_pg_schema(other)


async def test_search_path_from_libpq_options_is_honoured(schema: str) -> None:
    _sync_query(f"CREATE SCHEMA {schema}")
    store = open_store(with_option(PG_URL, "options", f"-csearch_path%3D{schema}"))
    await store.open()
    try:
        await make(store, "a")
    finally:
        await store.close()
    assert _sync_query(f"SELECT id FROM {schema}.executions") == [("a",)]


def test_url_options_are_split_from_the_conninfo() -> None:
    conninfo, ours = postgres_options(
        "postgres://u:p@h:5433/db?schema=s1&pool_max=3&sslmode=disable&pool_min=0"
        "&prepare_threshold=none&application_name=x")
    assert conninfo == "postgresql://u:p@h:5433/db?sslmode=disable&application_name=x"
    assert ours == {"schema": "s1", "pool_max": "3", "pool_min": "0",
                    "prepare_threshold": "none"}
    store = PostgresStore("postgresql://h/db?schema=s1&pool_max=3&pool_min=0")
    assert (store.schema, store._min_size, store._max_size) == ("s1", 0, 3)
    with pytest.raises(ValueError):
        PostgresStore("postgresql://h/db?schema=bad;name")
    with pytest.raises(ValueError):
        PostgresStore("postgresql://h/db?pool_min=5&pool_max=2")


async def test_claim_skips_rows_locked_by_another_transaction(schema: str) -> None:
    import psycopg

    store = open_store(with_option(PG_URL, "schema", schema))
    await store.open()
    try:
        await make(store, "a", created_at=T0)
        await make(store, "b", created_at=T0 + 1)
        async with await psycopg.AsyncConnection.connect(PG_URL) as conn:
            await conn.execute(f"SELECT 1 FROM {schema}.executions WHERE id = 'a' FOR UPDATE")
            claimed = await asyncio.wait_for(
                store.claim("w", now=T0, lease_until=T0 + 30, limit=5), timeout=5)
            assert [r.id for r in claimed] == ["b"]
            await conn.rollback()
        claimed = await store.claim("w", now=T0, lease_until=T0 + 30, limit=5)
        assert [r.id for r in claimed] == ["a"]
    finally:
        await store.close()


async def test_a_cancelled_call_waiting_for_a_connection_stays_cancelled(schema: str) -> None:
    # psycopg_pool waits with asyncio.wait_for, which on Python 3.11 swallows a cancellation
    # arriving as the wait ends; the engine's crash and shutdown paths depend on it.
    store = PostgresStore(with_option(PG_URL, "schema", schema) + "&pool_max=1")
    await store.open()
    try:
        for yields in range(5):
            taken, release = asyncio.Event(), asyncio.Event()

            async def hold(taken: asyncio.Event = taken, release: asyncio.Event = release) -> None:
                async with store._connection():
                    taken.set()
                    await release.wait()

            holder = asyncio.create_task(hold())
            await taken.wait()
            waiter = asyncio.create_task(store.get("nope"))
            deadline = asyncio.get_running_loop().time() + 5
            assert store._pool is not None
            while not store._pool.get_stats().get("requests_waiting"):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0)
            release.set()
            await holder
            for _ in range(yields):
                await asyncio.sleep(0)
            if waiter.cancel():
                with pytest.raises(asyncio.CancelledError):
                    await waiter
            else:
                assert await waiter is None
    finally:
        await store.close()


async def test_batch_types_column_holds_any_event_type(schema: str) -> None:
    # The store sends a batch's types as a text[] literal: quoting must survive every character.
    store = open_store(with_option(PG_URL, "schema", schema))
    await store.open()
    odd = ['a"b', "back\\slash", "x,y", "{braces}", " spaced ", "NULL", "", "é✓", "rs\x1ex"]
    try:
        await make(store, "a", owner="w")
        await store.append("a", [ev("a", 2 + i, kind) for i, kind in enumerate(odd)],
                           expected_seq=1, owner="w")
        assert [e.type for e in await store.events("a", after=1)] == odd
    finally:
        await store.close()
    rows = _sync_query(f"SELECT types FROM {schema}.execution_batches WHERE execution_id = 'a' "
                       "ORDER BY first_seq")
    assert rows == [(["execution.started"],), (odd,)]


# Rows as the store wrote them before migration 004: one journal row per event, and the
# journal's head in executions.last_seq. Data texts are kept as written (spacing, key order,
# 1e16, \u0000), which the upgrade must not change.
_V3_EVENTS = [
    ("a", 1, "execution.started", '{"workflow": "wf", "args": [1]}', 1712345678.1234567),
    ("a", 2, "step.started", '{"pos":0,"step_name":"s"}', 1712345679.5),
    ("a", 3, "step.completed", '{"z": 1, "a": [1.0, 1e16, "\\u0000 ✓"]}', 1712345680.25),
    ("b", 1, "execution.started", '{"workflow": "wf", "args": []}', 1712345000.0),
    ("b", 2, "execution.completed", '{"result": null}', 1712345001.0),
]


def _schema_at_version_3(schema: str) -> None:
    import psycopg

    from treadle.stores.sql import queries

    q = queries("postgres")
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path = {schema}")
        with conn.transaction():
            conn.execute(q["migrations_table"])
            for version, script in migrations("postgres"):
                if version <= 3:
                    conn.execute(script)
                    conn.execute(q["record_migration"], {"version": version, "applied_at": T0})
        conn.execute(
            "INSERT INTO executions (id, workflow, status, created_at, updated_at, finished_at, "
            "owner, lease_until, last_seq) VALUES "
            "('a', 'wf', 'running', 1712345678.1234567, 1712345680.25, NULL, 'w', %s, 3), "
            "('b', 'wf', 'completed', 1712345000.0, 1712345001.0, 1712345001.0, NULL, NULL, 2)",
            (T0 + 60,))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO execution_events VALUES (%s, %s, %s, %s, %s)",
                            _V3_EVENTS)
        conn.execute("INSERT INTO signals (execution_id, name, payload, created_at) "
                     "VALUES ('a', 'go', '{\"k\": 2}', 1712345681.0)")


async def test_upgrade_to_batches_keeps_every_event(schema: str) -> None:
    _schema_at_version_3(schema)
    store = open_store(with_option(PG_URL, "schema", schema))
    await store.open()  # applies 004
    try:
        a = await store.get("a")
        assert a is not None and (a.last_seq, a.updated_at, a.owner) == (3, 1712345680.25, "w")
        b = await store.get("b")
        assert b is not None and (b.last_seq, b.updated_at) == (2, 1712345001.0)
        events = await store.events("a")
        assert [(e.seq, e.type, e.created_at) for e in events] == [
            (seq, kind, at) for ident, seq, kind, _, at in _V3_EVENTS if ident == "a"]
        assert list(events[2].data) == ["z", "a"] and events[2].data["a"] == [1.0, 1e16,
                                                                              "\u0000 ✓"]
        assert [e.seq for e in await store.events("a", after=1, limit=1)] == [2]
        assert [s.name for s in await store.signals("a")] == ["go"]
        # The journal goes on from its old head, and only from there.
        with pytest.raises(JournalConflictError):
            await store.append("a", [ev("a", 3)], expected_seq=2, owner="w")
        await store.append("a", [ev("a", 4), ev("a", 5)], expected_seq=3, owner="w")
        found = await store.get("a")
        assert found is not None and found.last_seq == 5
    finally:
        await store.close()
    # The per-event view shows the old rows with their texts unchanged, then the new batch.
    view = _sync_query(f"SELECT execution_id, seq, type, data::text, created_at "
                       f"FROM {schema}.execution_events ORDER BY execution_id, seq")
    assert view[:3] + view[5:] == [row for row in _V3_EVENTS if row[0] == "a"] + [
        ("b", 1, "execution.started", '{"workflow": "wf", "args": []}', 1712345000.0),
        ("b", 2, "execution.completed", '{"result": null}', 1712345001.0)]
    assert [(r[0], r[1]) for r in view[3:5]] == [("a", 4), ("a", 5)]
    applied = _sync_query(f"SELECT version FROM {schema}.treadle_migrations ORDER BY version")
    assert [v for (v,) in applied] == [v for v, _ in migrations("postgres")]


async def test_journal_indexes_serve_queries_by_type_and_time(schema: str) -> None:
    # The seed roadmap's indexes on the journal (by event type, by time) on the batch layout:
    # the documented queries (docs/stores.md) are answered from the indexes.
    store = open_store(with_option(PG_URL, "schema", schema))
    await store.open()
    try:
        for i in range(3):
            await make(store, f"e{i}", owner="w", created_at=T0 + i)
            kind = "step.failed" if i == 1 else "step.completed"
            await store.append(f"e{i}", [ev(f"e{i}", 2, kind, at=T0 + 10 + i)],
                               expected_seq=1, owner="w")
    finally:
        await store.close()
    by_type = (f"SELECT execution_id, seq FROM {schema}.execution_events "
               "WHERE batch_types @> ARRAY['step.failed'] AND type = 'step.failed'")
    by_time = (f"SELECT execution_id, seq, type FROM {schema}.execution_events "
               f"WHERE batch_created_at >= {T0 + 11} ORDER BY batch_created_at, seq")
    assert _sync_query(by_type) == [("e1", 2)]
    assert _sync_query(by_time) == [("e1", 2, "step.failed"), ("e2", 2, "step.completed")]
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        for query, index in ((by_type, "idx_execution_batches_types"),
                             (by_time, "idx_execution_batches_created")):
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query}").fetchall())
            assert index in plan, plan
