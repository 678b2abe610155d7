"""Bodies and response shapes of the operator routes: breakpoints and dead letters."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from treadle.server.schemas import JSON, Name


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Duration = Annotated[str, StringConstraints(min_length=1, max_length=40)] | float


class BreakpointBody(_Body):
    """The seed roadmap's breakpoint request (`action` is always `pause`)."""

    step: Name
    condition: Annotated[str, StringConstraints(max_length=2000)] | None = None
    action: Literal["pause"] = "pause"
    ttl: Duration = Field("1h", description="a Go duration (`1h`, `30m`) or seconds")
    notify: list[Annotated[str, StringConstraints(max_length=200)]] = Field(
        default_factory=list, max_length=20,
        description="kept with the breakpoint; Treadle does not send notifications itself")


class BreakpointOut(BaseModel):
    id: str
    pipeline: str
    workflow: str
    step: str
    condition: str | None
    action: Literal["pause"]
    created_at: str
    expires_at: str | None
    created_by: str | None
    notify: list[str] = []


class BreakpointsOut(BaseModel):
    breakpoints: list[BreakpointOut]


class PausedOut(BaseModel):
    """Where an execution waits at a breakpoint, with what an operator needs to decide."""

    execution_id: str
    paused: bool
    step: str | None = None
    position: int | None = None
    input: Any = None
    breakpoint_id: str | None = None
    condition: str | None = None
    steps: dict[str, Any] = Field(default_factory=dict,
                                  description="outputs of the steps before, by name")


class ResumeBody(_Body):
    input: JSON = Field(None, description="replaces the step's input (the journal's shape: a "
                        'list of arguments, or {"args": [...], "kwargs": {...}})')


class SkipBody(_Body):
    output: JSON = Field(None, description="what the skipped step returns")


class AbortBody(_Body):
    reason: Annotated[str, StringConstraints(max_length=500)] = "aborted at a breakpoint"


class DecisionOut(BaseModel):
    execution_id: str
    action: Literal["resume", "skip", "abort"]
    step: str
    position: int


class LetterOut(BaseModel):
    """One dead letter: a failed execution's trigger data and error."""

    id: str
    execution_id: str
    pipeline: str
    workflow: str
    trigger_data: Any
    input: list[Any]
    error: dict[str, Any]
    failed_step: str | None
    failed_at: str
    expires_at: str | None
    replayable: bool


class LettersOut(BaseModel):
    pipeline: str
    messages: list[LetterOut]
    depth: int
    alert_threshold: int | None = None
    alerting: bool = False
    next_cursor: str | None = None


class ReplayedOut(BaseModel):
    id: str
    execution_id: str
    replay_of: str
    status: str


class ReplayAllOut(BaseModel):
    pipeline: str
    replayed: list[ReplayedOut]
    count: int
