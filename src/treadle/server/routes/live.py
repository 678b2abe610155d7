"""`GET /api/v1/executions/live`: journal events as Server-Sent Events (seed roadmap, 3d).

Each event is sent as `event: <type>`, `id: <execution_id>:<seq>` and a JSON `data` line with
the seed's fields (`execution_id`, `pipeline`, `step`, `type`, `duration_ms`, `status`, …) plus
`seq` and `at`. Two kinds of stream:

- **global** (no `execution_id`): events of every execution this server runs, optionally
  filtered by `pipeline` and `tenant`, from the moment of subscription (the comment line
  `: subscribed`, sent first). On reconnection with
  `Last-Event-ID`, the events emitted since are replayed from the server's buffer of recent
  events (`buffer_size`, in memory, this process only); when that event is no longer in the
  buffer (or the server restarted) the stream starts with a `stream.reset` event and the
  client should re-read what it needs from the REST API.
- **execution** (`execution_id=…`): that execution's journal from the start (or after the
  `Last-Event-ID` / `after` seq), then its live events; the stream ends after the
  execution's last event. Missed events are always replayed from the store, and the store is
  polled too, so executions run by other processes (workers) are followed as well.

A consumer that cannot keep up with a global stream loses events, never slows the engine: it
receives one `stream.dropped` event (`{"dropped": n}`) where they were, and can reconnect with
its last event id to recover them from the buffer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from treadle.engine import Engine
from treadle.journal import TERMINAL_EVENTS, Event, EventType
from treadle.observability.live import Dropped, LiveEvent, LiveHub
from treadle.server.errors import ApiError, not_found
from treadle.server.routes.executions import Reader, _check_id, _tenant_visible, errors
from treadle.server.state import state_of
from treadle.server.views import iso, trigger_of

router = APIRouter(prefix="/api/v1", tags=["live"])

_SEED_FIELDS: dict[str, str] = {
    EventType.EXECUTION_COMPLETED: "completed",
    EventType.EXECUTION_FAILED: "failed",
    EventType.EXECUTION_CANCELLED: "cancelled",
}


def _ms(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def _error(error: Any) -> Any:
    if isinstance(error, dict):
        return {k: error.get(k) for k in ("type", "message", "retryable") if k in error}
    return error


def live_data(ev: Event, pipeline: str | None, tenant: str | None) -> dict[str, Any]:
    """The JSON `data` of one SSE event, in the seed's shape."""
    d = ev.data
    out: dict[str, Any] = {"execution_id": ev.execution_id, "seq": ev.seq, "pipeline": pipeline}
    kind = ev.type
    if kind == EventType.EXECUTION_STARTED:
        out.update(pipeline=d.get("workflow"), tenant=d.get("tenant_id"),
                   trigger=trigger_of(dict(d.get("metadata") or {}))["type"])
        if d.get("parent_id") is not None:
            out["parent_id"] = d["parent_id"]
    elif kind == EventType.STEP_STARTED:
        out.update(step=d.get("step_name"), type=d.get("step_type") or "step", pos=d.get("pos"),
                   attempt=d.get("attempt"))
    elif kind in (EventType.STEP_COMPLETED, EventType.STEP_FAILED,
                  EventType.RETRY_ATTEMPTED):
        out.update(step=d.get("step_name"), duration_ms=_ms(d.get("duration_ms")),
                   pos=d.get("pos"))
        for key in ("kind", "mocked", "attempt", "attempts", "delay", "output"):
            if key in d:
                out[key] = d[key]
        if "error" in d:
            out["error"] = _error(d["error"])
    elif kind in _SEED_FIELDS:
        out.update(duration_ms=_ms(d.get("duration_ms")), status=_SEED_FIELDS[kind])
        if "error" in d:
            out["error"] = _error(d["error"])
        if "reason" in d:
            out["reason"] = d["reason"]
    else:
        for key, value in d.items():
            out["step" if key == "step_name" else key] = (
                _error(value) if key == "error" else value)
    if tenant is not None:
        out.setdefault("tenant", tenant)
    out["at"] = iso(ev.created_at)
    return out


def _sse(ev: Event, pipeline: str | None, tenant: str | None) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(live_data(ev, pipeline, tenant), separators=(",", ":")),
        event=ev.type, id=f"{ev.execution_id}:{ev.seq}",
    )


def _notice(kind: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, separators=(",", ":")), event=kind)


