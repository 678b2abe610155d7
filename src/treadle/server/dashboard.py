"""Dashboard metrics (`GET /api/v1/dashboard/metrics`), computed from executions: pure functions.

The route scans the executions created in the period (summary rows: status and duration) and
the journals of a sample of the most recent finished ones (per-step numbers), then calls
`dashboard_metrics`. Rates are percentages, durations milliseconds, as in the seed roadmap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from treadle.journal import Execution, ExecutionStatus, ExecutionSummary, StepStatus
from treadle.server.views import iso

_PERIOD = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_PERIOD = 90 * 86400


def parse_period(text: str) -> float:
    """`90s`, `15m`, `24h`, `7d`, `2w` → seconds; ValueError beyond 90 days or malformed."""
    match = _PERIOD.match(text.strip())
    if match is None:
        raise ValueError(f"period {text!r} is not a number followed by s, m, h, d or w")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if not 0 < seconds <= MAX_PERIOD:
        raise ValueError(f"period {text!r} must be between 1s and 90d")
    return float(seconds)


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile `p` (0 to 100) of ascending values; None when empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _hour(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:00Z")


def _by_hour(rows: Sequence[ExecutionSummary], start: float, now: float) -> list[dict[str, Any]]:
    buckets: dict[str, list[int]] = {}
    hour = math.floor(start / 3600) * 3600
    while hour <= now:
        buckets[_hour(hour)] = [0, 0]
        hour += 3600
    for row in rows:
        counts = buckets.setdefault(_hour(row.created_at), [0, 0])
        counts[0] += 1
        counts[1] += row.status == ExecutionStatus.FAILED
    return [{"hour": h, "executions": c[0], "errors": c[1]} for h, c in sorted(buckets.items())]


def _by_step(executions: Sequence[Execution]) -> list[dict[str, Any]]:
    durations: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    counts: dict[str, int] = {}
    retries: dict[str, int] = {}
    for ex in executions:
        for rec in ex.steps:
            if rec.kind not in ("step", "compensation") or rec.status not in (
                    StepStatus.COMPLETED, StepStatus.FAILED):
                continue
            durations.setdefault(rec.name, [])
            if rec.duration_ms is not None:
                durations[rec.name].append(rec.duration_ms)
            counts[rec.name] = counts.get(rec.name, 0) + 1
            errors[rec.name] = errors.get(rec.name, 0) + (rec.status == StepStatus.FAILED)
            retries[rec.name] = retries.get(rec.name, 0) + max(0, rec.attempts - 1)
    out = []
    for name, values in durations.items():
        values.sort()
        out.append({
            "step": name,
            "count": counts[name],
            "avg_ms": _r(sum(values) / len(values)) if values else None,
            "p50_ms": _r(percentile(values, 50)),
            "p95_ms": _r(percentile(values, 95)),
            "p99_ms": _r(percentile(values, 99)),
            "error_rate": round(100.0 * errors[name] / counts[name], 2),
            "retries": retries[name],
        })
    return out


def dashboard_metrics(
    rows: Sequence[ExecutionSummary],
    sample: Sequence[Execution],
    *,
    pipeline: str | None,
    period: str,
    start: float,
    now: float,
    truncated: bool = False,
) -> dict[str, Any]:
    """The seed's dashboard document for the executions `rows` created in [start, now]."""
    finished = [r for r in rows if r.status.is_terminal]
    completed = sum(1 for r in finished if r.status == ExecutionStatus.COMPLETED)
    failed = sum(1 for r in finished if r.status == ExecutionStatus.FAILED)
    decided = completed + failed
    durations = sorted((r.finished_at - r.created_at) * 1000.0 for r in finished
                       if r.finished_at is not None)
    by_status: dict[str, int] = {str(s): 0 for s in ExecutionStatus}
    for row in rows:
        by_status[str(row.status)] += 1
    return {
        "pipeline": pipeline,
        "period": period,
        "from": iso(start),
        "to": iso(now),
        "summary": {
            "total_executions": len(rows),
            "success_rate": round(100.0 * completed / decided, 2) if decided else None,
            "avg_duration_ms": _r(sum(durations) / len(durations)) if durations else None,
            "p50_duration_ms": _r(percentile(durations, 50)),
            "p95_duration_ms": _r(percentile(durations, 95)),
            "p99_duration_ms": _r(percentile(durations, 99)),
            "error_count": failed,
            "dlq_depth": 0,
            "active": sum(1 for r in rows if not r.status.is_terminal),
            "by_status": by_status,
            "truncated": truncated,
        },
        "by_step": _by_step(sample),
        "by_step_sample": len(sample),
        "by_hour": _by_hour(rows, start, now),
    }
