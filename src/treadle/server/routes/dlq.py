"""Dead letters in the seed roadmap's shape: `/api/v1/dlq/pipelines/{pipeline}/...`.

A message is a failed execution of a pipeline (or code workflow) with `dead_letter` enabled:
its trigger data, error and failed step. Replaying starts a new execution with the same input
(linked by `metadata.dlq_of`) and takes the message off the queue. Tenant-scoped: another
tenant's message is a 404. Replays and discards are audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from treadle.engine.breakpoints import workflow_of
from treadle.engine.dead_letters import Letter
from treadle.errors import TreadleError
from treadle.server.audit import audit
from treadle.server.auth import Principal
from treadle.server.errors import JSON, ApiError, not_found
from treadle.server.routes.breakpoints import PipelineName
from treadle.server.routes.executions import Reader, Writer, errors
from treadle.server.schemas_ops import LetterOut, LettersOut, ReplayAllOut, ReplayedOut
from treadle.server.state import ServerState, state_of
from treadle.server.views import iso

router = APIRouter(prefix="/api/v1/dlq", tags=["dead letters"])

MessageId = Annotated[str, Path(max_length=200, description="the failed execution's id")]


def _view(letter: Letter, pipeline: str) -> dict[str, Any]:
    trigger = letter.input[0] if letter.workflow.startswith("pipeline:") and letter.input \
        else letter.input
    return {"id": letter.id, "execution_id": letter.id, "pipeline": pipeline,
            "workflow": letter.workflow, "trigger_data": trigger, "input": letter.input,
            "error": letter.error, "failed_step": letter.failed_step,
            "failed_at": iso(letter.failed_at), "expires_at": iso(letter.expires_at),
            "replayable": letter.replayable}


async def _letter(st: ServerState, principal: Principal, pipeline: str,
                  message_id: str) -> Letter:
    letter = await st.engine.dlq.get(workflow_of(st.engine, pipeline), message_id)
    if letter is None or not (principal.tenant_id is None
                              or principal.tenant_id == letter.tenant_id):
        raise not_found("dead_letter", message_id)
    return letter


@router.get("/pipelines/{pipeline}", response_model=LettersOut, responses=errors(400),
            summary="List dead letters")
async def list_letters(
    pipeline: PipelineName, request: Request, principal: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Any:
    """Newest first, cursor-paginated; `depth` counts every waiting message."""
    st = state_of(request)
    workflow = workflow_of(st.engine, pipeline)
    try:
        page = await st.engine.dlq.list(workflow, tenant_id=principal.tenant_id, limit=limit,
                                        cursor=cursor)
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    depth = await st.engine.dlq.depth(workflow, tenant_id=principal.tenant_id)
    try:
        options = st.engine.registry.get(workflow).dead_letter
    except TreadleError:  # not loaded here (a worker's workflow): no threshold known
        options = None
    threshold = options.alert_threshold if options is not None else None
    return JSON({"pipeline": pipeline, "messages": [_view(x, pipeline) for x in page.items],
                 "depth": depth, "alert_threshold": threshold,
                 "alerting": threshold is not None and depth >= threshold,
                 "next_cursor": page.next_cursor})


@router.get("/pipelines/{pipeline}/{message_id}", response_model=LetterOut,
            responses=errors(404), summary="Get a dead letter")
async def get_letter(pipeline: PipelineName, message_id: MessageId, request: Request,
                     principal: Reader) -> Any:
    letter = await _letter(state_of(request), principal, pipeline, message_id)
    return JSON(_view(letter, pipeline))


@router.post("/pipelines/{pipeline}/{message_id}/replay", response_model=ReplayedOut,
             status_code=201, responses=errors(400, 404, 409), summary="Replay a dead letter")
async def replay_letter(pipeline: PipelineName, message_id: MessageId, request: Request,
                        principal: Writer) -> Any:
    """Start the pipeline again on the message's trigger data; the message leaves the queue."""
    st = state_of(request)
    letter = await _letter(st, principal, pipeline, message_id)
    try:
        handle = await st.engine.dlq.replay(letter.workflow, letter.id, by=principal.id)
    except TreadleError as exc:
        raise ApiError(409, "not_replayable", str(exc)) from exc
    await audit(request, "dlq.replay", f"execution:{letter.id}",
                {"workflow": letter.workflow, "new_execution": handle.id},
                tenant_id=letter.tenant_id)
    return JSON({"id": handle.id, "execution_id": handle.id, "replay_of": letter.id,
                 "status": "running"}, status_code=201,
                headers={"Location": f"/api/v1/executions/{handle.id}"})


@router.post("/pipelines/{pipeline}/replay-all", response_model=ReplayAllOut,
             responses=errors(409), summary="Replay every dead letter of a pipeline")
async def replay_all(pipeline: PipelineName, request: Request, principal: Writer) -> Any:
    """Oldest first; every replayed message leaves the queue."""
    st = state_of(request)
    workflow = workflow_of(st.engine, pipeline)
    try:
        handles = await st.engine.dlq.replay_all(workflow, tenant_id=principal.tenant_id,
                                                 by=principal.id)
    except TreadleError as exc:
        raise ApiError(409, "not_replayable", str(exc)) from exc
    replayed = [{"id": h.id, "execution_id": h.id, "status": "running", "replay_of": of}
                for of, h in handles.items()]
    await audit(request, "dlq.replay_all", f"pipeline:{pipeline}",
                {"workflow": workflow, "count": len(handles)})
    return JSON({"pipeline": pipeline, "replayed": replayed, "count": len(replayed)})


@router.delete("/pipelines/{pipeline}/{message_id}", status_code=204, responses=errors(404),
               summary="Discard a dead letter")
async def discard_letter(pipeline: PipelineName, message_id: MessageId, request: Request,
                         principal: Writer) -> Response:
    st = state_of(request)
    letter = await _letter(st, principal, pipeline, message_id)
    await st.engine.dlq.discard(letter.workflow, letter.id)
    await audit(request, "dlq.discard", f"execution:{letter.id}",
                {"workflow": letter.workflow}, tenant_id=letter.tenant_id)
    return Response(status_code=204)
