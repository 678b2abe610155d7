"""YAML pipelines as durable executions.

```python
import treadle
from treadle.pipelines import load_application

registry = treadle.Registry()
app = load_application("app.yaml", registry=registry, modules={"db": my_db})
engine = treadle.Engine("sqlite:///runs.db", registry=registry)
execution_id, output = await app.run_pipeline(engine, "create-order", {"id": 1})
# or: await engine.start("pipeline:create-order", {"id": 1})
```

Each pipeline is registered as the workflow `pipeline:<name>`; each of its steps is a
journaled step named after it, with its `type` as the step type. See docs/steps.md.
"""

from treadle.pipelines._application import (
    Application,
    Pipeline,
    load_application,
    workflow_name,
)
from treadle.pipelines.errors import PipelineStepError
from treadle.steps._context import PipelineContext

__all__ = [
    "Application",
    "Pipeline",
    "PipelineContext",
    "PipelineStepError",
    "load_application",
    "workflow_name",
]
