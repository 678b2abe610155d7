"""Pieces shared by both template forms: errors with positions, truthiness, safe lookups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.errors import TemplateError

from ._gofmt import go_str, type_name

__all__ = [
    "MAX_ITEMS",
    "FuncError",
    "Scope",
    "go_truth",
    "lookup_key",
    "snippet",
    "template_error",
    "truthy",
    "wrap64",
]

#: Upper bound on ranges, repeats and other generated collections (protects the worker).
MAX_ITEMS = 1_000_000


def wrap64(value: int) -> int:
    """Wrap an int to 64 bits like Go's int64 arithmetic (and keep bigints out of reach)."""
    if -0x8000_0000_0000_0000 <= value <= 0x7FFF_FFFF_FFFF_FFFF:
        return value
    return (value + 0x8000_0000_0000_0000) % 0x1_0000_0000_0000_0000 - 0x8000_0000_0000_0000


class FuncError(Exception):
    """Raised by template functions; the evaluator re-raises it as a positioned TemplateError."""


class Scope:
    """What one render sees: the data root and the strictness flag."""

    __slots__ = ("data", "strict")

    def __init__(self, data: Mapping[str, Any], strict: bool) -> None:
        self.data = data
        self.strict = strict


def snippet(source: str, limit: int = 60) -> str:
    """The template as it appears in messages: shortened, one line."""
    text = source if len(source) <= limit else source[: limit - 3] + "..."
    return repr(text)


def template_error(source: str, pos: int, problem: str) -> TemplateError:
    """A TemplateError naming the template, the 1-based line/column and the problem."""
    pos = max(0, min(pos, len(source)))
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return TemplateError(f"template {snippet(source)}, line {line}, column {column}: {problem}")


def go_truth(value: Any) -> bool:
    """Truth as Go's text/template `if`/`with`/`and`/`or`/`not` see it.

    False, 0, nil and empty strings, slices and maps are false; everything else is true.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | Mapping | bytes):
        return len(value) > 0
    return True


def truthy(value: Any) -> bool:
    """Truth of a guard (`skip_if`, `if`, conditions), as the Go project decides it.

    The Go project renders the guard to text and treats `""`, `"false"` and `"0"` (after
    trimming spaces) as false and everything else as true. Treadle applies the same rule to
    the text form of the value, except that nil (a missing key) is false: Go would print
    `<no value>` and count it as true, which is never what a guard means.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    return go_str(value).strip() not in ("", "false", "0")


def lookup_key(container: Any, key: Any) -> tuple[bool, Any]:
    """Look `key` up in a mapping. Returns (found, value). Never touches attributes.

    Only `Mapping` containers are searched: templates cannot reach Python attributes,
    methods or dunders of any object.
    """
    if isinstance(container, Mapping):
        try:
            # `in` first: indexing a defaultdict would insert the key into the caller's data
            return (True, container[key]) if key in container else (False, None)
        except TypeError:  # unhashable key
            return False, None
    raise FuncError(f"can't evaluate field {go_str(key)} in type {type_name(container)}")
