"""What the PostgreSQL append statement costs, piece by piece, against variants of it.

A standalone experiment behind docs/performance.md ("PostgreSQL and workers"): on one
connection, interleaved round by round, it times with a real step's batch of 4 events

- the store's `append` (migration 004: one batch row, guarded by the owner, locked FOR SHARE,
  and the journal's head), and the same without the FOR SHARE lock, without the type (GIN)
  index, and without any guard (a bare insert of the batch row);
- the append of migrations 001-003 (`v1_append`: an UPDATE of the execution's head, 4 event
  rows, a signal CTE) on tables of that shape, for comparison;
- a bare one-row INSERT (the floor) and `SELECT 1`.

With `synchronous_commit=off` (the default here) the WAL flush's noise does not hide
differences of 10-50 µs; `--sync on` includes it. `--explain` prints EXPLAIN (ANALYZE,
BUFFERS, WAL) of the append. Besides wall time it reports the backend's CPU per statement,
measured in blocks (from /proc, which counts in clock ticks).

    .venv/bin/python bench/pg_variants.py                     # 2,000 rounds, sync off
    .venv/bin/python bench/pg_variants.py --sync on --rounds 1000 --explain
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from pgkit import base_conninfo, process_cpu, scratch_schema
from workloads import POSTGRES_URL

import treadle

TEMPLATE = [  # a step's 4 events as bench.noop journals them
    ("step.started", {"pos": 0, "step_name": "bench.noop", "attempt": 1}),
    ("step.input_recorded",
     {"pos": 0, "step_name": "bench.noop", "input": {"args": [0], "kwargs": {}}}),
    ("step.output_recorded", {"pos": 0, "step_name": "bench.noop", "output": 0}),
    ("step.completed", {"pos": 0, "step_name": "bench.noop", "duration_ms": 0.0123,
                        "attempt": 1, "status": "completed"}),
]
# The tables and the append statement of migrations 001-003, reduced to what an append touches.
V1_TABLES = """
CREATE TABLE v1_executions (id TEXT PRIMARY KEY, owner TEXT, updated_at DOUBLE PRECISION,
    last_seq BIGINT NOT NULL DEFAULT 0) WITH (fillfactor = 80);
CREATE TABLE v1_events (execution_id TEXT NOT NULL, seq BIGINT NOT NULL, type TEXT NOT NULL,
    data JSON NOT NULL, created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (execution_id, seq));
