"""Which workflow and tenant an event belongs to, for observers that label or filter by them.

Only `execution.started` names the workflow and tenant; the events after it carry the
execution id alone. `ExecutionIndex` remembers them per execution while it is active here, and
for executions resumed in this process (whose `execution.started` it never saw) it asks the run
that emits the event.
"""

from __future__ import annotations

from dataclasses import dataclass

from treadle.journal import TERMINAL_EVENTS, Event, EventType


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """What an observer knows of the execution an event belongs to."""

    workflow: str | None
    tenant: str | None = None
    started_at: float | None = None


UNKNOWN = ExecutionInfo(None)
_STARTED = EventType.EXECUTION_STARTED  # read once: an enum member costs ~0.1 µs a read


class ExecutionIndex:
    """Execution id → (workflow, tenant), for active executions; bounded, forgets finished ones."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._info: dict[str, ExecutionInfo] = {}

    def observe(self, event: Event) -> tuple[ExecutionInfo, bool]:
        """The info for `event`, and whether this is the first event seen of its execution."""
        key = event.execution_id
        kind = event.type
        info = self._info.get(key)
        first = info is None
        if kind == _STARTED:
            data = event.data
            info = ExecutionInfo(data.get("workflow"), data.get("tenant_id"), event.created_at)
        elif info is None:
            info = _from_current_run(key)
        if kind in TERMINAL_EVENTS:
            self._info.pop(key, None)
            return info, first
        if first or kind == _STARTED:
            if len(self._info) >= self.capacity:
                self._info.pop(next(iter(self._info)))  # oldest first (dicts keep order)
            self._info[key] = info
        return info, first

    def forget(self, execution_id: str) -> None:
        self._info.pop(execution_id, None)

    def __len__(self) -> int:
        return len(self._info)


def _from_current_run(execution_id: str) -> ExecutionInfo:
    """Events of a resumed execution are emitted inside its run, which knows its workflow."""
    from treadle.engine import current

    run = current.RUN.get()
    if run is not None and run.id == execution_id:
        return ExecutionInfo(run.wf.name, None, run.created_at)
    return UNKNOWN
