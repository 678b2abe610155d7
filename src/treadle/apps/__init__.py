"""Serving YAML applications: build the modules, pipelines and triggers of a config, run
them on an engine, and serve the config's HTTP routes.

```python
import treadle
from treadle.apps import asgi_app, build_app, serve_app

engine = treadle.Engine("sqlite:///runs.db", registry=treadle.Registry())
runtime = build_app("app.yaml", engine)     # ConfigError listing every problem
app = asgi_app(runtime)                      # any ASGI server; starts/stops the runtime
serve_app("app.yaml", "sqlite:///runs.db")   # or uvicorn on the http.server's address
```

See docs/yaml-guide.md.
"""

from treadle.apps.asgi import TreadleASGI, asgi_app
from treadle.apps.runtime import AppRuntime, build_app
from treadle.apps.serve import serve_app

__all__ = ["AppRuntime", "TreadleASGI", "asgi_app", "build_app", "serve_app"]
