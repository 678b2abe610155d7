"""Lexer for the `${ }` expression language (the expr-lang syntax used by the Go project)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._common import template_error

__all__ = ["ETok", "find_block_end", "tokenize"]

_OPERATORS = (
    "??",
    "?.",
    "**",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "..",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "<",
    ">",
    "!",
    "?",
    "=",
    ":",
    ".",
    ",",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "|",
    ";",
)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "0": "\0",
}


@dataclass(slots=True)
class ETok:
    kind: str  # num str ident pointer op eof
    value: Any
    pos: int


def _ident_start(ch: str) -> bool:
    return ch.isalpha() or ch in "_$"


def _ident_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def tokenize(source: str, start: int, end: int) -> list[ETok]:
    """Tokens of `source[start:end]`; positions are offsets into `source`."""
    tokens: list[ETok] = []
    i = start
    while i < end:
        ch = source[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if source.startswith("//", i):
            nl = source.find("\n", i, end)
            i = end if nl < 0 else nl + 1
            continue
        if source.startswith("/*", i):
            close = source.find("*/", i + 2, end)
            if close < 0:
                raise template_error(source, i, "unclosed comment in expression")
            i = close + 2
            continue
        prev = tokens[-1] if tokens else None
        after_value = prev is not None and (
            prev.kind in ("ident", "num", "str", "pointer")
            or (prev.kind == "op" and prev.value in (")", "]", "}"))
        )
        if ch.isdigit() or (ch == "." and source[i + 1 : i + 2].isdigit() and not after_value):
            i = _number(source, i, end, tokens)
        elif ch in "\"'":
            i = _string(source, i, end, tokens)
        elif ch == "`":
            close = source.find("`", i + 1, end)
            if close < 0:
                raise template_error(source, i, "unterminated raw string")
            tokens.append(ETok("str", source[i + 1 : close], i))
            i = close + 1
        elif ch == "#":
            j = i + 1
            while j < end and _ident_char(source[j]):
                j += 1
            tokens.append(ETok("pointer", source[i + 1 : j], i))
            i = j
        elif _ident_start(ch):
            j = i + 1
            while j < end and _ident_char(source[j]):
                j += 1
            tokens.append(ETok("ident", source[i:j], i))
            i = j
        else:
            for op in _OPERATORS:
                if source.startswith(op, i) and i + len(op) <= end:
                    tokens.append(ETok("op", op, i))
                    i += len(op)
                    break
            else:
                raise template_error(source, i, f"unexpected {ch!r} in expression")
    tokens.append(ETok("eof", None, end))
    return tokens


def _number(source: str, i: int, end: int, tokens: list[ETok]) -> int:
    start = i
    if source.startswith(("0x", "0X", "0o", "0O", "0b", "0B"), i):
        i += 2
        while i < end and (source[i].isalnum() or source[i] == "_"):
            i += 1
        text = source[start:i]
        try:
            tokens.append(ETok("num", int(text, 0), start))
        except ValueError:
            raise template_error(source, start, f"invalid number {text!r}") from None
        return i
    while i < end and (source[i].isdigit() or source[i] == "_"):
        i += 1
    is_float = False
    # a fraction, but not the range operator `1..3`
    if i < end and source[i] == "." and source[i + 1 : i + 2] != ".":
        if source[i + 1 : i + 2].isdigit() or not _ident_start(source[i + 1 : i + 2] or " "):
            is_float = True
            i += 1
            while i < end and (source[i].isdigit() or source[i] == "_"):
                i += 1
    if i < end and source[i] in "eE":
        j = i + 1
        if j < end and source[j] in "+-":
            j += 1
        if j < end and source[j].isdigit():
            is_float = True
            i = j
            while i < end and source[i].isdigit():
                i += 1
    text = source[start:i].replace("_", "")
    try:
        value: int | float = float(text) if is_float else int(text)
    except ValueError:
        raise template_error(source, start, f"invalid number {source[start:i]!r}") from None
    tokens.append(ETok("num", value, start))
    return i


def _string(source: str, i: int, end: int, tokens: list[ETok]) -> int:
    quote = source[i]
    start = i
    out: list[str] = []
    i += 1
    while i < end:
        ch = source[i]
        if ch == quote:
            tokens.append(ETok("str", "".join(out), start))
            return i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = source[i + 1 : i + 2]
        if esc in _ESCAPES and esc:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = source[i + 2 : i + 2 + width]
            try:
                if len(digits) != width:
                    raise ValueError(digits)
                out.append(chr(int(digits, 16)))
            except ValueError:
                raise template_error(source, i, "invalid escape in string") from None
            i += 2 + width
        else:
            raise template_error(source, i, "unknown escape sequence in string")
    raise template_error(source, start, "unterminated string")


def find_block_end(source: str, start: int) -> int | None:
    """Offset of the `}` closing a `${` block whose body starts at `start`, or None.

    Braces nest and strings are skipped, so `${ {"a": "}"}.a }` works (the Go project's
    regex stops at the first `}`; every expression it accepts ends at the same place here).
    """
    depth = 0
    i = start
    n = len(source)
    while i < n:
        ch = source[i]
        if ch in "\"'`":
            close = i + 1
            while close < n and source[close] != ch:
                if source[close] == "\\" and ch != "`":
                    close += 1
                close += 1
            if close >= n:
                return None
            i = close + 1
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return None
