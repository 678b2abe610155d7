"""JSON in and out of the journal: values, inputs and errors."""

from __future__ import annotations

import builtins
import json
import math
import sys
import traceback
from typing import Any

from treadle.errors import NotSerializableError, StepError

_encode = json.JSONEncoder(allow_nan=False).encode
_raw_decode = json.JSONDecoder().raw_decode
_IMMUTABLE = (str, int, bool, type(None))


def decode(text: str) -> Any:
    """Decode JSON text this module encoded (no surrounding whitespace to skip)."""
    return _raw_decode(text)[0]


def encode(value: Any, what: str) -> str:
    """Strict JSON text of `value` (no NaN); NotSerializableError naming `what` otherwise."""
    try:
        return _encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotSerializableError(
            f"{what} is not JSON-serialisable ({type(value).__name__}): {exc}"
        ) from exc


def is_immutable_json(value: Any) -> bool:
    """True for JSON scalars, which need no copy to be journaled."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return True
    return kind is float and math.isfinite(value)


def to_json_value(value: Any, what: str) -> Any:
    """A JSON round-tripped copy of `value`; NotSerializableError naming `what` otherwise."""
    if is_immutable_json(value):
        return value
    return decode(encode(value, what))


def json_copies(value: Any, what: str) -> tuple[Any, Any]:
    """Two independent JSON copies of `value` (one for the journal, one for the code that goes
    on using it), from one encoding; NotSerializableError naming `what` otherwise."""
    if is_immutable_json(value):
        return value, value
    text = encode(value, what)
    return decode(text), decode(text)


def to_json_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A step's input for the journal: its arguments, with non-JSON values shown as repr."""
    if not kwargs and all(is_immutable_json(a) for a in args):
        return list(args)
    value: Any = list(args) if not kwargs else {"args": list(args), "kwargs": kwargs}
    try:
        return decode(_encode(value))
    except (TypeError, ValueError, RecursionError):
        return json.loads(json.dumps(value, default=lambda v: {"__repr__": repr(v)[:200]}))


def error_record(exc: BaseException) -> dict[str, Any]:
    """What the journal keeps of an exception: type, message, traceback, retryability."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{name}"
    record: dict[str, Any] = {
        "type": name,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "retryable": bool(getattr(exc, "retryable", True)),
    }
    try:
        json.dumps(exc.args)
        record["args"] = list(exc.args)
    except (TypeError, ValueError):
        pass
    return record


def restore_error(record: dict[str, Any] | None, step: str = "") -> BaseException:
    """Rebuild a recorded exception of a type this process already has loaded.

    Never imports a module: only builtins and classes in modules already loaded qualify, so a
    journal cannot make the engine load code. Anything else becomes a `StepError`.
    """
    record = record or {}
    name = str(record.get("type", "Exception"))
    message = str(record.get("message", ""))
    cls: Any = None
    if "." not in name:
        cls = getattr(builtins, name, None)
    else:
        module_name, _, qualname = name.rpartition(".")
        module = sys.modules.get(module_name)
        while module is None and "." in module_name:  # nested classes: a.b.Outer.Inner
            module_name, _, outer = module_name.rpartition(".")
            qualname = f"{outer}.{qualname}"
            module = sys.modules.get(module_name)
        cls = module
        for part in qualname.split("."):
            cls = getattr(cls, part, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            exc: BaseException = cls(*record.get("args", [message]))
            return exc
        except Exception:
            pass
    return StepError(message, error_type=name, step=step)
