"""Runtime semantics of `${ }` operators, following expr-lang.

Numbers: `int op int` stays int for `+ - * %`; `/` and `**` always give floats (division by
zero gives ±Inf/NaN like Go floats; `%` by zero is an error). Comparisons need two numbers
or two strings. `==` never fails: values of different kinds are simply unequal. `and`, `or`,
`not` and `?:` take booleans; nil (a missing key) counts as false.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ._common import MAX_ITEMS, FuncError, wrap64
from ._gofmt import type_name

__all__ = [
    "arith",
    "as_bool",
    "compare",
    "equal",
    "fetch",
    "is_number",
    "make_range",
    "member_in",
    "negate",
    "slice_value",
    "string_op",
]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equal(a: Any, b: Any) -> bool:
    """expr's `==`: numbers compare across int/float, containers deeply, kinds never mix."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is None and b is None
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    return bool(a == b)


def _mismatch(op: str, a: Any, b: Any) -> FuncError:
    return FuncError(
        f"invalid operation: {op} (mismatched types {type_name(a)} and {type_name(b)})"
    )


def compare(op: str, a: Any, b: Any) -> bool:
    if not ((is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        raise _mismatch(op, a, b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _divide(a: float, b: float) -> float:
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _power(a: float, b: float) -> float:
    try:
        return float(math.pow(a, b))
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


def arith(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            if len(a) + len(b) > MAX_ITEMS:
                raise FuncError("array too large")
            return [*a, *b]
    if not (is_number(a) and is_number(b)):
        raise _mismatch(op, a, b)
    both_int = isinstance(a, int) and isinstance(b, int)
    if op in ("+", "-", "*"):
        result = a + b if op == "+" else a - b if op == "-" else a * b
        return wrap64(result) if both_int else result
    if op == "/":
        return _divide(float(a), float(b))
    if op == "%":
        if not both_int:
            raise _mismatch(op, a, b)
        if b == 0:
            raise FuncError("integer divide by zero")
        rem = abs(a) % abs(b)  # Go's % truncates toward zero: the sign follows a
        return -rem if a < 0 else rem
    return _power(float(a), float(b))  # ** and ^


def negate(op: str, value: Any) -> Any:
    if not is_number(value):
        raise FuncError(f"invalid operation: {op}{type_name(value)}")
    return -value if op == "-" else value


def as_bool(value: Any, what: str) -> bool:
    """Operands of and/or/not/?:. nil is false; other non-booleans are an error."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise FuncError(f"{what} expects a bool, got {type_name(value)}")


def member_in(item: Any, container: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:
            return False
    if isinstance(container, list | tuple):
        return any(equal(item, x) for x in container)
    raise FuncError(f"operator in not defined on {type_name(container)}")


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise FuncError(f"invalid regular expression {pattern!r}: {exc}") from None


def string_op(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if not (isinstance(a, str) and isinstance(b, str)):
        raise _mismatch(op, a, b)
    if op == "contains":
        return b in a
    if op == "startsWith":
        return a.startswith(b)
    if op == "endsWith":
        return a.endswith(b)
    return _regex(b).search(a) is not None  # matches


def make_range(a: Any, b: Any) -> list[int]:
    if (
        not (isinstance(a, int) and isinstance(b, int))
        or isinstance(a, bool)
        or isinstance(b, bool)
    ):
        raise _mismatch("..", a, b)
    if b - a + 1 > MAX_ITEMS:
        raise FuncError(f"range {a}..{b} is too large")
    return list(range(a, b + 1))


def fetch(container: Any, key: Any) -> tuple[bool, Any]:
    """`container[key]` / `container.key`. Returns (found, value); errors on bad types."""
    if isinstance(container, Mapping):
        try:
            # `in` first: indexing a defaultdict would insert the key into the caller's data
            return (True, container[key]) if key in container else (False, None)
        except TypeError:  # unhashable key
            return False, None
    if isinstance(container, list | tuple | str):
        if not isinstance(key, int) or isinstance(key, bool):
            raise FuncError(f"cannot fetch {key!r} from {type_name(container)}")
        index = key + len(container) if key < 0 else key
        if not 0 <= index < len(container):
            raise FuncError(f"index out of range: {key} (length {len(container)})")
        return True, container[index]
    raise FuncError(f"cannot fetch {key!r} from {type_name(container)}")


def slice_value(container: Any, lo: Any, hi: Any) -> Any:
    if not isinstance(container, list | tuple | str):
        raise FuncError(f"cannot slice {type_name(container)}")
    size = len(container)
    bounds = []
    for bound, default in ((lo, 0), (hi, size)):
        if bound is None:
            bounds.append(default)
        elif isinstance(bound, int) and not isinstance(bound, bool):
            bounds.append(max(0, min(size, bound + size if bound < 0 else bound)))
        else:
            raise FuncError(f"slice bounds must be int, got {type_name(bound)}")
    return container[bounds[0] : bounds[1]]
