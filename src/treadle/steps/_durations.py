"""Durations as the Go project writes them: `300ms`, `1.5s`, `2h45m`, plus `7d` and numbers."""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0, "d": 86400.0}  # fmt: skip
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")


def parse_duration(value: Any, what: str = "duration") -> float:
    """Seconds from a Go duration string (`"1m30s"`) or a number of seconds.

    >>> parse_duration("1m30s"), parse_duration("250ms"), parse_duration(2)
    (90.0, 0.25, 2.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a duration like '30s', not {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{what} must not be negative, got {value!r}")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a duration like '30s', not {value!r}")
    text = value.strip()
    if text == "0":
        return 0.0
    sign = 1.0
    if text[0] in "+-":
        sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
    total, pos = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(
            f"{what} {value!r} is not a duration (use a number and a unit: ms, s, m, h, d)"
        )
    if sign < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return total


def parse_duration_or(value: Any, what: str, default: str) -> float:
    """`parse_duration(value)`, or of `default` when `value` is missing or empty.

    >>> parse_duration_or(None, "timeout", "5s"), parse_duration_or("", "ttl", "1m")
    (5.0, 60.0)
    """
    return parse_duration(value if value not in (None, "") else default, what)


__all__ = ["parse_duration"]
