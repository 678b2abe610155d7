"""`Context`: what a workflow function receives as its first argument."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.engine.decorators import WorkflowDef
    from treadle.engine.run import Run


class Context:
    """The durable API of a running workflow.

    Every method that waits or produces a value is journaled, so a resumed workflow gets the
    same answers: `sleep` keeps its original deadline, `wait_for_signal` returns the signal it
    already received, `now`/`uuid`/`random` return the values they returned before.
    """

    __slots__ = ("_run",)

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def execution_id(self) -> str:
        return self._run.id

    @property
    def workflow(self) -> str:
        return self._run.wf.name

    @property
    def version(self) -> str | None:
        return self._run.wf.version

    @property
    def is_replaying(self) -> bool:
        """True while the workflow re-executes positions its journal already holds."""
        return self._run._pos <= self._run.replay_end

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry `execution_id` and `workflow`."""
        return self._run.log

    def gather(
        self, *aws: Awaitable[Any], return_exceptions: bool = False
    ) -> Awaitable[list[Any]]:
        """Run steps (or any journaled calls) in parallel; results in argument order.

        On the first failure the other branches are cancelled and the failure is raised,
        unless `return_exceptions` is true. Positions are assigned in call order, so a
        resumed fan-out matches its journal whatever order the branches finished in.
        """
        return self._run.gather(aws, return_exceptions)

    def sleep(self, seconds: float, *, name: str = "sleep") -> Awaitable[None]:
        """A durable timer: survives restarts and keeps its original deadline.

        `name` labels it in the journal and timeline.
        """
        return self._run.sleep(seconds, name)

    def sleep_until(self, when: datetime, *, name: str = "sleep") -> Awaitable[None]:
        """Sleep until an aware datetime."""
        return self._run.sleep_until(when.timestamp(), name)

    def note(self, event_type: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """Journal a decision at this position (e.g. `conditional.routed`) and return it.

        The first run records `data`; a resumed run gets the recorded data back, so a
        decision made from the wall clock or outside state is made exactly once.
        """
        return self._run.note(event_type, name, data)

    def wait_for_signal(self, name: str, *, timeout: float | None = None) -> Awaitable[Any]:
        """Wait for `engine.signal(id, name, payload)`; returns the payload.

        A signal sent before the wait is kept in the execution's inbox and returned at once.
        Raises `SignalTimeoutError` after `timeout` seconds (durable, like `sleep`).
        """
        return self._run.wait_for_signal(name, timeout)

    def run_child(self, workflow: WorkflowDef | str, *args: Any) -> Awaitable[Any]:
        """Start a child workflow and wait for its result (ExecutionFailedError if it fails)."""
        return self._run.run_child(self._run.engine.resolve(workflow), args)

    def now(self) -> datetime:
        """The current time, recorded: a resumed workflow sees the same value."""
        return self._run.now()

    def uuid(self) -> str:
        """A random UUID, recorded."""
        return self._run.uuid()

    def random(self) -> float:
        """A random float in [0, 1), recorded."""
        return self._run.random()