CREATE INDEX ON v1_events (type);
CREATE INDEX ON v1_events (created_at);
CREATE TABLE v1_signals (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT NOT NULL);
CREATE TABLE batches_nogin (LIKE execution_batches INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE batches_nogin ADD PRIMARY KEY (execution_id, first_seq);
CREATE INDEX ON batches_nogin (created_at);
CREATE TABLE floor (id BIGSERIAL PRIMARY KEY, execution_id TEXT NOT NULL, data JSON NOT NULL);
"""
V1_APPEND = """WITH head AS (
    UPDATE v1_executions
    SET last_seq = %(last)s::bigint, updated_at = coalesce(%(at)s::float8, updated_at)
    WHERE id = %(id)s::text AND last_seq = %(expected)s::bigint
      AND owner IS NOT DISTINCT FROM %(owner)s::text
    RETURNING id
), journal AS (
    INSERT INTO v1_events (execution_id, seq, type, data, created_at)
    SELECT head.id, %(expected)s::bigint + e.n, e.type, e.data, e.created_at
    FROM head, unnest(string_to_array(%(v1_types)s::text, chr(30)),
                      string_to_array(%(v1_datas)s::text, chr(30))::json[],
                      string_to_array(%(v1_times)s::text, chr(30))::float8[])
               WITH ORDINALITY AS e (type, data, created_at, n)
), consumed AS (
    DELETE FROM v1_signals
    WHERE id = %(signal)s::bigint AND execution_id = (SELECT id FROM head)
)
SELECT count(*) FROM head"""
BARE = """INSERT INTO execution_batches (execution_id, first_seq, last_seq, created_at, types,
    events) VALUES (%(id)s::text, %(expected)s::bigint + 1, %(last)s::bigint, %(at)s::float8,
    %(types)s::text[], %(events)s::json)"""
FLOOR = "INSERT INTO floor (execution_id, data) VALUES (%(id)s, %(events)s)"


def statements() -> dict[str, str]:
    from treadle.stores.sql import queries

    append = queries("postgres")["append"]
    return {
        "append": append,
        "append_no_lock": append.replace(" FOR SHARE", ""),
        "append_no_type_index": append.replace("execution_batches", "batches_nogin"),
        "bare_batch_insert": BARE,
        "v1_append": V1_APPEND,
        "floor_insert": FLOOR,
        "select1": "SELECT 1",
    }


class Journal:
    """One parked execution per variant, so that every variant appends at its own head."""

    def __init__(self, execution_id: str) -> None:
        self.id = execution_id
        self.seq = 1

    def params(self) -> dict[str, Any]:
        from treadle.stores.postgres import _encode_batch

        now = time.time()
        events = [treadle.Event(self.id, self.seq + 1 + i, kind, data, now)
                  for i, (kind, data) in enumerate(TEMPLATE)]
        params: dict[str, Any] = {"id": self.id, "expected": self.seq, "owner": None,
                                  "last": events[-1].seq, "at": now, "signal": None}
        params["types"], params["events"] = _encode_batch(events)
        params["v1_types"] = "\x1e".join(kind for kind, _ in TEMPLATE)
        params["v1_datas"] = "\x1e".join(json.dumps(data) for _, data in TEMPLATE)
        params["v1_times"] = "\x1e".join(repr(now) for _ in TEMPLATE)
        self.seq = events[-1].seq
        return params


async def measure(url: str, schema: str, rounds: int, sync: str, explain: bool
                  ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    import psycopg

    variants = statements()
    registry = treadle.Registry()

    @treadle.workflow(name="bench.parked", registry=registry)
    async def parked(ctx: treadle.Context) -> None:
        return None

    async with treadle.Engine(url, registry=registry) as engine:
        ids = [(await engine.start(parked, queue="bench-parked")).id for _ in variants]
    conn = await psycopg.AsyncConnection.connect(
        base_conninfo(url), autocommit=True,
        options=f"-c search_path={schema} -c synchronous_commit={sync}")
    try:
        await conn.execute(V1_TABLES)
        journals = {name: Journal(ident) for name, ident in zip(variants, ids, strict=True)}
        for journal in journals.values():
            await conn.execute("INSERT INTO v1_executions (id, last_seq) VALUES (%s, 1)",
                               (journal.id,))
            await conn.execute("INSERT INTO batches_nogin SELECT * FROM execution_batches "
                               "WHERE execution_id = %s", (journal.id,))
        names = list(variants)
        wall: dict[str, list[float]] = {name: [] for name in names}
        warmup = 100
        for i in range(warmup + rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                params = journals[name].params() if name != "select1" else None
                t0 = time.perf_counter_ns()
                await conn.execute(variants[name], params, prepare=params is not None)
                if i >= warmup:
                    wall[name].append((time.perf_counter_ns() - t0) / 1000)
        cpu: dict[str, list[float]] = {name: [] for name in names}
        pid = conn.info.backend_pid
        block = max(rounds // 2, 200)
        for i in range(4):  # CPU needs long blocks: /proc counts in clock ticks
            for name in names if i % 2 == 0 else names[::-1]:
                before = process_cpu(pid) or 0.0
                for _ in range(block):
                    params = journals[name].params() if name != "select1" else None
                    await conn.execute(variants[name], params, prepare=params is not None)
                cpu[name].append(((process_cpu(pid) or 0.0) - before) / block * 1e6)
        if explain:
            cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS, WAL) " + variants["append"],
                                     journals["append"].params())
            print("\n".join(row[0] for row in await cur.fetchall()), file=sys.stderr)
    finally:
        await conn.close()
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/pg_variants.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=POSTGRES_URL)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--sync", choices=["on", "off"], default="off",
                        help="synchronous_commit of the measuring connection (default off)")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)
    with scratch_schema(args.url, "bench_variants") as (url, schema):
        wall, cpu = asyncio.run(measure(url, schema, args.rounds, args.sync, args.explain))
    floor = statistics.median(wall["floor_insert"])
    print(f"synchronous_commit={args.sync}, {args.rounds} interleaved rounds, µs per statement;"
          " backend CPU: median of 4 blocks")
    print(f"{'statement':<22} {'median':>8} {'p10':>8} {'mean':>8} {'- floor':>8} "
          f"{'backend CPU':>12}")
    for name, values in wall.items():
        ordered = sorted(values)
        median = statistics.median(ordered)
        print(f"{name:<22} {median:8.1f} {ordered[len(ordered) // 10]:8.1f} "
              f"{statistics.fmean(ordered):8.1f} {median - floor:8.1f} "
              f"{statistics.median(cpu[name]):12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
