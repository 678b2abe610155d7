"""The step library: one module per family, each step type with a config schema and docs.

```python
from treadle.steps import default_registry, all_schemas, PipelineContext

@default_registry.register("step.greet", schema={...}, doc="Greets.")
async def greet(config: dict, ctx: PipelineContext) -> dict:
    return {"greeting": f"hello {config['name']}"}
```
"""

from treadle.steps._context import PipelineContext
from treadle.steps.registry import StepRegistry, StepType, all_schemas, default_registry

__all__ = ["PipelineContext", "StepRegistry", "StepType", "all_schemas", "default_registry"]
