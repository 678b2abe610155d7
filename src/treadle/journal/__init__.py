"""The journal: event types, read models and projections. Pure data and functions, no I/O."""

from treadle.journal.events import TERMINAL_EVENTS, Event, EventType
from treadle.journal.model import (
    ACTIVE_STATUSES,
    Execution,
    ExecutionStatus,
    ExecutionSummary,
    Page,
    Signal,
    StepRecord,
    StepStatus,
    to_datetime,
)
from treadle.journal.projection import project
from treadle.journal.retry import NO_RETRY, RetryPolicy

__all__ = [
    "ACTIVE_STATUSES",
    "NO_RETRY",
    "TERMINAL_EVENTS",
    "Event",
    "EventType",
    "Execution",
    "ExecutionStatus",
    "ExecutionSummary",
    "Page",
    "RetryPolicy",
    "Signal",
    "StepRecord",
    "StepStatus",
    "project",
    "to_datetime",
]
