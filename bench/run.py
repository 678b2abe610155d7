"""Treadle's benchmarks: a table on stdout, JSON in bench/results/.

    .venv/bin/python bench/run.py                   # everything, memory + SQLite
    .venv/bin/python bench/run.py --quick           # fewer repetitions (CI smoke)
    .venv/bin/python bench/run.py --only seq10,fanout100 --stores memory
    .venv/bin/python bench/run.py --stores memory,sqlite,postgres,redis
    .venv/bin/python bench/run.py --repeat 3        # median over 3 rounds (shared machines)

Benchmarks never assert: a figure over its target is reported as MISS, a benchmark that
raised as ERROR, and the exit status is 0 either way (2 for bad options). How to read the
figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import REPO, Result, format_table, load, machine
from control_plane_benches import bench_control_plane
from http_benches import bench_http_pipeline, bench_http_start
from pg_profile import bench_pg_commit, bench_pg_step_profile
from worker_benches import bench_inflight, bench_takeover, bench_workers
from workloads import (
    Plan,
    StoreSpec,
    bench_engine_run,
    bench_fanout,
    bench_import,
    bench_python_floor,
    bench_sqlite_commit,
    bench_steps,
    bench_throughput,
    parse_stores,
)
from yaml_benches import bench_jq, bench_validate, bench_yaml_step

RESULTS = REPO / "bench" / "results"


@dataclass(frozen=True)
class Bench:
    name: str
    what: str
    per_store: Callable[[StoreSpec, Plan], list[Result]] | None = None
    storeless: Callable[[Plan], list[Result]] | None = None


BENCHES = [
    Bench("seq10", "1 workflow of 10 sequential async steps -> us/step (minus a 0-step run)",
          per_store=bench_steps("seq10", 10, "async", 20, 300, show_zero=True)),
    Bench("seq100", "1 workflow of 100 sequential async steps -> us/step",
          per_store=bench_steps("seq100", 100, "async", 5, 60, show_zero=False)),
    Bench("sync10", "1 workflow of 10 sequential def steps (thread pool) -> us/step",
          per_store=bench_steps("sync10", 10, "sync", 10, 150, show_zero=False)),
    Bench("throughput", "200 workflows of 10 steps back to back -> workflows/s",
          per_store=bench_throughput),
    Bench("fanout100", "ctx.gather of 100 parallel async steps, one join -> ms",
          per_store=bench_fanout),
    Bench("engine_run", "the synchronous engine.run() wrapper, 10 steps",
          per_store=bench_engine_run),
    Bench("sqlite_commit", "raw sqlite3 INSERT + commit: the floor of a durable step",
          per_store=bench_sqlite_commit),
    Bench("import", "RSS and time added by `import treadle` (fresh subprocess)",
          storeless=bench_import),
    Bench("python_floor", "plain await / task / thread-pool hop, for reference",
          storeless=bench_python_floor),
    Bench("http_start", "POST /api/v1/executions on `treadle serve` (subprocess) -> req/s, p95",
          per_store=bench_http_start),
    Bench("http_pipeline", "a 5-step YAML pipeline behind `treadle serve APP.yaml` -> req/s, p95",
          per_store=bench_http_pipeline),
    Bench("control_plane", "timeline (50 steps, 1,000 events), SSE delay on `treadle serve` -> ms",
          per_store=bench_control_plane),
    Bench("yaml_jq", "step.jq on one order and on a 20-order batch -> transforms/s",
          storeless=bench_jq),
    Bench("yaml_validate", "step.validate json_schema on one order event -> us/event",
          storeless=bench_validate),
    Bench("yaml_step", "pipeline interpreter per step (11 step.set vs 1), journal included -> us",
          per_store=bench_yaml_step),
    Bench("pg_commit", "raw psycopg: round trip, INSERT + commit, without the WAL flush",
          per_store=bench_pg_commit),
    Bench("pg_step_profile", "a PostgreSQL step taken apart: store calls, statements, trips",
          per_store=bench_pg_step_profile),
    Bench("workers", "400 x 10-step workflows, 1/2/4 `treadle worker` processes -> wf/s",
          per_store=bench_workers),
    Bench("inflight1000", "1,000 executions waiting at once on 2 workers: ramp, errors",
          per_store=bench_inflight),
    Bench("takeover", "SIGKILL a worker: its executions resume elsewhere after (s)",
          per_store=bench_takeover),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="benchmarks:\n" + "\n".join(f"  {b.name:<14} {b.what}" for b in BENCHES),
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions (a CI smoke run; figures are noisier)")
    parser.add_argument("--only", metavar="NAME[,NAME]", default="",
                        help="run only these benchmarks (see the list below)")
    parser.add_argument("--stores", default="memory,sqlite", metavar="LIST",
                        help="comma-separated: memory, sqlite (= sqlite:normal + sqlite:full), "
                             "sqlite:normal, sqlite:full, postgres, redis, or store URLs "
                             "(default: memory,sqlite)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run the whole suite N times and report, per figure, the median "
                             "over rounds (steadier on a shared machine; default 1)")
    parser.add_argument("--json", metavar="PATH", type=Path,
                        help="write the JSON here instead of bench/results/<timestamp>.json "
                             "and bench/results/latest.json")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    known = {b.name for b in BENCHES}
    args.only_names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in args.only_names if n not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; "
                     f"known: {', '.join(sorted(known))}")
    try:
        args.store_specs = parse_stores(args.stores)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def run_one(label: str, store: str, call: Callable[[], list[Result]]) -> list[Result]:
    t0 = time.perf_counter()
    print(f"  {label:<14} {store:<12}", end="", file=sys.stderr, flush=True)
    try:
        rows = call()
    except Exception as exc:  # a benchmark that breaks is reported, never fatal
        print(f" ERROR {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return [Result(label, store, "-", "", None,
                       error=f"{type(exc).__name__}: {exc}".splitlines()[0])]
    print(f" {time.perf_counter() - t0:6.1f}s", file=sys.stderr)
    return rows


def merge_rounds(rounds: list[list[Result]]) -> list[Result]:
    """Several rounds of the suite → one row per figure: the median over rounds of each
    round's median (and of its p95 and mean); each round's value is kept in `extra.rounds`."""
    if len(rounds) == 1:
        return rounds[0]
    groups: dict[tuple[str, str, str], list[Result]] = {}
    for results in rounds:
        for r in results:
            groups.setdefault((r.name, r.store, r.metric), []).append(r)
    merged = []
    for rows in groups.values():
        good = [r for r in rows if not r.error and r.value is not None]
        if not good:
            merged.append(rows[0])
            continue

        def mid(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return statistics.median(present) if present else None

        first = good[0]
        merged.append(dataclasses.replace(
            first,
            value=mid([r.value for r in good]), p95=mid([r.p95 for r in good]),
            mean=mid([r.mean for r in good]),
            min=min((r.min for r in good if r.min is not None), default=None),
            n=sum(r.n for r in good),
            error="" if len(good) == len(rows) else f"{len(rows) - len(good)} round(s) failed",
            extra={**first.extra, "rounds": [r.value for r in good]},
        ))
    return merged


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(quick=args.quick)
    selected = [b for b in BENCHES if not args.only_names or b.name in args.only_names]
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    print(f"treadle benchmarks ({'quick' if args.quick else 'full'}), stores: "
          f"{', '.join(s.label for s in args.store_specs)}", file=sys.stderr)
    load_start = load()
    if load_start and load_start[0] > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load_start[0]} on {os.cpu_count()} CPUs: "
              "other work is running, figures will be noisy", file=sys.stderr)
    rounds: list[list[Result]] = []
    for round_no in range(args.repeat):
        if args.repeat > 1:
            print(f"round {round_no + 1}/{args.repeat} (load {load()})", file=sys.stderr)
        results: list[Result] = []
        for bench in selected:
            if bench.storeless is not None:
                results += run_one(bench.name, "-", functools.partial(bench.storeless, plan))
                continue
            assert bench.per_store is not None
            for spec in args.store_specs:
                if bench.name == "sqlite_commit" and spec.sqlite_sync is None:
                    continue
                results += run_one(bench.name, spec.label,
                                   functools.partial(bench.per_store, spec, plan))
        rounds.append(results)
    results = merge_rounds(rounds)
    elapsed = time.perf_counter() - t0

    print()
    print(format_table(results))
    misses = [r for r in results if r.verdict in ("MISS", "ERROR")]
    print(f"\n{len(results)} figures in {elapsed:.1f}s; "
          f"{sum(r.verdict == 'ok' for r in results)} ok, "
          f"{sum(r.verdict == 'MISS' for r in results)} MISS, "
          f"{sum(r.verdict == 'ERROR' for r in results)} ERROR"
          + ("" if not misses else " (benchmarks report, they do not fail the run)"))

    document = {
        "meta": {
            "started_at": started.isoformat(timespec="seconds"),
            "duration_s": round(elapsed, 2),
            "command": " ".join([Path(sys.executable).name, "bench/run.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
            "quick": args.quick,
            "stores": {s.label: s.url for s in args.store_specs},
            "benchmarks": [b.name for b in selected],
            "machine": machine(),
            "loadavg_start": load_start,
            "loadavg_end": load(),
            "repeat": args.repeat,
        },
        "results": [r.to_json() for r in results],
    }
    text = json.dumps(document, indent=2) + "\n"
    if args.json is not None:
        paths = [args.json]
    else:
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        paths = [RESULTS / f"{stamp}.json", RESULTS / "latest.json"]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print("results: " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
