"""`serve`: run the control plane with uvicorn over an engine on a store URL.

The HTTP stack is uvicorn with its C parts when they are installed (`uvicorn[standard]`, which
the `server` extra pulls in): the `httptools` parser and the `uvloop` event loop, else the
pure-Python `h11` parser and asyncio's loop. Access logging (one line per request) is off
unless asked for (`access_log=True` or `TREADLE_ACCESS_LOG=1`): on a server answering
thousands of requests a second it is a tenth of the CPU per request. Before serving, the
objects that live as long as the process (modules, the app, its models) are moved out of the
garbage collector's reach (`gc.freeze()`), so that full collections, which otherwise pause
the server for tens or hundreds of milliseconds, have only the requests' objects to scan.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import signal
from collections.abc import Iterable, Mapping
from typing import Any

from treadle.engine import Engine, Registry

_TRUE = {"1", "true", "yes", "on"}


def _uvicorn_options(access_log: bool | None = None) -> dict[str, Any]:
    """The uvicorn settings Treadle serves with: `http`, `loop` and `access_log`.

    `access_log` None reads `TREADLE_ACCESS_LOG` (`1`, `true`, `yes`, `on`), default off.
    """
    if access_log is None:
        access_log = os.environ.get("TREADLE_ACCESS_LOG", "").strip().lower() in _TRUE
    return {
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "access_log": access_log,
    }


def _freeze_heap() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    gc.collect()
    gc.freeze()


def serve(
    store_url: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    registry: Registry | None = None,
    api_keys: Iterable[str] | Mapping[str, str] | None = None,
    recover: bool = True,
    log_level: str = "info",
    access_log: bool | None = None,
    graceful_shutdown_seconds: int = 5,
    lease_seconds: float = 30.0,
    **app_options: Any,
) -> None:
    """Serve the control plane on `host:port` until interrupted (blocking).

    Opens an `Engine` on `store_url` with `registry` (default: the process-wide one, which
    holds every `@workflow` imported so far), resumes executions left by dead processes
    (`recover`, then every `lease_seconds`: executions of a process that died resume here once
    its leases expire), and runs executions in the server's own event loop. Other keyword arguments
    go to `create_app`. Ctrl-C (SIGINT) or SIGTERM shut down gracefully: open requests get
    `graceful_shutdown_seconds`, then executions running here stop where they are (they stay
    resumable) and the store is closed. `access_log` logs every request (default: off, or
    `TREADLE_ACCESS_LOG`).
    """
    import uvicorn

    from treadle.server.app import create_app

    engine = Engine(store_url, registry=registry, lease_seconds=lease_seconds)
    app = create_app(engine, api_keys=api_keys, recover=recover, **app_options)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=graceful_shutdown_seconds,
                            **_uvicorn_options(access_log))
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found:
    # a no-op one lets the process exit 0 once everything is closed.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    _freeze_heap()
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        gc.unfreeze()
