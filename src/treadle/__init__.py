"""Treadle: durable, observable workflows for Python.

```python
import treadle

@treadle.step(retries=3)
async def charge(order: dict) -> dict: ...

@treadle.workflow(name="process-order")
async def process_order(ctx: treadle.Context, order: dict) -> dict:
    receipt = await charge(order)
    return {"ok": True, "receipt": receipt}

treadle.Engine("sqlite:///runs.db").run(process_order, {"id": 1})
```

`import treadle` needs the standard library only; backends and extras load when used.
"""

from treadle.engine import (
    Clock,
    Context,
    Engine,
    Handle,
    Observer,
    Registry,
    StepFunction,
    WorkflowDef,
    step,
    workflow,
)
from treadle.engine.current import StepInfo, current_step
from treadle.engine.queues import Queue
from treadle.errors import (
    ExecutionCancelledError,
    ExecutionFailedError,
    ExecutionNotFoundError,
    NonDeterminismError,
    NotSerializableError,
    QueueFullError,
    SignalTimeoutError,
    StepError,
    StepTimeoutError,
    TreadleError,
    WorkflowNotFoundError,
    WorkflowVersionError,
)
from treadle.journal import (
    Event,
    EventType,
    Execution,
    ExecutionStatus,
    ExecutionSummary,
    Page,
    RetryPolicy,
    StepRecord,
)

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "Context",
    "Engine",
    "Event",
    "EventType",
    "Execution",
    "ExecutionCancelledError",
    "ExecutionFailedError",
    "ExecutionNotFoundError",
    "ExecutionStatus",
    "ExecutionSummary",
    "Handle",
    "NonDeterminismError",
    "NotSerializableError",
    "Observer",
    "Page",
    "Queue",
    "QueueFullError",
    "Registry",
    "RetryPolicy",
    "SignalTimeoutError",
    "StepError",
    "StepFunction",
    "StepInfo",
    "StepRecord",
    "StepTimeoutError",
    "TreadleError",
    "WorkflowDef",
    "WorkflowNotFoundError",
    "WorkflowVersionError",
    "__version__",
    "current_step",
    "step",
    "workflow",
]
