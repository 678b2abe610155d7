"""The schedule trigger: cron jobs that start pipelines.

Each job is registered on a `scheduler.modular` module (the job's `scheduler:`, else one
named `cronScheduler` or `scheduler` as in Go, else the first one, else an implicit one).
Each firing starts the pipeline with the trigger data `{trigger_time: <scheduled time,
RFC 3339 UTC>, ...params}` and the idempotency key
`schedule:<workflow>:<job id>:<scheduled time>`, so the same slot never runs twice — not
after a restart, not from a second process sharing the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from treadle.triggers.base import Dispatcher
from treadle.triggers.spec import JobSpec


def slot_text(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def idempotency_key(spec: JobSpec, when: datetime) -> str:
    return f"schedule:{spec.target.workflow}:{spec.job_id}:{slot_text(when)}"


class ScheduledJob:
    """The fire callback of one job."""

    def __init__(self, spec: JobSpec, dispatcher: Dispatcher) -> None:
        self.spec = spec
        self.dispatcher = dispatcher
        self.handles: list[Any] = []

    async def __call__(self, when: datetime) -> None:
        data: dict[str, Any] = {"trigger_time": slot_text(when)}
        data.update(self.spec.params)
        handle = await self.dispatcher.start(self.spec.target, data,
                                             meta={"_schedule": {"job": self.spec.job_id,
                                                                 "cron": self.spec.cron}},
                                             idempotency_key=idempotency_key(self.spec, when))
        self.handles.append(handle)
        del self.handles[:-100]


def find_scheduler(modules: Any, spec: JobSpec) -> Any:
    if spec.scheduler:
        return modules.get(spec.scheduler)
    for name in ("cronScheduler", "scheduler"):
        found = modules.get(name)
        if found is not None and callable(getattr(found, "schedule", None)):
            return found
    schedulers = modules.of_type("scheduler.modular")
    return schedulers[0] if schedulers else None


__all__ = ["ScheduledJob", "find_scheduler", "idempotency_key", "slot_text"]
