"""Executions: start, list, get, events, timeline, diff, cancel, signal, retry."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import math
import re
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from treadle.engine import Engine, WorkflowDef
from treadle.errors import (
    ExecutionNotFoundError,
    QueueFullError,
    TreadleError,
    WorkflowNotFoundError,
    WorkflowVersionError,
)
from treadle.journal import Event, ExecutionStatus, project
from treadle.server.audit import audit
from treadle.server.auth import Principal, requires
from treadle.server.diff import diff_executions
from treadle.server.errors import JSON, ApiError, not_found
from treadle.server.schemas import (
    CancelBody,
    DiffOut,
    ErrorOut,
    EventPage,
    ExecutionOut,
    ExecutionPage,
    MockRunBody,
    ReplayBody,
    RetryBody,
    SignalBody,
    StartExecution,
    StartOut,
    StatusOut,
    TimelineOut,
)
from treadle.server.state import ServerState, state_of
from treadle.server.views import (
    event_view,
    execution_view,
    summary_view,
    timeline_view,
    user_metadata,
)
from treadle.stores.base import decode_cursor

router = APIRouter(prefix="/api/v1", tags=["executions"])

_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes (401 and 403 are always possible)."""
    return {code: {"model": ErrorOut} for code in sorted({401, 403, *codes})}


EXISTING: dict[int | str, dict[str, Any]] = {200: {"model": StartOut,
                  "description": "`idempotency_key` matched an execution started before"}}


ExecutionId = Annotated[str, Path(description="the execution's id")]
Reader = Annotated[Principal, Depends(requires("read"))]
_may_write = requires("write")
Writer = Annotated[Principal, Depends(_may_write)]


def _check_id(execution_id: str) -> str:
    if not _ID.match(execution_id):
        raise not_found("execution", execution_id[:200])
    return execution_id


async def _journal(engine: Engine, execution_id: str) -> list[Event]:
    _check_id(execution_id)
    await engine.open()
    events = await engine.store.events(execution_id)
    if not events:
        raise not_found("execution", execution_id)
    return events


def _tenant_visible(principal: Principal, tenant_id: str | None) -> bool:
    return principal.tenant_id is None or principal.tenant_id == tenant_id


def _resolve(engine: Engine, name: str, version: str | None) -> WorkflowDef:
    try:
        return engine.registry.get(name, version, exact=version is not None)
    except (WorkflowNotFoundError, WorkflowVersionError) as exc:
        raise ApiError(400, "workflow_not_found", str(exc),
                       {"known": engine.registry.names()[:100]}) from exc


