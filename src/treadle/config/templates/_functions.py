"""The function tables of both forms.

* `GO_FUNCS` (`{{ }}`): the Go project's functions, its context helpers `step` and `trigger`,
  and Go text/template's builtins (`and or not len index slice eq ne lt le gt ge print printf
  println html js urlquery`).
* `EXPR_FUNCS` (`${ }`): expr-lang builtins, overridden by the Go project's functions of the
  same name (as in the Go project, whose expr environment holds its function map).
* `PREDICATES`: expr-lang functions taking a predicate (`filter(xs, # > 1)`).
"""

from __future__ import annotations

import base64
import binascii
import json as _json
import math
from collections.abc import Callable, Mapping
from typing import Any

from ._common import MAX_ITEMS, FuncError, Scope, go_truth, lookup_key
from ._gofmt import (
    go_json,
    go_sprint,
    go_sprintf,
    go_sprintln,
    go_str,
    html_escape,
    js_escape,
    query_escape,
    type_name,
)
from ._project_funcs import (
    PROJECT,
    F,
    Func,
    as_items,
    as_text,
    is_int,
    parse_float,
    register,
    to_int,
    walk_keys,
)

__all__ = ["EXPR_FUNCS", "GO_FUNCS", "PREDICATES", "Func", "index_path"]

_GO: list[Func] = []
_EXPR: list[Func] = []


def _go(name: str, signature: str, doc: str, *, scoped: bool = False) -> Callable[[F], F]:
    return register(_GO, name, signature, doc, scoped=scoped)


def _expr(name: str, signature: str, doc: str) -> Callable[[F], F]:
    return register(_EXPR, name, signature, doc)


# --- the Go project's context helpers ------------------------------------------------------


@_go(
    "step",
    "step NAME [KEY...]",
    "Output of step NAME, walking KEYs (hyphenated names work).",
    scoped=True,
)
def _step(scope: Scope, name: Any, *keys: Any) -> Any:
    steps = scope.data.get("steps")
    value = steps.get(name) if isinstance(steps, Mapping) else None
    if value is None:
        if scope.strict:
            raise FuncError(f"step {go_str(name)!r} not found in pipeline context")
        return None
    return walk_keys(scope, value, keys, f"step {go_str(name)!r}")


@_go("trigger", "trigger [KEY...]", "Trigger data, walking KEYs.", scoped=True)
def _trigger(scope: Scope, *keys: Any) -> Any:
    value = scope.data.get("trigger")
    if value is None:
        if scope.strict and keys:
            raise FuncError(f"trigger data is nil; cannot access key {go_str(keys[0])!r}")
        return None
    return walk_keys(scope, value, keys, "trigger")


@_go("trim", "trim S", "Treadle extra: S without surrounding whitespace (as `trimSpace`).")
def _trim_go(s: Any) -> str:
    return as_text(s).strip()


# --- text/template builtins ----------------------------------------------------------------


@_go("and", "and A B...", "The first false argument, or the last one (short-circuit).")
def _and(first: Any, *rest: Any) -> Any:  # evaluated lazily by the executor
    return rest[-1] if rest else first


@_go("or", "or A B...", "The first true argument, or the last one (short-circuit).")
def _or(first: Any, *rest: Any) -> Any:  # evaluated lazily by the executor
    return rest[-1] if rest else first


@_go("not", "not V", "The negation of V's truth (false, 0, nil, empty are false).")
def _not(value: Any) -> bool:
    return not go_truth(value)


def index_path(scope: Scope, item: Any, keys: tuple[Any, ...], label: str) -> Any:
    """Go's `index`: maps by key, lists by integer. Missing keys are nil (strict: an error)."""
    path = label
    for key in keys:
        path = f"{path}.{go_str(key)}" if path else go_str(key)
        if item is None:
            if scope.strict:
                raise FuncError(f"missing key {path} (index of nil)")
            return None
        if isinstance(item, Mapping):
            found, item = lookup_key(item, key)
            if not found:
                if scope.strict:
                    raise FuncError(f"missing key {path}")
                return None
        elif isinstance(item, list | tuple | str):
            if not is_int(key):
                raise FuncError(f"cannot index {type_name(item)} with type {type_name(key)}")
            seq = item.encode() if isinstance(item, str) else item
            if not 0 <= key < len(seq):
                raise FuncError(f"index out of range: {key}")
            item = seq[key]
        else:
            raise FuncError(f"can't index item of type {type_name(item)}")
    return item


@_go("index", "index V KEY...", "V[KEY][KEY2]... through maps and lists.", scoped=True)
def _index(scope: Scope, item: Any, *keys: Any) -> Any:
    return index_path(scope, item, keys, "")


@_go("len", "len V", "Length of a string (UTF-8 bytes), list or map.")
def _len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | Mapping):
        return len(value)
    raise FuncError(f"len of type {type_name(value)}")


