"""PostgreSQL: the commit floor under a durable step, and where a step's time goes.

Two benchmarks (PostgreSQL stores only; other stores are skipped):

- `pg_commit`: raw psycopg over loopback, no Treadle — `SELECT 1` (one round trip), one
  ~350-byte `INSERT` in autocommit (one round trip + one commit, i.e. a WAL flush), the same
  INSERT with `synchronous_commit=off` (no wait for the flush) and from a blocking
  (non-async) psycopg connection. Interleaved, so they share the machine's noise.
- `pg_step_profile`: workload 1 (10 trivial async steps, paired with 0-step runs as in
  `seq10`) on an instrumented engine. It counts and times, per step and from the engine's
  side: every Store call, every SQL statement (`AsyncCursor.execute`, by query name), the
  pool's checkout and return, and — with libpq's protocol trace on, in a separate pass —
  the round trips (`ReadyForQuery` messages) and bytes on the wire. Then it replays the
  store's own `append` statement with a 4-event batch taken from a real step, split into its
  parts: `BEGIN` / the statement / `COMMIT` as separate round trips, the statement alone in
  autocommit, with `synchronous_commit=off`, the `Store.append` call around it, and the
  Python that builds its parameters.

    .venv/bin/python bench/run.py --only pg_commit,pg_step_profile --stores postgres --repeat 3
    .venv/bin/python bench/pg_profile.py            # both, printed as a table

`bench/pg_variants.py` takes the append statement further apart (its UPDATE and INSERT
halves, an insert-only form, one row per batch); docs/performance.md has the figures.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import Result, Summary, Target, format_table, result
from pgkit import base_conninfo, cpu_snapshot, is_postgres, scratch_schema, with_options
from workloads import Plan, StoreSpec, define_workflows, parse_stores, timed

import treadle

STEP_TARGET = Target(300.0)  # the issue: "<= 1.3 x one commit ~ 300 us"
RATIO_TARGET = Target(1.3)
PAYLOAD = json.dumps([  # about one step's batch of events, as in bench_sqlite_commit
    [3, "step.input_recorded",
     {"pos": 0, "step_name": "bench.noop", "input": {"args": [0], "kwargs": {}}}, 1.7e9],
    [4, "step.output_recorded", {"pos": 0, "step_name": "bench.noop", "output": 0}, 1.7e9],
    [5, "step.completed", {"pos": 0, "step_name": "bench.noop", "duration_ms": 0.01,
                           "attempt": 1, "status": "completed"}, 1.7e9],
])
INSERT = "INSERT INTO floor (execution_id, data) VALUES (%s, %s)"
FLOOR_TABLE = ("CREATE TABLE IF NOT EXISTS floor (id BIGSERIAL PRIMARY KEY, "
               "execution_id TEXT NOT NULL, data JSON NOT NULL)")


def _us(t0: int) -> float:
    return (time.perf_counter_ns() - t0) / 1000


async def _interleaved(
    probes: dict[str, Callable[[int], Awaitable[Any]]], warmup: int, reps: int
) -> dict[str, list[float]]:
    """Each probe once per round, the order rotating round by round; µs per call."""
    names = list(probes)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + reps):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter_ns()
            await probes[name](i)
            if i >= warmup:
                samples[name].append(_us(t0))
    return samples


# -- the commit floor -----------------------------------------------------------------------------

async def _commit_floor(url: str, reps: int) -> list[Result]:
    import psycopg

    conninfo = base_conninfo(url)
    with scratch_schema(url, "bench_floor") as (_, schema):
        opts = f"-c search_path={schema}"
        fast = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, options=opts)
        lazy = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, options=f"{opts} -c synchronous_commit=off")
        blocking = psycopg.connect(conninfo, autocommit=True, options=opts)
        try:
            await fast.execute(f'CREATE SCHEMA "{schema}"')
            await fast.execute(FLOOR_TABLE)

            async def blocking_insert(i: int) -> None:
                blocking.execute(INSERT, (str(i), PAYLOAD))

            samples = await _interleaved({
                "select1_us": lambda i: fast.execute("SELECT 1"),
                "insert_commit_us": lambda i: fast.execute(INSERT, (str(i), PAYLOAD)),
                "insert_nosync_us": lambda i: lazy.execute(INSERT, (str(i), PAYLOAD)),
                "insert_commit_blocking_us": blocking_insert,
            }, warmup=200, reps=reps)
        finally:
            await fast.close()
            await lazy.close()
            blocking.close()
    notes = {
        "select1_us": "SELECT 1: one round trip over loopback (async psycopg, as the store)",
        "insert_commit_us": "one ~350 B INSERT, autocommit: one round trip + one commit "
                            "(WAL flush): the floor under a durable step",
        "insert_nosync_us": "the same INSERT with synchronous_commit=off (no wait for the "
                            "WAL flush)",
        "insert_commit_blocking_us": "the same INSERT + commit from a blocking psycopg "
                                     "connection (no event loop)",
    }
    rows = [result("pg_commit", "postgres", name, "us", Summary.of(values), note=notes[name])
            for name, values in samples.items()]
    flush = (statistics.median(samples["insert_commit_us"])
             - statistics.median(samples["insert_nosync_us"]))
    rows.append(Result("pg_commit", "postgres", "wal_flush_us", "us", flush,
                       note="median insert_commit - median insert_nosync: waiting for the "
                            "WAL flush"))
    return rows


def bench_pg_commit(store: StoreSpec, plan: Plan) -> list[Result]:
    """Raw psycopg over loopback: round trip, INSERT + commit, without and with the flush."""
    if not is_postgres(store.url):
        return []
    return asyncio.run(_commit_floor(store.url, plan.reps(3000, 300)))


# -- the instrumented engine ----------------------------------------------------------------------

class Probe:
    """Counts and times Store calls, SQL statements and pool checkouts, per bucket."""

    def __init__(self) -> None:
        self.bucket = "warmup"
        self.time_us: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []

    def add(self, key: str, t0: int) -> None:
        self.time_us[(self.bucket, key)] += _us(t0)
        self.calls[(self.bucket, key)] += 1

    def wrap(self, owner: Any, name: str, key: str) -> None:
        """Time `await owner.name(...)` (an instance attribute shadowing the method)."""
        original = getattr(owner, name)

        async def timed_call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return await original(*args, **kwargs)
            finally:
                self.add(key, t0)

        setattr(owner, name, timed_call)
        self._undo.append(lambda: delattr(owner, name))

    def install(self, store: Any) -> None:
        import psycopg

        from treadle.stores.sql import queries

        for name in ("create", "append", "get", "events", "signals", "claim", "renew",
                     "release", "list"):
            self.wrap(store, name, f"store.{name}")
        pool = store._pool
        self.wrap(pool, "getconn", "pool.getconn")
        self.wrap(pool, "putconn", "pool.putconn")
        names = {text: name for name, text in queries("postgres").items()}
        execute = psycopg.AsyncCursor.execute
        probe = self

        async def timed_execute(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return await execute(cur, query, *args, **kwargs)
            finally:
                probe.add(f"sql.{names.get(query, 'other') if isinstance(query, str) else 'other'}",
                          t0)

        psycopg.AsyncCursor.execute = timed_execute  # type: ignore[method-assign]

        def restore() -> None:
            psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]

        self._undo.append(restore)

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def per_step(self, key: str, n: int, runs: int) -> tuple[float, float]:
        """(calls, µs) per step of `key`: (full run - zero run) / n, averaged over runs."""
        calls = (self.calls[("full", key)] - self.calls[("zero", key)]) / runs / n
        spent = (self.time_us[("full", key)] - self.time_us[("zero", key)]) / runs / n
        return calls, spent

    def keys(self) -> list[str]:
        return sorted({key for bucket, key in self.calls if bucket == "full"})


async def _wire(engine: treadle.Engine, wf: treadle.WorkflowDef, arg: int,
                runs: int) -> tuple[int, int, int]:
    """Round trips (ReadyForQuery), bytes sent and bytes received for `runs` executions,
    from libpq's protocol trace of every pooled connection used meanwhile."""
    from psycopg.pq import Trace

    pool = engine.store._pool  # type: ignore[attr-defined]
    traced: dict[int, Any] = {}
    getconn = pool.getconn
    with tempfile.TemporaryDirectory(prefix="treadle-bench-") as folder:
        path = Path(folder, "trace.txt")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)

        async def traced_getconn(*args: Any, **kwargs: Any) -> Any:
            conn = await getconn(*args, **kwargs)
            if id(conn) not in traced:
                conn.pgconn.trace(fd)
                conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
                traced[id(conn)] = conn
            return conn

        pool.getconn = traced_getconn
        try:
            for _ in range(runs):
                await timed(engine, wf, arg)
        finally:
            del pool.getconn
            for conn in traced.values():
                conn.pgconn.untrace()
            os.close(fd)
        trips = sent = received = 0
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) < 3 or not parts[1].isdigit():
                continue
            size = int(parts[1]) + 1  # the length field excludes the type byte
            if parts[0] == "F":
                sent += size
            elif parts[0] == "B":
                received += size
                trips += parts[2] == "ReadyForQuery"
    return trips, sent, received


