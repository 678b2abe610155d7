"""`create_app`: the control plane as a FastAPI application over one `Engine`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from treadle import __version__
from treadle.engine import Engine
from treadle.observability.live import LiveHub
from treadle.observability.metrics import MetricsObserver
from treadle.server.auth import SECURITY, SECURITY_SCHEMES, Authenticator, make_authenticator
from treadle.server.errors import JSON, BodyLimit, install_error_handlers
from treadle.server.routes import dashboard, executions, live, ops
from treadle.server.state import ServerState, Settings

logger = logging.getLogger("treadle.server")

DESCRIPTION = """The Treadle control plane: start, inspect, follow and compare executions.

Errors are JSON: `{"error": {"code", "message", "details"}}`. When the server has API keys,
send one as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
"""


class ControlPlane(FastAPI):
    """FastAPI, with the API-key security schemes declared in the OpenAPI document."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            components = schema.setdefault("components", {})
            components["securitySchemes"] = SECURITY_SCHEMES
            for name in ("HTTPValidationError", "ValidationError"):  # ours is ErrorOut
                components.get("schemas", {}).pop(name, None)
            error = {"$ref": "#/components/schemas/ErrorOut"}
            for path, operations in schema.get("paths", {}).items():
                for operation in operations.values():
                    if path.startswith("/api/"):
                        operation["security"] = SECURITY
                    invalid = operation.get("responses", {}).get("422")
                    if invalid is not None:
                        invalid["content"] = {"application/json": {"schema": error}}
            self.openapi_schema = schema
        return self.openapi_schema


def create_app(
    engine: Engine,
    *,
    api_keys: Iterable[str] | Mapping[str, str] | None = None,
    auth: Authenticator | None = None,
    recover: bool = False,
    close_engine: bool = True,
    settings: Settings | None = None,
    hub: LiveHub | None = None,
    metrics_registry: CollectorRegistry | None = None,
    max_body_size: int = 1 << 20,
) -> ControlPlane:
    """The control plane for `engine`.

    `api_keys` (a list, or a mapping of key name → key) turns authentication on; `auth`
    plugs in another authenticator. At startup the app opens the engine (and with `recover`
    resumes executions left by dead processes); at shutdown, with `close_engine`, it stops the
    executions running here (they stay resumable) and closes the store. Executions run in
    the server's event loop. Metrics go to `metrics_registry` (a fresh one by default, so two
    apps in one process do not mix their numbers).
    """
    hub = hub if hub is not None else LiveHub()
    metrics = MetricsObserver(metrics_registry)
    engine.add_observer(hub)
    engine.add_observer(metrics)
    state = ServerState(engine=engine, hub=hub, metrics=metrics,
                        auth=make_authenticator(api_keys, auth), settings=settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.open()
        if recover:
            resumed = await engine.recover()
            if resumed:
                logger.info("resumed %d executions", len(resumed))
        try:
            yield
        finally:
            for task in list(state.background):
                task.cancel()
            if close_engine:
                await engine.close()

    app = ControlPlane(
        title="Treadle control plane",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        strict_content_type=False,
        default_response_class=JSON,
    )
    app.state.treadle = state
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_size)
    app.include_router(ops.router)
    app.include_router(live.router)  # before /executions/{id}: `live` is not an id
    app.include_router(executions.router)
    app.include_router(dashboard.router)
    return app

