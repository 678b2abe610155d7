"""The core: Engine, Context, decorators, the run loop, hooks.

`Engine`, `Handle` and `Clock` load on first use, so modules that only declare workflows and
steps never import asyncio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from treadle.engine.context import Context
from treadle.engine.decorators import (
    Registry,
    StepFunction,
    WorkflowDef,
    default_registry,
    step,
    workflow,
)
from treadle.engine.hooks import DebugObserver, Observer

if TYPE_CHECKING:
    from treadle.engine.clock import Clock
    from treadle.engine.engine import Engine, Handle

_LAZY = {"Engine": "treadle.engine.engine", "Handle": "treadle.engine.engine",
         "Clock": "treadle.engine.clock"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
