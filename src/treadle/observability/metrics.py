"""Prometheus metrics as an `Observer`, with the seed roadmap's metric names.

```python
from prometheus_client import CollectorRegistry, generate_latest

registry = CollectorRegistry()
engine = treadle.Engine(observers=[MetricsObserver(registry)])
...
print(generate_latest(registry).decode())
```

| metric | type | labels |
|---|---|---|
| `workflow_pipeline_executions_total` | counter | pipeline, tenant, status |
| `workflow_pipeline_duration_seconds` | histogram | pipeline, tenant |
| `workflow_pipeline_active_executions` | gauge | pipeline, tenant |
| `workflow_pipeline_error_rate` | gauge | pipeline, tenant |
| `workflow_step_duration_seconds` | histogram | pipeline, step, type, tenant |
| `workflow_step_executions_total` | counter | pipeline, step, status |
| `workflow_step_retries_total` | counter | pipeline, step, tenant |
| `workflow_step_error_rate` | gauge | pipeline, step |
| `workflow_event_store_events_total` | counter | type |

They count what *this process* ran (an observer sees the events its engine emits). The seed
labels `workflow_event_store_events_total` by `execution_id`; that makes one time series per
execution, which no Prometheus survives, so it is labelled by event type instead. An
unknown tenant is the empty string.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from treadle.engine.hooks import Observer
from treadle.journal import Event, EventType
from treadle.observability.tracking import ExecutionIndex

STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
PIPELINE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 300.0, 900.0, 3600.0)
_TERMINAL_STATUS: dict[str, str] = {
    EventType.EXECUTION_COMPLETED: "completed",
    EventType.EXECUTION_FAILED: "failed",
    EventType.EXECUTION_CANCELLED: "cancelled",
}


class _Rate:
    """Failures over outcomes, for the error-rate gauges."""

    __slots__ = ("failed", "total")

    def __init__(self) -> None:
        self.failed = 0
        self.total = 0

    def add(self, failed: bool) -> float:
        self.total += 1
        self.failed += failed
        return self.failed / self.total


class MetricsObserver(Observer):
    """Counts executions and steps into a `CollectorRegistry` (one per app keeps tests apart)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.executions = Counter("workflow_pipeline_executions_total",
                                  "Executions that ended, by outcome",
                                  ["pipeline", "tenant", "status"], registry=r)
        self.duration = Histogram("workflow_pipeline_duration_seconds",
                                  "Duration of executions from start to end",
                                  ["pipeline", "tenant"], buckets=PIPELINE_BUCKETS, registry=r)
        self.active = Gauge("workflow_pipeline_active_executions",
                            "Executions running or waiting in this process",
                            ["pipeline", "tenant"], registry=r)
        self.error_rate = Gauge("workflow_pipeline_error_rate",
                                "Failed over ended executions since the process started",
                                ["pipeline", "tenant"], registry=r)
        self.step_duration = Histogram("workflow_step_duration_seconds",
                                       "Duration of step attempts",
                                       ["pipeline", "step", "type", "tenant"],
                                       buckets=STEP_BUCKETS, registry=r)
        self.steps = Counter("workflow_step_executions_total", "Steps that ended, by outcome",
                             ["pipeline", "step", "status"], registry=r)
        self.retries = Counter("workflow_step_retries_total", "Step attempts that will be retried",
                               ["pipeline", "step", "tenant"], registry=r)
        self.step_error_rate = Gauge("workflow_step_error_rate",
                                     "Failed over ended steps since the process started",
                                     ["pipeline", "step"], registry=r)
        self.events = Counter("workflow_event_store_events_total", "Journal events emitted",
                              ["type"], registry=r)
        self._index = ExecutionIndex()
        self._active: set[str] = set()
        self._step_types: dict[str, dict[int, str]] = {}  # execution → pos → step type
        self._rates: dict[tuple[str, ...], _Rate] = {}
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def _of(self, metric: Counter | Gauge | Histogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: the observer runs on the engine's hot path."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def on_event(self, event: Event) -> None:
        info, _ = self._index.observe(event)
        pipeline = info.workflow or ""
        tenant = info.tenant or ""
        kind = event.type
        data = event.data
        self._of(self.events, kind).inc()
        status = _TERMINAL_STATUS.get(kind)
        if status is not None:
            self._finished(event, pipeline, tenant, status, info.started_at)
            return
        if event.execution_id not in self._active:
            self._active.add(event.execution_id)
            self._of(self.active, pipeline, tenant).inc()
        if data.get("kind") in ("value", "note"):
            if kind == EventType.STEP_SKIPPED:
                self._of(self.steps, pipeline, str(data.get("step_name")), "skipped").inc()
            return
        if kind == EventType.STEP_STARTED:
            step_type = data.get("step_type")
            if step_type is not None:
                types = self._step_types.setdefault(event.execution_id, {})
                types[data.get("pos", -1)] = str(step_type)
        elif kind in (EventType.STEP_COMPLETED, EventType.STEP_FAILED):
            step = str(data.get("step_name"))
            step_type = self._step_type(event.execution_id, data.get("pos", -1), pop=True)
            failed = kind == EventType.STEP_FAILED
            self._of(self.steps, pipeline, step, "failed" if failed else "completed").inc()
            duration = data.get("duration_ms")
            if isinstance(duration, int | float):
                self._of(self.step_duration, pipeline, step, step_type, tenant).observe(
                    duration / 1000.0)
            rate = self._rate(("step", pipeline, step)).add(failed)
            self._of(self.step_error_rate, pipeline, step).set(rate)
        elif kind == EventType.RETRY_ATTEMPTED:
            step = str(data.get("step_name"))
            self._of(self.retries, pipeline, step, tenant).inc()
            duration = data.get("duration_ms")
            if isinstance(duration, int | float):
                step_type = self._step_type(event.execution_id, data.get("pos", -1), pop=False)
                self._of(self.step_duration, pipeline, step, step_type, tenant).observe(
                    duration / 1000.0)

    def _finished(
        self, event: Event, pipeline: str, tenant: str, status: str, started_at: float | None
    ) -> None:
        self._of(self.executions, pipeline, tenant, status).inc()
        duration = event.data.get("duration_ms")
        seconds = (duration / 1000.0 if isinstance(duration, int | float)
                   else event.created_at - started_at if started_at is not None else None)
        if seconds is not None:
            self._of(self.duration, pipeline, tenant).observe(max(0.0, seconds))
        if event.execution_id in self._active:
            self._active.discard(event.execution_id)
            self._of(self.active, pipeline, tenant).dec()
        if status != "cancelled":
            rate = self._rate(("pipeline", pipeline, tenant)).add(status == "failed")
            self._of(self.error_rate, pipeline, tenant).set(rate)
        self._step_types.pop(event.execution_id, None)

    def _step_type(self, execution_id: str, pos: int, *, pop: bool) -> str:
        types = self._step_types.get(execution_id)
        if not types:
            return "step"
        return types.pop(pos, "step") if pop else types.get(pos, "step")

    def _rate(self, key: tuple[str, ...]) -> _Rate:
        rate = self._rates.get(key)
        if rate is None:
            rate = self._rates[key] = _Rate()
        return rate
