"""Request bodies (validated) and response shapes (documented in `/openapi.json`).

Responses are built by `views`, `diff` and `dashboard` and returned as they are; the models
here describe them for OpenAPI and the tests check responses against them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MAX_DEPTH = 64

Name = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                        pattern=r"^[^\x00-\x1f\x7f]+$")]


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("strings must be valid Unicode (no lone surrogates)") from exc


def check_json(value: Any) -> Any:
    """JSON that every store can hold: finite numbers, valid Unicode, nesting ≤ 64 deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and Infinity are not JSON numbers")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key in item:
                _check_text(key)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


JSON = Annotated[Any, AfterValidator(check_json)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartExecution(_Body):
    """Start an execution of a registered workflow (`workflow(ctx, *args)`)."""

    workflow: Name = Field(description="the registered workflow (pipeline) name")
    input: JSON = Field(None, description="the workflow's single argument (or use `args`)")
    args: list[JSON] | None = Field(None, description="positional arguments, instead of `input`")
    version: Name | None = Field(None, description="a registered version (default: latest)")
    idempotency_key: Name | None = Field(
        None, description="a second start with the same key returns the first execution")
    metadata: dict[str, JSON] | None = Field(None, description="free-form, kept with it")
    tenant_id: Name | None = None
    queue: Name | None = Field(None, description="only enqueue it, for a worker of this queue")
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    start_at: datetime | None = Field(None, description="enqueue it to start at this time")

    @model_validator(mode="after")
    def _input_or_args(self) -> StartExecution:
        if "input" in self.model_fields_set and "args" in self.model_fields_set:
            raise ValueError("give either `input` or `args`, not both")
        return self

    def workflow_args(self) -> list[Any]:
        """The workflow's positional arguments (after `ctx`)."""
        if "input" in self.model_fields_set:
            return [self.input]
        return list(self.args or [])


class SignalBody(_Body):
    name: Name
    payload: JSON = None


class CancelBody(_Body):
    reason: Annotated[str, StringConstraints(max_length=500)] = "cancelled"


class RetryBody(_Body):
    idempotency_key: Name | None = None


class StepMock(_Body):
    output: JSON = None
    delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 0


class MockRunBody(_Body):
    """The seed roadmap's mock run: named steps return `output` after `delay_ms`."""

    mocks: dict[Name, StepMock] = Field(default_factory=dict)
    trigger_data: dict[str, JSON] = Field(default_factory=dict)
    idempotency_key: Name | None = None


class ReplayBody(_Body):
    """The seed roadmap's replay request."""

    mode: Literal["exact", "modified", "step_from"] = "exact"
    modifications: dict[str, JSON] | None = None
    from_step: Name | None = None
    target_environment: Annotated[str, StringConstraints(max_length=200)] | None = None
    record_as: Annotated[str, StringConstraints(max_length=100)] = "replay"


# -- responses --------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorInfo(_Out):
    code: str
    message: str
    details: Any = None


class ErrorOut(_Out):
    error: ErrorInfo


class StartOut(_Out):
    id: str
    execution_id: str
    workflow: str
    status: str
    created: bool = Field(description="false when an idempotency key matched an execution")
    retry_of: str | None = None
    replay_of: str | None = None
    mode: str | None = None


class StepOut(_Out):
    """One journaled position of an execution: a step, timer, signal wait, child or value."""

    pos: int = Field(description="position in call order")
    name: str
    kind: str = Field(description="step, timer, signal, child, value, note or compensation")
    type: str = Field(description="the step type (YAML steps), else the kind")
    status: str = Field(description="running, completed, failed, skipped or waiting")
    started_at: str | None
    finished_at: str | None
    duration_ms: float | None
    attempts: int
    input: Any
    output: Any
    error: dict[str, Any] | None = Field(None, description="type, message, traceback, …")
    mocked: bool | None = None
    compensated: bool | None = None
    compensates: int | None = Field(None, description="pos of the step this one undoes")
    child_id: str | None = None


class ExecutionOut(_Out):
    """An execution rebuilt from its journal."""

    id: str
    workflow: str
    version: str | None
    status: str = Field(description="pending, running, suspended, completed, failed, cancelled")
    tenant_id: str | None
    input: Any = Field(description="the single argument, or the list of arguments")
    args: list[Any]
    output: Any
    error: dict[str, Any] | None
    created_at: str | None
    finished_at: str | None
    duration_ms: float | None
    idempotency_key: str | None
    parent_id: str | None
    trigger: dict[str, Any] = Field(description="how it was started: `type` (api, retry, …)")
    metadata: dict[str, Any]
    last_seq: int
    steps: list[StepOut]


class SummaryOut(_Out):
    """One row of a listing."""

    id: str
    workflow: str
    version: str | None
    status: str
    tenant_id: str | None
    created_at: str
    updated_at: str
    finished_at: str | None
    duration_ms: float | None
    idempotency_key: str | None
    parent_id: str | None
    error: str | None = Field(description="the failure's message, shortened")
    queue: str
    priority: int


class ExecutionPage(_Out):
    items: list[SummaryOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class EventOut(_Out):
    """One journal event (see docs/events.md for each type's data)."""

    execution_id: str
    seq: int
    type: str
    data: dict[str, Any]
    created_at: str


class EventPage(_Out):
    items: list[EventOut]
    next_after: int | None = Field(description="pass as `after` for the next page")


class TimelineStep(_Out):
    name: str
    type: str
    status: str
    started_at: str | None
    duration_ms: float | None
    input: Any
    output: Any
    attempts: int
    pos: int
    kind: str
    error: dict[str, Any] | None = None
    mocked: bool | None = None
    compensated: bool | None = None
    child_id: str | None = None


class TimelineOut(_Out):
    """The seed roadmap's timeline of one execution."""

    execution_id: str
    pipeline: str
    tenant: str | None
    status: str
    started_at: str | None
    completed_at: str | None = Field(description="when it ended (also failed or cancelled)")
    duration_ms: float | None
    trigger: dict[str, Any]
    steps: list[TimelineStep]
    metadata: dict[str, Any]
    error: dict[str, Any] | None = None
    parent_id: str | None = None


class DiffSummary(_Out):
    left_status: str
    right_status: str
    left_duration_ms: float | None
    right_duration_ms: float | None
    steps_different: int
    steps_identical: int
    left_pipeline: str
    right_pipeline: str
    input_identical: bool
    output_identical: bool


class StepDiff(_Out):
    """How one step compares; which fields are present depends on `status`."""

    step: str
    status: str = Field(description="identical, output_different, input_different, "
                                    "status_different, left_skipped or right_skipped")
    occurrence: int | None = Field(None, description="2, 3, … for repeated calls of a step")
    left_duration_ms: float | None = None
    right_duration_ms: float | None = None
    left_output: Any = None
    right_output: Any = None
    diff: dict[str, Any] | None = Field(None, description="key → {left, right}")
    left_input: Any = None
    right_input: Any = None
    input_diff: dict[str, Any] | None = None
    left_status: str | None = None
    right_status: str | None = None
    left_error: dict[str, Any] | None = None
    right_error: dict[str, Any] | None = None
    reason: str | None = Field(None, description="why one side did not run it")


class DiffOut(_Out):
    """The seed roadmap's diff of two executions."""

    left: str
    right: str
    summary: DiffSummary
    input_diff: dict[str, Any] | None = Field(description="key → {left, right}; null if same")
    step_diffs: list[StepDiff]


class DashboardSummary(_Out):
    total_executions: int
    success_rate: float | None = Field(description="completed over completed + failed, in %")
    avg_duration_ms: float | None
    p50_duration_ms: float | None
    p95_duration_ms: float | None
    p99_duration_ms: float | None
    error_count: int
    dlq_depth: int
    active: int = Field(description="not ended yet")
    by_status: dict[str, int]
    truncated: bool = Field(description="more executions than the server scans")


class DashboardStep(_Out):
    step: str
    count: int
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float = Field(description="in %")
    retries: int


class DashboardHour(_Out):
    hour: str
    executions: int
    errors: int


class DashboardOut(_Out):
    """The seed roadmap's dashboard metrics."""

    pipeline: str | None
    period: str
    from_: str = Field(alias="from")
    to: str
    summary: DashboardSummary
    by_step: list[DashboardStep] = Field(description="from the most recent finished executions")
    by_step_sample: int = Field(description="how many executions `by_step` is computed from")
    by_hour: list[DashboardHour]


class StatusOut(_Out):
    status: str
