"""Starting what a trigger points at: every trigger goes through a `Dispatcher`, which
starts a journaled execution on the engine.

`pipeline:<name>` targets start the pipeline (with its `idempotency:` rules). Other targets
go to workflow handlers registered with `Dispatcher.add_handler` (for example a state
machine package handling its definitions by name); a target nobody handles is an error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from treadle.errors import TreadleError
from treadle.triggers.spec import Target

if TYPE_CHECKING:
    from treadle.engine import Engine, Handle
    from treadle.pipelines import Application


class NoHandlerError(TreadleError):
    """No pipeline or workflow handler takes a trigger's target."""

    retryable = False


class WorkflowHandler(Protocol):
    """Starts non-pipeline targets (`workflow: order-lifecycle`, `action: submit`)."""

    def can_handle(self, workflow: str) -> bool: ...

    async def start(self, engine: Engine, workflow: str, action: str, data: dict[str, Any],
                    meta: dict[str, Any] | None, idempotency_key: str | None) -> Handle: ...


class Dispatcher:
    """Starts trigger targets on one engine, for one application."""

    def __init__(self, engine: Engine, application: Application,
                 metrics: Any = None) -> None:  # fmt: skip
        self.engine = engine
        self.application = application
        self.handlers: list[WorkflowHandler] = []
        self.metrics = metrics
        """A metrics.collector module (observe_pipeline), or None."""

    def add_handler(self, handler: WorkflowHandler) -> None:
        self.handlers.append(handler)

    def check(self, target: Target) -> str | None:
        """Why `target` cannot be started here, or None."""
        name = target.pipeline
        if name is not None:
            if name in self.application.pipelines:
                return None
            known = ", ".join(sorted(self.application.pipelines)) or "none"
            return f"no pipeline named {name!r} (pipelines: {known})"
        if any(h.can_handle(target.workflow) for h in self.handlers):
            return None
        return (f"no handler for workflow {target.workflow!r}: triggers start pipelines "
                f"(workflow: \"pipeline:<name>\")")  # fmt: skip

    async def start(
        self,
        target: Target,
        data: Mapping[str, Any],
        *,
        meta: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        lazy: bool = False,
    ) -> Handle:
        """Start the execution `target` names, with `data` as its trigger data. `lazy`: the
        caller waits for the result here (`Engine.start(lazy=True)`, pipelines only)."""
        name = target.pipeline
        payload = dict(data)
        if name is not None and name in self.application.pipelines:
            options: dict[str, Any] = {"lazy": True} if lazy else {}
            if idempotency_key is not None:
                options["idempotency_key"] = idempotency_key
            return await self.application.start_pipeline(self.engine, name, payload,
                                                         meta=meta, **options)  # fmt: skip
        for handler in self.handlers:
            if handler.can_handle(target.workflow):
                return await handler.start(self.engine, target.workflow, target.action,
                                           payload, dict(meta) if meta else None,
                                           idempotency_key)  # fmt: skip
        raise NoHandlerError(self.check(target) or f"cannot start {target.workflow!r}")

    def observe(self, target: Target, status: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_pipeline(target.pipeline or target.workflow, status,
                                          time.perf_counter() - started)  # fmt: skip


__all__ = ["Dispatcher", "NoHandlerError", "WorkflowHandler"]
