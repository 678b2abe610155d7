"""Journal event types and the event record. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """Every event name the journal may hold (the seed roadmap's names plus ours)."""

    EXECUTION_STARTED = "execution.started"
    STEP_STARTED = "step.started"
    STEP_INPUT_RECORDED = "step.input_recorded"
    STEP_OUTPUT_RECORDED = "step.output_recorded"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    STEP_SKIPPED = "step.skipped"
    STEP_COMPENSATED = "step.compensated"
    CONDITIONAL_ROUTED = "conditional.routed"
    RETRY_ATTEMPTED = "retry.attempted"
    EXECUTION_SUSPENDED = "execution.suspended"
    EXECUTION_RESUMED = "execution.resumed"
    SIGNAL_RECEIVED = "signal.received"
    TIMER_STARTED = "timer.started"
    TIMER_FIRED = "timer.fired"
    CHILD_STARTED = "child.started"
    CHILD_COMPLETED = "child.completed"
    BREAKPOINT_HIT = "breakpoint.hit"
    SAGA_COMPENSATING = "saga.compensating"
    SAGA_COMPENSATED = "saga.compensated"
    EXECUTION_COMPLETED = "execution.completed"
    EXECUTION_FAILED = "execution.failed"
    EXECUTION_CANCELLED = "execution.cancelled"


TERMINAL_EVENTS = frozenset(
    {
        EventType.EXECUTION_COMPLETED,
        EventType.EXECUTION_FAILED,
        EventType.EXECUTION_CANCELLED,
    }
)


@dataclass(slots=True)
class Event:
    """One immutable entry of an execution's journal.

    `seq` is gap-free and unique per execution, starting at 1. `data` is JSON-compatible.
    `created_at` is seconds since the epoch (UTC).
    """

    execution_id: str
    seq: int
    type: str
    data: dict[str, Any]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "seq": self.seq,
            "type": self.type,
            "data": self.data,
            "created_at": self.created_at,
        }
