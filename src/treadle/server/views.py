"""JSON views of journal data for the API: executions, steps, events and the timeline.

Pure functions of journal values. Times are ISO 8601 UTC with milliseconds
(`2026-02-15T14:30:00.847Z`), durations are milliseconds, as in the seed roadmap's examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from treadle.journal import Event, Execution, ExecutionSummary, StepRecord


def iso(ts: float | None) -> str | None:
    """Epoch seconds → `2026-02-15T14:30:00.847Z` (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def trigger_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """How an execution was started: `metadata["trigger"]`, else a manual (library) start."""
    trigger = metadata.get("trigger")
    if isinstance(trigger, dict) and "type" in trigger:
        return trigger
    if isinstance(trigger, str):
        return {"type": trigger}
    return {"type": "manual"}


def user_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k != "trigger"}


def step_view(rec: StepRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "pos": rec.pos,
        "name": rec.name,
        "kind": rec.kind,
        "type": rec.step_type or rec.kind,
        "status": str(rec.status),
        "started_at": iso(rec.started_at),
        "finished_at": iso(rec.finished_at),
        "duration_ms": ms(rec.duration_ms),
        "attempts": rec.attempts,
        "input": rec.input,
        "output": rec.output,
    }
    if rec.error is not None:
        out["error"] = rec.error
    if rec.mocked:
        out["mocked"] = True
    if rec.compensated:
        out["compensated"] = True
    if rec.compensates is not None:
        out["compensates"] = rec.compensates
    if rec.child_id is not None:
        out["child_id"] = rec.child_id
    return out


def execution_view(ex: Execution, tenant_id: str | None) -> dict[str, Any]:
    return {
        "id": ex.id,
        "workflow": ex.workflow,
        "version": ex.version,
        "status": str(ex.status),
        "tenant_id": tenant_id,
        "input": ex.input,
        "args": ex.args,
        "output": ex.output,
        "error": ex.error,
        "created_at": iso(ex.created_at),
        "finished_at": iso(ex.finished_at),
        "duration_ms": ms(ex.duration_ms),
        "idempotency_key": ex.idempotency_key,
        "parent_id": ex.parent_id,
        "trigger": trigger_of(ex.metadata),
        "metadata": user_metadata(ex.metadata),
        "last_seq": ex.last_seq,
        "steps": [step_view(rec) for rec in ex.steps],
    }


def summary_view(row: ExecutionSummary) -> dict[str, Any]:
    duration = (None if row.finished_at is None
                else (row.finished_at - row.created_at) * 1000.0)
    return {
        "id": row.id,
        "workflow": row.workflow,
        "version": row.version,
        "status": str(row.status),
        "tenant_id": row.tenant_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "finished_at": iso(row.finished_at),
        "duration_ms": ms(duration),
        "idempotency_key": row.idempotency_key,
        "parent_id": row.parent_id,
        "error": row.error,
        "queue": row.queue,
        "priority": row.priority,
    }


def event_view(ev: Event) -> dict[str, Any]:
    return {
        "execution_id": ev.execution_id,
        "seq": ev.seq,
        "type": ev.type,
        "data": ev.data,
        "created_at": iso(ev.created_at),
    }


def call_input(value: Any) -> Any:
    """A step's journaled input as people read it: its argument when it took exactly one
    positional argument, else the list of arguments (`{"args", "kwargs"}` with keywords)."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def timeline_step(rec: StepRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": rec.name,
        "type": rec.step_type or rec.kind,
        "status": str(rec.status),
        "started_at": iso(rec.started_at),
        "duration_ms": ms(rec.duration_ms),
        "input": call_input(rec.input),
        "output": rec.output,
        "attempts": rec.attempts,
        "pos": rec.pos,
        "kind": rec.kind,
    }
    if rec.error is not None:
        out["error"] = rec.error
    if rec.mocked:
        out["mocked"] = True
    if rec.compensated:
        out["compensated"] = True
    if rec.child_id is not None:
        out["child_id"] = rec.child_id
    return out


def timeline_view(ex: Execution, events: Sequence[Event]) -> dict[str, Any]:
    """`GET /api/v1/executions/{id}/timeline`, the seed roadmap's format (section 3d).

    `steps` lists every journaled position in call order (steps, timers, signal waits,
    children, recorded values); `type` is the step's type (YAML steps) or its kind.
    """
    started = events[0].data if events else {}
    out: dict[str, Any] = {
        "execution_id": ex.id,
        "pipeline": ex.workflow,
        "tenant": started.get("tenant_id"),
        "status": str(ex.status),
        "started_at": iso(ex.created_at),
        "completed_at": iso(ex.finished_at),
        "duration_ms": ms(ex.duration_ms),
        "trigger": trigger_of(ex.metadata),
        "steps": [timeline_step(rec) for rec in ex.steps],
        "metadata": {**user_metadata(ex.metadata),
                     **({"idempotency_key": ex.idempotency_key} if ex.idempotency_key else {})},
    }
    if ex.error is not None:
        out["error"] = ex.error
    if ex.parent_id is not None:
        out["parent_id"] = ex.parent_id
    return out
