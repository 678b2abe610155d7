"""What a journal says happened at each position: the index a resumed workflow replays from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from treadle.journal.events import Event, EventType


@dataclass(slots=True)
class Recorded:
    """Everything journaled at one position (a step call, a timer, a signal wait, a child)."""

    pos: int
    name: str
    kind: str
    done: bool = False
    failed: bool = False
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    fire_at: float | None = None
    fired: bool = False
    child_id: str | None = None
    child_status: str | None = None
    skipped: bool = False
    paused: bool = False
    """A breakpoint paused the call here; `decision` is the operator's answer, if any yet."""
    decision: dict[str, Any] | None = None


def index_positions(events: Iterable[Event]) -> dict[int, Recorded]:
    """Map each position to what the journal recorded there."""
    index: dict[int, Recorded] = {}
    for ev in events:
        data = ev.data
        pos = data.get("pos")
        if not isinstance(pos, int):
            continue
        kind = ev.type
        rec = index.get(pos)
        if rec is None:
            rec = Recorded(pos, str(data.get("step_name") or data.get("name") or ""),
                           _kind_of(kind, data))
            index[pos] = rec
        if kind == EventType.STEP_STARTED:
            rec.attempts = max(rec.attempts, int(data.get("attempt", 1)) - 1)
        elif kind == EventType.RETRY_ATTEMPTED:
            rec.attempts = max(rec.attempts, int(data.get("attempt", 1)))
        elif kind == EventType.STEP_COMPLETED or data.get("kind") == "note":
            rec.done = True
            rec.output = data.get("output", rec.output)
        elif kind == EventType.STEP_OUTPUT_RECORDED:
            rec.output = data.get("output")
        elif kind == EventType.STEP_FAILED:
            rec.done = rec.failed = True
            rec.error = data.get("error")
        elif kind == EventType.TIMER_STARTED:
            rec.fire_at = data.get("fire_at")
        elif kind == EventType.TIMER_FIRED:
            rec.fired = True
        elif kind == EventType.BREAKPOINT_HIT:
            rec.paused = True
        elif kind == EventType.SIGNAL_RECEIVED and data.get("for") == "breakpoint":
            payload = data.get("payload")
            rec.decision = dict(payload) if isinstance(payload, dict) else {"action": "resume"}
        elif kind == EventType.STEP_SKIPPED:
            rec.done = rec.skipped = True
            rec.output = data.get("output")
        elif kind == EventType.SIGNAL_RECEIVED:
            rec.done = True
            rec.output = data.get("payload")
        elif kind == EventType.CHILD_STARTED:
            rec.child_id = data.get("child_id")
        elif kind == EventType.CHILD_COMPLETED:
            rec.done = True
            rec.child_status = data.get("status")
            rec.output = data.get("output")
            rec.error = data.get("error")
    return index


def _kind_of(event_type: str, data: dict[str, Any]) -> str:
    if event_type == EventType.TIMER_STARTED and data.get("for") == "signal":
        return "signal"
    if event_type in (EventType.TIMER_STARTED, EventType.TIMER_FIRED):
        return "timer"
    if event_type == EventType.EXECUTION_SUSPENDED:
        return str(data.get("reason", "step"))
    if event_type == EventType.SIGNAL_RECEIVED and data.get("for") != "breakpoint":
        return "signal"
    if event_type in (EventType.CHILD_STARTED, EventType.CHILD_COMPLETED):
        return "child"
    return str(data.get("kind", "step"))
