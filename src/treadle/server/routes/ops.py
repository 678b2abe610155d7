"""Operations: `/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from treadle.server.auth import SECURITY, demands, requires_instance
from treadle.server.errors import JSON, error_response
from treadle.server.schemas import ErrorOut, StatusOut
from treadle.server.state import state_of

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=StatusOut, summary="Liveness")
async def healthz() -> Any:
    """The process is up (no dependency is checked)."""
    return JSON({"status": "ok"})


@router.get("/readyz", response_model=StatusOut, summary="Readiness",
            responses={503: {"model": ErrorOut}})
async def readyz(request: Request) -> Any:
    """The store answers within two seconds."""
    engine = state_of(request).engine
    try:
        async with asyncio.timeout(2.0):
            await engine.open()
            await engine.store.get("treadle-readyz-probe")
    except Exception as exc:
        return error_response(503, "store_unavailable", "the store does not answer",
                              {"store": type(engine.store).__name__, "error": type(exc).__name__})
    return JSON({"status": "ready"})


_instance_reader = requires_instance("read")


@demands("instance")
async def _metrics_access(request: Request) -> None:
    """`/metrics` is labelled with every tenant's workflows: it needs an instance principal
    with the `read` permission, unless the app was built with public metrics."""
    if not state_of(request).settings.public_metrics:
        await _instance_reader(request)


# Errors are JSON like everywhere else: declared by hand, as `model` would put them under the
# route's own media type (text/plain).
_JSON_ERROR = {"content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/ErrorOut"}}}}


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(_metrics_access)],
            response_class=PlainTextResponse,
            responses={401: {"description": "Unauthorized", **_JSON_ERROR},
                       403: {"description": "Forbidden", **_JSON_ERROR}},
            openapi_extra={"security": SECURITY})
async def metrics(request: Request) -> Response:
    """The Prometheus text format (metric names of the seed roadmap, `workflow_*`)."""
    registry = state_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
