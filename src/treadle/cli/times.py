"""Reading and writing times on the command line: `30m`, ISO 8601, `1.2 s`."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `2h`, `7d`, `1w` (or a bare number of seconds) → seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use e.g. 45s, 30m, 2h, 7d or 1w")
    number, unit = match.groups()
    return float(number) * _UNITS[(unit or "s").lower()]


def parse_instant(text: str, *, now: float | None = None) -> float:
    """An ISO 8601 time (naive means UTC) or a duration ago (`30m`, `2h`, `7d`) → epoch."""
    if _DURATION.match(text) and not text.strip().isdigit():
        return (time.time() if now is None else now) - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time (2024-05-01T12:00:00Z) "
            "nor a duration ago (30m, 2h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(ts: float | None) -> str | None:
    """Epoch seconds → `2024-05-01T12:00:00.123Z` (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def human_duration(ms: float | None) -> str:
    """Milliseconds → `0.4 ms`, `12 ms`, `1.52 s`, `2m03s`, `1h02m`, `3d04h` (None → ``)."""
    if ms is None:
        return ""
    if ms < 0.1:
        return "<0.1 ms"
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
