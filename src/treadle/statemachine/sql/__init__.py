"""The state machine stores' SQL, kept in named `.sql` files of `-- name:` blocks."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)


@cache
def queries(dialect: str) -> dict[str, str]:
    """The named statements of `<dialect>.sql` (`schema` may hold several, `;`-separated)."""
    text = resources.files(__package__).joinpath(f"{dialect}.sql").read_text()
    parts = _NAME.split(text)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return {name: body.strip().rstrip(";") for name, body in pairs}


def statements(script: str) -> list[str]:
    """The statements of a script without comments or procedural bodies."""
    return [s.strip() for s in script.split(";") if s.strip()]


__all__ = ["queries", "statements"]
