"""Profile a benchmark workload under cProfile and print the top functions.

    .venv/bin/python bench/profile_steps.py --store memory            # workload 1: seq10
    .venv/bin/python bench/profile_steps.py --store sqlite --sort cumulative --top 40
    .venv/bin/python bench/profile_steps.py --workload fanout100 --store memory
    .venv/bin/python bench/profile_steps.py --workload concurrent200   # 200 started, gathered

Same workflows and method as bench/run.py (fresh registry, fresh SQLite file, start + result
in one event loop, warm-up first), but only the timed loop runs under the profiler.
(This file is not called `profile.py`: that would shadow the standard module cProfile uses.)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import pstats
import sys
from pathlib import Path
from typing import Any

from workloads import define_workflows, fresh_engine, parse_stores, timed

WORKLOADS = {  # name -> (workflow attribute, argument, default repetitions)
    "seq10": ("seq", 10, 2000),
    "seq100": ("seq", 100, 200),
    "sync10": ("seq_sync", 10, 1000),
    "fanout100": ("fanout", 100, 200),
    "zero": ("seq", 0, 2000),
    "concurrent200": ("seq", 10, 10),  # batches of 200 started together, then gathered
}


async def batch(engine: Any, wf: Any, arg: int, count: int = 200) -> None:
    handles = [await engine.start(wf, arg) for _ in range(count)]
    await asyncio.gather(*(h.result() for h in handles))


async def profile(store_name: str, workload: str, reps: int) -> cProfile.Profile:
    (store,) = parse_stores(store_name)[:1]
    attribute, arg, _ = WORKLOADS[workload]
    profiler = cProfile.Profile()
    async with fresh_engine(store) as (engine, wfs):
        wf = getattr(wfs, attribute)
        once = functools.partial(batch if workload == "concurrent200" else timed, engine, wf, arg)
        for _ in range(max(2, reps // 20)):
            await once()
        profiler.enable()
        for _ in range(reps):
            await once()
        profiler.disable()
    return profiler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile_steps.py", description=__doc__)
    parser.add_argument("--store", default="memory",
                        help="memory, sqlite (synchronous=NORMAL), sqlite:full, postgres, redis "
                             "or a URL (default memory)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="seq10")
    parser.add_argument("--reps", type=int, help="executions profiled (default per workload)")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (default tottime)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, help="also dump the raw profile here (for snakeviz)")
    args = parser.parse_args(argv)
    define_workflows()  # fail early on a broken import
    reps = args.reps or WORKLOADS[args.workload][2]
    profiler = asyncio.run(profile(args.store, args.workload, reps))
    if args.out:
        profiler.dump_stats(args.out)
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    print(f"# {args.workload} on {args.store}, {reps} executions profiled, sorted by {args.sort}")
    print(buffer.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
