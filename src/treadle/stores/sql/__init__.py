"""SQL kept in named `.sql` files: versioned migrations and `-- name:` query blocks."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

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
