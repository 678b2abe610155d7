"""The control plane: a FastAPI app over an `Engine` (`pip install 'treadle[server]'`).

```python
from treadle.server import create_app, serve

app = create_app(treadle.Engine("sqlite:///runs.db"), api_keys=["s3cret"])  # any ASGI server
serve("sqlite:///runs.db", "127.0.0.1", 8080)                               # or uvicorn, here
```

See `docs/server.md`. The names here need FastAPI, uvicorn, sse-starlette (`treadle[server]`)
and prometheus-client (`treadle[metrics]`), checked on first use with a clear
`pip install 'treadle[…]'` message; the pure view builders (`treadle.server.views`,
`treadle.server.diff`, which the CLI uses on a local store) and a serving process's
housekeeping (`treadle.server.housekeeping`, which YAML applications share) need none of
them. `import treadle` does not import this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.server.app import create_app
    from treadle.server.auth import APIKeyAuth, Authenticator, Principal
    from treadle.server.serve import serve
    from treadle.server.state import Settings

_EXPORTS = {
    "create_app": "treadle.server.app", "serve": "treadle.server.serve",
    "APIKeyAuth": "treadle.server.auth", "Authenticator": "treadle.server.auth",
    "Principal": "treadle.server.auth", "Settings": "treadle.server.state",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    from treadle.errors import require

    for dependency, extra in (("fastapi", "server"), ("sse_starlette", "server"),
                              ("prometheus_client", "metrics")):
        require(dependency, extra)  # a clear `pip install 'treadle[…]'`, not an ImportError
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["APIKeyAuth", "Authenticator", "Principal", "Settings", "create_app", "serve"]
