"""Worker benchmarks: real `treadle worker` processes (the CLI) sharing one store.

Each worker is `python -m treadle.cli worker --store URL --queue wb --concurrency C
--import bench/worker_flows.py`; this process is the producer (it enqueues with
`Engine.start(..., queue="wb")`) and watches the store with plain SQL. PostgreSQL runs get a
fresh schema, SQLite runs a fresh file shared by the workers (WAL); other stores, and
`sqlite:full` (the same as `sqlite` plus an fsync per commit), are skipped.

- `workers`: 400 workflows of 10 steps enqueued at once, worked by 1, 2 and 4 workers of
  concurrency 16 (and by 1 worker of concurrency 64) → workflows/s and steps/s from the first
  enqueue to the last completion, with the CPU the workers, PostgreSQL's backends and the
  whole machine used meanwhile (from /proc).
- `inflight1000`: 1,000 workflows that each run a step then wait durably (the signal `go`, or
  a timer), across 2 workers: time until all 1,000 are in flight (suspended, leased), CPU
  while they wait, time until all completed once released, errors, peak connections.
- `takeover`: worker A is SIGKILLed while it runs the second step of 16 executions; worker B
  (already up) resumes them once A's lease lapses. From the kill to the first journal event
  each execution gets afterwards, for leases of 2 s and 5 s, against lease + 1 s.

    .venv/bin/python bench/run.py --only workers,inflight1000,takeover --stores postgres
    .venv/bin/python bench/worker_benches.py --only takeover --stores postgres,sqlite:normal

A worker looks for work when told (wake-ups pushed by the store, where it can: PostgreSQL
LISTEN/NOTIFY) or every 0.5 s (the CLI's `--poll-interval`) otherwise; which of the two the
code under test does shows in every figure here (the ramp, the takeover's `after_expiry_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import worker_flows
from common import REPO, Result, Summary, Target, format_table, result
from pgkit import (
    base_conninfo,
    cpu_delta,
    cpu_snapshot,
    is_postgres,
    machine_busy,
    process_cpu,
    processes_named,
    scratch_schema,
    with_options,
)
from workloads import Plan, StoreSpec, parse_stores

import treadle

FLOWS = Path(worker_flows.__file__)
QUEUE = "wb"
POOL_MAX = 10  # the PostgreSQL store's default pool_max, per process
PROBLEM_PREFIXES = ("WARNING", "ERROR", "CRITICAL", "Traceback")


# -- stores, watched with plain SQL ---------------------------------------------------------------

class Db:
    """The benchmark's own connection to the store's tables (PostgreSQL or SQLite)."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.url = url
        self.postgres = is_postgres(url)
        self.conn: Any
        if self.postgres:
            import psycopg

            self.conn = psycopg.connect(base_conninfo(url), autocommit=True,
                                        options=f"-c search_path={schema}",
                                        application_name="wbprobe")
        else:
            self.conn = sqlite3.connect(url.split("sqlite:///", 1)[1].split("?", 1)[0],
                                        timeout=30, isolation_level=None)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.postgres:
            sql = sql.replace("%s", "?")
        return list(self.conn.execute(sql, params).fetchall())

    def statuses(self, workflow: str, since: float) -> dict[str, int]:
        return {status: int(count) for status, count in self.rows(
            "SELECT status, count(*) FROM executions WHERE workflow = %s AND created_at >= %s "
            "GROUP BY status", (workflow, since))}

    def connections(self, tag: str) -> tuple[int, int]:
        """(connections whose application_name starts with `tag`, all client connections)."""
        if not self.postgres:
            return 0, 0
        ((ours, total),) = self.rows(
            "SELECT count(*) FILTER (WHERE application_name LIKE %s), count(*) "
            "FROM pg_stat_activity WHERE backend_type = 'client backend'", (f"{tag}%",))
        return int(ours), int(total)

    def backends(self, tag: str) -> list[int]:
        if not self.postgres:
            return []
        return [int(pid) for (pid,) in self.rows(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s", (f"{tag}%",))]

    def close(self) -> None:
        self.conn.close()


@dataclass
class Fresh:
    url: str  # the store URL (PostgreSQL: on a fresh schema)
    schema: str | None
    folder: Path  # a temporary directory for logs, effects and gates
    tag: str  # application_name prefix of this run's processes


@contextlib.contextmanager
def fresh_store(store: StoreSpec, name: str) -> Iterator[Fresh | None]:
    """A fresh schema or SQLite file for one benchmark; None for stores workers cannot share."""
    tag = f"wb{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix=f"treadle-{name}-") as folder:
        if is_postgres(store.url):
            with scratch_schema(store.url, f"bench_{name}") as (url, schema):
                yield Fresh(url, schema, Path(folder), tag)
        elif store.url.startswith("sqlite:") and store.sqlite_sync != "FULL":
            yield Fresh(store.make_url(folder), None, Path(folder), tag)
        else:
            yield None


def app_url(fresh: Fresh, role: str) -> str:
    """The store URL for one process; on PostgreSQL its connections carry `tag-role`."""
    if not is_postgres(fresh.url):
        return fresh.url
    return with_options(fresh.url, application_name=f"{fresh.tag}-{role}")


# -- worker processes -----------------------------------------------------------------------------

def wait_until(check: Callable[[], bool], timeout: float, what: str,
               every: float = 0.02) -> float:
    """Poll `check` until true; the time.time() it became true. TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)
    return time.time()


class WorkerProcess:
    """One `treadle worker` subprocess; its stderr goes to a log file."""

    def __init__(self, fresh: Fresh, role: str, *, concurrency: int, lease: float = 30.0,
                 effects: Path | None = None) -> None:
        self.role = role
        self.log = fresh.folder / f"{role}.log"
        env = dict(os.environ)
        if effects is not None:
            env["WB_EFFECTS"] = str(effects)
        command = [sys.executable, "-m", "treadle.cli", "worker", "--store",
                   app_url(fresh, role), "--queue", QUEUE, "--concurrency", str(concurrency),
                   "--lease", str(lease), "--import", str(FLOWS)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        self.pid = self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def ready(self) -> bool:
        """The worker logs "on queues" once its store is open, just before its first claim."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.role} exited {self.proc.returncode}:\n"
                               f"{self.text()[-2000:]}")
        return " on queues " in self.text()

    def problems(self) -> list[str]:
        return [line for line in self.text().splitlines() if line.startswith(PROBLEM_PREFIXES)]

    def cpu(self) -> float:
        return process_cpu(self.pid) or 0.0

    def stop(self) -> int:
        """SIGTERM (drain), then its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def kill(self) -> float:
        """SIGKILL; the time.time() just before the signal was sent."""
        at = time.time()
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()
        return at


@contextlib.contextmanager
def workers(fresh: Fresh, count: int, **options: Any) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(fresh, f"w{i}", **options) for i in range(count)]
    try:
        for proc in started:
            wait_until(proc.ready, 60, f"worker {proc.role} ready")
        yield started
    finally:
        for proc in started:
            if proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGTERM)
        for proc in started:
            proc.stop()


# -- the producer ---------------------------------------------------------------------------------

async def _enqueue(url: str, wf: treadle.WorkflowDef, args: list[tuple[Any, ...]]
                   ) -> tuple[float, float, list[str]]:
    """Enqueue one execution per args tuple: (start, end) time.time() of the enqueueing, ids."""
    engine = treadle.Engine(url)
    await engine.open()
    try:
        t0 = time.time()
        ids = [(await engine.start(wf, *a, queue=QUEUE)).id for a in args]
        return t0, time.time(), ids
    finally:
        await engine.close()


def enqueue(url: str, wf: treadle.WorkflowDef, args: list[tuple[Any, ...]]
            ) -> tuple[float, float, list[str]]:
    return asyncio.run(_enqueue(url, wf, args))


def with_engine(url: str, work: Callable[[treadle.Engine], Any]) -> Any:
    """`await work(engine)` on a short-lived engine (read through the Store API)."""
    async def main() -> Any:
        async with treadle.Engine(url) as engine:
            return await work(engine)
    return asyncio.run(main())


def outputs(url: str, ids: list[str]) -> list[Any]:
    async def read(engine: treadle.Engine) -> list[Any]:
        return [(await engine.get(i)).output for i in ids]
    return list(with_engine(url, read))


def first_events_after(url: str, ids: list[str], at: float) -> dict[str, float]:
    """created_at of each execution's first journal event later than `at`."""
    async def read(engine: treadle.Engine) -> dict[str, float]:
        found = {}
        for ident in ids:
            later = [e.created_at for e in await engine.events(ident) if e.created_at > at]
            if later:
                found[ident] = min(later)
        return found
    return dict(with_engine(url, read))


def warm_up(fresh: Fresh, db: Db, procs: list[WorkerProcess], concurrency: int) -> None:
    """Run `wb.whoami` batches until every worker answered: all are claiming, and warm."""
    pids = {proc.pid for proc in procs}
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while not pids <= seen:
        if time.monotonic() > deadline:
            raise TimeoutError(f"warm-up: workers {pids - seen} never claimed anything")
        since = time.time()
        batch = concurrency * len(procs)
        _, _, ids = enqueue(app_url(fresh, "producer"), worker_flows.whoami, [()] * batch)
        wait_until(lambda since=since, batch=batch: db.statuses("wb.whoami", since).get(
            "completed", 0) == batch, 60, "warm-up batch")
        seen |= {int(output) for output in outputs(fresh.url, ids)}


@dataclass
class Cpu:
    """CPU seconds of the workers, this run's PostgreSQL backends, all of PostgreSQL and the
    machine over a window."""

    workers: dict[int, float]
    pg: dict[int, float]
    machine: tuple[float, float]
    wall: float

    @classmethod
    def now(cls, procs: list[WorkerProcess]) -> Cpu:
        return cls({p.pid: p.cpu() for p in procs}, cpu_snapshot(processes_named("postgres")),
                   machine_busy(), time.monotonic())

    def since(self, before: Cpu, db: Db, tag: str) -> dict[str, float]:
        wall = self.wall - before.wall
        ours = set(db.backends(tag))
        pg_ours = cpu_delta({k: v for k, v in before.pg.items() if k in ours},
                            {k: v for k, v in self.pg.items() if k in ours})
        busy = self.machine[0] - before.machine[0]
        total = self.machine[1] - before.machine[1]
        out = {
            "worker_cpu_pct": 100 * cpu_delta(before.workers, self.workers) / wall,
            "machine_cpu_pct": 100 * busy / total * (os.cpu_count() or 1) if total else 0.0,
        }
        if db.postgres:
            out["pg_backends_cpu_pct"] = 100 * pg_ours / wall
            out["pg_all_cpu_pct"] = 100 * cpu_delta(before.pg, self.pg) / wall
        return out


CPU_NOTES = {
    "worker_cpu_pct": "CPU of all worker processes / wall time (100 = one core)",
    "pg_backends_cpu_pct": "CPU of the PostgreSQL backends serving this run's connections",
    "pg_all_cpu_pct": "CPU of every postgres process (WAL writer, checkpointer and other "
                      "clients' backends included)",
    "machine_cpu_pct": "the whole machine's busy CPU (200 = both cores), other work included",
}


# -- a. throughput with 1, 2 and 4 workers --------------------------------------------------------

# (processes, concurrency each): the CLI's default concurrency 16 with 1, 2 and 4 workers, and
# one worker with the 64 slots of four (is the curve about processes or about concurrency?)
WORKER_SETUPS = ((1, 16), (2, 16), (4, 16), (1, 64))


def bench_workers(store: StoreSpec, plan: Plan) -> list[Result]:
    """Workflows/s and steps/s of 10-step workflows with 1, 2 and 4 worker processes."""
    count, steps = plan.reps(400, 100), 10
    rounds = plan.reps(3, 1)
    rows: list[Result] = []
    with fresh_store(store, "workers") as fresh:
        if fresh is None:
            return []
        enqueue(app_url(fresh, "producer"), worker_flows.whoami, [])  # creates the tables
        db = Db(fresh.url, fresh.schema)
        try:
            for k, concurrency in WORKER_SETUPS:
                rates: list[float] = []
                spans: list[float] = []
                cpu: dict[str, list[float]] = {}
                problems: list[str] = []
                failed = 0
                with workers(fresh, k, concurrency=concurrency) as procs:
                    warm_up(fresh, db, procs, concurrency)
                    for _ in range(rounds):
                        before = Cpu.now(procs)
                        t0, _, _ = enqueue(app_url(fresh, "producer"), worker_flows.ten,
                                           [(steps,)] * count)
                        wait_until(lambda t0=t0: sum(
                            n for s, n in db.statuses("wb.ten", t0).items()
                            if s in ("completed", "failed")) >= count, 300, "throughput round")
                        done = time.time()
                        after = Cpu.now(procs)
                        for key, value in after.since(before, db, fresh.tag).items():
                            cpu.setdefault(key, []).append(value)
                        failed += db.statuses("wb.ten", t0).get("failed", 0)
                        ((first, last),) = db.rows(
                            "SELECT min(started_at), max(finished_at) FROM executions "
                            "WHERE workflow = 'wb.ten' AND created_at >= %s", (t0,))
                        rates.append(count / (done - t0))
                        spans.append(count / (last - first))
                    problems += [f"{p.role}: {line}" for p in procs for line in p.problems()]
                    codes = [p.stop() for p in procs]
                label = f"{k}w" if concurrency == 16 else f"{k}wx{concurrency}"
                note = (f"{count} workflows of {steps} steps enqueued at once, {k} worker "
                        f"process(es) x concurrency {concurrency}: first enqueue -> last done")
                rate = Summary.of(rates, higher_is_better=True)
                rows += [
                    result("workers", store.label, f"workflows_per_s_{label}", "wf/s", rate,
                           note=note),
                    result("workers", store.label, f"steps_per_s_{label}", "steps/s",
                           Summary.of([r * steps for r in rates], higher_is_better=True),
                           note=f"workflows/s x {steps}"),
                    result("workers", store.label, f"busy_workflows_per_s_{label}", "wf/s",
                           Summary.of(spans, higher_is_better=True),
                           note="from the first claim to the last completion (without the "
                                "wait for the workers' first poll)"),
                ]
                rows += [result("workers", store.label, f"{key}_{label}", "%",
                                Summary.of(values), note=CPU_NOTES[key])
                         for key, values in cpu.items()]
                errors = failed + len(problems) + sum(code != 0 for code in codes)
                rows.append(Result("workers", store.label, f"errors_{label}", "count",
                                   float(errors), target=Target(0),
                                   note="failed executions + warnings/errors in worker logs "
                                        "+ workers not exiting 0 on SIGTERM",
                                   extra={"problems": problems[:20], "exit_codes": codes}))
        finally:
            db.close()
    return rows


# -- b. 1,000 executions in flight ----------------------------------------------------------------

def _inflight(store: StoreSpec, plan: Plan, mode: str, budget: float) -> list[Result]:
    count, concurrency, n_workers = plan.reps(1000, 200), 64, 2
    rows: list[Result] = []
    with fresh_store(store, "inflight") as fresh:
        if fresh is None:
            return []
        producer = app_url(fresh, "producer")
        enqueue(producer, worker_flows.whoami, [])
        db = Db(fresh.url, fresh.schema)
        peak = [0, 0]

        def sample(status: str, target: int) -> Callable[[], bool]:
            def check() -> bool:
                ours, total = db.connections(fresh.tag)
                peak[0], peak[1] = max(peak[0], ours), max(peak[1], total)
                counts = db.statuses("wb.wait", t0)
                return counts.get(status, 0) + counts.get("failed", 0) >= target
            return check

        try:
            with workers(fresh, n_workers, concurrency=concurrency) as procs:
                warm_up(fresh, db, procs, concurrency)
                fire_at = time.time() + budget
                t0, enqueued, ids = enqueue(producer, worker_flows.wait,
                                            [(mode, fire_at)] * count)
                inflight = wait_until(sample("suspended", count), 600, "all in flight")
                all_waiting = db.statuses("wb.wait", t0).get("suspended", 0) == count
                idle_before = Cpu.now(procs)
                time.sleep(2.0)  # a measuring window while all wait, not a synchronisation
                idle = Cpu.now(procs).since(idle_before, db, fresh.tag)
                released = time.time()
                if mode == "signal":
                    asyncio.run(_signal_all(producer, ids))
                    released = time.time()
                done = wait_until(sample("completed", count), 600, "all completed")
                counts = db.statuses("wb.wait", t0)
                problems = [f"{p.role}: {line}" for p in procs for line in p.problems()]
                codes = [p.stop() for p in procs]
        finally:
            db.close()
    errors = (counts.get("failed", 0) + (count - counts.get("completed", 0)) + len(problems)
              + sum(code != 0 for code in codes))
    what = "the signal `go`" if mode == "signal" else "a durable timer"
    if mode == "signal":
        complete = done - released
        complete_note = "all signals sent -> all completed"
        complete_extra = {"sending_signals_s": released - inflight - 2.0}
    else:
        complete = max(0.0, done - max(fire_at, inflight))
        complete_note = ("the timers' fire time -> all completed (from all-in-flight if that "
                         "came later)")
        complete_extra = {"fire_at_minus_in_flight_s": fire_at - inflight}
    rows += [
        Result("inflight1000", store.label, f"{mode}_enqueue_s", "s", enqueued - t0,
               note=f"enqueueing {count} executions from one producer"),
        Result("inflight1000", store.label, f"{mode}_all_in_flight_s", "s", inflight - t0,
               note=f"first enqueue -> all {count} suspended on {what} (claimed, first step "
                    f"done, leased) across {n_workers} workers x concurrency {concurrency}",
               extra={"all_waiting_together": all_waiting}),
        Result("inflight1000", store.label, f"{mode}_complete_s", "s", complete,
               note=complete_note, extra=complete_extra),
        Result("inflight1000", store.label, f"{mode}_errors", "count", float(errors),
               target=Target(0), note="failed + not completed + worker log warnings/errors + "
                                      "workers not exiting 0",
               extra={"problems": problems[:20], "exit_codes": codes, "statuses": counts}),
    ]
    rows += [Result("inflight1000", store.label, f"{mode}_waiting_{key}", "%", value,
                    note=f"while all {count} wait (2 s window): {CPU_NOTES[key]}")
             for key, value in idle.items()]
    if is_postgres(store.url):
        rows += [
            Result("inflight1000", store.label, f"{mode}_peak_connections", "count",
                   float(peak[0]), note=f"peak connections of this run (2 workers + producer;"
                   f" pools allow {POOL_MAX} each), sampled every ~20 ms"),
            Result("inflight1000", store.label, f"{mode}_peak_server_connections", "count",
                   float(peak[1]), note="peak client connections to the whole server "
                                        "(other users included)"),
        ]
    return rows


async def _signal_all(url: str, ids: list[str]) -> None:
    engine = treadle.Engine(url)
    await engine.open()
    try:
        for ident in ids:
            await engine.signal(ident, "go", "signal")
    finally:
        await engine.close()


def bench_inflight(store: StoreSpec, plan: Plan) -> list[Result]:
    """1,000 executions waiting at once across 2 workers: ramp, release, errors, connections."""
    rows = _inflight(store, plan, "signal", budget=0.0)
    if not rows:
        return []
    ramp = next(r.value for r in rows if r.metric == "signal_all_in_flight_s") or 10.0
    return rows + _inflight(store, plan, "timer", budget=2 * ramp + 5.0)


# -- c. lease takeover ----------------------------------------------------------------------------

TAKEOVER_HELD = 16


def _takeover_round(store: StoreSpec, lease: float) -> dict[str, Any]:
    with fresh_store(store, "takeover") as fresh:
        assert fresh is not None
        effects, gate = fresh.folder / "effects.log", fresh.folder / "gate"
        producer = app_url(fresh, "producer")
        enqueue(producer, worker_flows.whoami, [])
        db = Db(fresh.url, fresh.schema)

        def lines(kind: str, pid: int | None = None) -> list[list[str]]:
            if not effects.exists():
                return []
            found = [line.split() for line in effects.read_text().splitlines()]
            return [f for f in found if f[0] == kind and (pid is None or int(f[2]) == pid)]

        a = WorkerProcess(fresh, "a", concurrency=2 * TAKEOVER_HELD, lease=lease,
                          effects=effects)
        b: WorkerProcess | None = None
        try:
            wait_until(a.ready, 60, "worker a ready")
            _, _, ids = enqueue(producer, worker_flows.takeover, [(str(gate),)] * TAKEOVER_HELD)
            wait_until(lambda: len(lines("hold", a.pid)) == TAKEOVER_HELD, 60,
                       "worker a in the second step of every execution")
            b = WorkerProcess(fresh, "b", concurrency=2 * TAKEOVER_HELD, lease=lease,
                              effects=effects)
            wait_until(b.ready, 60, "worker b ready")
            leases = dict(db.rows("SELECT id, lease_until FROM executions WHERE workflow = "
                                  "'wb.takeover'"))
            killed = a.kill()
            gate.touch()
            wait_until(lambda: db.statuses("wb.takeover", 0).get("completed", 0)
                       == TAKEOVER_HELD, lease + 60, "every execution completed by b")
            first = first_events_after(fresh.url, ids, killed)
            reruns = len(lines("first")) - TAKEOVER_HELD
            last_by_b = len(lines("last", b.pid))
        finally:
            if a.proc.poll() is None:
                a.kill()
            code = b.stop() if b is not None else -1
            db.close()
    return {
        "takeover": [first[i] - killed for i in ids],
        "lease_left": [leases[i] - killed for i in ids],
        "after_expiry": [first[i] - leases[i] for i in ids],
        "reruns": reruns, "resumed_by_b": last_by_b, "b_exit": code,
    }


def bench_takeover(store: StoreSpec, plan: Plan) -> list[Result]:
    """Kill a worker holding 16 executions; how soon the other resumes each of them."""
    if not is_postgres(store.url) and (not store.url.startswith("sqlite:")
                                       or store.sqlite_sync == "FULL"):
        return []
    rows: list[Result] = []
    for lease in (2.0, 5.0):
        runs = [_takeover_round(store, lease) for _ in range(plan.reps(3, 1))]
        takeover = [t for run in runs for t in run["takeover"]]
        worst = [max(run["takeover"]) for run in runs]
        tag = f"lease{lease:g}"
        rows += [
            result("takeover", store.label, f"takeover_s_{tag}", "s", Summary.of(takeover),
                   note=f"SIGKILL -> first journal event of each of {TAKEOVER_HELD} executions "
                        f"resumed by the other worker (lease {lease:g} s, CLI defaults "
                        "otherwise)"),
            Result("takeover", store.label, f"takeover_max_s_{tag}", "s", max(worst),
                   target=Target(lease + 1.0), note="the slowest execution of any round",
                   extra={"rounds": worst}),
            result("takeover", store.label, f"lease_left_at_kill_s_{tag}", "s",
                   Summary.of([t for run in runs for t in run["lease_left"]]),
                   note="lease_until - kill: what the heartbeat (every lease/3) had left"),
            result("takeover", store.label, f"after_expiry_s_{tag}", "s",
                   Summary.of([t for run in runs for t in run["after_expiry"]]),
                   note="first event - lease_until: until the worker looks for work (a "
                        "poll, or a wake-up at the lease's end) + claim + resume"),
            Result("takeover", store.label, f"finished_steps_rerun_{tag}", "count",
                   float(sum(run["reruns"] for run in runs)), target=Target(0),
                   note="runs of the first step (done before the kill) beyond one each",
                   extra={"resumed_by_b": [run["resumed_by_b"] for run in runs],
                          "b_exit": [run["b_exit"] for run in runs]}),
        ]
    return rows


# -- standalone -----------------------------------------------------------------------------------

BENCHES = {"workers": bench_workers, "inflight1000": bench_inflight, "takeover": bench_takeover}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="bench/worker_benches.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="postgres")
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    plan = Plan(quick=args.quick)
    rows: list[Result] = []
    for spec in parse_stores(args.stores):
        for name in args.only.split(","):
            t0 = time.perf_counter()
            rows += BENCHES[name.strip()](spec, plan)
            print(f"  {name} {spec.label}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