async def _append_parts(url: str, schema: str, execution_id: str,
                        template: list[treadle.Event], first_seq: int,
                        reps: int) -> dict[str, list[float]]:
    """The store's `append` with a real step's 4-event batch, taken apart."""
    import psycopg

    from treadle.stores import open_store
    from treadle.stores.postgres import _encode_batch
    from treadle.stores.sql import queries

    statement = queries("postgres")["append"]
    conninfo = base_conninfo(url)
    opts = f"-c search_path={schema}"
    fast = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, options=opts)
    lazy = await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, options=f"{opts} -c synchronous_commit=off")
    await fast.execute(FLOOR_TABLE)
    await lazy.execute("SELECT 1")
    store = open_store(url)
    await store.open()
    seq = first_seq
    parts: dict[str, list[float]] = defaultdict(list)

    def batch() -> tuple[list[treadle.Event], dict[str, Any]]:
        now = time.time()
        events = [treadle.Event(execution_id, seq + 1 + i, ev.type, ev.data, now)
                  for i, ev in enumerate(template)]
        t0 = time.perf_counter_ns()
        params: dict[str, Any] = {"id": execution_id, "expected": seq, "owner": None}
        params["types"], params["events"] = _encode_batch(events)
        params.update(last=events[-1].seq, at=now)
        parts["params_us"].append(_us(t0))
        return events, params

    async def run(conn: Any, params: dict[str, Any]) -> None:
        nonlocal seq
        cur = await conn.execute(statement, params, prepare=True)
        assert cur.rowcount == 1, "append did not land"
        seq = params["last"]

    async def via_store(i: int) -> None:
        nonlocal seq
        events, _ = batch()
        await store.append(execution_id, events, expected_seq=seq, owner=None)
        seq = events[-1].seq

    async def autocommit(i: int) -> None:
        await run(fast, batch()[1])

    async def nosync(i: int) -> None:
        await run(lazy, batch()[1])

    async def in_transaction(i: int) -> None:
        params = batch()[1]
        t0 = time.perf_counter_ns()
        await fast.execute("BEGIN")
        t1 = time.perf_counter_ns()
        await run(fast, params)
        t2 = time.perf_counter_ns()
        await fast.execute("COMMIT")
        parts["begin_us"].append((t1 - t0) / 1000)
        parts["stmt_in_tx_us"].append((t2 - t1) / 1000)
        parts["commit_us"].append(_us(t2))

    try:
        samples = await _interleaved({
            "store_append_us": via_store, "stmt_autocommit_us": autocommit,
            "stmt_nosync_us": nosync, "tx_total_us": in_transaction,
            "rtt_us": lambda i: fast.execute("SELECT 1"),
            "floor_insert_us": lambda i: fast.execute(INSERT, (execution_id, PAYLOAD)),
            "floor_nosync_us": lambda i: lazy.execute(INSERT, (execution_id, PAYLOAD)),
        }, warmup=50, reps=reps)
    finally:
        await fast.close()
        await lazy.close()
        await store.close()
    warm = 50 * 4  # batch() ran in the warm-up rounds too: drop those
    samples["params_us"] = parts["params_us"][warm:]
    for name in ("begin_us", "stmt_in_tx_us", "commit_us"):
        samples[name] = parts[name][50:]
    return samples