@functools.lru_cache(maxsize=4096)
def _arity_error(fn: Any, count: int) -> str | None:
    """Why `fn(ctx, *args)` cannot take `count` positional arguments, or None if it can.

    Only the number of arguments matters (they are all positional), so the answer is cached
    per workflow function and count: `Signature.bind` on every start cost about 25 µs, more
    than the rest of the route's own code.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins, C functions: let the execution tell
        return None
    try:
        signature.bind(None, *([None] * count))
    except TypeError as exc:
        return str(exc)
    return None


def _check_arguments(wf: WorkflowDef, args: list[Any]) -> None:
    error = _arity_error(wf.fn, len(args))
    if error is not None:
        raise ApiError(400, "invalid_arguments",
                       f"workflow {wf.name!r} does not take these arguments: {error}",
                       {"arguments": len(args)})


def _started(handle_id: str, wf: WorkflowDef, status: str, created: bool,
             retry_of: str | None = None) -> JSON:
    body: dict[str, Any] = {"id": handle_id, "execution_id": handle_id, "workflow": wf.name,
                            "status": status, "created": created}
    if retry_of is not None:
        body["retry_of"] = retry_of
    return JSON(body, status_code=201 if created else 200,
                headers={"Location": f"/api/v1/executions/{handle_id}"})


async def _start(
    st: ServerState,
    wf: WorkflowDef,
    args: list[Any],
    *,
    idempotency_key: str | None,
    metadata: dict[str, Any],
    tenant_id: str | None,
    queue: str | None = None,
    priority: int = 0,
    start_at: datetime | None = None,
    retry_of: str | None = None,
) -> JSON:
    engine = st.engine
    new_id = str(uuid.uuid4())
    try:
        handle = await engine.start(
            wf, *args, idempotency_key=idempotency_key, execution_id=new_id,
            metadata=metadata, tenant_id=tenant_id, queue=queue, priority=priority,
            start_at=start_at,
        )
    except QueueFullError as exc:  # backpressure: nothing was written, retry later
        raise ApiError(429, "queue_full", str(exc),
                       {"queue": exc.queue, "depth": exc.depth, "max_depth": exc.max_depth},
                       ) from exc
    if handle.id == new_id:
        status = "pending" if queue is not None or start_at is not None else "running"
        return _started(handle.id, wf, status, True, retry_of)
    first = await engine.store.events(handle.id, limit=1)
    data = first[0].data if first else {}
    if data.get("workflow") != wf.name or data.get("args") != args:
        raise ApiError(409, "idempotency_conflict",
                       f"idempotency key {idempotency_key!r} was used for another start "
                       "(a different workflow or input)", {"execution_id": handle.id})
    row = await engine.store.get(handle.id)
    return _started(handle.id, wf, str(row.status) if row else "unknown", False, retry_of)


class _StartRoute(APIRoute):
    """`POST /executions`, the hot path: FastAPI's own handler, with a shortcut in front.

    FastAPI's request handling (content negotiation, dependency solving, body validation
    through a generic field) costs more CPU than the start itself. The shortcut does the same
    for the common request — a JSON body that validates: `json.loads`, then `StartExecution`
    validation (as FastAPI does it), then the `write` permission check — and hands anything
    else (no or another content type, a body that is not JSON or not valid) to FastAPI's
    handler, so every error answer stays FastAPI's. The authenticator runs once either way.

    The shortcut knows one dependency, the `write` check: a route with any other (or more)
    gets FastAPI's handler alone, and so does an app with `dependency_overrides`. Dependencies
    added when the router is included in the app would be skipped by it: declare them on the
    routes (or on `router`) instead.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        if [dependency.call for dependency in self.dependant.dependencies] != [_may_write]:
            return standard

        async def handler(request: Request) -> Response:
            if getattr(request.app, "dependency_overrides", None):  # tests: FastAPI's way
                return await standard(request)
            body = _json_model(StartExecution, request.headers.get("content-type"),
                               await request.body())
            if body is None:
                return await standard(request)
            return await _start_execution(body, request, await _may_write(request))

        return handler


_M = TypeVar("_M", bound=BaseModel)


def _json_model(model: type[_M], content_type: str | None, raw: bytes) -> _M | None:
    """`raw` as a valid `model` when it is a JSON document sent as JSON, else None."""
    media = (content_type or "").partition(";")[0].strip().lower()
    main, _, sub = media.partition("/")
    if main != "application" or not (sub == "json" or sub.endswith("+json")) or not raw:
        return None
    try:
        return model.model_validate(json.loads(raw))
    except (ValueError, RecursionError, ValidationError):  # JSONDecodeError, UnicodeDecodeError
        return None


async def start_execution(body: StartExecution, request: Request, principal: Writer) -> Any:
    """Start `workflow` with `input` (or `args`); 201 with its id, or 200 when
    `idempotency_key` matched an execution started before with the same workflow and input
    (409 if it was started with another)."""
    return await _start_execution(body, request, principal)


# `route_class_override` rather than a sub-router with `route_class`: a nested router costs
# about 90 more Python calls per request in FastAPI's route matching.
router.add_api_route("/executions", start_execution, methods=["POST"], status_code=201,
                     response_model=StartOut,
                     responses={**EXISTING, **errors(400, 409, 413, 422, 429)},
                     summary="Start an execution", route_class_override=_StartRoute)


