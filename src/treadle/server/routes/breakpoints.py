"""Breakpoints: set them on a pipeline's step, inspect a paused execution, decide.

`{pipeline}` names a YAML pipeline (its workflow is `pipeline:<name>`) or a code workflow.
Breakpoints are tenant-scoped (a tenant's breakpoint pauses only that tenant's executions)
and expire after their `ttl`. Every decision is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from treadle.engine.breakpoints import Breakpoint, workflow_of
from treadle.errors import ExecutionNotFoundError, TreadleError
from treadle.journal import project
from treadle.server.audit import audit
from treadle.server.auth import Principal
from treadle.server.errors import JSON, ApiError, not_found
from treadle.server.routes.executions import ExecutionId, Reader, Writer, _visible_row, errors
from treadle.server.schemas_ops import (
    AbortBody,
    BreakpointBody,
    BreakpointOut,
    BreakpointsOut,
    DecisionOut,
    PausedOut,
    ResumeBody,
    SkipBody,
)
from treadle.server.state import state_of
from treadle.server.views import iso
from treadle.steps._durations import parse_duration

router = APIRouter(prefix="/api/v1", tags=["breakpoints"])

PipelineName = Annotated[str, Path(max_length=200, description="a pipeline or workflow name")]


def _view(bp: Breakpoint, pipeline: str) -> dict[str, Any]:
    return {"id": bp.id, "pipeline": pipeline, "workflow": bp.workflow, "step": bp.step,
            "condition": bp.condition, "action": "pause", "created_at": iso(bp.created_at),
            "expires_at": iso(bp.expires_at), "created_by": bp.created_by,
            "notify": list(bp.notify)}


@router.post("/pipelines/{pipeline}/breakpoints", response_model=BreakpointOut, status_code=201,
             responses=errors(400, 422), summary="Set a breakpoint")
async def set_breakpoint(pipeline: PipelineName, body: BreakpointBody, request: Request,
                         principal: Writer) -> Any:
    """Pause executions of the pipeline before `step` (when `condition` holds) for `ttl`."""
    engine = state_of(request).engine
    try:
        ttl = parse_duration(body.ttl, "ttl")
        if ttl <= 0:
            raise ValueError("ttl must be greater than zero")
        bp = await engine.breakpoints.set(
            workflow_of(engine, pipeline), body.step, condition=body.condition, ttl=ttl,
            tenant_id=principal.tenant_id, created_by=principal.id, notify=body.notify)
    except ValueError as exc:
        raise ApiError(400, "invalid_breakpoint", str(exc)) from exc
    await audit(request, "breakpoint.set", f"breakpoint:{bp.id}",
                {"workflow": bp.workflow, "step": bp.step, "condition": bp.condition,
                 "ttl": ttl})
    return JSON(_view(bp, pipeline), status_code=201)


@router.get("/pipelines/{pipeline}/breakpoints", response_model=BreakpointsOut,
            responses=errors(), summary="List breakpoints")
async def list_breakpoints(pipeline: PipelineName, request: Request, principal: Reader) -> Any:
    engine = state_of(request).engine
    found = await engine.breakpoints.list(workflow=workflow_of(engine, pipeline),
                                          tenant_id=principal.tenant_id)
    return JSON({"breakpoints": [_view(bp, pipeline) for bp in found]})


@router.delete("/pipelines/{pipeline}/breakpoints/{breakpoint_id}", status_code=204,
               responses=errors(404), summary="Remove a breakpoint")
async def remove_breakpoint(pipeline: PipelineName, breakpoint_id: Annotated[str, Path(
        max_length=200)], request: Request, principal: Writer) -> Response:
    """Executions already paused at it stay paused until decided."""
    engine = state_of(request).engine
    bp = await engine.breakpoints.get(breakpoint_id)
    if bp is None or bp.workflow != workflow_of(engine, pipeline) or not _mine(principal, bp):
        raise not_found("breakpoint", breakpoint_id)
    await engine.breakpoints.remove(breakpoint_id)
    await audit(request, "breakpoint.remove", f"breakpoint:{breakpoint_id}",
                {"workflow": bp.workflow, "step": bp.step})
    return Response(status_code=204)


def _mine(principal: Principal, bp: Breakpoint) -> bool:
    return principal.tenant_id is None or principal.tenant_id == bp.tenant_id


@router.get("/executions/{execution_id}/breakpoint", response_model=PausedOut,
            responses=errors(404), summary="Inspect a paused execution")
async def paused_at(execution_id: ExecutionId, request: Request, principal: Reader) -> Any:
    """Where the execution waits at a breakpoint (`paused: false` when it does not), the
    step's input, and the outputs of the steps before it."""
    st = state_of(request)
    await _visible_row(st, principal, execution_id)
    events = await st.engine.store.events(execution_id)
    hit = await st.engine.breakpoints.paused(execution_id)
    if hit is None:
        return JSON({"execution_id": execution_id, "paused": False, "steps": {}})
    view = project(execution_id, events)
    before = {rec.name: rec.output for rec in view.steps
              if rec.pos < hit["pos"] and rec.kind == "step"}
    return JSON({"execution_id": execution_id, "paused": True, "step": hit["step_name"],
                 "position": hit["pos"], "input": hit.get("input"),
                 "breakpoint_id": hit.get("breakpoint_id"), "condition": hit.get("condition"),
                 "steps": before})


