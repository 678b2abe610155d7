"""`create_app`: the control plane as a FastAPI application over one `Engine`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from treadle import __version__
from treadle.engine import Engine
from treadle.observability.live import LiveHub
from treadle.observability.metrics import MetricsObserver
from treadle.server import housekeeping
from treadle.server.auth import (
    SECURITY,
    SECURITY_SCHEMES,
    Authenticator,
    make_authenticator,
    route_permission,
)
from treadle.server.errors import JSON, BodyLimit, install_error_handlers
from treadle.server.routes import admin, breakpoints, dashboard, dlq, executions, live, ops, ui
from treadle.server.state import ServerState, Settings
from treadle.server.tokens import Tokens

DESCRIPTION = """The Treadle control plane: start, inspect, follow and compare executions.

Errors are JSON: `{"error": {"code", "message", "details"}}`. Send an API key or a JWT
access token (`POST /api/v1/auth/login`) as `Authorization: Bearer <token>` (or a key as
`X-API-Key: <key>`); a server without instance keys also answers anonymous requests.
"""


# In this order: `live` before /executions/{id} (`live` is not an id), then executions (starts
# are the hottest path).
ROUTERS = (live.router, executions.router, ops.router, dashboard.router, admin.router,
           breakpoints.router, dlq.router, ui.router)


class ControlPlane(FastAPI):
    """FastAPI, with the API-key security schemes declared in the OpenAPI document, and each
    operation's demand of its caller as `x-permission` (`public`, `authenticated`, `read`,
    `write`, `admin` or `instance`)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            components = schema.setdefault("components", {})
            components["securitySchemes"] = SECURITY_SCHEMES
            for name in ("HTTPValidationError", "ValidationError"):  # ours is ErrorOut
                components.get("schemas", {}).pop(name, None)
            error = {"$ref": "#/components/schemas/ErrorOut"}
            paths = schema.get("paths", {})
            for route in (r for router in ROUTERS for r in router.routes):
                if isinstance(route, APIRoute):  # the routers' own (FastAPI may wrap them)
                    for method in route.methods or ():
                        operation = paths.get(route.path_format, {}).get(method.lower())
                        if operation is not None:  # an `openapi_extra` override stays
                            operation.setdefault("x-permission",
                                                 route_permission(route.dependant))
            for path, operations in paths.items():
                for operation in operations.values():
                    if path.startswith("/api/"):
                        operation.setdefault("security", SECURITY)  # login: []
                    responses = operation.setdefault("responses", {})
                    invalid = responses.get("422")
                    if invalid is not None:
                        invalid["content"] = {"application/json": {"schema": error}}
                    if "requestBody" in operation and "400" not in responses:
                        responses["400"] = {  # a body that is not JSON: malformed_json
                            "description": "Bad Request",
                            "content": {"application/json": {"schema": error}}}
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
    jwt_secret: str | bytes | None = None,
) -> ControlPlane:
    """The control plane for `engine`.

    `api_keys` (a list, or a mapping of key name → key) turns authentication on; `auth`
    plugs in another authenticator. At startup the app opens the engine (and with `recover`
    resumes executions left by dead processes, then looks for more every lease period or
    `Settings.reclaim_seconds`: a process killed while it held executions leaves them to
    this server once its leases expire; and every `Settings.prune_seconds` it deletes the
    records past their expiry, e.g. dead letters past their retention); at shutdown, with
    `close_engine`, it stops the executions running here (they stay resumable) and closes
    the store. Executions run in the server's event loop. Metrics go to `metrics_registry` (a
    fresh one by default, so two apps in one process do not mix their numbers).

    `jwt_secret` (default: env `TREADLE_JWT_SECRET`; 32 bytes at least) signs login tokens;
    without one a random secret is made, and tokens die with the process.
    """
    hub = hub if hub is not None else LiveHub()
    metrics = MetricsObserver(metrics_registry)
    engine.add_observer(hub)
    engine.add_observer(metrics)
    settings = settings or Settings()
    tokens = Tokens(jwt_secret or os.environ.get("TREADLE_JWT_SECRET") or None,
                    access_seconds=settings.access_token_seconds,
                    refresh_seconds=settings.refresh_token_seconds)
    state = ServerState(engine=engine, hub=hub, metrics=metrics,
                        auth=make_authenticator(api_keys, auth), settings=settings,
                        tokens=tokens)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.open()
        if recover:
            await housekeeping.recover(engine)
            state.keep(housekeeping.start_housekeeping(
                engine, settings.reclaim_seconds, settings.prune_seconds))
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
    for router in ROUTERS:
        app.include_router(router)
    return app

