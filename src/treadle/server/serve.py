"""`serve`: run the control plane with uvicorn over an engine on a store URL."""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping
from typing import Any

from treadle.engine import Engine, Registry


def serve(
    store_url: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    registry: Registry | None = None,
    api_keys: Iterable[str] | Mapping[str, str] | None = None,
    recover: bool = True,
    log_level: str = "info",
    graceful_shutdown_seconds: int = 5,
    **app_options: Any,
) -> None:
    """Serve the control plane on `host:port` until interrupted (blocking).

    Opens an `Engine` on `store_url` with `registry` (default: the process-wide one, which
    holds every `@workflow` imported so far), resumes executions left by dead processes
    (`recover`), and runs executions in the server's own event loop. Other keyword arguments
    go to `create_app`. Ctrl-C (SIGINT) or SIGTERM shut down gracefully: open requests get
    `graceful_shutdown_seconds`, then executions running here stop where they are (they stay
    resumable) and the store is closed.
    """
    import uvicorn

    from treadle.server.app import create_app

    engine = Engine(store_url, registry=registry)
    app = create_app(engine, api_keys=api_keys, recover=recover, **app_options)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=graceful_shutdown_seconds)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found:
    # a no-op one lets the process exit 0 once everything is closed.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
