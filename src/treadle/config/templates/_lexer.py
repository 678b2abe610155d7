"""Scanner for template text: splits it into text, `{{ action }}` tokens and `${ expr }` blocks.

The action lexer follows Go's text/template lexer: fields (`.a.b`), variables (`$x`),
identifiers, string / raw-string / char / number literals, `|`, `(`, `)`, `:=`, `=`, `,`,
and trim markers (`{{- ` and ` -}}`). One difference is deliberate and matches the Go seed
project, which rewrites hyphenated dot chains before parsing: a field name may contain `-`
after its first character, so `.steps.parse-request.id` is the chain
`steps` → `parse-request` → `id` (there is no subtraction operator in Go templates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._common import template_error
from ._expr_lex import find_block_end

__all__ = ["Action", "ExprBlock", "Segment", "Text", "Tok", "scan"]

_SPACE = " \t\r\n"
_KEYWORDS = {"true": ("bool", True), "false": ("bool", False), "nil": ("nil", None)}


@dataclass(slots=True)
class Tok:
    """One token inside an action. `spaced` is true when whitespace precedes it."""

    kind: str  # field dot var ident string number bool nil pipe ( ) := = ,
    value: Any
    pos: int
    spaced: bool


@dataclass(slots=True)
class Text:
    text: str
    pos: int


@dataclass(slots=True)
class Action:
    tokens: list[Tok]
    pos: int  # offset of "{{"


@dataclass(slots=True)
class ExprBlock:
    start: int  # offset of the first character after "${"
    end: int  # offset of the closing "}"
    pos: int  # offset of "${"


Segment = Text | Action | ExprBlock


def _ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def scan(source: str) -> list[Segment]:
    """Split `source` into segments, applying trim markers and skipping comments."""
    segments: list[Segment] = []
    n = len(source)
    i = text_start = 0
    trim_next = False

    def emit_text(end: int, trim_right: bool) -> None:
        nonlocal trim_next
        text = source[text_start:end]
        if trim_next:
            text = text.lstrip(_SPACE)
        if trim_right:
            text = text.rstrip(_SPACE)
        if text:
            segments.append(Text(text, text_start))
        trim_next = False

    while True:
        a = source.find("{{", i)
        e = source.find("${", i)
        if a < 0 and e < 0:
            break
        if e >= 0 and (a < 0 or e < a):
            end = find_block_end(source, e + 2)
            if end is None or end == e + 2:  # unterminated or "${}": plain text, like Go
                i = e + 2
                continue
            emit_text(e, False)
            segments.append(ExprBlock(e + 2, end, e))
            i = text_start = end + 1
            continue
        k = a + 2
        left_trim = source[k : k + 1] == "-" and source[k + 1 : k + 2] in tuple(_SPACE)
        if left_trim:
            k += 2
        emit_text(a, left_trim)
        if source.startswith("/*", k):
            close = source.find("*/", k + 2)
            if close < 0:
                raise template_error(source, a, "unclosed comment")
            close += 2
            if source[close : close + 1] in tuple(_SPACE) and source.startswith("-}}", close + 1):
                trim_next, close = True, close + 4
            elif source.startswith("}}", close):
                close += 2
            else:
                raise template_error(source, close, "comment ends before closing delimiter")
            i = text_start = close
            continue
        tokens, end, right_trim = _lex_action(source, k, a)
        segments.append(Action(tokens, a))
        trim_next = right_trim
        i = text_start = end
    if text_start < n or trim_next:
        emit_text(n, False)
    return segments


def _lex_action(source: str, k: int, start: int) -> tuple[list[Tok], int, bool]:
    """Tokens of the action starting at `k`; returns (tokens, offset after `}}`, right trim)."""
    tokens: list[Tok] = []
    n = len(source)
    spaced = True
    value: Any
    while True:
        if k >= n:
            raise template_error(source, start, "unclosed action")
        ch = source[k]
        if ch == "}" and source.startswith("}}", k):
            return tokens, k + 2, False
        if ch in _SPACE:
            if source.startswith("-}}", k + 1):
                return tokens, k + 4, True
            k += 1
            spaced = True
            continue
        pos = k
        nxt = source[k + 1 : k + 2]
        if ch == "." and nxt.isdigit():
            k, value = _number(source, k)
            tokens.append(Tok("number", value, pos, spaced))
        elif ch == ".":
            k += 1
            if k < n and (source[k].isalpha() or source[k] == "_"):
                while k < n and (_ident_char(source[k]) or source[k] == "-"):
                    if source.startswith("-}}", k):
                        break
                    k += 1
                tokens.append(Tok("field", source[pos + 1 : k], pos, spaced))
            else:
                tokens.append(Tok("dot", ".", pos, spaced))
        elif ch == "$":
            k += 1
            while k < n and _ident_char(source[k]):
                k += 1
            tokens.append(Tok("var", source[pos:k], pos, spaced))
        elif ch == '"':
            k, value = _quoted(source, k)
            tokens.append(Tok("string", value, pos, spaced))
        elif ch == "`":
            close = source.find("`", k + 1)
            if close < 0:
                raise template_error(source, pos, "unterminated raw quoted string")
            tokens.append(Tok("string", source[k + 1 : close], pos, spaced))
            k = close + 1
        elif ch == "'":
            k, text = _quoted(source, k)
            if len(text) != 1:
                raise template_error(source, pos, "malformed character constant")
            tokens.append(Tok("number", ord(text), pos, spaced))
        elif ch.isdigit() or (ch in "+-" and (nxt.isdigit() or nxt == ".")):
            k, value = _number(source, k)
            tokens.append(Tok("number", value, pos, spaced))
        elif ch.isalpha() or ch == "_":
            while k < n and _ident_char(source[k]):
                k += 1
            word = source[pos:k]
            kind, value = _KEYWORDS.get(word, ("ident", word))
            tokens.append(Tok(kind, value, pos, spaced))
        elif ch == ":" and nxt == "=":
            tokens.append(Tok(":=", ":=", pos, spaced))
            k += 2
        elif ch in "|()=,":
            tokens.append(Tok(ch, ch, pos, spaced))
            k += 1
        else:
            raise template_error(source, pos, f"unexpected {ch!r} in action")
        spaced = False


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}


def _quoted(source: str, k: int) -> tuple[int, str]:
    """Decode a Go "..." (or '...') literal starting at `k`; returns (offset after, text)."""
    quote = source[k]
    out: list[str] = []
    i = k + 1
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == quote:
            return i + 1, "".join(out)
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = source[i + 1 : i + 2]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = source[i + 2 : i + 2 + width]
            try:
                out.append(chr(int(digits, 16)) if len(digits) == width else "")
            except ValueError:
                raise template_error(source, i, "invalid escape in string") from None
            i += 2 + width
        elif esc in "01234567" and esc:
            digits = source[i + 1 : i + 4]
            try:
                out.append(chr(int(digits, 8)))
            except ValueError:
                raise template_error(source, i, "invalid escape in string") from None
            i += 4
        else:
            raise template_error(source, i, "unknown escape sequence in string")
    raise template_error(source, k, "unterminated quoted string")


_NUMBER_CHARS = set("0123456789abcdefABCDEFxXoO_.")


def _number(source: str, k: int) -> tuple[int, int | float]:
    """A Go number literal at `k` (sign, base prefixes, fraction, exponent, underscores)."""
    start = k
    n = len(source)
    if source[k] in "+-":
        k += 1
    hexa = source[k : k + 2] in ("0x", "0X")
    while k < n:
        ch = source[k]
        if ch in _NUMBER_CHARS or (ch in "pP" and hexa):
            k += 1
        elif ch in "+-" and source[k - 1] in ("pP" if hexa else "eE"):
            k += 1
        else:
            break
    text = source[start:k]
    if k < n and (_ident_char(source[k])):
        raise template_error(source, start, f"bad number syntax: {source[start : k + 1]!r}")
    try:
        return k, int(text, 0)
    except ValueError:
        pass
    try:
        if hexa:
            sign = -1.0 if text.startswith("-") else 1.0
            return k, sign * float.fromhex(text.lstrip("+-").replace("_", ""))
        return k, float(text)
    except (ValueError, OverflowError):
        raise template_error(source, start, f"bad number syntax: {text!r}") from None
