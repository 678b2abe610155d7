"""Shared pieces of the benchmark harness: statistics, result rows, targets, the table.

Benchmarks never assert. Each measurement becomes a `Result` row; a row with a target gets a
verdict, `ok` or `MISS`; a benchmark that raised becomes an `ERROR` row and the run goes on.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Summary:
    """Order statistics of one metric over repetitions."""

    median: float
    p95: float
    min: float
    mean: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float], *, higher_is_better: bool = False) -> Summary:
        """Median and nearest-rank p95 of the bad tail (the low end for rates)."""
        if not samples:
            raise ValueError("no samples")
        ordered = sorted(samples, reverse=higher_is_better)
        rank = max(1, math.ceil(0.95 * len(ordered)))
        return cls(
            median=statistics.median(ordered),
            p95=ordered[rank - 1],
            min=min(ordered),
            mean=statistics.fmean(ordered),
            n=len(ordered),
        )


@dataclass(frozen=True)
class Target:
    """`value <= limit` (or `>=` with op '>='), quoted from the issue."""

    limit: float
    op: str = "<="

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def __str__(self) -> str:
        return f"{self.op} {_fmt(self.limit)}"


@dataclass
class Result:
    name: str  # benchmark
    store: str  # memory, sqlite, sqlite:full, postgres, redis, or "-" when storeless
    metric: str
    unit: str
    value: float | None  # the median over repetitions (or the single figure)
    p95: float | None = None
    min: float | None = None
    mean: float | None = None
    n: int = 1
    target: Target | None = None
    peer: str = ""  # reference figures measured for peers on this machine
    note: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.target is None or self.value is None:
            return ""
        return "ok" if self.target.met(self.value) else "MISS"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = None if self.target is None else asdict(self.target)
        data["verdict"] = self.verdict
        return data


def result(
    name: str, store: str, metric: str, unit: str, summary: Summary, **kw: Any
) -> Result:
    return Result(name, store, metric, unit, summary.median, summary.p95, summary.min,
                  summary.mean, summary.n, **kw)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


TABLE_COLUMNS = ("name", "store", "metric", "value", "p95", "mean", "unit", "target", "verdict",
                 "peer")


def table_rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        if r.error:
            rows.append((r.name, r.store, r.metric, "-", "", "", r.unit, "", "ERROR",
                         r.error[:60]))
            continue
        rows.append((
            r.name, r.store, r.metric, _fmt(r.value),
            "" if r.p95 is None or r.n <= 1 else _fmt(r.p95),
            "" if r.mean is None or r.n <= 1 else _fmt(r.mean),
            r.unit, "" if r.target is None else str(r.target), r.verdict, r.peer,
        ))
    return rows


def format_table(results: Sequence[Result], *, markdown: bool = False) -> str:
    rows = table_rows(results)
    header = TABLE_COLUMNS
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if h in ("value", "p95", "mean") else "---" for h in header)
                 + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    right = {3, 4, 5}

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    return "\n".join(out)


# -- the machine ----------------------------------------------------------------------------------

def _first(path: str, prefix: str) -> str:
    try:
        with open(path) as fh:
            for text in fh:
                if text.startswith(prefix):
                    return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def machine() -> dict[str, Any]:
    import treadle

    return {
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "mem_total": _first("/proc/meminfo", "MemTotal"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "treadle": treadle.__version__,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "loadavg": load(),
    }


def load() -> list[float]:
    """1, 5 and 15-minute load averages: other work on the machine skews every figure."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []
