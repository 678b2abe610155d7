"""How the CLI reports failures: one line per exception of the cause chain, exit code 1."""

from __future__ import annotations

import re
from typing import Any

from treadle.errors import MissingExtraError


class CliError(Exception):
    """A failure to report to the user as is (no traceback), with exit code 1."""


def describe(exc: BaseException) -> str:
    """`Type: message`, with the type's module unless it is a builtin or Treadle's."""
    if isinstance(exc, CliError):
        return str(exc)
    cls = type(exc)
    bare = cls.__module__ == "builtins" or cls.__module__.startswith("treadle.")
    name = cls.__qualname__ if bare else f"{cls.__module__}.{cls.__qualname__}"
    message = str(exc)
    return f"{name}: {message}" if message else name


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (explicit `from`, or implicit context), outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return seen


def error_lines(exc: BaseException) -> list[str]:
    """`error: …` then `  caused by: …` per cause; a missing extra keeps its install hint."""
    links = chain(exc)
    for link in links:
        if isinstance(link, MissingExtraError):
            return [f"error: {link}"]
    lines = [f"error: {describe(links[0])}"]
    lines += [f"  caused by: {describe(link)}" for link in links[1:]]
    return lines


_SEPARATORS = re.compile(
    r"\n(?:The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\n"
)


def recorded_chain(error: dict[str, Any] | None) -> list[str]:
    """`Type: message` for a journaled error and its causes, outermost first.

    The journal keeps the formatted traceback, which lists the root cause first; each section
    ends with its exception line(s), after the indented frames.
    """
    if not error:
        return []
    head = f"{error.get('type', 'Error')}: {error.get('message', '')}".rstrip(": ")
    text = str(error.get("traceback") or "")
    sections = [s for s in _SEPARATORS.split(text) if s.strip()]
    causes: list[str] = []
    for section in sections[:-1]:
        tail = [
            line for line in section.strip("\n").splitlines()
            if line and not line.startswith((" ", "\t", "Traceback (most recent call last)"))
        ]
        if tail:
            causes.append(" ".join(tail))
    return [head, *reversed(causes)]