PART_NOTES = {
    "rtt_us": "SELECT 1 on the same connection: the round-trip floor",
    "store_append_us": "PostgresStore.append(4 events): pool checkout + parameters + statement",
    "stmt_autocommit_us": "the append statement alone, prepared, autocommit (as the store runs it)",
    "stmt_nosync_us": "the same with synchronous_commit=off: statement without the flush wait",
    "tx_total_us": "BEGIN; append; COMMIT as three round trips (sum)",
    "begin_us": "BEGIN round trip",
    "stmt_in_tx_us": "the append statement inside a transaction: server work, no commit",
    "commit_us": "COMMIT round trip: the WAL flush of the step",
    "floor_insert_us": "a bare ~350 B INSERT + commit on the same connection (pg_commit)",
    "floor_nosync_us": "the bare INSERT with synchronous_commit=off",
    "params_us": "Python: _encode_batch (the batch as one JSON array, types joined) + the "
                 "parameter dict",
}


class _Floor:
    """A bare INSERT + commit on a connection of its own: the commit floor, on demand."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url: str, schema: str) -> _Floor:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(
            base_conninfo(url), autocommit=True, options=f"-c search_path={schema}")
        await conn.execute(FLOOR_TABLE)
        floor = cls(conn)
        for _ in range(50):
            await floor.insert()
        return floor

    async def insert(self) -> float:
        t0 = time.perf_counter_ns()
        await self.conn.execute(INSERT, ("floor", PAYLOAD))
        return _us(t0)

    async def close(self) -> None:
        await self.conn.close()


class _Cpu:
    """CPU seconds of this process and of the engine's PostgreSQL backends, per bucket."""

    def __init__(self) -> None:
        self.client: dict[str, float] = defaultdict(float)
        self.server: dict[str, float] = defaultdict(float)
        self.pids: list[int] = []

    async def find_backends(self, url: str, name: str, exclude: int) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(base_conninfo(url)) as conn:
            cur = await conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> %s "
                "AND pid <> pg_backend_pid()", (name, exclude))
            self.pids = [pid for (pid,) in await cur.fetchall()]

    async def measure(self, bucket: str, run: Awaitable[float]) -> float:
        server0 = cpu_snapshot(self.pids)
        client0 = time.process_time()
        elapsed = await run
        self.client[bucket] += time.process_time() - client0
        server1 = cpu_snapshot(self.pids)
        self.server[bucket] += sum(cpu - server0.get(pid, cpu) for pid, cpu in server1.items())
        return elapsed

    def per_step_us(self, n: int, runs: int) -> tuple[float, float]:
        """(client, server) µs of CPU per step: (full runs - zero runs) / runs / n."""
        return tuple(  # type: ignore[return-value]
            (cpu["full"] - cpu["zero"]) / runs / n * 1e6 for cpu in (self.client, self.server))


