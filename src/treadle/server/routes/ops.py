"""Operations: `/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from treadle.engine import Engine
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
    state = state_of(request)
    body = generate_latest(state.metrics.registry)
    body += generate_latest(_Families(await _dlq_depth(state.engine)))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class _Families:
    """Metric families computed for one scrape, in the shape `generate_latest` reads."""

    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


async def _dlq_depth(engine: Engine) -> Metric:
    """`workflow_dlq_depth`: the dead letters waiting, by pipeline (workflow), read from the
    store at each scrape (so every server of a cluster reports the same queue)."""
    depth: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        page = await engine.dlq.list(limit=1000, cursor=cursor)
        depth.update(letter.workflow for letter in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    family = GaugeMetricFamily("workflow_dlq_depth", "Dead letters waiting, by pipeline",
                               labels=["pipeline"])
    for pipeline, count in sorted(depth.items()):
        family.add_metric([pipeline], float(count))
    return family
