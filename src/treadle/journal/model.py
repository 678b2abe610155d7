"""The read models of the journal: execution status, executions, steps, rows and pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ExecutionStatus(StrEnum):
    """`pending → running → (suspended ⇄ running) → completed | failed | cancelled`."""

    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
ACTIVE_STATUSES = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.SUSPENDED)


class StepStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"
    PAUSED = "paused"  # at a breakpoint, waiting for an operator's decision


def to_datetime(ts: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(slots=True)
class StepRecord:
    """What happened at one position of a workflow: a step, a timer, a signal wait, a child."""

    pos: int
    name: str
    kind: str = "step"
    step_type: str | None = None
    status: StepStatus = StepStatus.RUNNING
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    mocked: bool = False
    compensated: bool = False
    compensates: int | None = None
    child_id: str | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at) * 1000.0


@dataclass(slots=True)
class Execution:
    """The state of an execution, a projection of its journal (see `journal.project`)."""

    id: str
    workflow: str
    version: str | None = None
    status: ExecutionStatus = ExecutionStatus.PENDING
    args: list[Any] = field(default_factory=list)
    output: Any = None
    error: dict[str, Any] | None = None
    created_at: float | None = None
    finished_at: float | None = None
    idempotency_key: str | None = None
    parent_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    last_seq: int = 0

    @property
    def input(self) -> Any:
        """The workflow's input: its single argument, or the list of its arguments."""
        return self.args[0] if len(self.args) == 1 else self.args

    @property
    def duration_ms(self) -> float | None:
        if self.created_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.created_at) * 1000.0

    def step(self, name: str) -> StepRecord:
        """The last record of the step called `name` (KeyError if it never ran)."""
        for record in reversed(self.steps):
            if record.name == name:
                return record
        raise KeyError(name)


@dataclass(slots=True)
class ExecutionSummary:
    """One row of the executions index: what `Engine.list` returns and workers claim."""

    id: str
    workflow: str
    status: ExecutionStatus
    created_at: float
    updated_at: float
    version: str | None = None
    finished_at: float | None = None
    idempotency_key: str | None = None
    parent_id: str | None = None
    error: str | None = None
    queue: str = "default"
    priority: int = 0
    tenant_id: str | None = None
    partition_key: str | None = None
    started_at: float | None = None
    owner: str | None = None
    lease_until: float | None = None
    wake_at: float | None = None
    last_seq: int = 0


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass `next_cursor` back to get the next one (None: no more)."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A signal waiting in an execution's inbox."""

    id: int
    execution_id: str
    name: str
    payload: Any
    created_at: float