async def _step_profile(url: str, plan: Plan, parts_too: bool = True) -> list[Result]:
    n = 10
    reps = plan.reps(300, 30)
    with scratch_schema(url) as (scratch, schema):
        app = f"treadle_bench_{schema}"
        scratch = with_options(scratch, application_name=app)
        wfs = define_workflows()
        engine = treadle.Engine(scratch, registry=wfs.registry)
        await engine.open()
        probe = Probe()
        floor: _Floor | None = None
        try:
            for _ in range(plan.reps(30, 5)):
                await timed(engine, wfs.seq, 0)
                await timed(engine, wfs.seq, n)
            floor = await _Floor.open(scratch, schema)
            cpu, floor_cpu = _Cpu(), _Cpu()
            await cpu.find_backends(scratch, app, floor.conn.info.backend_pid)
            floor_cpu.pids = [floor.conn.info.backend_pid]
            gc.collect()
            # Pairs alternate between a clean engine (the per-step cost, CPU and ratio) and
            # one with the probe installed (where the time goes; the probe costs a little).
            times: dict[str, list[float]] = defaultdict(list)
            commits: list[float] = []
            for i in range(2 * reps):
                probed = i % 2 == 1
                if probed:
                    probe.install(engine.store)
                for bucket in (("zero", "full") if i % 4 < 2 else ("full", "zero")):
                    probe.bucket = bucket
                    key = f"{bucket}_probed" if probed else bucket
                    times[key].append(await cpu.measure(
                        key, timed(engine, wfs.seq, 0 if bucket == "zero" else n)))
                probe.uninstall()
                probe.bucket = "floor"
                commits += [await floor_cpu.measure("full", floor.insert())  # same minute,
                            for _ in range(n)]  # same noise
            wire_runs = plan.reps(50, 10)
            wire0 = await _wire(engine, wfs.seq, 0, wire_runs)
            wire_n = await _wire(engine, wfs.seq, n, wire_runs)
            handle = await engine.start(wfs.seq, 1)
            await handle.result()
            template = [ev for ev in await engine.events(handle.id)
                        if ev.type.startswith("step.")]
            parked = await engine.start(wfs.seq, 0, queue="bench-parked")  # owner NULL
        finally:
            probe.uninstall()
            if floor is not None:
                await floor.close()
            await engine.close()
        parts = (await _append_parts(scratch, schema, parked.id, template, 1,
                                     plan.reps(1000, 100)) if parts_too else {})

    zero, full = times["zero"], times["full"]
    per_step = [(f - z) / n for z, f in zip(zero, full, strict=True)]
    per_step_probed = [(f - z) / n for z, f in zip(times["zero_probed"], times["full_probed"],
                                                    strict=True)]
    mean_step = (statistics.fmean(times["full_probed"])
                 - statistics.fmean(times["zero_probed"])) / n
    label = "postgres"
    rows = [
        result("pg_step_profile", label, "per_step_us", "us", Summary.of(per_step),
               target=STEP_TARGET, note="(10-step - 0-step workflow) / 10, plain engine"),
        result("pg_step_profile", label, "per_step_probed_us", "us", Summary.of(per_step_probed),
               note="the same with the probe installed (pairs alternate with the plain ones)"),
    ]
    store_time = 0.0
    for key in probe.keys():
        calls, spent = probe.per_step(key, n, reps)
        if key.startswith("store."):
            store_time += spent
        if abs(calls) < 0.05:  # not per step: a difference of noise between the runs
            continue
        rows.append(Result("pg_step_profile", label, f"{key}.calls", "/step", calls,
                           note=f"{key} calls per step (full - zero run, / {n})"))
        rows.append(Result("pg_step_profile", label, f"{key}.us", "us/step", spent,
                           note=f"mean time in {key} per step, from the engine's side"))
    client_cpu, server_cpu = cpu.per_step_us(n, reps)
    floor_client, floor_server = (floor_cpu.client["full"] / len(commits) * 1e6,
                                  floor_cpu.server["full"] / len(commits) * 1e6)
    rows += [
        Result("pg_step_profile", label, "floor_client_cpu_us", "us", floor_client,
               note="CPU of this process per floor INSERT + commit (async psycopg)"),
        Result("pg_step_profile", label, "floor_server_cpu_us", "us", floor_server,
               note="CPU of the floor connection's backend per INSERT + commit"),
        Result("pg_step_profile", label, "client_cpu_us", "us/step", client_cpu,
               note="CPU of the engine's process per step (process_time, full - zero runs)"),
        Result("pg_step_profile", label, "server_cpu_us", "us/step", server_cpu,
               note=f"CPU of the engine's PostgreSQL backends per step (/proc, "
                    f"{len(cpu.pids)} backends; clock-tick resolution, summed over runs)"),
    ]
    sql_time = sum(probe.per_step(k, n, reps)[1] for k in probe.keys() if k.startswith("sql."))
    pool_time = sum(probe.per_step(k, n, reps)[1] for k in probe.keys() if k.startswith("pool."))
    rows += [
        Result("pg_step_profile", label, "mean_step_us", "us/step", mean_step,
               note="mean per-step cost of the probed runs: what the parts below add up to"),
        Result("pg_step_profile", label, "engine_python_us", "us/step", mean_step - store_time,
               note="mean_step_us - time inside Store calls: the engine's own Python"),
        Result("pg_step_profile", label, "store_python_us", "us/step",
               store_time - sql_time - pool_time,
               note="time in Store calls outside statements and pool: parameters, JSON"),
        Result("pg_step_profile", label, "round_trips", "/step", (wire_n[0] - wire0[0])
               / wire_runs / n, note="ReadyForQuery messages per step (libpq trace)"),
        Result("pg_step_profile", label, "bytes_sent", "B/step", (wire_n[1] - wire0[1])
               / wire_runs / n, note="protocol bytes client -> server per step"),
        Result("pg_step_profile", label, "bytes_received", "B/step", (wire_n[2] - wire0[2])
               / wire_runs / n, note="protocol bytes server -> client per step"),
    ]
    for name, values in parts.items():
        rows.append(result("pg_step_profile", label, f"append.{name}", "us",
                           Summary.of(values), note=PART_NOTES.get(name, "")))
    commit = statistics.median(commits)
    rows += [
        result("pg_step_profile", label, "floor_commit_us", "us", Summary.of(commits),
               note="a ~350 B INSERT + commit on its own connection, 10 after each pair of "
                    "runs (the pg_commit floor, taken at the same moments as the steps)"),
        Result("pg_step_profile", label, "step_over_commit", "x",
               statistics.median(per_step) / commit, target=RATIO_TARGET,
               note="median per step / median floor_commit_us (the issue: <= 1.3)"),
    ]
    if parts:
        rows.append(Result(
            "pg_step_profile", label, "statement_over_commit", "x",
            statistics.median(parts["stmt_autocommit_us"])
            / statistics.median(parts["floor_insert_us"]),
            note="the append statement / a bare INSERT + commit, measured interleaved"))
    return rows


def bench_pg_step_profile(store: StoreSpec, plan: Plan) -> list[Result]:
    """Where a durable step's time goes on PostgreSQL (calls, statements, round trips)."""
    if not is_postgres(store.url):
        return []
    return asyncio.run(_step_profile(store.url, plan))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="bench/pg_profile.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="postgres")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["commit", "profile"])
    parser.add_argument("--no-parts", action="store_true",
                        help="skip replaying the append statement in parts (only the engine)")
    args = parser.parse_args(argv)
    (spec,) = parse_stores(args.store)[:1]
    plan = Plan(quick=args.quick)
    rows: list[Result] = []
    if args.only in (None, "commit"):
        rows += bench_pg_commit(spec, plan)
    if args.only in (None, "profile"):
        rows += asyncio.run(_step_profile(spec.url, plan, parts_too=not args.no_parts))
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
