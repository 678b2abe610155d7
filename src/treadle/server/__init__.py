"""The control plane: a FastAPI app over an `Engine` (`pip install 'treadle[server]'`).

```python
from treadle.server import create_app, serve

app = create_app(treadle.Engine("sqlite:///runs.db"), api_keys=["s3cret"])  # any ASGI server
serve("sqlite:///runs.db", "127.0.0.1", 8080)                               # or uvicorn, here
```

See `docs/server.md`. Importing this package needs FastAPI, uvicorn, sse-starlette
(`treadle[server]`) and prometheus-client (`treadle[metrics]`); `import treadle` does not
import it.
"""

from treadle.errors import require

for _module, _extra in (("fastapi", "server"), ("sse_starlette", "server"),
                        ("prometheus_client", "metrics")):
    require(_module, _extra)  # a clear `pip install 'treadle[…]'` instead of an ImportError

from treadle.server.app import create_app  # noqa: E402
from treadle.server.auth import APIKeyAuth, Authenticator, Principal  # noqa: E402
from treadle.server.serve import serve  # noqa: E402
from treadle.server.state import Settings  # noqa: E402

__all__ = ["APIKeyAuth", "Authenticator", "Principal", "Settings", "create_app", "serve"]
