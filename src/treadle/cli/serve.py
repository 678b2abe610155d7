"""`treadle serve [CONFIG.yaml]`: the control plane, and a YAML application's routes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from treadle.cli.loading import import_all, registry_for
from treadle.cli.options import DEFAULT_STORE, ImportOption, StoreOption
from treadle.cli.session import setup_logging
from treadle.errors import require


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    config: Annotated[Path | None, typer.Argument(
        exists=True, dir_okay=False, help="A YAML application to serve (optional).")] = None,
    store: StoreOption = DEFAULT_STORE,
    host: Annotated[str | None, typer.Option(
        envvar="TREADLE_HOST", help="Address (default: the config's http.server, or "
        "127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(
        envvar="TREADLE_PORT", help="Port (default: the config's http.server, or 8080).")] = None,
    imports: ImportOption = None,
    api_key: Annotated[list[str] | None, typer.Option(
        "--api-key", envvar="TREADLE_API_KEYS", metavar="KEY",
        help="Require this API key on /api/v1 (repeatable; the env var takes a "
        "space-separated list). Without one the API is open: bind to 127.0.0.1.")] = None,
    jwt_secret: Annotated[str | None, typer.Option(
        "--jwt-secret", envvar="TREADLE_JWT_SECRET", metavar="SECRET", show_default=False,
        help="Sign login tokens with this secret (32 bytes at least; every server of a "
        "cluster needs the same). Without it, tokens are valid for this process only.")] = None,
    lease: Annotated[float, typer.Option(
        "--lease", envvar="TREADLE_LEASE", min=0.5,
        help="Lease seconds: executions of a server or worker that died (this server's "
        "previous life too) resume here this long after it stopped renewing.")] = 30.0,
) -> None:
    """Serve the control plane (/api/v1, /metrics, /healthz, /openapi.json) and, given a
    config, its HTTP routes and triggers, with executions running in this process.

    Example: treadle serve app.yaml --store sqlite:///./.treadle/treadle.db --port 8080
    """
    require("uvicorn", "server")
    setup_logging()  # take-overs and prunes are worth an operator's eye: INFO on stderr
    logging.getLogger("treadle.server").setLevel(logging.INFO)
    registry = registry_for(import_all(imports or []))
    if config is not None:
        from treadle.apps import serve_app

        fallback = None
        if jwt_secret:
            def fallback(runtime: Any) -> Any:  # the control plane, with the secret
                from treadle.server import create_app

                return create_app(runtime.engine, api_keys=api_key or None, recover=False,
                                  close_engine=False, jwt_secret=jwt_secret)

        serve_app(config, store, host=host, port=port, registry=registry, api_keys=api_key,
                  fallback=fallback, lease_seconds=lease)
        return
    from treadle.server import serve as serve_control_plane

    serve_control_plane(store, host or "127.0.0.1", port or 8080, registry=registry,
                        api_keys=api_key or None, jwt_secret=jwt_secret or None,
                        lease_seconds=lease)
