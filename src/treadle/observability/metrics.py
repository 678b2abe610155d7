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

The observer runs on the engine's hot path (every journal event of every execution), so it
only adds to plain dictionaries under one lock; the Prometheus families are built when the
registry is collected (a scrape). Counters and histograms have no `_created` series.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString as _untyped_go_float

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
_STEP_ENDS = frozenset({EventType.STEP_COMPLETED, EventType.STEP_FAILED})
# Enum members read once: `EventType.X` costs ~0.1 µs a time on CPython 3.11, and the
# observer runs for every journal event.
_STEP_STARTED = EventType.STEP_STARTED
_STEP_FAILED = EventType.STEP_FAILED
_RETRY_ATTEMPTED = EventType.RETRY_ATTEMPTED
_STEP_SKIPPED = EventType.STEP_SKIPPED
_COUNTED = frozenset({_STEP_STARTED, *_STEP_ENDS, _RETRY_ATTEMPTED, _STEP_SKIPPED})

Labels = tuple[str, ...]
_go_float = cast(Callable[[float], str], _untyped_go_float)  # `le` as prometheus_client writes it


class _Family:
    """One metric's name, help text and label names."""

    __slots__ = ("doc", "labelnames", "name")

    def __init__(self, name: str, doc: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.doc = doc
        self.labelnames = tuple(labelnames)


class _Counter(_Family):
    __slots__ = ("values",)

    def __init__(self, name: str, doc: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, doc, labelnames)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + 1.0

    def family(self) -> Metric:
        out = CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
        for labels, value in self.values.items():
            out.add_metric(labels, value)
        return out


class _Gauge(_Family):
    __slots__ = ("values",)

    def __init__(self, name: str, doc: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, doc, labelnames)
        self.values: dict[Labels, float] = {}

    def add(self, labels: Labels, amount: float) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def family(self) -> Metric:
        out = GaugeMetricFamily(self.name, self.doc, labels=self.labelnames)
        for labels, value in self.values.items():
            out.add_metric(labels, value)
        return out


class _Rates(_Family):
    """A gauge of failures over outcomes, per label set (computed at collection)."""

    __slots__ = ("values",)

    def __init__(self, name: str, doc: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, doc, labelnames)
        self.values: dict[Labels, list[int]] = {}  # [failed, total]

    def add(self, labels: Labels, failed: bool) -> None:
        counts = self.values.get(labels)
        if counts is None:
            counts = self.values[labels] = [0, 0]
        counts[0] += failed
        counts[1] += 1

    def family(self) -> Metric:
        out = GaugeMetricFamily(self.name, self.doc, labels=self.labelnames)
        for labels, (failed, total) in self.values.items():
            out.add_metric(labels, failed / total)
        return out


class _Histogram(_Family):
    __slots__ = ("bounds", "values")

    def __init__(self, name: str, doc: str, labelnames: Sequence[str],
                 bounds: Sequence[float]) -> None:  # fmt: skip
        super().__init__(name, doc, labelnames)
        self.bounds = list(bounds)  # the +Inf bucket is one past the last bound
        self.values: dict[Labels, tuple[list[int], list[float]]] = {}  # (counts, [sum])

    def observe(self, labels: Labels, value: float) -> None:
        entry = self.values.get(labels)
        if entry is None:
            entry = self.values[labels] = ([0] * (len(self.bounds) + 1), [0.0])
        entry[0][bisect.bisect_left(self.bounds, value)] += 1  # first bound >= value: `le`
        entry[1][0] += value

    def family(self) -> Metric:
        out = HistogramMetricFamily(self.name, self.doc, labels=self.labelnames)
        les = [_go_float(b) for b in self.bounds] + ["+Inf"]
        for labels, (counts, total) in self.values.items():
            cumulative = 0
            buckets = []
            for le, count in zip(les, counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            out.add_metric(labels, buckets, total[0])
        return out


class MetricsObserver(Observer):
    """Counts executions and steps for a `CollectorRegistry` (one per app keeps tests apart)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.executions = _Counter("workflow_pipeline_executions_total",
                                   "Executions that ended, by outcome",
                                   ["pipeline", "tenant", "status"])
        self.duration = _Histogram("workflow_pipeline_duration_seconds",
                                   "Duration of executions from start to end",
                                   ["pipeline", "tenant"], PIPELINE_BUCKETS)
        self.active = _Gauge("workflow_pipeline_active_executions",
                             "Executions running or waiting in this process",
                             ["pipeline", "tenant"])
        self.error_rate = _Rates("workflow_pipeline_error_rate",
                                 "Failed over ended executions since the process started",
                                 ["pipeline", "tenant"])
        self.step_duration = _Histogram("workflow_step_duration_seconds",
                                        "Duration of step attempts",
                                        ["pipeline", "step", "type", "tenant"], STEP_BUCKETS)
        self.steps = _Counter("workflow_step_executions_total", "Steps that ended, by outcome",
                              ["pipeline", "step", "status"])
        self.retries = _Counter("workflow_step_retries_total",
                                "Step attempts that will be retried",
                                ["pipeline", "step", "tenant"])
        self.step_error_rate = _Rates("workflow_step_error_rate",
                                      "Failed over ended steps since the process started",
                                      ["pipeline", "step"])
        self.events = _Counter("workflow_event_store_events_total", "Journal events emitted",
                               ["type"])
        self._families: tuple[_Counter | _Gauge | _Rates | _Histogram, ...] = (
            self.executions, self.duration, self.active, self.error_rate, self.step_duration,
            self.steps, self.retries, self.step_error_rate, self.events)
        self._index = ExecutionIndex()
        self._active: set[str] = set()
        self._step_types: dict[str, dict[int, str]] = {}  # execution → pos → step type
        self._lock = threading.Lock()  # events may come from several threads; scrapes too
        self.registry.register(self)

    # -- the observer side --------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        with self._lock:
            self._count(event)

    def _count(self, event: Event) -> None:
        info, _ = self._index.observe(event)
        pipeline = info.workflow or ""
        tenant = info.tenant or ""
        kind = event.type
        data = event.data
        self.events.inc((kind,))
        status = _TERMINAL_STATUS.get(kind)
        if status is not None:
            self._finished(event, pipeline, tenant, status, info.started_at)
            return
        if event.execution_id not in self._active:
            self._active.add(event.execution_id)
            self.active.add((pipeline, tenant), 1.0)
        if kind not in _COUNTED:  # inputs, outputs, values, timers...: the events counter only
            return
        if kind == _STEP_STARTED:
            step_type = data.get("step_type")
            if step_type is not None and data.get("kind") not in ("value", "note"):
                types = self._step_types.setdefault(event.execution_id, {})
                types[data.get("pos", -1)] = str(step_type)
        elif kind in _STEP_ENDS:
            if data.get("kind") in ("value", "note"):
                return
            step = str(data.get("step_name"))
            step_type = self._step_type(event.execution_id, data.get("pos", -1), pop=True)
            failed = kind == _STEP_FAILED
            self.steps.inc((pipeline, step, "failed" if failed else "completed"))
            duration = data.get("duration_ms")
            if isinstance(duration, int | float):
                self.step_duration.observe((pipeline, step, step_type, tenant), duration / 1000.0)
            self.step_error_rate.add((pipeline, step), failed)
        elif kind == _RETRY_ATTEMPTED:
            if data.get("kind") in ("value", "note"):
                return
            step = str(data.get("step_name"))
            self.retries.inc((pipeline, step, tenant))
            duration = data.get("duration_ms")
            if isinstance(duration, int | float):
                step_type = self._step_type(event.execution_id, data.get("pos", -1), pop=False)
                self.step_duration.observe((pipeline, step, step_type, tenant), duration / 1000.0)
        elif kind == _STEP_SKIPPED and data.get("kind") in ("value", "note"):
            self.steps.inc((pipeline, str(data.get("step_name")), "skipped"))

    def _finished(
        self, event: Event, pipeline: str, tenant: str, status: str, started_at: float | None
    ) -> None:
        self.executions.inc((pipeline, tenant, status))
        duration = event.data.get("duration_ms")
        seconds = (duration / 1000.0 if isinstance(duration, int | float)
                   else event.created_at - started_at if started_at is not None else None)
        if seconds is not None:
            self.duration.observe((pipeline, tenant), max(0.0, seconds))
        if event.execution_id in self._active:
            self._active.discard(event.execution_id)
            self.active.add((pipeline, tenant), -1.0)
        if status != "cancelled":
            self.error_rate.add((pipeline, tenant), status == "failed")
        self._step_types.pop(event.execution_id, None)

    def _step_type(self, execution_id: str, pos: int, *, pop: bool) -> str:
        types = self._step_types.get(execution_id)
        if not types:
            return "step"
        return types.pop(pos, "step") if pop else types.get(pos, "step")

    # -- the collector side -------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """The metric families, as a scrape sees them (called by the registry)."""
        with self._lock:
            families = [family.family() for family in self._families]
        yield from families

    def describe(self) -> Iterator[Metric]:
        """The families (the registry checks their names against its other collectors')."""
        return self.collect()
