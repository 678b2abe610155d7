"""Write docs/reference.md: the public Python API from signatures and docstrings.

    python scripts/gen_reference.py          # rewrite the file
    python scripts/gen_reference.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import treadle
import treadle.testing

OUT = Path(__file__).parents[1] / "docs" / "reference.md"
SECTIONS = [
    ("Entry points", ["Engine", "Handle", "Context", "workflow", "step", "current_step",
                      "StepInfo"]),
    ("Definitions", ["WorkflowDef", "StepFunction", "Registry", "RetryPolicy", "Queue"]),
    ("Read models", ["Execution", "StepRecord", "ExecutionSummary", "ExecutionStatus", "Event",
                     "EventType", "Page"]),
    ("Hooks and time", ["Observer", "Clock"]),
    ("Errors", ["TreadleError", "ExecutionFailedError", "ExecutionCancelledError",
                "ExecutionNotFoundError", "NonDeterminismError", "NotSerializableError",
                "QueueFullError", "LockTimeoutError", "SignalTimeoutError", "StepError",
                "StepTimeoutError", "WorkflowNotFoundError", "WorkflowVersionError"]),
]


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _doc(obj: object) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _members(cls: type) -> list[str]:
    lines = []
    for name, member in cls.__dict__.items():
        if name.startswith("_") or not (callable(member) or isinstance(member, property)):
            continue
        target = member.fget if isinstance(member, property) else member
        doc = _doc(target).split("\n\n")[0].replace("\n", " ")
        kind = "property" if isinstance(member, property) else (
            "async " if inspect.iscoroutinefunction(target) else "")
        sig = "" if isinstance(member, property) else _signature(target)
        lines.append(f"- `{kind}{name}{sig}`" + (f" — {doc}" if doc else ""))
    return lines


def render() -> str:
    parts = ["# Python API reference", "",
             "Generated from the code by `scripts/gen_reference.py`; do not edit by hand.",
             "Everything here is importable from `treadle`; testing helpers from "
             "`treadle.testing`.", ""]
    for title, names in SECTIONS:
        parts += [f"## {title}", ""]
        for name in names:
            obj = getattr(treadle, name)
            head = f"### `treadle.{name}`"
            sig = _signature(obj) if inspect.isfunction(obj) or inspect.isclass(obj) else ""
            if inspect.isclass(obj) and issubclass(obj, BaseException | str):
                sig = ""
            parts += [head, "", f"`{name}{sig}`" if sig else "", "", _doc(obj), ""]
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                if hasattr(obj, "__members__"):
                    values = ", ".join(f"`{m.value}`" for m in obj)  # type: ignore[attr-defined]
                    parts += [f"Values: {values}", ""]
                else:
                    parts += [*_members(obj), ""]
    parts += ["## Testing: `treadle.testing`", ""]
    for name in treadle.testing.__all__:
        obj = getattr(treadle.testing, name)
        parts += [f"### `treadle.testing.{name}`", "", f"`{name}{_signature(obj)}`", "",
                  _doc(obj), ""]
        if inspect.isclass(obj):
            parts += [*_members(obj), ""]
    text = "\n".join(parts)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == text else 1)
    OUT.write_text(text)
