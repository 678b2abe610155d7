"""Go-compatible value formatting: `fmt` %v, `encoding/json`, `printf`, time layouts, escapes.

Templates written for the Go seed project print values the way Go's `fmt.Fprint` does
(`[a b]`, `map[k:v]`, `1e+06`) and `json` marshals the way `encoding/json` does (sorted keys,
HTML-safe escapes). Matching those byte for byte keeps rendered output identical.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

__all__ = [
    "go_float",
    "go_json",
    "go_quote",
    "go_sprint",
    "go_sprintf",
    "go_sprintln",
    "go_str",
    "go_time_format",
    "html_escape",
    "js_escape",
    "query_escape",
    "sorted_items",
    "type_name",
]


def type_name(value: Any) -> str:
    """A short, Go-flavoured type name for error messages."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list | tuple):
        return "slice"
    return type(value).__name__


def _digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of a finite non-zero float, and the decimal point."""
    sign_digits = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(str(d) for d in sign_digits.digits).lstrip("0") or "0"
    exponent = int(sign_digits.exponent)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped, len(stripped) + exponent


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _exp(digits: str, point: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_float(value: float) -> str:
    """`fmt.Sprint(float64)`: shortest digits, %e when the exponent is < -4 or >= 6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, point = _digits(value)
    sign = "-" if value < 0 else ""
    exp = point - 1
    # fmt's %v is strconv 'g' with precision -1, which switches to %e when
    # exp < -4 || exp >= 6 ("if precision was the shortest possible, use precision 6").
    if exp < -4 or exp >= 6:
        return sign + _exp(digits, point)
    return sign + _fixed(digits, point)


def sorted_items(mapping: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    def key(item: tuple[Any, Any]) -> tuple[int, Any]:
        k = item[0]
        if isinstance(k, bool):
            return (0, int(k))
        if isinstance(k, int | float):
            return (1, k)
        if isinstance(k, str):
            return (2, k)
        return (3, go_str(k))

    return sorted(mapping.items(), key=key)


def go_str(value: Any) -> str:
    """`fmt.Sprint(value)` for one operand (`%v`); nil is `<nil>`."""
    if type(value) is str:
        return value
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        inner = " ".join(f"{go_str(k)}:{go_str(v)}" for k, v in sorted_items(value))
        return f"map[{inner}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, bytes | bytearray):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, _dt.datetime):
        return go_time_format(value, "2006-01-02 15:04:05.999999999 -0700 MST")
    return str(value)


def go_sprint(args: list[Any]) -> str:
    """`fmt.Sprint`: spaces between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(go_str(arg))
        prev_string = is_string
    return "".join(out)


def go_sprintln(args: list[Any]) -> str:
    """`fmt.Sprintln`: operands always separated by spaces, newline appended."""
    return " ".join(go_str(a) for a in args) + "\n"


# --- strconv.Quote -------------------------------------------------------------------------

_NAMED_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """`strconv.Quote`: a double-quoted Go string literal."""
    out = ['"']
    for ch in text:
        if ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


# --- encoding/json -------------------------------------------------------------------------

_JSON_HTML = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {go_float(value)}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, point = _digits(value)
    sign = "-" if value < 0 else ""
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        text = _exp(digits, point)
        # encoding/json cleans e-09 up to e-9
        if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
            text = text[:-2] + text[-1]
        return sign + text
    return sign + _fixed(digits, point)


def _json_encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_json_float(value))
    elif isinstance(value, str):
        out.append(_json.dumps(value, ensure_ascii=False).translate(_JSON_HTML))
    elif isinstance(value, Mapping):
        out.append("{")
        items = sorted((str(k), v) for k, v in value.items())
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            _json_encode(k, out)
            out.append(":")
            _json_encode(v, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _json_encode(v, out)
        out.append("]")
    elif isinstance(value, _dt.datetime):
        _json_encode(go_time_format(value, "2006-01-02T15:04:05.999999999Z07:00"), out)
    else:
        raise ValueError(f"json: unsupported type: {type_name(value)}")


def go_json(value: Any) -> str:
    """`json.Marshal`: compact, map keys sorted, `<>&` escaped. Raises ValueError."""
    out: list[str] = []
    try:
        _json_encode(value, out)
    except RecursionError as exc:
        raise ValueError("json: value is too deeply nested or cyclic") from exc
    return "".join(out)


# --- escapes -------------------------------------------------------------------------------

_HTML = str.maketrans(
    {
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "'": "&#39;",
        '"': "&#34;",
        "\x00": "\ufffd",
    }
)


def html_escape(text: str) -> str:
    """`template.HTMLEscapeString`."""
    return text.translate(_HTML)


def js_escape(text: str) -> str:
    """`template.JSEscapeString`."""
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == '"':
            out.append('\\"')
        elif ch in "<>&=":
            out.append(f"\\u{ord(ch):04X}")
        elif ord(ch) < 0x20 or (ord(ch) >= 0x80 and not ch.isprintable()):
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def query_escape(text: str) -> str:
    """`url.QueryEscape`: spaces become `+`, everything but `A-Za-z0-9-_.~` is escaped."""
    return quote_plus(text, safe="")


# --- printf --------------------------------------------------------------------------------


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(arg)}={go_str(arg)})"


def _pad(text: str, width: int | None, flags: str, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+-" else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def _format_one(verb: str, flags: str, prec: int | None, arg: Any) -> tuple[str, bool]:
    """Format one operand; returns (text, numeric?)."""
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    plus = "+" if "+" in flags else (" " if " " in flags else "")
    if verb == "v":
        return go_str(arg), False
    if verb == "s":
        if isinstance(arg, str):
            return (arg if prec is None else arg[:prec]), False
        if isinstance(arg, list | tuple | Mapping):
            return go_str(arg), False
        return _bad_verb(verb, arg), False
    if verb == "q":
        if isinstance(arg, str):
            return go_quote(arg), False
        if is_int:
            return "'" + go_quote(chr(arg))[1:-1].replace("'", "\\'") + "'", False
        return _bad_verb(verb, arg), False
    if verb == "t":
        if isinstance(arg, bool):
            return ("true" if arg else "false"), False
        return _bad_verb(verb, arg), False
    if verb in "dboxXc":
        if verb in "xX" and isinstance(arg, str):
            text = arg.encode().hex()
            return (text.upper() if verb == "X" else text), False
        if not is_int:
            return _bad_verb(verb, arg), False
        if verb == "c":
            return chr(arg), False
        spec = {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb]
        text = format(abs(arg), spec)
        if "#" in flags and verb in "xX":
            text = ("0X" if verb == "X" else "0x") + text
        return ("-" if arg < 0 else plus) + text, True
    if verb in "feEgG":
        if not isinstance(arg, float) or isinstance(arg, bool):
            return _bad_verb(verb, arg), False
        if verb in "gG" and prec is None:
            text = go_float(abs(arg))
        else:
            text = format(abs(arg), f".{6 if prec is None else prec}{verb}")
        return ("-" if math.copysign(1.0, arg) < 0 else plus) + text, True
    return f"%!{verb}(BADVERB)", False


def go_sprintf(fmt: str, args: list[Any]) -> str:
    """A practical subset of Go's `fmt.Sprintf` (verbs v s q t d b o x X c f e E g G %)."""
    out: list[str] = []
    i, n, argi = 0, len(fmt), 0
    while i < n:
        ch = fmt[i]
        if ch != "%":
            j = fmt.find("%", i)
            j = n if j < 0 else j
            out.append(fmt[i:j])
            i = j
            continue
        i += 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width: int | None = None
        start = i
        while i < n and fmt[i].isdigit():
            i += 1
        if i > start:
            width = int(fmt[start:i])
        prec: int | None = None
        if i < n and fmt[i] == ".":
            i += 1
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            prec = int(fmt[start:i]) if i > start else 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        text, numeric = _format_one(verb, flags, prec, args[argi])
        argi += 1
        out.append(_pad(text, width, flags, numeric))
    if argi < len(args):
        extra = ", ".join(f"{type_name(a)}={go_str(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# --- time layouts --------------------------------------------------------------------------

_LONG_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_LONG_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Longest match first within each leading character, mirroring Go's layout scanner.
_TZ_TOKENS = ("070000", "07:00:00", "0700", "07:00", "07")


def _offset(dt: _dt.datetime, token: str, zulu: bool) -> str:
    delta = dt.utcoffset() or _dt.timedelta(0)
    seconds = int(delta.total_seconds())
    if zulu and seconds == 0:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    hh, mm, ss = seconds // 3600, seconds // 60 % 60, seconds % 60
    if token == "070000":
        return f"{sign}{hh:02d}{mm:02d}{ss:02d}"
    if token == "07:00:00":
        return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}"
    if token == "0700":
        return f"{sign}{hh:02d}{mm:02d}"
    if token == "07:00":
        return f"{sign}{hh:02d}:{mm:02d}"
    return f"{sign}{hh:02d}"


def _starts_lower(text: str) -> bool:
    return bool(text) and "a" <= text[0] <= "z"


def _next_chunk(layout: str, i: int, dt: _dt.datetime) -> tuple[str, int] | None:
    """If a layout element starts at `i`, return (formatted, length)."""
    rest = layout[i:]
    c = rest[0]
    hour12 = dt.hour % 12 or 12
    if c == "J" and rest.startswith("Jan"):
        if rest.startswith("January"):
            return _LONG_MONTHS[dt.month - 1], 7
        if not _starts_lower(rest[3:]):
            return _LONG_MONTHS[dt.month - 1][:3], 3
    elif c == "M" and rest.startswith("Mon"):
        if rest.startswith("Monday"):
            return _LONG_DAYS[dt.weekday()], 6
        if not _starts_lower(rest[3:]):
            return _LONG_DAYS[dt.weekday()][:3], 3
    elif c == "M" and rest.startswith("MST"):
        name = dt.tzname() or "UTC"
        return name, 3
    elif c == "0":
        if len(rest) >= 2 and "1" <= rest[1] <= "6":
            value = [dt.month, dt.day, hour12, dt.minute, dt.second, dt.year % 100][
                int(rest[1]) - 1
            ]
            return f"{value:02d}", 2
        if rest.startswith("002"):
            return f"{dt.timetuple().tm_yday:03d}", 3
    elif c == "1":
        if rest.startswith("15"):
            return f"{dt.hour:02d}", 2
        return str(dt.month), 1
    elif c == "2":
        if rest.startswith("2006"):
            return f"{dt.year:04d}", 4
        return str(dt.day), 1
    elif c == "_":
        if rest.startswith("_2") and not rest.startswith("_2006"):
            return f"{dt.day:2d}", 2
        if rest.startswith("__2"):
            return f"{dt.timetuple().tm_yday:3d}", 3
    elif c in "345":
        return str({"3": hour12, "4": dt.minute, "5": dt.second}[c]), 1
    elif c == "P" and rest.startswith("PM"):
        return ("PM" if dt.hour >= 12 else "AM"), 2
    elif c == "p" and rest.startswith("pm"):
        return ("pm" if dt.hour >= 12 else "am"), 2
    elif c in "-Z":
        for token in _TZ_TOKENS:
            if rest[1:].startswith(token):
                return _offset(dt, token, zulu=c == "Z"), 1 + len(token)
    elif c in ".," and len(rest) >= 2 and rest[1] in "09":
        digit = rest[1]
        j = 1
        while j < len(rest) and rest[j] == digit:
            j += 1
        if not (j < len(rest) and rest[j].isdigit()):
            count = j - 1
            frac = f"{dt.microsecond:06d}000"[:count].ljust(count, "0")
            if digit == "9":
                frac = frac.rstrip("0")
                return ((c + frac) if frac else ""), j
            return c + frac, j
    return None


def go_time_format(dt: _dt.datetime, layout: str) -> str:
    """`time.Time.Format(layout)` for Go reference-time layouts (`2006-01-02T15:04:05Z07:00`)."""
    out: list[str] = []
    i = 0
    while i < len(layout):
        chunk = _next_chunk(layout, i, dt)
        if chunk is None:
            out.append(layout[i])
            i += 1
        else:
            out.append(chunk[0])
            i += chunk[1]
    return "".join(out)