async def _start_execution(body: StartExecution, request: Request, principal: Principal) -> JSON:
    st = state_of(request)
    wf = _resolve(st.engine, body.workflow, body.version)
    args = body.workflow_args()
    _check_arguments(wf, args)
    metadata = dict(body.metadata or {})
    metadata.setdefault("trigger", {
        "type": "api", "request_id": request.headers.get("x-request-id") or uuid.uuid4().hex,
    })
    if principal.tenant_id is not None and body.tenant_id not in (None, principal.tenant_id):
        raise ApiError(403, "forbidden", "you cannot start executions for another tenant")
    return await _start(
        st, wf, args, idempotency_key=body.idempotency_key, metadata=metadata,
        tenant_id=principal.tenant_id or body.tenant_id, queue=body.queue,
        priority=body.priority, start_at=body.start_at,
    )


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _check_cursor(cursor: str) -> None:
    try:
        created, ident = decode_cursor(cursor)
    except ValueError:
        created, ident = math.nan, ""
    if not math.isfinite(created) or not _ID.match(ident):
        raise ApiError(400, "invalid_cursor", "the cursor is not one this API returned")


@router.get("/executions", response_model=ExecutionPage, responses=errors(400, 422),
            summary="List executions")
async def list_executions(
    request: Request,
    principal: Reader,
    workflow: Annotated[str | None, Query(max_length=200, description="workflow name")] = None,
    pipeline: Annotated[str | None, Query(max_length=200, description="alias of workflow")] = None,
    status: ExecutionStatus | None = None,
    tenant_id: Annotated[str | None, Query(max_length=200)] = None,
    parent_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="created at or after")] = None,
    until: Annotated[datetime | None, Query(description="created before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor`")] = None,
) -> Any:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    if cursor is not None:
        _check_cursor(cursor)
    if principal.tenant_id is not None:
        tenant_id = principal.tenant_id
    try:
        page = await state_of(request).engine.list(
            workflow=workflow or pipeline, status=status, since=_epoch(since),
            until=_epoch(until), parent_id=parent_id, tenant_id=tenant_id, limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "the cursor is not one this API returned") from exc
    return JSON({"items": [summary_view(row) for row in page.items],
                 "next_cursor": page.next_cursor})


@router.get("/executions/diff", response_model=DiffOut, responses=errors(404, 422),
            summary="Compare two executions")
async def diff(
    request: Request,
    principal: Reader,
    left: Annotated[str, Query(min_length=1, max_length=200)],
    right: Annotated[str, Query(min_length=1, max_length=200)],
) -> Any:
    """Step by step: identical, output_different, left_skipped/right_skipped, per-key diffs."""
    engine = state_of(request).engine
    views = []
    for side, ident in (("left", left), ("right", right)):
        try:
            events = await _journal(engine, ident)
        except ApiError as exc:
            exc.details = {"side": side}
            raise
        if not _tenant_visible(principal, events[0].data.get("tenant_id")):
            raise not_found("execution", ident)
        views.append(project(ident, events))
    return JSON(diff_executions(views[0], views[1]))


@router.get("/executions/{execution_id}", response_model=ExecutionOut, responses=errors(404),
            summary="Get an execution")
async def get_execution(execution_id: ExecutionId, request: Request, principal: Reader) -> Any:
    """The execution rebuilt from its journal: status, input, output, error, steps."""
    events = await _journal(state_of(request).engine, execution_id)
    tenant = events[0].data.get("tenant_id")
    if not _tenant_visible(principal, tenant):
        raise not_found("execution", execution_id)
    return JSON(execution_view(project(execution_id, events), tenant))


@router.get("/executions/{execution_id}/events", response_model=EventPage,
            responses=errors(404, 422),
            summary="The journal of an execution")