def _parse_event_id(value: str) -> tuple[str, int] | None:
    execution_id, _, seq = value.strip().rpartition(":")
    if not execution_id or not seq.isdigit() or len(seq) > 18:
        return None
    return execution_id, int(seq)


async def _global_stream(
    hub: LiveHub, pipeline: str | None, tenant: str | None, resume: tuple[str, int] | None,
    resuming: bool,
) -> AsyncIterator[ServerSentEvent]:
    with hub.subscribe(workflow=pipeline, tenant=tenant) as sub:
        yield ServerSentEvent(comment="subscribed")  # from here on, nothing is missed
        backlog: list[LiveEvent] = []
        if resuming:
            found = hub.since(*resume, sub) if resume is not None else None
            if found is None:
                yield _notice("stream.reset", {"reason": "last_event_id_unknown"})
            else:
                backlog = found
        last_n = 0
        for item in backlog:
            last_n = item.n
            yield _sse(item.event, item.workflow, item.tenant)
        while True:
            got = await sub.get()
            if isinstance(got, Dropped):
                after = got.after.event if got.after is not None else None
                yield _notice("stream.dropped", {
                    "dropped": got.count,
                    "last_event_id": f"{after.execution_id}:{after.seq}" if after else None,
                })
            elif got is not None and got.n > last_n:
                yield _sse(got.event, got.workflow, got.tenant)


async def _execution_stream(
    engine: Engine, hub: LiveHub, execution_id: str, after: int,
    pipeline: str | None, tenant: str | None, poll: float,
) -> AsyncIterator[ServerSentEvent]:
    last = after

    async def catch_up() -> list[Event]:
        stored = await engine.store.events(execution_id, after=last)
        newest = stored[-1].seq if stored else last
        buffered = [item.event for item in hub.recent(execution_id, newest)]
        return [*stored, *buffered]

    with hub.subscribe(execution_id=execution_id) as sub:
        for ev in await catch_up():
            if ev.seq > last:
                last = ev.seq
                yield _sse(ev, pipeline, tenant)
                if ev.type in TERMINAL_EVENTS:
                    return
        while True:
            got = await sub.get(timeout=poll)
            pending: list[Event] = []
            if got is None or isinstance(got, Dropped):
                pending = await catch_up()
            elif got.event.seq > last + 1:
                pending = [*(await catch_up()), got.event]
            else:
                pending = [got.event]
            for ev in pending:
                if ev.seq > last:
                    last = ev.seq
                    yield _sse(ev, pipeline, tenant)
                    if ev.type in TERMINAL_EVENTS:
                        return


@router.get(
    "/executions/live", summary="Live events (Server-Sent Events)",
    response_class=EventSourceResponse, responses={
        200: {"content": {"text/event-stream": {}}, "description": "an SSE stream"},
        **errors(400, 404, 422),
    },
)
async def live(
    request: Request,
    principal: Reader,
    pipeline: Annotated[str | None, Query(max_length=200, description="only this workflow")] = None,
    tenant: Annotated[str | None, Query(max_length=200, description="only this tenant")] = None,
    execution_id: Annotated[str | None, Query(
        max_length=200, description="follow one execution: its journal, then live")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62,
                                       description="execution streams: start after seq")] = None,
    last_event_id: Annotated[str | None, Header(
        max_length=500, description="resume after this event (`<execution_id>:<seq>`)")] = None,
) -> EventSourceResponse:
    """Stream `execution.started`, `step.started`, `step.completed`, … as they happen."""
    st = state_of(request)
    hub = st.hub
    settings = st.settings
    if principal.tenant_id is not None:
        tenant = principal.tenant_id
    resume = _parse_event_id(last_event_id) if last_event_id else None
    if execution_id is not None:
        _check_id(execution_id)
        await st.engine.open()
        row = await st.engine.store.get(execution_id)
        if row is None or not _tenant_visible(principal, row.tenant_id):
            raise not_found("execution", execution_id)
        start = after or 0
        if resume is not None and resume[0] == execution_id:
            start = max(start, resume[1])
        stream: AsyncIterator[ServerSentEvent] = _execution_stream(
            st.engine, hub, execution_id, start, row.workflow, row.tenant_id,
            settings.live_poll_seconds)
    else:
        if after is not None:
            raise ApiError(400, "bad_request", "`after` needs `execution_id`")
        stream = _global_stream(hub, pipeline, tenant, resume, bool(last_event_id))
    return EventSourceResponse(stream, ping=settings.live_ping_seconds,
                               send_timeout=settings.live_send_timeout)