@_go("slice", "slice V [I [J]]", "V[I:J] of a list or string.")
def _slice(item: Any, *indices: Any) -> Any:
    if not isinstance(item, list | tuple | str):
        raise FuncError(f"can't slice item of type {type_name(item)}")
    if len(indices) > 2:
        raise FuncError("too many slice indexes")
    bounds = [int(i) if is_int(i) else -1 for i in indices]
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise FuncError(f"slice index out of range: {lo}:{hi}")
    return item[lo:hi]


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _equal(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == "nil" or kb == "nil":
        return a is None and b is None
    if ka != kb:
        raise FuncError(f"incompatible types for comparison: {type_name(a)} and {type_name(b)}")
    return bool(a == b)


def _ordered(a: Any, b: Any) -> None:
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka not in ("number", "string"):
        raise FuncError(f"invalid type for comparison: {type_name(a)} and {type_name(b)}")


@_go("eq", "eq A B...", "A == B, or A equal to any of B... (ints and floats compare).")
def _eq(a: Any, b: Any, *others: Any) -> bool:
    return any(_equal(a, x) for x in (b, *others))


@_go("ne", "ne A B", "A != B.")
def _ne(a: Any, b: Any) -> bool:
    return not _equal(a, b)


@_go("lt", "lt A B", "A < B (numbers or strings).")
def _lt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a < b)


@_go("le", "le A B", "A <= B.")
def _le(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a <= b)


@_go("gt", "gt A B", "A > B.")
def _gt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a > b)


@_go("ge", "ge A B", "A >= B.")
def _ge(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a >= b)


@_go("print", "print V...", "Go `fmt.Sprint`.")
def _print(*values: Any) -> str:
    return go_sprint(list(values))


@_go("printf", "printf FORMAT V...", "Go `fmt.Sprintf` (verbs v s q d f e g t x c b o).")
def _printf(fmt: Any, *values: Any) -> str:
    return go_sprintf(as_text(fmt), list(values))


@_go("println", "println V...", "Go `fmt.Sprintln`.")
def _println(*values: Any) -> str:
    return go_sprintln(list(values))


def _escape_args(values: tuple[Any, ...]) -> str:
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return go_sprint(list(values))


@_go("html", "html V...", "HTML-escape the text of V.")
def _html(value: Any, *more: Any) -> str:
    return html_escape(_escape_args((value, *more)))


@_go("js", "js V...", "JavaScript-escape the text of V.")
def _js(value: Any, *more: Any) -> str:
    return js_escape(_escape_args((value, *more)))


@_go("urlquery", "urlquery V...", "Query-escape the text of V.")
def _urlquery(value: Any, *more: Any) -> str:
    return query_escape(_escape_args((value, *more)))


# --- expr-lang builtins (${ } only) --------------------------------------------------------


def _number(value: Any, what: str) -> float:
    if isinstance(value, str):
        parsed = parse_float(value.strip())
        if parsed is not None:
            return parsed
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise FuncError(f"cannot convert {go_str(value)!r} ({type_name(value)}) to {what}")


