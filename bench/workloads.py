"""The benchmark workloads: what is timed, and how.

Every timed unit is `await engine.start(wf, ...)` then `await handle.result()` inside one
asyncio loop per benchmark, measured with `time.perf_counter_ns`, after a warm-up. Each
benchmark gets a fresh `treadle.Registry()`, a fresh engine and, for SQLite, a fresh database
file in a temporary directory. Per-step costs subtract a zero-step workflow measured the same
way, paired repetition by repetition (alternating which of the two runs first).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import Result, Summary, Target, result

import treadle

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"

# -- targets and peers (the text) ---------------------------------------------------------

STEP_TARGETS = {"memory": Target(20.0), "sqlite": Target(60.0)}
FANOUT_TARGETS = {"memory": Target(5.0)}
IMPORT_RSS_TARGET = Target(5.0)
STEP_PEERS = {
    "memory": "LangGraph 290 (no ckpt) / 1,000 (mem ckpt)",
    "sqlite": "LangGraph 1,700 (SQLite ckpt)",
    "sqlite:full": "LangGraph 1,700 (SQLite ckpt)",
}
FANOUT_PEER = "LangGraph 76 ms"
IMPORT_PEER = "LangGraph +65 MB, DBOS +54 MB"
COMMIT_PEER = {"sqlite": "~20 us (reference)"}


# -- stores ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoreSpec:
    """A store to benchmark: `url` may hold `{dir}`, a fresh temporary directory."""

    label: str
    url: str
    sqlite_sync: str | None = None  # NORMAL / FULL for SQLite stores

    def make_url(self, folder: str) -> str:
        return self.url.replace("{dir}", folder)


def parse_stores(text: str) -> list[StoreSpec]:
    """`memory,sqlite` → specs. `sqlite` is both synchronous=NORMAL and FULL; `sqlite:normal`
    and `sqlite:full` pick one; `postgres`, `redis` and any store URL are taken as given."""
    specs: list[StoreSpec] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        low = item.lower()
        if low == "memory":
            specs.append(StoreSpec("memory", "memory://"))
        elif low in ("sqlite", "sqlite:normal"):
            specs.append(StoreSpec("sqlite", "sqlite:///{dir}/bench.db", "NORMAL"))
            if low == "sqlite":
                specs.append(_sqlite_full())
        elif low == "sqlite:full":
            specs.append(_sqlite_full())
        elif low in ("postgres", "postgresql"):
            specs.append(StoreSpec("postgres", POSTGRES_URL))
        elif low == "redis":
            specs.append(StoreSpec("redis", REDIS_URL))
        elif "://" in item:
            specs.append(StoreSpec(item.split("://", 1)[0].lower(), item))
        else:
            raise ValueError(
                f"unknown store {item!r}: use memory, sqlite, sqlite:normal, sqlite:full, "
                "postgres, redis or a store URL"
            )
    labels = [s.label for s in specs]
    return [s for i, s in enumerate(specs) if s.label not in labels[:i]]


def _sqlite_full() -> StoreSpec:
    return StoreSpec("sqlite:full", "sqlite:///{dir}/bench.db?synchronous=full", "FULL")


# -- repetitions ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    quick: bool

    def reps(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# -- the workflows --------------------------------------------------------------------------------

@treadle.step(name="bench.noop")
async def noop(i: int) -> int:
    return i


@treadle.step(name="bench.noop_sync")
def noop_sync(i: int) -> int:
    return i


@dataclass(frozen=True)
class Workflows:
    registry: treadle.Registry
    seq: treadle.WorkflowDef  # n sequential async steps
    seq_sync: treadle.WorkflowDef  # n sequential def steps (thread pool)
    fanout: treadle.WorkflowDef  # n parallel async steps, one ctx.gather


def define_workflows() -> Workflows:
    """The benchmark workflows in a fresh registry (no clash with the global one)."""
    registry = treadle.Registry()

    @treadle.workflow(name="bench.seq", registry=registry)
    async def seq(ctx: treadle.Context, n: int) -> int:
        for i in range(n):
            await noop(i)
        return n

    @treadle.workflow(name="bench.seq_sync", registry=registry)
    async def seq_sync(ctx: treadle.Context, n: int) -> int:
        for i in range(n):
            await noop_sync(i)
        return n

    @treadle.workflow(name="bench.fanout", registry=registry)
    async def fanout(ctx: treadle.Context, n: int) -> int:
        if n == 0:
            return 0
        done = await ctx.gather(*(noop(i) for i in range(n)))
        return len(done)

    return Workflows(registry, seq, seq_sync, fanout)


@contextlib.contextmanager
def fresh_url(store: StoreSpec) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="treadle-bench-") as folder:
        yield store.make_url(folder)


@contextlib.asynccontextmanager
async def fresh_engine(store: StoreSpec) -> AsyncIterator[tuple[treadle.Engine, Workflows]]:
    wfs = define_workflows()
    with fresh_url(store) as url:
        engine = treadle.Engine(url, registry=wfs.registry)
        await engine.open()
        try:
            yield engine, wfs
        finally:
            await engine.close()


async def timed(engine: treadle.Engine, wf: treadle.WorkflowDef, *args: Any) -> float:
    """One execution, start to result, in µs."""
    t0 = time.perf_counter_ns()
    handle = await engine.start(wf, *args)
    await handle.result()
    return (time.perf_counter_ns() - t0) / 1000


async def paired(
    engine: treadle.Engine, wf: treadle.WorkflowDef, n: int, warmup: int, reps: int
) -> tuple[list[float], list[float]]:
    """Times of `wf(0)` and `wf(n)` in µs, interleaved repetition by repetition."""
    for _ in range(warmup):
        await timed(engine, wf, 0)
        await timed(engine, wf, n)
    gc.collect()
    zero: list[float] = []
    full: list[float] = []
    for i in range(reps):
        if i % 2:
            full.append(await timed(engine, wf, n))
            zero.append(await timed(engine, wf, 0))
        else:
            zero.append(await timed(engine, wf, 0))
            full.append(await timed(engine, wf, n))
    return zero, full


def per_item(zero: Sequence[float], full: Sequence[float], n: int) -> list[float]:
    return [(f - z) / n for z, f in zip(zero, full, strict=True)]


# -- benchmarks over a store ----------------------------------------------------------------------

def bench_steps(
    name: str, n: int, kind: str, warmup: int, reps: int, *, show_zero: bool,
) -> Callable[[StoreSpec, Plan], list[Result]]:
    """A workflow of `n` trivial sequential steps (`kind` async or sync) → µs per step."""

    async def main(store: StoreSpec, plan: Plan) -> list[Result]:
        async with fresh_engine(store) as (engine, wfs):
            wf = wfs.seq if kind == "async" else wfs.seq_sync
            zero, full = await paired(engine, wf, n, plan.reps(warmup, 3),
                                      plan.reps(reps, max(5, reps // 10)))
        label = store.label
        step_note = f"(workflow of {n} - workflow of 0) / {n}"
        rows = []
        if show_zero:
            rows.append(result(name, label, "workflow_0_us", "us", Summary.of(zero),
                               note="zero-step workflow, start -> result"))
        rows += [
            result(name, label, "workflow_us", "us", Summary.of(full),
                   note=f"{n} {kind} steps, start -> result (raw)"),
            result(name, label, "raw_per_step_us", "us",
                   Summary.of([f / n for f in full]), note="raw workflow time / steps"),
            result(name, label, "per_step_us", "us", Summary.of(per_item(zero, full, n)),
                   target=STEP_TARGETS.get(label), peer=STEP_PEERS.get(label, ""),
                   note=step_note),
        ]
        return rows

    return lambda store, plan: asyncio.run(main(store, plan))


async def _throughput(store: StoreSpec, plan: Plan) -> list[Result]:
    count, steps = 200, 10
    reps = plan.reps(5, 1)
    seq_rates: list[float] = []
    conc_rates: list[float] = []
    async with fresh_engine(store) as (engine, wfs):
        for _ in range(20):
            await timed(engine, wfs.seq, steps)
        gc.collect()
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            for _ in range(count):
                handle = await engine.start(wfs.seq, steps)
                await handle.result()
            seq_rates.append(count / ((time.perf_counter_ns() - t0) / 1e9))
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            handles = [await engine.start(wfs.seq, steps) for _ in range(count)]
            await asyncio.gather(*(h.result() for h in handles))
            conc_rates.append(count / ((time.perf_counter_ns() - t0) / 1e9))
    # for rates the bad tail is the low end: the p95 column holds the 5th percentile
    return [
        result("throughput", store.label, "workflows_per_s", "wf/s",
               Summary.of(seq_rates, higher_is_better=True),
               note=f"{count} workflows of {steps} steps back to back, in batches"),
        result("throughput", store.label, "concurrent_workflows_per_s", "wf/s",
               Summary.of(conc_rates, higher_is_better=True),
               note=f"{count} workflows of {steps} steps started together, then gathered"),
    ]


def bench_throughput(store: StoreSpec, plan: Plan) -> list[Result]:
    return asyncio.run(_throughput(store, plan))


async def _fanout(store: StoreSpec, plan: Plan) -> list[Result]:
    n = 100
    async with fresh_engine(store) as (engine, wfs):
        zero, full = await paired(engine, wfs.fanout, n, plan.reps(10, 2), plan.reps(100, 10))
    label = store.label
    return [
        result("fanout100", label, "fanout_ms", "ms", Summary.of([f / 1000 for f in full]),
               target=FANOUT_TARGETS.get(label), peer=FANOUT_PEER,
               note=f"one ctx.gather of {n} trivial async steps, start -> result"),
        result("fanout100", label, "per_branch_us", "us", Summary.of(per_item(zero, full, n)),
               note=f"(fan-out of {n} - workflow of 0) / {n}"),
    ]


def bench_fanout(store: StoreSpec, plan: Plan) -> list[Result]:
    return asyncio.run(_fanout(store, plan))


def bench_engine_run(store: StoreSpec, plan: Plan) -> list[Result]:
    """The synchronous `engine.run(...)` wrapper: a new event loop per call."""
    n = 10
    wfs = define_workflows()
    zero: list[float] = []
    full: list[float] = []
    with fresh_url(store) as url:
        engine = treadle.Engine(url, registry=wfs.registry)
        try:
            for _ in range(plan.reps(5, 2)):
                engine.run(wfs.seq, 0)
                engine.run(wfs.seq, n)
            gc.collect()
            for _ in range(plan.reps(50, 5)):
                t0 = time.perf_counter_ns()
                engine.run(wfs.seq, 0)
                t1 = time.perf_counter_ns()
                engine.run(wfs.seq, n)
                t2 = time.perf_counter_ns()
                zero.append((t1 - t0) / 1000)
                full.append((t2 - t1) / 1000)
        finally:
            asyncio.run(engine.close())
    label = store.label
    return [
        result("engine_run", label, "workflow_0_us", "us", Summary.of(zero),
               note="engine.run(wf, 0): asyncio.run + start + result + detach"),
        result("engine_run", label, "workflow_us", "us", Summary.of(full),
               note=f"engine.run(wf, {n}) with {n} async steps"),
        result("engine_run", label, "per_step_us", "us", Summary.of(per_item(zero, full, n)),
               note=f"(run of {n} - run of 0) / {n}"),
    ]


def bench_sqlite_commit(store: StoreSpec, plan: Plan) -> list[Result]:
    """The floor under a durable step: raw sqlite3, one small INSERT + commit (WAL)."""
    if store.sqlite_sync is None:
        return []
    reps = plan.reps(5000, 500)
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="treadle-bench-") as folder:
        conn = sqlite3.connect(os.path.join(folder, "floor.db"), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={store.sqlite_sync}")
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, execution_id TEXT, data TEXT)")
            # about the size of one step's batch of events (input, output, completed)
            payload = json.dumps([
                [3, "step.input_recorded",
                 {"pos": 0, "step_name": "bench.noop", "input": {"args": [0], "kwargs": {}}},
                 time.time()],
                [4, "step.output_recorded", {"pos": 0, "step_name": "bench.noop", "output": 0},
                 time.time()],
                [5, "step.completed", {"pos": 0, "step_name": "bench.noop", "duration_ms": 0.01,
                                       "attempt": 1, "status": "completed"}, time.time()],
            ])
            for i in range(reps + 100):
                t0 = time.perf_counter_ns()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t (execution_id, data) VALUES (?, ?)", (str(i), payload))
                conn.execute("COMMIT")
                if i >= 100:  # the first 100 are the warm-up
                    samples.append((time.perf_counter_ns() - t0) / 1000)
        finally:
            conn.close()
    return [result("sqlite_commit", store.label, "commit_us", "us", Summary.of(samples),
                   peer=COMMIT_PEER.get(store.label, ""),
                   note=f"raw sqlite3: BEGIN IMMEDIATE; INSERT ~350 B; COMMIT "
                        f"(WAL, synchronous={store.sqlite_sync}); mean includes checkpoints")]


# -- benchmarks without a store -------------------------------------------------------------------

def bench_import(plan: Plan) -> list[Result]:
    """RSS and time added by `import treadle`, each in a fresh interpreter.

    Three cases: from a bare interpreter (what a user pays), `import asyncio` alone (what any
    asyncio library pays: asyncio pulls in ssl and OpenSSL), and treadle with asyncio already
    imported (treadle's own share).
    """
    script = str(Path(__file__).with_name("import_cost.py"))

    def measure(*options: str) -> list[dict[str, Any]]:
        runs = []
        for _ in range(plan.reps(7, 2)):
            out = subprocess.run([sys.executable, "-I", script, *options], capture_output=True,
                                 text=True, check=True, timeout=120)
            runs.append(json.loads(out.stdout))
        return runs

    def rss(runs: list[dict[str, Any]]) -> Summary:
        return Summary.of([(r["rss_after_kb"] - r["rss_before_kb"]) / 1024 for r in runs])

    def ms(runs: list[dict[str, Any]]) -> Summary:
        return Summary.of([r["import_ns"] / 1e6 for r in runs])

    bare = measure()
    alone = measure("--module", "asyncio")
    own = measure("--pre", "asyncio")
    third = sorted({m for r in bare for m in r["third_party"]})
    return [
        result("import", "-", "rss_mb", "MB", rss(bare), target=IMPORT_RSS_TARGET,
               peer=IMPORT_PEER, note="VmRSS after - before `import treadle`, bare interpreter"),
        result("import", "-", "time_ms", "ms", ms(bare),
               note="`import treadle` wall time, bare interpreter"),
        result("import", "-", "asyncio_rss_mb", "MB", rss(alone),
               note="`import asyncio` alone (it imports ssl): paid by any asyncio library"),
        result("import", "-", "own_rss_mb", "MB", rss(own),
               note="`import treadle` with asyncio already imported: treadle's own share"),
        result("import", "-", "own_time_ms", "ms", ms(own),
               note="`import treadle` wall time with asyncio already imported"),
        result("import", "-", "modules", "count", Summary.of([r["modules"] for r in bare]),
               note="modules added to sys.modules by `import treadle` (bare)"),
        Result("import", "-", "third_party_modules", "count", float(len(third)),
               target=Target(0), note="non-stdlib packages pulled in by `import treadle`: "
               + (", ".join(third) or "none"), extra={"third_party": third}),
    ]


def bench_python_floor(plan: Plan) -> list[Result]:
    """What plain Python/asyncio costs for the same work, to read the per-step figures by."""
    reps = plan.reps(20000, 2000)

    async def main() -> list[Result]:
        loop = asyncio.get_running_loop()
        fn = noop.fn

        async def awaits() -> float:
            t0 = time.perf_counter_ns()
            for i in range(reps):
                await fn(i)
            return (time.perf_counter_ns() - t0) / 1000 / reps

        async def tasks() -> float:
            t0 = time.perf_counter_ns()
            for i in range(reps):
                await loop.create_task(fn(i))
            return (time.perf_counter_ns() - t0) / 1000 / reps

        hop_reps = max(200, reps // 10)
        sync_fn = noop_sync.fn

        async def hops() -> float:
            t0 = time.perf_counter_ns()
            for i in range(hop_reps):
                await loop.run_in_executor(None, sync_fn, i)
            return (time.perf_counter_ns() - t0) / 1000 / hop_reps

        out = []
        for label, probe, note in (
            ("await_us", awaits, "`await step_fn(i)` of a plain coroutine"),
            ("task_us", tasks, "`await loop.create_task(step_fn(i))`"),
            ("executor_hop_us", hops, "`await loop.run_in_executor(None, f, i)`: "
             "the thread-pool hop under every def step"),
        ):
            await probe()  # warm-up (and starts the default executor's threads)
            samples = [await probe() for _ in range(plan.reps(7, 3))]
            out.append(result("python_floor", "-", label, "us", Summary.of(samples), note=note))
        return out

    return asyncio.run(main())


__all__ = [
    "Plan",
    "StoreSpec",
    "bench_engine_run",
    "bench_fanout",
    "bench_import",
    "bench_python_floor",
    "bench_sqlite_commit",
    "bench_steps",
    "bench_throughput",
    "define_workflows",
    "fresh_engine",
    "parse_stores",
    "timed",
]
