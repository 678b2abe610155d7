"""SQL kept in named `.sql` files: versioned migrations and `-- name:` query blocks."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from treadle.stores.base import Record, RecordQuery, decode_cursor

_NAME = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)


@cache
def queries(dialect: str) -> dict[str, str]:
    """The named queries of `sql/<dialect>/queries.sql`."""
    text = resources.files(__package__).joinpath(dialect, "queries.sql").read_text()
    parts = _NAME.split(text)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return {name: body.strip().rstrip(";") for name, body in pairs}


def migrations(dialect: str) -> list[tuple[int, str]]:
    """`(version, sql)` for every `NNN_*.sql` migration of a dialect, in order."""
    folder = resources.files(__package__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d+)_.*\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    return sorted(found)


def record_values(record: Record) -> dict[str, Any]:
    """The named parameters of `upsert_record` / `insert_record` (both SQL dialects)."""
    return {"kind": record.kind, "key": record.key, "tenant_id": record.tenant_id,
            "data": json.dumps(record.data, allow_nan=False), "created_at": record.created_at,
            "expires_at": record.expires_at}


def record_filters(query: RecordQuery) -> dict[str, Any]:
    """The named parameters of `list_records` (both SQL dialects)."""
    after_ts, after_key = decode_cursor(query.cursor) if query.cursor else (None, None)
    return {"kind": query.kind, "tenant_id": query.tenant_id, "prefix": query.key_prefix,
            "after_ts": after_ts, "after_key": after_key, "limit": query.limit + 1}


def record_from_row(row: Sequence[Any]) -> Record:
    """A record from (kind, key, tenant_id, data, created_at, expires_at)."""
    kind, key, tenant_id, data, created_at, expires_at = row
    return Record(kind, key, json.loads(data) if isinstance(data, str) else data, created_at,
                  tenant_id, expires_at)
