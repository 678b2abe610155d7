"""Render a results file as a table (Markdown with --markdown), e.g. for docs/performance.md.

    .venv/bin/python bench/report.py                       # bench/results/latest.json
    .venv/bin/python bench/report.py --markdown bench/results/20261122T000303Z.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import REPO, Result, Target, format_table

FIELDS = ("name", "store", "metric", "unit", "value", "p95", "min", "mean", "n", "peer", "note",
          "error", "extra")


def load(path: Path) -> tuple[dict[str, object], list[Result]]:
    document = json.loads(path.read_text())
    rows = []
    for raw in document["results"]:
        target = raw.get("target")
        rows.append(Result(**{k: raw[k] for k in FIELDS if k in raw},
                           target=None if target is None else Target(**target)))
    return document["meta"], rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/report.py", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path,
                        default=REPO / "bench" / "results" / "latest.json")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    meta, rows = load(args.path)
    print(f"{meta['command']}  ({meta['started_at']}, {meta['duration_s']}s)")
    print(format_table(rows, markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
