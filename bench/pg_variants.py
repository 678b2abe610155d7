"""What the PostgreSQL append statement costs, piece by piece, against variants of it.

A standalone experiment behind the proposals in docs/performance.md ("PostgreSQL and
workers"): on one connection, interleaved round by round, it times the store's own `append`
statement with a real step's batch of 4 events, the same statement without its signal CTE,
its two halves alone (the head UPDATE, the 4-event INSERT), an insert-only guarded append (no
UPDATE: an EXISTS on the owner and max(seq) = expected, the primary key catching races) with
4 rows and with 1 row per batch, a bare one-row INSERT and `SELECT 1`. With
`synchronous_commit=off` (the default here) the WAL flush's noise does not hide differences
of 10-50 µs; `--sync on` includes it. `--explain` prints EXPLAIN (ANALYZE, BUFFERS, WAL) of
the append. Only the store's SQL is read; nothing in src/ changes.

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

from pgkit import base_conninfo, scratch_schema
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
EVENTS = """unnest(string_to_array(%(types)s::text, chr(30)),
                  string_to_array(%(datas)s::text, chr(30))::json[],
                  string_to_array(%(times)s::text, chr(30))::float8[])
           WITH ORDINALITY AS e (type, data, created_at, n)"""
GUARD = """EXISTS (SELECT 1 FROM executions WHERE id = %(id)s::text
                     AND owner IS NOT DISTINCT FROM %(owner)s::text)
      AND coalesce((SELECT max(seq) FROM execution_events
                    WHERE execution_id = %(id)s::text), 0) = %(expected)s::bigint"""
VARIANTS: dict[str, tuple[str, int]] = {  # name -> (SQL, events per batch row)
    "update_only": ("""UPDATE executions SET last_seq = %(last)s::bigint,
        updated_at = %(updated_at)s::float8
        WHERE id = %(id)s::text AND last_seq = %(expected)s::bigint
          AND owner IS NOT DISTINCT FROM %(owner)s::text""", 4),
    "insert4_only": (f"""INSERT INTO execution_events (execution_id, seq, type, data, created_at)
        SELECT %(id)s::text, %(expected)s::bigint + e.n, e.type, e.data, e.created_at
        FROM {EVENTS}""", 4),
    "guarded_insert4": (f"""INSERT INTO execution_events
        (execution_id, seq, type, data, created_at)
        SELECT %(id)s::text, %(expected)s::bigint + e.n, e.type, e.data, e.created_at
        FROM {EVENTS} WHERE {GUARD}""", 4),
    "guarded_insert1": (f"""INSERT INTO execution_events
        (execution_id, seq, type, data, created_at)
        SELECT %(id)s::text, %(expected)s::bigint + 1, 'batch', %(batch)s::json,
               %(updated_at)s::float8
        WHERE {GUARD}""", 1),
}
FLOOR = "INSERT INTO floor (execution_id, data) VALUES (%(id)s, %(batch)s)"


def statements() -> dict[str, tuple[str, int]]:
    from treadle.stores.sql import queries

    append = queries("postgres")["append"]
    signal_cte = append[append.index(", consumed AS ("):append.index("\nSELECT count(*)")]
    return {"append": (append, 4), "append_no_signal_cte": (append.replace(signal_cte, ""), 4),
            **VARIANTS, "floor_insert": (FLOOR, 1), "select1": ("SELECT 1", 0)}


class Journal:
    """One parked execution per variant, so that every variant appends at its own head."""

    def __init__(self, execution_id: str, per_row: int) -> None:
        self.id = execution_id
        self.per_row = per_row
        self.seq = 1

    def params(self) -> dict[str, Any]:
        from treadle.stores.postgres import _event_batch

        now = time.time()
        events = [treadle.Event(self.id, self.seq + 1 + i, kind, data, now)
                  for i, (kind, data) in enumerate(TEMPLATE)]
        params: dict[str, Any] = {"id": self.id, "expected": self.seq, "owner": None,
                                  "last": events[-1].seq, "updated_at": now, "signal": None,
                                  "batch": json.dumps([[e.type, e.data] for e in events])}
        params.update(_event_batch(events))
        self.seq = events[-1].seq if self.per_row == 4 else self.seq + 1
        return params


async def measure(url: str, schema: str, rounds: int, sync: str, explain: bool
                  ) -> dict[str, list[float]]:
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
        await conn.execute("CREATE TABLE floor (id BIGSERIAL PRIMARY KEY, "
                           "execution_id TEXT NOT NULL, data JSON NOT NULL)")
        journals = {name: Journal(ident, per_row)
                    for (name, (_, per_row)), ident in zip(variants.items(), ids, strict=True)}
        names = list(variants)
        samples: dict[str, list[float]] = {name: [] for name in names}
        warmup = 100
        for i in range(warmup + rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                sql, per_row = variants[name]
                params = journals[name].params() if per_row else None
                t0 = time.perf_counter_ns()
                await conn.execute(sql, params, prepare=params is not None)
                if i >= warmup:
                    samples[name].append((time.perf_counter_ns() - t0) / 1000)
        if explain:
            cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS, WAL) " + variants["append"][0],
                                     journals["append"].params())
            print("\n".join(row[0] for row in await cur.fetchall()), file=sys.stderr)
    finally:
        await conn.close()
    return samples


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
        samples = asyncio.run(measure(url, schema, args.rounds, args.sync, args.explain))
    floor = statistics.median(samples["floor_insert"])
    print(f"synchronous_commit={args.sync}, {args.rounds} interleaved rounds, µs per statement")
    print(f"{'statement':<22} {'median':>8} {'p10':>8} {'mean':>8} {'- floor':>8}")
    for name, values in samples.items():
        ordered = sorted(values)
        median = statistics.median(ordered)
        print(f"{name:<22} {median:8.1f} {ordered[len(ordered) // 10]:8.1f} "
              f"{statistics.fmean(ordered):8.1f} {median - floor:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
