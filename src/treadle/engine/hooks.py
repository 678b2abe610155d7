"""Extension hooks. Metrics, tracing, the live stream and debug logging are observers.

Subclass `Observer` and override what you need; every hook is a no-op by default. Observers are
called synchronously as events are emitted, so they must be quick; an exception in an observer
is logged and never reaches the workflow.
"""

from __future__ import annotations

import logging
from typing import Any

from treadle.journal import Event, EventType

logger = logging.getLogger("treadle")


class Observer:
    """Receives every journal event of every execution an engine runs."""

    def on_event(self, event: Event) -> None:
        """Called once per event, in seq order per execution."""


class DebugObserver(Observer):
    """Logs every step with its input and output as it runs (`Engine(debug=True)`)."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger("treadle.debug")

    def on_event(self, event: Event) -> None:
        data = event.data
        extra: dict[str, Any] = {
            "execution_id": event.execution_id,
            "step": data.get("step_name"),
            "event_type": event.type,
        }
        if event.type == EventType.STEP_INPUT_RECORDED:
            self.log.info("step %s input: %r", data.get("step_name"), data.get("input"),
                          extra=extra)
        elif event.type == EventType.STEP_OUTPUT_RECORDED:
            self.log.info("step %s output: %r", data.get("step_name"), data.get("output"),
                          extra=extra)
        elif event.type in (EventType.STEP_FAILED, EventType.RETRY_ATTEMPTED):
            error = data.get("error") or {}
            self.log.info("step %s %s: %s: %s", data.get("step_name"), event.type,
                          error.get("type"), error.get("message"), extra=extra)
        else:
            self.log.info("%s %s", event.type, data.get("step_name") or "", extra=extra)


def notify(observers: list[Observer], event: Event) -> None:
    for observer in observers:
        try:
            observer.on_event(event)
        except Exception:
            logger.exception("observer %r failed on %s", observer, event.type)


class LogContextFilter(logging.Filter):
    """Adds `execution_id`, `workflow`, `step` and `attempt` to every log record.

    Attach it to a handler and any logging done inside a workflow or step, including by
    third-party code, carries the ids of the execution it ran for:

        handler.addFilter(treadle.engine.hooks.LogContextFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from treadle.engine import current

        info = current.STEP.get()
        if info is None:
            run = current.RUN.get()
            info = {"execution_id": run.id, "workflow": run.wf.name} if run is not None else {}
        for key in ("execution_id", "workflow", "step", "attempt"):
            if not hasattr(record, key):
                setattr(record, key, info.get(key))
        return True
