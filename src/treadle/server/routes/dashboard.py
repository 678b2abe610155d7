"""`GET /api/v1/dashboard/metrics`: the numbers of a pipeline over a period, from the store."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from treadle.journal import Execution, ExecutionSummary, project
from treadle.server.dashboard import dashboard_metrics, parse_period
from treadle.server.errors import JSON, ApiError
from treadle.server.routes.executions import Reader, errors
from treadle.server.schemas import DashboardOut
from treadle.server.state import state_of

router = APIRouter(prefix="/api/v1", tags=["dashboard"])


async def _scan(request: Request, pipeline: str | None, tenant: str | None, start: float,
                limit: int) -> tuple[list[ExecutionSummary], bool]:
    engine = state_of(request).engine
    rows: list[ExecutionSummary] = []
    cursor = None
    while True:
        page = await engine.list(workflow=pipeline, tenant_id=tenant, since=start,
                                 limit=min(1000, limit - len(rows)), cursor=cursor)
        rows.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return rows, False
        if len(rows) >= limit:
            return rows, True


@router.get("/dashboard/metrics", response_model=DashboardOut, responses=errors(400, 422),
            summary="Dashboard metrics of a pipeline")
async def dashboard(
    request: Request,
    principal: Reader,
    pipeline: Annotated[str | None, Query(max_length=200, description="all when absent")] = None,
    period: Annotated[str, Query(max_length=16, description="e.g. 15m, 24h, 7d")] = "24h",
    tenant: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """Totals, success rate, p50/p95/p99 durations, per step (from a sample of the most recent
    finished executions' journals) and per hour, over the executions created in the period."""
    try:
        seconds = parse_period(period)
    except ValueError as exc:
        raise ApiError(400, "invalid_period", str(exc)) from exc
    st = state_of(request)
    if principal.tenant_id is not None:
        tenant = principal.tenant_id
    now = time.time()
    start = now - seconds
    rows, truncated = await _scan(request, pipeline, tenant, start,
                                  st.settings.dashboard_max_executions)
    sample: list[Execution] = []
    for row in rows:
        if len(sample) >= st.settings.dashboard_step_sample:
            break
        if row.status.is_terminal:
            events = await st.engine.store.events(row.id)
            if events:
                sample.append(project(row.id, events))
    body = dashboard_metrics(rows, sample, pipeline=pipeline, period=period, start=start,
                             now=now, truncated=truncated)
    return JSON(body)

