"""`serve_app`: serve a YAML application with uvicorn (blocking).

It serves with the same HTTP stack as the control plane's `treadle.server.serve` (see there):
uvicorn's `httptools` parser and `uvloop` loop when installed, no access log unless asked for
(`access_log=True` or `TREADLE_ACCESS_LOG=1`), and the heap as it is before serving frozen out
of the garbage collector's way. (The two do not share a helper: this module must not import
`treadle.server`, which needs the server and metrics extras.)
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from treadle.apps.asgi import ASGIApp, asgi_app
from treadle.apps.runtime import AppRuntime, build_app
from treadle.errors import require

if TYPE_CHECKING:
    from treadle.engine import Registry


def serve_app(
    config_path: str | os.PathLike[str],
    store_url: str,
    host: str | None = None,
    port: int | None = None,
    *,
    registry: Registry | None = None,
    api_keys: Iterable[str] | Mapping[str, str] | None = None,
    control_plane: bool = True,
    fallback: Callable[[AppRuntime], ASGIApp] | None = None,
    recover: bool = True,
    log_level: str = "info",
    access_log: bool | None = None,
    graceful_shutdown_seconds: int = 5,
    lease_seconds: float = 30.0,
    **uvicorn_options: Any,
) -> None:
    """Serve the application in `config_path` until interrupted.

    Opens an engine on `store_url` with `registry` (a fresh one by default; the app's
    pipelines are added to it as `pipeline:<name>`), builds the app (ConfigError on any
    problem, before anything listens), and runs uvicorn on the http.server module's address —
    `host`/`port` override it; with no http.server the default is 127.0.0.1:8080. With
    several http.server modules, each listens on its own address and serves the routes of
    its routers (`AppRuntime.for_server`); the first one also runs the application's
    lifecycle and the control plane, and `host`/`port` apply to it only. Startup
    opens the store, resumes executions left by dead processes (`recover`), starts the
    modules in dependency order and then the triggers; SIGINT/SIGTERM stop the triggers and
    modules, then close the store (executions still running stay resumable). While it
    serves, with `recover`, it does the control plane's housekeeping (`AppRuntime.start`):
    every `lease_seconds` it takes over the executions of this application whose holder
    died (this server's previous life too, restarted within the lease), and hourly it
    deletes the records past their expiry.

    With `control_plane` (and the server extra installed) the control plane
    (`treadle.server.create_app`, protected by `api_keys`) is served behind the config's
    routes: a path the config routes wins. `fallback(runtime)` replaces it with any ASGI
    app; it must not close the engine itself (this function does).

    `access_log` logs every request (default: off, or `TREADLE_ACCESS_LOG`); other keyword
    arguments go to `uvicorn.Config`.
    """
    uvicorn = require("uvicorn", "server")
    from treadle.engine import Engine, Registry

    engine = Engine(store_url, registry=registry if registry is not None else Registry(),
                    lease_seconds=lease_seconds)
    runtime = build_app(config_path, engine)
    behind: ASGIApp | None = None
    if fallback is not None:
        behind = fallback(runtime)
    elif control_plane:
        from treadle.server import create_app

        behind = create_app(engine, api_keys=api_keys, recover=False, close_engine=False)
    views = [runtime.for_server(s.name) for s in runtime.servers] or [runtime]
    configs = []
    for i, view in enumerate(views):
        options: dict[str, Any] = {"timeout_graceful_shutdown": graceful_shutdown_seconds,
                                   **_http_stack(access_log)}
        server = view.server
        if server is not None and server.idle_timeout:
            options["timeout_keep_alive"] = max(1, int(server.idle_timeout))
        options.update(uvicorn_options)
        bind_host, bind_port = view.address
        if i == 0:
            app = asgi_app(view, behind, recover=recover)
            bind_host = host or bind_host
            bind_port = port if port is not None else bind_port
        else:  # the first server's lifespan starts and stops the application
            app = asgi_app(view, None, close_engine=False)
        configs.append(uvicorn.Config(app, host=bind_host, port=bind_port, log_level=log_level,
                                      lifespan="on" if i == 0 else "off", **options))
    gc.collect()
    gc.freeze()  # what lives as long as the process is never scanned again
    try:
        if len(configs) == 1:
            uvicorn.Server(configs[0]).run()
        else:
            servers = [uvicorn.Server(c) for c in configs]
            with asyncio.Runner(loop_factory=configs[0].get_loop_factory()) as runner:
                runner.run(_serve_all(servers))
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        gc.unfreeze()


async def _serve_all(servers: list[Any]) -> None:
    """Run uvicorn servers together until one stops (a signal reaches whichever installed its
    handler last, and uvicorn passes it on to the one before); then the others are told to
    exit, the first server — which holds the application's lifespan — last."""
    tasks = [asyncio.ensure_future(s.serve()) for s in servers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in servers[1:]:
            server.should_exit = True
        await asyncio.gather(*tasks[1:], return_exceptions=True)
        servers[0].should_exit = True
        await tasks[0]


def _http_stack(access_log: bool | None) -> dict[str, Any]:
    """uvicorn's `http`, `loop` and `access_log` (as `treadle.server.serve` chooses them)."""
    if access_log is None:
        flag = os.environ.get("TREADLE_ACCESS_LOG", "").strip().lower()
        access_log = flag in {"1", "true", "yes", "on"}
    return {
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "access_log": access_log,
    }


__all__ = ["serve_app"]