async def get_events(
    execution_id: ExecutionId,
    request: Request,
    principal: Reader,
    after: Annotated[int, Query(ge=0, le=2**62, description="only events with seq > after")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Any:
    engine = state_of(request).engine
    _check_id(execution_id)
    await engine.open()
    row = await engine.store.get(execution_id)
    if row is None or not _tenant_visible(principal, row.tenant_id):
        raise not_found("execution", execution_id)
    events = await engine.store.events(execution_id, after=after, limit=limit)
    next_after = events[-1].seq if len(events) == limit else None
    return JSON({"items": [event_view(ev) for ev in events], "next_after": next_after})


@router.get("/executions/{execution_id}/timeline", response_model=TimelineOut,
            responses=errors(404), summary="The timeline of an execution")
async def get_timeline(execution_id: ExecutionId, request: Request, principal: Reader) -> Any:
    """Every step with its type, status, timing, input, output and attempts (seed format)."""
    events = await _journal(state_of(request).engine, execution_id)
    if not _tenant_visible(principal, events[0].data.get("tenant_id")):
        raise not_found("execution", execution_id)
    return JSON(timeline_view(project(execution_id, events), events))


async def _visible_row(st: ServerState, principal: Principal, execution_id: str) -> Any:
    _check_id(execution_id)
    await st.engine.open()
    row = await st.engine.store.get(execution_id)
    if row is None or not _tenant_visible(principal, row.tenant_id):
        raise not_found("execution", execution_id)
    return row


def _finished(execution_id: str, status: str) -> ApiError:
    return ApiError(409, "execution_finished", f"execution {execution_id} is {status}",
                    {"status": status})


@router.post("/executions/{execution_id}/cancel", response_model=StatusOut, status_code=202,
             responses={200: {"model": StatusOut, "description": "it ended within the wait"},
                        **errors(400, 404, 409, 422)},
             summary="Cancel an execution")
async def cancel_execution(
    execution_id: ExecutionId,
    request: Request,
    principal: Writer,
    body: Annotated[CancelBody | None, Body()] = None,
) -> Any:
    """Cancel: completed saga steps are compensated, then it ends `cancelled`.

    200 when it ended within the server's wait, 202 while it is still unwinding; 409 when
    it had already ended."""
    st = state_of(request)
    row = await _visible_row(st, principal, execution_id)
    if row.status.is_terminal:
        raise _finished(execution_id, str(row.status))
    reason = (body or CancelBody()).reason
    await audit(request, "execution.cancel", f"execution:{execution_id}", {"reason": reason},
                tenant_id=row.tenant_id)
    task = asyncio.ensure_future(st.engine.cancel(execution_id, reason))
    st.keep(task)
    try:
        await asyncio.wait_for(asyncio.shield(task), st.settings.cancel_wait_seconds)
    except TimeoutError:
        pass
    except ExecutionNotFoundError as exc:
        raise not_found("execution", execution_id) from exc
    except TreadleError as exc:
        raise ApiError(409, "execution_owned_elsewhere", str(exc)) from exc
    row = await st.engine.store.get(execution_id)
    status = str(row.status) if row is not None else "unknown"
    done = row is not None and row.status.is_terminal
    return JSON({"id": execution_id, "status": status}, status_code=200 if done else 202)


@router.post("/executions/{execution_id}/signals", response_model=StatusOut, status_code=202,
             responses=errors(400, 404, 409, 422), summary="Send a signal")
async def send_signal(
    execution_id: ExecutionId, body: SignalBody, request: Request, principal: Writer
) -> Any:
    """Put a signal in the execution's inbox; a `wait_for_signal(name)` takes it."""
    st = state_of(request)
    row = await _visible_row(st, principal, execution_id)
    if row.status.is_terminal:
        raise _finished(execution_id, str(row.status))
    try:
        await st.engine.signal(execution_id, body.name, body.payload)
    except ValueError as exc:  # a reserved name such as "treadle.cancel"
        raise ApiError(400, "invalid_signal", str(exc)) from exc
    except ExecutionNotFoundError as exc:
        raise not_found("execution", execution_id) from exc
    except TreadleError as exc:
        raise ApiError(409, "execution_finished", str(exc)) from exc
    return JSON({"id": execution_id, "status": "accepted", "signal": body.name},
                status_code=202)


@router.post("/pipelines/{pipeline}/mock", response_model=StartOut, status_code=201,
             responses={**EXISTING, **errors(400, 409, 422, 429)}, summary="Start a mock run")
async def mock_run(
    pipeline: Annotated[str, Path(max_length=200)], body: MockRunBody, request: Request,
    principal: Writer,
) -> Any:
    """Run a pipeline (or a workflow by name) on `trigger_data`, with the named steps
    returning the given `output` after `delay_ms` instead of running. The execution is
    marked as a mock run (`metadata.mock_run`) and each mocked step is journaled
    `mocked: true`."""
    st = state_of(request)
    name = pipeline if pipeline.startswith("pipeline:") else f"pipeline:{pipeline}"
    if name not in st.engine.registry.names() and pipeline in st.engine.registry.names():
        name = pipeline  # a code workflow
    wf = _resolve(st.engine, name, None)
    mocks = {step: mock.model_dump() for step, mock in body.mocks.items()}
    metadata = {"mock_run": True, "trigger": {"type": "mock"}}
    try:
        handle = await st.engine.start(
            wf, body.trigger_data, idempotency_key=body.idempotency_key, metadata=metadata,
            tenant_id=principal.tenant_id, mocks=mocks,
        )
    except QueueFullError as exc:
        raise ApiError(429, "queue_full", str(exc)) from exc
    return _started(handle.id, wf, "running" if handle.created else "existing", handle.created)


@router.post("/executions/{execution_id}/replay", response_model=StartOut, status_code=201,
             responses=errors(400, 404, 422), summary="Replay an execution")
async def replay_execution(
    execution_id: ExecutionId, body: ReplayBody, request: Request, principal: Writer
) -> Any:
    """Run it again as a new execution linked by `metadata.replay_of`: `exact` (same input),
    `modified` (`modifications` deep-merged into the input), or `step_from` (the steps before
    `from_step` return their recorded outputs; live from that step on)."""
    st = state_of(request)
    row = await _visible_row(st, principal, execution_id)
    if body.mode == "step_from" and not body.from_step:
        raise ApiError(400, "invalid_replay", "mode step_from needs from_step")
    try:
        handle = await st.engine.replay(execution_id, body.mode,
                                        modifications=body.modifications,
                                        from_step=body.from_step, record_as=body.record_as)
    except ValueError as exc:
        raise ApiError(400, "invalid_replay", str(exc)) from exc
    except (WorkflowNotFoundError, WorkflowVersionError) as exc:
        raise ApiError(400, "workflow_not_loaded", str(exc)) from exc
    view = await st.engine.get(handle.id)
    await audit(request, "execution.replay", f"execution:{execution_id}",
                {"mode": body.mode, "from_step": body.from_step, "new_execution": handle.id,
                 "modified": bool(body.modifications)}, tenant_id=row.tenant_id)
    return JSON({"id": handle.id, "execution_id": handle.id, "workflow": view.workflow,
                 "status": str(view.status), "created": True, "replay_of": execution_id,
                 "mode": body.mode},
                status_code=201, headers={"Location": f"/api/v1/executions/{handle.id}"})


@router.post("/executions/{execution_id}/retry", response_model=StartOut, status_code=201,
             responses={**EXISTING, **errors(400, 404, 409, 422, 429)},
             summary="Retry a failed execution")
async def retry_execution(
    execution_id: ExecutionId,
    request: Request,
    principal: Writer,
    body: Annotated[RetryBody | None, Body()] = None,
) -> Any:
    """Start a new execution with the same workflow (latest version loaded) and input; its
    metadata has `retry_of`. Only failed or cancelled executions can be retried."""
    st = state_of(request)
    row = await _visible_row(st, principal, execution_id)
    if row.status not in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
        raise ApiError(409, "not_retryable",
                       f"execution {execution_id} is {row.status}; only failed or cancelled "
                       "executions can be retried", {"status": str(row.status)})
    first = await st.engine.store.events(execution_id, limit=1)
    started = first[0].data if first else {}
    wf = _resolve(st.engine, str(started.get("workflow", row.workflow)), None)
    metadata = {**user_metadata(dict(started.get("metadata") or {})), "retry_of": execution_id,
                "trigger": {"type": "retry", "execution_id": execution_id}}
    await audit(request, "execution.retry", f"execution:{execution_id}", {},
                tenant_id=row.tenant_id)
    return await _start(
        st, wf, list(started.get("args", [])),
        idempotency_key=(body or RetryBody()).idempotency_key, metadata=metadata,
        tenant_id=started.get("tenant_id"), retry_of=execution_id,
    )
