"""Context variables that tell a step call whether it runs inside a workflow."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.engine.run import Run

RUN: ContextVar[Run | None] = ContextVar("treadle_run", default=None)
"""The execution whose workflow code is running in this task (None outside workflows)."""

STEP: ContextVar[dict[str, Any] | None] = ContextVar("treadle_step", default=None)
"""Inside a step body: execution_id, workflow, step and attempt (for logging)."""
