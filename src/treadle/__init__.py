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

`import treadle` needs the standard library only and stays small: the engine (and asyncio)
load on first use of `treadle.Engine`; backends and extras load when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treadle.engine.context import Context
from treadle.engine.current import StepInfo, current_step
from treadle.engine.dead_letters import DeadLetter
from treadle.engine.decorators import Registry, StepFunction, WorkflowDef, step, workflow
from treadle.engine.hooks import Observer
from treadle.engine.queues import Queue
from treadle.errors import (
    ExecutionCancelledError,
    ExecutionFailedError,
    ExecutionNotFoundError,
    LockTimeoutError,
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

if TYPE_CHECKING:
    from treadle.engine.clock import Clock
    from treadle.engine.engine import Engine, Handle

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`Engine`, `Handle` and `Clock` load (with asyncio) on first use."""
    if name not in ("Engine", "Handle", "Clock"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from treadle import engine

    value = getattr(engine, name)
    globals()[name] = value
    return value


__all__ = [
    "Clock",
    "Context",
    "DeadLetter",
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
    "LockTimeoutError",
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