@_expr("len", "len(v)", "Length of a string (characters), array or map.")
def _len_expr(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise FuncError(f"invalid argument for len (type {type_name(value)})")


@_expr("trim", "trim(s[, chars])", "S without whitespace (or CHARS) at both ends.")
def _trim(s: Any, chars: Any = None) -> str:
    return as_text(s).strip(None if chars is None else as_text(chars))


@_expr("repeat", "repeat(s, n)", "S repeated N times.")
def _repeat(s: Any, count: Any) -> str:
    text, n = as_text(s), to_int(count)
    if n < 0 or len(text) * n > MAX_ITEMS:
        raise FuncError(f"repeat count {n} out of range")
    return text * n


@_expr("indexOf", "indexOf(s, sub)", "Index of SUB in S, or -1.")
def _index_of(s: Any, sub: Any) -> int:
    return as_text(s).find(as_text(sub))


@_expr("lastIndexOf", "lastIndexOf(s, sub)", "Last index of SUB in S, or -1.")
def _last_index_of(s: Any, sub: Any) -> int:
    return as_text(s).rfind(as_text(sub))


@_expr("abs", "abs(n)", "Absolute value.")
def _abs(n: Any) -> int | float:
    return abs(n) if is_int(n) else abs(_number(n, "float"))


@_expr("ceil", "ceil(n)", "Round up (a float).")
def _ceil(n: Any) -> float:
    return float(math.ceil(_number(n, "float")))


@_expr("floor", "floor(n)", "Round down (a float).")
def _floor(n: Any) -> float:
    return float(math.floor(_number(n, "float")))


@_expr("round", "round(n)", "Round half away from zero (a float).")
def _round(n: Any) -> float:
    f = _number(n, "float")
    return float(math.floor(f + 0.5) if f >= 0 else -math.floor(-f + 0.5))


@_expr("keys", "keys(m)", "Keys of a map.")
def _keys(m: Any) -> list[Any]:
    return list(m) if isinstance(m, Mapping) else []


@_expr("values", "values(m)", "Values of a map.")
def _values(m: Any) -> list[Any]:
    return list(m.values()) if isinstance(m, Mapping) else []


@_expr("type", "type(v)", "nil, bool, int, float, string, array or map.")
def _type(value: Any) -> str:
    kind = _kind(value)
    if kind == "number":
        return "int" if is_int(value) else "float"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    return kind if kind != "other" else type(value).__name__


@_expr("int", "int(v)", "A number or numeric string as an int.")
def _int(value: Any) -> int:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise FuncError(f"cannot convert {value!r} to int") from None
    return to_int(_number(value, "int"))


@_expr("float", "float(v)", "A number or numeric string as a float.")
def _float(value: Any) -> float:
    return _number(value, "float")


@_expr("string", "string(v)", "V as text.")
def _string(value: Any) -> str:
    return go_str(value)


@_expr("toJSON", "toJSON(v)", "V as JSON text.")
def _to_json(value: Any) -> str:
    return go_json(value)


@_expr("fromJSON", "fromJSON(s)", "Parse JSON text.")
def _from_json(s: Any) -> Any:
    try:
        return _json.loads(as_text(s))
    except ValueError as exc:
        raise FuncError(f"fromJSON: {exc}") from None


@_expr("toBase64", "toBase64(s)", "Base64-encode S.")
def _to_base64(s: Any) -> str:
    return base64.b64encode(as_text(s).encode()).decode()


@_expr("fromBase64", "fromBase64(s)", "Base64-decode S.")
def _from_base64(s: Any) -> str:
    try:
        return base64.b64decode(as_text(s), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise FuncError(f"fromBase64: {exc}") from None


def _array(value: Any, what: str) -> list[Any]:
    items = as_items(value)
    if items is None:
        raise FuncError(f"{what} expects an array, got {type_name(value)}")
    return items


@_expr("take", "take(a, n)", "The first N items.")
def _take(a: Any, n: Any) -> list[Any]:
    return _array(a, "take")[: max(0, to_int(n))]


@_expr("sort", "sort(a[, order])", "A sorted copy; ORDER is asc (default) or desc.")
def _sort(a: Any, order: Any = "asc") -> list[Any]:
    try:
        return sorted(_array(a, "sort"), reverse=as_text(order) == "desc")
    except TypeError:
        raise FuncError("sort: values are not comparable") from None


@_expr("reverse", "reverse(a)", "A reversed copy.")
def _reverse(a: Any) -> list[Any]:
    return list(reversed(_array(a, "reverse")))


def _numbers(value: Any, what: str) -> list[float]:
    return [_number(v, "float") for v in _array(value, what)]


@_expr("mean", "mean(a)", "Average of the numbers.")
def _mean(a: Any) -> float:
    nums = _numbers(a, "mean")
    return sum(nums) / len(nums) if nums else 0.0


@_expr("median", "median(a)", "Median of the numbers.")
def _median(a: Any) -> float:
    nums = sorted(_numbers(a, "median"))
    if not nums:
        return 0.0
    mid = len(nums) // 2
    return nums[mid] if len(nums) % 2 else (nums[mid - 1] + nums[mid]) / 2


@_expr("concat", "concat(a, b...)", "The arrays joined together.")
def _concat(a: Any, *more: Any) -> list[Any]:
    out: list[Any] = []
    for value in (a, *more):
        out.extend(_array(value, "concat"))
    return out


@_expr("uniq", "uniq(a)", "Distinct items, in order.")
def _uniq(a: Any) -> list[Any]:
    out: list[Any] = []
    for v in _array(a, "uniq"):
        if v not in out:
            out.append(v)
    return out


@_expr("get", "get(v, key)", "V[KEY], or nil when missing or out of range.")
def _get(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping):
        return lookup_key(value, key)[1]
    if isinstance(value, list | tuple) and is_int(key) and -len(value) <= key < len(value):
        return value[key]
    return None


@_expr("toPairs", "toPairs(m)", "[[key, value], ...] of a map.")
def _to_pairs(m: Any) -> list[list[Any]]:
    return [[k, v] for k, v in m.items()] if isinstance(m, Mapping) else []


@_expr("fromPairs", "fromPairs(a)", "A map from [[key, value], ...].")
def _from_pairs(a: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in _array(a, "fromPairs"):
        items = as_items(pair)
        if not items or len(items) != 2:
            raise FuncError("fromPairs expects [key, value] pairs")
        out[items[0]] = items[1]
    return out


#: expr-lang functions taking a predicate (`{ # > 1 }` or a bare expression using `#`/`.x`).
PREDICATES: dict[str, str] = {
    "all": "True if every item matches.",
    "any": "True if some item matches.",
    "none": "True if no item matches.",
    "one": "True if exactly one item matches.",
    "filter": "The items that match.",
    "map": "The predicate's value for every item.",
    "find": "The first matching item, or nil.",
    "findIndex": "Index of the first match, or -1.",
    "findLast": "The last matching item, or nil.",
    "findLastIndex": "Index of the last match, or -1.",
    "count": "Number of matching items.",
    "reduce": "Fold with `#acc` (accumulator) and `#` (item); optional initial value.",
}

#: Functions of the `{{ }}` form.
GO_FUNCS: dict[str, Func] = {f.name: f for f in [*PROJECT, *_GO]}
#: Functions of the `${ }` form: expr-lang builtins, overridden by the project's functions.
EXPR_FUNCS: dict[str, Func] = {f.name: f for f in [*_EXPR, *PROJECT]}
