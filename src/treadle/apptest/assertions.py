"""Checking a trigger's result against the assertions of a test case (Go `applyAssertion`).

* `output:` — each key's value equals the expected one, compared as JSON (so `1` and `1.0`
  are equal; a string expectation also matches a number or boolean of the same text, since
  Go templates render text where Treadle keeps native types); a missing key is null; a key
  with dots that is not itself a key is a path (Treadle). With `step:` the step's output is
  checked, else the pipeline's output.
* `executed: true|false` — whether `step` ran (a step that failed counts as executed; one a
  guard skipped does not; a saga's compensation steps count when they ran).
* `compensated: [names]` (Treadle) — exactly the steps the saga ran while compensating, in
  the order they ran (`[]`: no compensation ran).
* `response:` — the HTTP status, a substring of the body, and (Treadle) header values.
* `state:` — checked by the runner against the case's state stores (`treadle.apptest.state`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from treadle.apptest.model import Assertion
from treadle.apptest.report import MISSING, Failure, show

_MISSING = MISSING


@dataclass(slots=True)
class TriggerResult:
    """What one trigger produced."""

    output: Any = None
    """The pipeline's output (None when no pipeline finished)."""
    steps: dict[str, Any] = field(default_factory=dict)
    """The output of every step that ran, by step name."""
    error: str = ""
    """Why the pipeline (or the trigger itself) failed."""
    status: int | None = None
    """HTTP triggers: the response status (None for pipeline triggers)."""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    execution_id: str = ""
    compensated: list[str] = field(default_factory=list)
    """The steps run while the saga compensated, in the order they ran."""


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def _go_text(value: Any) -> str | None:
    """The text a Go template renders for a scalar (None for anything else)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(_normal(value))
    return None


def same(want: Any, got: Any) -> bool:
    """JSON equality, as the Go runner compares (`json.Marshal` of both sides).

    A string expectation also matches a number or boolean with the same text: Go templates
    render text (`total: "{{ .count }}"` is `"0"` there) where Treadle keeps native types.
    """
    try:
        if json.dumps(_normal(want), sort_keys=True, default=str) == \
                json.dumps(_normal(got), sort_keys=True, default=str):
            return True
    except (TypeError, ValueError):
        return bool(want == got)
    return isinstance(want, str) and _go_text(got) == want


def _lookup(actual: Mapping[str, Any], key: str) -> Any:
    if key in actual:
        return actual[key]
    if "." not in key:
        return _MISSING
    value: Any = actual
    for part in key.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _go(value: Any) -> str:
    """A value as Go's `%v` prints it in the one-line message."""
    if value is _MISSING or value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return show(value)


def check(label: str, assertion: Assertion, result: TriggerResult) -> list[Failure]:
    """The failures of one assertion (empty when it holds)."""
    out: list[Failure] = []
    if assertion.response is not None:
        resp = assertion.response
        if result.status is None:
            return [Failure(label, "response", "response: HTTP response assertions need an "
                            "http trigger")]  # fmt: skip
        if resp.status and result.status != resp.status:
            out.append(Failure(label, "response.status", f"expected status {resp.status}, got "
                               f"{result.status}", resp.status, result.status))  # fmt: skip
        text = result.body.decode(errors="replace")
        if resp.body and resp.body not in text:
            out.append(Failure(label, "response.body", f"body {resp.body!r} not found in "
                               f"{text[:200]!r}", resp.body, text))  # fmt: skip
        lowered = {k.lower(): v for k, v in result.headers.items()}
        for name, want in resp.headers.items():
            got = lowered.get(name.lower(), _MISSING)
            if got != want:
                out.append(Failure(label, f"response.headers[{name!r}]",
                                   f"header {name}: want {want!r}, got {_go(got)!r}", want, got))
        return out
    if assertion.compensated is not None:
        want_steps, got_steps = list(assertion.compensated), result.compensated
        if want_steps != got_steps:
            out.append(Failure(label, "compensated", f"compensated: want {want_steps}, got "
                               f"{got_steps}", want_steps, got_steps))  # fmt: skip
    if assertion.executed is not None:
        ran = assertion.step in result.steps
        if assertion.executed and not ran:
            out.append(Failure(label, f"steps.{assertion.step}", f"expected step "
                               f"{assertion.step!r} to have executed", True, False))
        elif not assertion.executed and ran:
            out.append(Failure(label, f"steps.{assertion.step}", f"expected step "
                               f"{assertion.step!r} to NOT have executed", False, True))
    if not assertion.output:
        return out
    prefix = f"steps.{assertion.step}." if assertion.step else ""
    if assertion.step:
        actual = result.steps.get(assertion.step)
        if actual is None:
            out.append(Failure(label, f"steps.{assertion.step}", f"step {assertion.step!r} has "
                               "no output (did it execute?)"))  # fmt: skip
            return out
    else:
        if result.error:
            out.append(Failure(label, "output", f"pipeline returned error: {result.error}"))
            return out
        actual = result.output
    if not isinstance(actual, Mapping):
        out.append(Failure(label, f"{prefix}output", "output is not a mapping",
                           assertion.output, actual))  # fmt: skip
        return out
    for key, want in assertion.output.items():
        got = _lookup(actual, key)
        if not same(want, None if got is _MISSING else got):  # Go: a missing key is nil
            path = f"{prefix}output[{json.dumps(key)}]"
            out.append(Failure(label, path, f"{path}: want {_go(want)}, got {_go(got)}",
                               want, got))  # fmt: skip
    return out


__all__ = ["TriggerResult", "check", "same"]
