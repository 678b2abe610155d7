"""The core: Engine, Context, decorators, the run loop, hooks."""

from treadle.engine.clock import Clock
from treadle.engine.context import Context
from treadle.engine.decorators import (
    Registry,
    StepFunction,
    WorkflowDef,
    default_registry,
    step,
    workflow,
)
from treadle.engine.engine import Engine, Handle
from treadle.engine.hooks import DebugObserver, Observer

__all__ = [
    "Clock",
    "Context",
    "DebugObserver",
    "Engine",
    "Handle",
    "Observer",
    "Registry",
    "StepFunction",
    "WorkflowDef",
    "default_registry",
    "step",
    "workflow",
]
