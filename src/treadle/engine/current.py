"""Context variables that tell a step call whether it runs inside a workflow."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.engine.run import Run

RUN: ContextVar[Run | None] = ContextVar("treadle_run", default=None)
"""The execution whose workflow code is running in this task (None outside workflows)."""

STEP: ContextVar[dict[str, Any] | None] = ContextVar("treadle_step", default=None)
"""Inside a step body: execution_id, workflow, step, pos and attempt (for logging)."""


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What a running step knows about itself (see `current_step`)."""

    execution_id: str
    workflow: str
    step: str
    pos: int
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt and every re-execution of this call after a crash.

        Give it to external systems (an `Idempotency-Key` header, a unique column) to make
        the step's effect happen exactly once.
        """
        return f"{self.execution_id}:{self.pos}"


def current_step() -> StepInfo | None:
    """The step running in this task or thread (None outside a journaled step call)."""
    info = STEP.get()
    if info is None:
        return None
    return StepInfo(info["execution_id"], info["workflow"], info["step"], info["pos"],
                    info["attempt"])
