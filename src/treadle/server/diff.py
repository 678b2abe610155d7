"""Compare two executions step by step: `GET /api/v1/executions/diff` (seed roadmap, 3d).

Pure: a function of two `Execution` views. Steps are matched by name and occurrence (the
second call of `charge` matches the other side's second call of `charge`); recorded values
(`ctx.now()`, `ctx.uuid()`, `ctx.random()`) differ by nature and are left out.

Each step gets a status:

| status | meaning |
|---|---|
| `identical` | both ran it with the same outcome, input and output |
| `output_different` | both completed it, with different outputs (`diff` per top-level key) |
| `input_different` | same output, different input (`input_diff`) |
| `status_different` | it ended differently (e.g. completed on the left, failed on the right) |
| `left_skipped` / `right_skipped` | only the other side ran it (`reason` says why if known) |

The seed's format has the first, second and last kinds; the others are ours. A per-key `diff`
maps each differing key to `{"left": …, "right": …}` (a missing key is null); for outputs that
are not both objects the single key is `"$"`.
"""

from __future__ import annotations

from typing import Any

from treadle.journal import Execution, StepRecord, StepStatus
from treadle.server.views import call_input, ms

Key = tuple[str, int]


def same(left: Any, right: Any) -> bool:
    """JSON equality: like `==`, except that `true` is not `1` and `false` is not `0`."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict):
        return (isinstance(right, dict) and left.keys() == right.keys()
                and all(same(v, right[k]) for k, v in left.items()))
    if isinstance(left, list):
        return (isinstance(right, list) and len(left) == len(right)
                and all(same(a, b) for a, b in zip(left, right, strict=True)))
    return bool(left == right)


def value_diff(left: Any, right: Any) -> dict[str, dict[str, Any]]:
    """Per top-level key differences of two JSON values (`{}` when equal)."""
    if same(left, right):
        return {}
    if isinstance(left, dict) and isinstance(right, dict):
        keys = list(left) + [k for k in right if k not in left]
        return {k: {"left": left.get(k), "right": right.get(k)}
                for k in keys if k not in left or k not in right or not same(left[k], right[k])}
    return {"$": {"left": left, "right": right}}


def _keyed(ex: Execution) -> list[tuple[Key, StepRecord]]:
    seen: dict[str, int] = {}
    out = []
    for rec in ex.steps:
        if rec.kind == "value":
            continue
        n = seen.get(rec.name, 0)
        seen[rec.name] = n + 1
        out.append(((rec.name, n), rec))
    return out


def _merged_order(left: list[Key], right: list[Key]) -> list[Key]:
    """Left's order, each right-only step placed after the common step it follows."""
    in_left = set(left)
    after: dict[Key | None, list[Key]] = {}
    prev: Key | None = None
    for key in right:
        if key in in_left:
            prev = key
        else:
            after.setdefault(prev, []).append(key)
    order = list(after.get(None, []))
    for key in left:
        order.append(key)
        order.extend(after.get(key, []))
    return order


def _why_missing(ex: Execution, side: str) -> str:
    if ex.status.is_terminal and str(ex.status) != "completed":
        return f"the {side} execution {ex.status} before reaching this step"
    if not ex.status.is_terminal:
        return f"the {side} execution has not reached this step yet ({ex.status})"
    routed = [rec for rec in ex.steps if rec.kind == "note" and rec.status != StepStatus.SKIPPED]
    if routed:
        return f"Step skipped due to conditional routing from {routed[-1].name}"
    return f"the {side} execution did not run this step"


def _skip_reason(rec: StepRecord) -> str | None:
    if isinstance(rec.output, dict) and rec.output.get("reason") is not None:
        return str(rec.output["reason"])
    return None


def _step_diff(key: Key, left: StepRecord | None, right: StepRecord | None,
               lex: Execution, rex: Execution) -> dict[str, Any]:
    out: dict[str, Any] = {"step": key[0]}
    if key[1]:
        out["occurrence"] = key[1] + 1
    if left is not None and right is not None:
        out["left_duration_ms"] = ms(left.duration_ms)
        out["right_duration_ms"] = ms(right.duration_ms)
        l_skip = left.status == StepStatus.SKIPPED
        r_skip = right.status == StepStatus.SKIPPED
        if l_skip != r_skip:
            skipped = left if l_skip else right
            out.update(status="left_skipped" if l_skip else "right_skipped",
                       left_output=None if l_skip else left.output,
                       right_output=None if r_skip else right.output,
                       reason=_skip_reason(skipped) or "the step's condition skipped it")
        elif left.status != right.status:
            out.update(status="status_different", left_status=str(left.status),
                       right_status=str(right.status), left_output=left.output,
                       right_output=right.output, left_error=left.error,
                       right_error=right.error)
        elif not same(left.output, right.output):
            out.update(status="output_different", left_output=left.output,
                       right_output=right.output, diff=value_diff(left.output, right.output))
        elif not same(left.input, right.input):
            linput, rinput = call_input(left.input), call_input(right.input)
            out.update(status="input_different", left_input=linput, right_input=rinput,
                       input_diff=value_diff(linput, rinput))
        else:
            out["status"] = "identical"
        return out
    if left is not None:
        out.update(status="right_skipped", left_output=left.output, right_output=None,
                   left_duration_ms=ms(left.duration_ms),
                   reason=_why_missing(rex, "right"))
    elif right is not None:
        out.update(status="left_skipped", left_output=None, right_output=right.output,
                   right_duration_ms=ms(right.duration_ms),
                   reason=_why_missing(lex, "left"))
    return out


def diff_executions(left: Execution, right: Execution) -> dict[str, Any]:
    """The seed's diff document for two executions."""
    lsteps, rsteps = _keyed(left), _keyed(right)
    lmap, rmap = dict(lsteps), dict(rsteps)
    order = _merged_order([k for k, _ in lsteps], [k for k, _ in rsteps])
    step_diffs = [_step_diff(key, lmap.get(key), rmap.get(key), left, right) for key in order]
    identical = sum(1 for d in step_diffs if d["status"] == "identical")
    input_diff = value_diff(left.input, right.input)
    return {
        "left": left.id,
        "right": right.id,
        "summary": {
            "left_status": str(left.status),
            "right_status": str(right.status),
            "left_duration_ms": ms(left.duration_ms),
            "right_duration_ms": ms(right.duration_ms),
            "steps_different": len(step_diffs) - identical,
            "steps_identical": identical,
            "left_pipeline": left.workflow,
            "right_pipeline": right.workflow,
            "input_identical": not input_diff,
            "output_identical": same(left.output, right.output),
        },
        "input_diff": input_diff or None,
        "step_diffs": step_diffs,
    }
