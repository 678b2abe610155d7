"""Measure `import treadle` in this (fresh) interpreter; print one JSON object.

Run by `bench/run.py` as `python -I bench/import_cost.py [--pre MODULE] [--module MODULE]`:
VmRSS from /proc/self/status before and after `import treadle` (or `--module`, e.g. asyncio
alone), the import's wall time, and which modules it added (and which of those are not in the
standard library). `--pre` imports a module first, outside the measurement.
"""

import argparse
import importlib
import sys
import time


def rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pre", default="")
    parser.add_argument("--module", default="treadle")
    args = parser.parse_args()
    if args.pre:
        importlib.import_module(args.pre)
    before_modules = set(sys.modules)
    before = rss_kb()
    t0 = time.perf_counter_ns()
    importlib.import_module(args.module)
    elapsed = time.perf_counter_ns() - t0
    after = rss_kb()
    added = set(sys.modules) - before_modules
    tops = {name.split(".")[0] for name in added}
    known = {args.module, *sys.stdlib_module_names}
    third = sorted(t for t in tops if t not in known and not t.startswith("_"))
    import json

    print(json.dumps({
        "rss_before_kb": before, "rss_after_kb": after, "import_ns": elapsed,
        "modules": len(added), "third_party": third,
    }))


if __name__ == "__main__":
    main()
