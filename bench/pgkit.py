"""Helpers of the PostgreSQL and worker benchmarks: scratch schemas, CPU time from /proc.

A benchmark on PostgreSQL gets a fresh schema (`?schema=bench_…`), dropped afterwards, so
several runs (and other engineers' tests) never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def with_options(url: str, **options: str) -> str:
    """`url` with these query options set (replacing any of the same name)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in options]
    query += list(options.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def base_conninfo(url: str) -> str:
    """The libpq part of a store URL: Treadle's own options (schema, pool_*) removed."""
    from treadle.stores.postgres import postgres_options

    return postgres_options(url)[0]


def is_postgres(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("postgresql", "postgres")


def drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(base_conninfo(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextlib.contextmanager
def scratch_schema(url: str, prefix: str = "bench") -> Iterator[tuple[str, str]]:
    """(store URL on a fresh schema, schema name); the schema is dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        yield with_options(url, schema=schema), schema
    finally:
        drop_schema(url, schema)


# -- CPU time -------------------------------------------------------------------------------------

def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def processes_named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as fh:
                if fh.read().strip() == name:
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        cpu = process_cpu(pid)
        if cpu is not None:
            found[pid] = cpu
    return found


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots; processes born in between count from 0."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS
