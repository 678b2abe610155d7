"""The Go seed project's template functions (its `TemplateFuncMap`), plus the function record.

Argument order follows the Go project: the subject comes last, so `{{ .x | trimPrefix "+" }}`
reads naturally. Its `${ }` engine registers the same functions in the expr environment,
where they override expr-lang builtins of the same name, so `${ split(",", csv) }` also takes
the separator first. Functions only handle str, numbers, bool, None, lists/tuples and mappings;
they never read attributes of Python objects.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import math
import uuid as _uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ._common import FuncError, Scope, wrap64
from ._gofmt import go_json, go_str, go_time_format, query_escape, type_name

__all__ = [
    "PROJECT",
    "TIME_LAYOUTS",
    "F",
    "Func",
    "as_items",
    "as_text",
    "is_int",
    "parse_float",
    "register",
    "to_float",
    "to_int",
    "walk_keys",
]


@dataclass(frozen=True, slots=True)
class Func:
    """One template function: its callable, arity and documentation."""

    name: str
    fn: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: variadic
    signature: str
    doc: str
    scoped: bool = False  # receives the render Scope as its first argument


F = TypeVar("F", bound=Callable[..., Any])


def register(
    table: list[Func], name: str, signature: str, doc: str, *, scoped: bool = False
) -> Callable[[F], F]:
    """Decorator adding a function to `table`; the arity comes from its Python signature."""

    def add(fn: F) -> F:
        params = list(inspect.signature(fn).parameters.values())[1 if scoped else 0 :]
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        required = sum(1 for p in positional if p.default is p.empty)
        variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
        table.append(
            Func(name, fn, required, None if variadic else len(positional), signature, doc, scoped)
        )
        return fn

    return add


# --- coercions -----------------------------------------------------------------------------


def as_text(value: Any) -> str:
    """A string argument: nil is "" and numbers/bools use `%v` (Go would reject both), but a
    list or map is an error, as in Go, because its text is never what was meant."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, list | tuple | Mapping):
        raise FuncError(f"expected a string, got {type_name(value)}")
    return go_str(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_float(text: str) -> float | None:
    """strconv.ParseFloat: no surrounding spaces, no underscores."""
    if not text or text != text.strip() or "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def to_float(value: Any) -> float:
    """The Go project's toFloat64: numbers and numeric strings; anything else is 0."""
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        parsed = parse_float(value)
        return 0.0 if parsed is None else parsed
    return 0.0


def to_int(value: Any) -> int:
    if is_int(value):
        return int(value)
    f = to_float(value)
    return 0 if math.isnan(f) or math.isinf(f) else wrap64(int(f))


def as_items(value: Any) -> list[Any] | None:
    """toAnySlice: the items of a list/tuple, None for anything else."""
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    return None


def _field(item: Any, keys: tuple[Any, ...]) -> Any:
    """extractField: item[key] for mappings when a key is given, else the item itself."""
    if keys and isinstance(item, Mapping):
        return item.get(keys[0])
    return item


PROJECT: list[Func] = []


def _project(name: str, signature: str, doc: str, *, scoped: bool = False) -> Callable[[F], F]:
    return register(PROJECT, name, signature, doc, scoped=scoped)


# --- generators ----------------------------------------------------------------------------


@_project("uuidv4", "uuidv4", "Alias of `uuid`.")
@_project("uuid", "uuid", "A new random UUID v4 string.")
def _uuid4() -> str:
    return str(_uuid.uuid4())


TIME_LAYOUTS = {
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
    "Kitchen": "3:04PM",
    "Stamp": "Jan _2 15:04:05",
    "StampMilli": "Jan _2 15:04:05.000",
    "StampMicro": "Jan _2 15:04:05.000000",
    "StampNano": "Jan _2 15:04:05.000000000",
    "DateTime": "2006-01-02 15:04:05",
    "DateOnly": "2006-01-02",
    "TimeOnly": "15:04:05",
}


@_project(
    "now",
    "now [LAYOUT]",
    "Current UTC time; LAYOUT is a Go layout (`2006-01-02`) or a name such as `RFC3339` "
    "(the default), `DateOnly`, `DateTime`, `Kitchen`.",
)
def _now(*layout: Any) -> str:
    name = as_text(layout[0]) if layout else ""
    text = TIME_LAYOUTS.get(name, name) if name else TIME_LAYOUTS["RFC3339"]
    return go_time_format(_dt.datetime.now(_dt.UTC), text)


@_project("config", "config KEY", 'Value from the config provider; "" until one is wired in.')
def _config(key: Any) -> str:
    return ""


# --- strings -------------------------------------------------------------------------------


@_project("lower", "lower S", "Lower-case S.")
def _lower(s: Any) -> str:
    return as_text(s).lower()


@_project("upper", "upper S", "Upper-case S.")
def _upper(s: Any) -> str:
    return as_text(s).upper()


@_project("title", "title S", "Capitalise the first letter of each word.")
def _title(s: Any) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in as_text(s).split())


@_project("default", "default FALLBACK V", 'V, or FALLBACK when V is nil or "".')
def _default(fallback: Any, value: Any) -> Any:
    return fallback if value is None or value == "" else value


@_project("trimPrefix", "trimPrefix PREFIX S", "S without PREFIX.")
def _trim_prefix(prefix: Any, s: Any) -> str:
    return as_text(s).removeprefix(as_text(prefix))


@_project("trimSuffix", "trimSuffix SUFFIX S", "S without SUFFIX.")
def _trim_suffix(suffix: Any, s: Any) -> str:
    return as_text(s).removesuffix(as_text(suffix))


@_project("json", "json V", "V as compact JSON (Go `json.Marshal`); `{}` if it cannot be.")
def _json(value: Any) -> str:
    try:
        return go_json(value)
    except ValueError:
        return "{}"


@_project("replace", "replace OLD NEW S", "S with every OLD replaced by NEW.")
def _replace(old: Any, new: Any, s: Any) -> str:
    return as_text(s).replace(as_text(old), as_text(new))


@_project("contains", "contains SUB S", "Whether S contains SUB.")
def _contains(sub: Any, s: Any) -> bool:
    return as_text(sub) in as_text(s)


@_project("hasPrefix", "hasPrefix PREFIX S", "Whether S starts with PREFIX.")
def _has_prefix(prefix: Any, s: Any) -> bool:
    return as_text(s).startswith(as_text(prefix))


@_project("hasSuffix", "hasSuffix SUFFIX S", "Whether S ends with SUFFIX.")
def _has_suffix(suffix: Any, s: Any) -> bool:
    return as_text(s).endswith(as_text(suffix))


@_project("split", "split SEP S", "S split at SEP, as a list.")
def _split(sep: Any, s: Any) -> list[str]:
    text, separator = as_text(s), as_text(sep)
    return list(text) if separator == "" else text.split(separator)


@_project("join", "join SEP LIST", "The items of LIST (as text) joined with SEP.")
def _join(sep: Any, value: Any) -> str:
    separator = as_text(sep)
    items = as_items(value)
    if items is None:
        return go_str(value)
    return separator.join(go_str(v) for v in items)


@_project("trimSpace", "trimSpace S", "S without surrounding whitespace.")
def _trim_space(s: Any) -> str:
    return as_text(s).strip()


@_project("urlEncode", "urlEncode S", "Query-escape S (`a b&c` → `a+b%26c`).")
def _url_encode(s: Any) -> str:
    return query_escape(as_text(s))


# --- numbers and conversions ---------------------------------------------------------------


@_project("add", "add A B", "A + B (an int when both are ints).")
def _add(a: Any, b: Any) -> Any:
    return wrap64(a + b) if is_int(a) and is_int(b) else to_float(a) + to_float(b)


@_project("sub", "sub A B", "A - B (an int when both are ints).")
def _sub(a: Any, b: Any) -> Any:
    return wrap64(a - b) if is_int(a) and is_int(b) else to_float(a) - to_float(b)


@_project("mul", "mul A B", "A * B (an int when both are ints).")
def _mul(a: Any, b: Any) -> Any:
    return wrap64(a * b) if is_int(a) and is_int(b) else to_float(a) * to_float(b)


@_project("div", "div A B", "A / B as a float; 0 when B is 0.")
def _div(a: Any, b: Any) -> float:
    divisor = to_float(b)
    return 0.0 if divisor == 0 else to_float(a) / divisor


@_project("toInt", "toInt V", "V as an int (truncated; 0 if not numeric).")
def _to_int(value: Any) -> int:
    return to_int(value)


@_project("toFloat", "toFloat V", "V as a float (0 if not numeric).")
def _to_float(value: Any) -> float:
    return to_float(value)


@_project("toString", "toString V", "V as text (Go `%v`; nil is `<nil>`).")
def _to_string(value: Any) -> str:
    return go_str(value)


@_project("length", "length V", "Length of a string (UTF-8 bytes), list or map; else 0.")
def _length(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | Mapping):
        return len(value)
    return 0


@_project("coalesce", "coalesce V...", 'The first value that is not nil or "".')
def _coalesce(*values: Any) -> Any:
    for v in values:
        if v is not None and v != "":
            return v
    return None


# --- collections ---------------------------------------------------------------------------


@_project("sum", "sum LIST [KEY]", "Sum of the numbers (or of each item[KEY]).")
def _sum(slice_: Any, *keys: Any) -> Any:
    items = as_items(slice_)
    if items is None:
        return 0.0
    total: int | float = 0
    all_int = True
    for item in items:
        v = _field(item, keys)
        if all_int and is_int(v):
            total = wrap64(int(total) + v)
        else:
            all_int = False
            total = float(total) + to_float(v)
    return total


@_project("pluck", "pluck LIST KEY", "item[KEY] of every map in LIST.")
def _pluck(slice_: Any, key: Any) -> list[Any]:
    return [item.get(key) for item in as_items(slice_) or [] if isinstance(item, Mapping)]


@_project("flatten", "flatten LIST", "LIST with one level of nested lists flattened.")
def _flatten(slice_: Any) -> list[Any]:
    out: list[Any] = []
    for item in as_items(slice_) or []:
        inner = as_items(item)
        if inner is None:
            out.append(item)
        else:
            out.extend(inner)
    return out


@_project("unique", "unique LIST [KEY]", "LIST without duplicates (by item or item[KEY]).")
def _unique(slice_: Any, *keys: Any) -> list[Any]:
    seen: set[str] = set()
    out: list[Any] = []
    for item in as_items(slice_) or []:
        key = go_str(_field(item, keys))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


@_project("groupBy", "groupBy LIST KEY", "Map of item[KEY] (as text) to the items.")
def _group_by(slice_: Any, key: Any) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for item in as_items(slice_) or []:
        if isinstance(item, Mapping):
            groups.setdefault(go_str(item.get(key)), []).append(item)
    return groups


def _sort_key(value: Any) -> tuple[int, float, str]:
    """classifyForSort: numbers (and numeric strings) first, then text, nil last."""
    if value is None:
        return (2, 0.0, "")
    if isinstance(value, str):
        parsed = parse_float(value)
        return (1, 0.0, value) if parsed is None else (0, parsed, "")
    if is_int(value) or isinstance(value, float):
        return (0, float(value), "")
    return (1, 0.0, go_str(value))


@_project("sortBy", "sortBy LIST KEY", "Stable sort by item[KEY]: numbers, then text, then nil.")
def _sort_by(slice_: Any, key: Any) -> list[Any]:
    return sorted(as_items(slice_) or [], key=lambda item: _sort_key(_field(item, (key,))))


@_project("first", "first LIST", "The first item, or nil.")
def _first(slice_: Any) -> Any:
    items = as_items(slice_)
    return items[0] if items else None


@_project("last", "last LIST", "The last item, or nil.")
def _last(slice_: Any) -> Any:
    items = as_items(slice_)
    return items[-1] if items else None


def _extreme(items: list[Any] | None, keys: tuple[Any, ...], smaller: bool) -> Any:
    if not items:
        return None
    first = _field(items[0], keys)
    all_int = is_int(first)
    best: int | float = first if all_int else to_float(first)
    for item in items[1:]:
        v = _field(item, keys)
        if all_int and not is_int(v):
            all_int, best = False, float(best)
        candidate = v if all_int else to_float(v)
        if (candidate < best) if smaller else (candidate > best):
            best = candidate
    return best


@_project("min", "min LIST [KEY]", "The smallest number (or item[KEY]), or nil.")
def _min(slice_: Any, *keys: Any) -> Any:
    return _extreme(as_items(slice_), keys, smaller=True)


@_project("max", "max LIST [KEY]", "The largest number (or item[KEY]), or nil.")
def _max(slice_: Any, *keys: Any) -> Any:
    return _extreme(as_items(slice_), keys, smaller=False)


# --- context helpers ({{ }} only; registered by _functions) --------------------------------


def walk_keys(scope: Scope, value: Any, keys: tuple[Any, ...], what: str) -> Any:
    """Walk `keys` through nested maps; nil when one is missing (strict mode: an error)."""
    for key in keys:
        if not isinstance(value, Mapping):
            if scope.strict:
                raise FuncError(
                    f"{what}: value at key path is not a map (cannot access key {go_str(key)!r})"
                )
            return None
        if key not in value:
            if scope.strict:
                raise FuncError(f"{what}: key {go_str(key)!r} not found")
            return None
        value = value[key]
    return value
