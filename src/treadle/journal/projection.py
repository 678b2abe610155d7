"""Rebuild an `Execution` from its events. Pure: the same events always give the same view."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from treadle.journal.events import Event, EventType
from treadle.journal.model import Execution, ExecutionStatus, StepRecord, StepStatus

_STATUS_AFTER: dict[str, ExecutionStatus] = {
    EventType.EXECUTION_STARTED: ExecutionStatus.RUNNING,
    EventType.EXECUTION_SUSPENDED: ExecutionStatus.SUSPENDED,
    EventType.EXECUTION_RESUMED: ExecutionStatus.RUNNING,
    EventType.EXECUTION_COMPLETED: ExecutionStatus.COMPLETED,
    EventType.EXECUTION_FAILED: ExecutionStatus.FAILED,
    EventType.EXECUTION_CANCELLED: ExecutionStatus.CANCELLED,
}


def project(execution_id: str, events: Iterable[Event]) -> Execution:
    """Fold a journal into an `Execution` view."""
    ex = Execution(id=execution_id, workflow="")
    by_pos: dict[int, StepRecord] = {}
    for ev in events:
        apply(ex, by_pos, ev)
    return ex


def apply(ex: Execution, by_pos: dict[int, StepRecord], ev: Event) -> None:
    """Apply one event to an execution view (`by_pos` indexes its step records)."""
    data = ev.data
    kind = ev.type
    ex.last_seq = ev.seq
    status = _STATUS_AFTER.get(kind)
    if status is None and ex.status == ExecutionStatus.PENDING:
        status = ExecutionStatus.RUNNING  # a worker picked the enqueued execution up
    if status is not None and not ex.status.is_terminal:
        ex.status = status
    if kind == EventType.EXECUTION_STARTED:
        if data.get("queue") is not None:  # enqueued: pending until a worker runs it
            ex.status = ExecutionStatus.PENDING
        ex.workflow = data.get("workflow", "")
        ex.version = data.get("version")
        ex.args = list(data.get("args", []))
        ex.created_at = ev.created_at
        ex.idempotency_key = data.get("idempotency_key")
        ex.parent_id = data.get("parent_id")
        ex.metadata = dict(data.get("metadata") or {})
        return
    if kind == EventType.EXECUTION_COMPLETED:
        ex.output = data.get("output")
        ex.finished_at = ev.created_at
        return
    if kind in (EventType.EXECUTION_FAILED, EventType.EXECUTION_CANCELLED):
        ex.error = data.get("error") or ({"type": "Cancelled", "message": data.get("reason", "")}
                                         if kind == EventType.EXECUTION_CANCELLED else None)
        ex.finished_at = ev.created_at
        return
    pos = data.get("pos")
    if not isinstance(pos, int):
        return
    record = by_pos.get(pos)
    if record is None:
        record = StepRecord(pos=pos, name=str(data.get("step_name") or data.get("name") or kind),
                            started_at=ev.created_at)
        by_pos[pos] = record
        ex.steps.append(record)
    _apply_step_event(ex, by_pos, record, kind, data, ev.created_at)


def _apply_step_event(
    ex: Execution,
    by_pos: dict[int, StepRecord],
    record: StepRecord,
    kind: str,
    data: dict[str, Any],
    at: float,
) -> None:
    if data.get("kind") == "note":
        record.kind = "note"
        record.status = StepStatus.SKIPPED if kind == EventType.STEP_SKIPPED else (
            StepStatus.COMPLETED)
        record.output = data.get("output")
        record.finished_at = at
    elif kind == EventType.STEP_STARTED:
        record.kind = data.get("kind", "step")
        record.step_type = data.get("step_type")
        record.attempts = data.get("attempt", record.attempts + 1)
        record.status = StepStatus.RUNNING
        record.compensates = data.get("compensates")
    elif kind == EventType.STEP_INPUT_RECORDED:
        record.input = data.get("input")
    elif kind == EventType.STEP_OUTPUT_RECORDED:
        record.output = data.get("output")
    elif kind == EventType.STEP_COMPLETED:
        record.kind = data.get("kind", record.kind)
        record.status = StepStatus.COMPLETED
        record.finished_at = at
        record.mocked = bool(data.get("mocked", False))
        if "output" in data:
            record.output = data["output"]
        if record.attempts == 0:
            record.attempts = 1
    elif kind == EventType.STEP_FAILED:
        record.status = StepStatus.FAILED
        record.error = data.get("error")
        record.finished_at = at
        record.attempts = data.get("attempts", record.attempts)
    elif kind == EventType.STEP_SKIPPED:
        record.status = StepStatus.SKIPPED
        record.finished_at = at
        if "output" in data:
            record.output = data["output"]
    elif kind == EventType.BREAKPOINT_HIT:
        record.status = StepStatus.PAUSED
        record.input = data.get("input")
    elif kind == EventType.SIGNAL_RECEIVED and data.get("for") == "breakpoint":
        record.status = StepStatus.RUNNING  # decided: the step runs, is skipped or aborted
    elif kind == EventType.STEP_COMPENSATED:
        original = by_pos.get(data.get("compensates", -1))
        if original is not None:
            original.compensated = True
        record.kind = "compensation"
    elif kind == EventType.RETRY_ATTEMPTED:
        record.error = data.get("error")
    elif kind == EventType.TIMER_STARTED:
        record.kind = "timer"
        record.status = StepStatus.WAITING
    elif kind in (EventType.TIMER_FIRED, EventType.SIGNAL_RECEIVED):
        record.kind = "timer" if kind == EventType.TIMER_FIRED else "signal"
        record.status = StepStatus.COMPLETED
        record.finished_at = at
        if kind == EventType.SIGNAL_RECEIVED:
            record.output = data.get("payload")
    elif kind == EventType.EXECUTION_SUSPENDED and data.get("reason") == "signal":
        record.kind = "signal"
        record.status = StepStatus.WAITING
    elif kind == EventType.CHILD_STARTED:
        record.kind = "child"
        record.child_id = data.get("child_id")
        record.status = StepStatus.RUNNING
    elif kind == EventType.CHILD_COMPLETED:
        record.status = (StepStatus.COMPLETED if data.get("status") == ExecutionStatus.COMPLETED
                         else StepStatus.FAILED)
        record.output = data.get("output")
        record.error = data.get("error")
        record.finished_at = at