async def _decide(request: Request, principal: Principal, execution_id: str,
                  decision: dict[str, Any]) -> JSON:
    st = state_of(request)
    await _visible_row(st, principal, execution_id)
    try:
        hit = await st.engine.breakpoints.decide(execution_id, decision, by=principal.id)
    except ExecutionNotFoundError as exc:
        raise not_found("execution", execution_id) from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_decision", str(exc)) from exc
    except TreadleError as exc:
        raise ApiError(409, "not_paused", str(exc)) from exc
    action = decision["action"]
    await audit(request, f"breakpoint.{action}", f"execution:{execution_id}",
                {"step": hit["step_name"], "position": hit["pos"],
                 "breakpoint_id": hit.get("breakpoint_id"),
                 "modified_input": "input" in decision})
    return JSON({"execution_id": execution_id, "action": action, "step": hit["step_name"],
                 "position": hit["pos"]}, status_code=202)


@router.post("/executions/{execution_id}/breakpoint/resume", response_model=DecisionOut,
             status_code=202, responses=errors(400, 404, 409, 422),
             summary="Resume a paused execution")
async def resume_paused(execution_id: ExecutionId, request: Request, principal: Writer,
                        body: ResumeBody | None = None) -> Any:
    """The paused step runs, with `input` instead of its own when given."""
    decision: dict[str, Any] = {"action": "resume"}
    if body is not None and body.input is not None:
        decision["input"] = body.input
    return await _decide(request, principal, execution_id, decision)


@router.post("/executions/{execution_id}/breakpoint/skip", response_model=DecisionOut,
             status_code=202, responses=errors(400, 404, 409, 422),
             summary="Skip the paused step")
async def skip_paused(execution_id: ExecutionId, request: Request, principal: Writer,
                      body: SkipBody | None = None) -> Any:
    """The paused step does not run; it returns `output` and the execution continues."""
    output = body.output if body is not None else None
    return await _decide(request, principal, execution_id, {"action": "skip", "output": output})


@router.post("/executions/{execution_id}/breakpoint/abort", response_model=DecisionOut,
             status_code=202, responses=errors(400, 404, 409, 422),
             summary="Abort a paused execution")
async def abort_paused(execution_id: ExecutionId, request: Request, principal: Writer,
                       body: AbortBody | None = None) -> Any:
    """The execution is cancelled: its completed saga steps are compensated."""
    reason = (body or AbortBody()).reason
    return await _decide(request, principal, execution_id, {"action": "abort", "reason": reason})
