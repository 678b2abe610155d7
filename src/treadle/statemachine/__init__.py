"""State machines: definitions from YAML, persisted instances, transitions safe under
concurrency, hooks, auto transitions, history, steps and an HTTP binding.

```python
from treadle.statemachine import StateMachineEngine

sm = StateMachineEngine("orders", store="sqlite:///orders.db", conflict_retries=2)
sm.configure(app_config.workflows["statemachine"].config)    # the Go `workflows.statemachine`
await sm.create_instance("order-workflow", "o-1", {"total": 40})
result = await sm.transition("o-1", "submit_order", {"by": "ann"})
print(result.instance.current_state, await sm.history("o-1"))
```

See docs/statemachines.md.
"""

from treadle.statemachine.definition import (
    Definition,
    HookSpec,
    State,
    Transition,
    WorkflowSection,
    parse_definition,
    parse_workflow_section,
    workflow_sections,
)
from treadle.statemachine.engine import StateMachineEngine, TransitionResult
from treadle.statemachine.errors import (
    DefinitionError,
    HookError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidTransitionError,
    StateMachineError,
    TransitionConflictError,
)
from treadle.statemachine.hooks import PipelineRunner, TransitionEvent
from treadle.statemachine.http import Route, http_routes
from treadle.statemachine.steps import register_steps, resolve_engine
from treadle.statemachine.store import (
    HistoryEntry,
    Instance,
    InstanceStore,
    MemoryInstanceStore,
    open_instance_store,
)

__all__ = [
    "Definition",
    "DefinitionError",
    "HistoryEntry",
    "HookError",
    "HookSpec",
    "Instance",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InstanceStore",
    "InvalidTransitionError",
    "MemoryInstanceStore",
    "PipelineRunner",
    "Route",
    "State",
    "StateMachineEngine",
    "StateMachineError",
    "Transition",
    "TransitionConflictError",
    "TransitionEvent",
    "TransitionResult",
    "WorkflowSection",
    "http_routes",
    "open_instance_store",
    "parse_definition",
    "parse_workflow_section",
    "register_steps",
    "resolve_engine",
    "workflow_sections",
]
