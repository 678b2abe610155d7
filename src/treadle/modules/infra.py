"""Infrastructure modules: cache.modular (in memory; its redis backend is in
`treadle.modules.redis_cache`), health.checker, metrics.collector, scheduler.modular."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from treadle.modules.base import BuildContext, Module, ModuleSet
from treadle.modules.redis_cache import CONNECTION_SCHEMA, ModularRedisCache
from treadle.modules.registry import register
from treadle.modules.web import Handler, HTTPRequest, HTTPResponse, json_response
from treadle.steps._durations import parse_duration_or

logger = logging.getLogger("treadle.modules")


# -- cache.modular --------------------------------------------------------------------------


class MemoryCache(Module):
    """Key → value with a time to live, at most `maxItems` (least recently used go first)."""

    type = "cache.modular"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.default_ttl = parse_duration_or(config.get("defaultTTL"), "defaultTTL", "5m")
        size = config.get("maxItems", 10_000)
        self.max_items = int(size) if isinstance(size, int) and size > 0 else 10_000
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.clock = time.monotonic

    def get(self, key: str) -> Any:
        """The value, or None when missing or expired."""
        found = self._items.get(key)
        if found is None:
            return None
        expires, value = found
        if expires and self.clock() >= expires:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store `value`; `ttl` seconds (None: the default, 0: never expires)."""
        seconds = self.default_ttl if ttl is None else ttl
        self._items[key] = (self.clock() + seconds if seconds > 0 else 0.0, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def delete(self, key: str) -> bool:
        return self._items.pop(key, None) is not None

    def clear(self) -> None:
        self._items.clear()


@register(
    "cache.modular",
    category="infrastructure",
    provides=("cache",),
    doc="""
A cache with a time to live, for `step.cache_get` / `step.cache_set`
(`cache: <this module>`): `get(key)`, `set(key, value, ttl)`, `delete(key)`. Entries expire
after their TTL (`defaultTTL` when the step gives none; a `ttl` of `0` never expires).

`backend: memory` (the default) keeps entries in the process, at most `maxItems` (the least
recently used go first): not shared between workers, gone on restart. `backend: redis`
keeps them on a Redis server, shared between processes and kept across restarts, as
`cache.redis` does — same `address`, `password`, `db`, `prefix` and value encoding
(strings as they are, other values as JSON) — with this module's TTL meaning and default;
`maxItems` does not apply.
""",
    schema={
        "type": "object",
        "properties": {
            "backend": {"enum": ["memory", "redis"], "default": "memory",
                        "description": "Where entries live."},
            "defaultTTL": {"type": ["string", "number"], "default": "5m",
                           "description": "TTL when none is given (0: no expiry)."},
            "maxItems": {"type": "integer", "minimum": 1, "default": 10000,
                         "description": "Entries kept at most (memory backend)."},
            **{key: {**prop, "description": f"Redis backend: {prop['description']}"}
               for key, prop in CONNECTION_SCHEMA.items()},
        },
    },
    example="""
- name: cache
  type: cache.modular
  config: {defaultTTL: 10m}
- name: shared-cache
  type: cache.modular
  config: {backend: redis, address: "localhost:6379"}
""",
)
def _cache(name: str, config: dict[str, Any], ctx: BuildContext) -> Module:
    backend = config.get("backend") or "memory"
    if backend == "redis":
        return ModularRedisCache(name, config)
    if backend != "memory":
        raise ValueError(f"backend must be 'memory' or 'redis', not {backend!r}")
    return MemoryCache(name, config)


# -- health.checker -------------------------------------------------------------------------


class HealthChecker(Module):
    """`/healthz` runs every module's `health_check()`, `/readyz` says whether the app has
    started, `/livez` that the process answers."""

    type = "health.checker"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.health_path = str(config.get("healthPath") or "/healthz")
        self.ready_path = str(config.get("readyPath") or "/readyz")
        self.live_path = str(config.get("livePath") or "/livez")
        self.timeout = parse_duration_or(config.get("checkTimeout"), "checkTimeout", "5s")
        self.auto_discover = config.get("autoDiscover") is not False
        self.modules: ModuleSet | None = None
        self.ready = False
        self.checks: dict[str, Callable[[], Awaitable[tuple[bool, str]]]] = {}

    async def init(self, modules: ModuleSet) -> None:
        self.modules = modules
        if self.auto_discover:
            for name in modules.order:
                check = getattr(modules[name], "health_check", None)
                if callable(check) and modules[name] is not self:
                    self.checks[name] = check

    async def start(self) -> None:
        self.ready = True

    async def stop(self) -> None:
        self.ready = False

    async def run_checks(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        healthy = True
        for name, check in self.checks.items():
            try:
                ok, message = await asyncio.wait_for(check(), self.timeout)
            except Exception as exc:
                ok, message = False, f"{type(exc).__name__}: {exc}"
            healthy = healthy and ok
            results[name] = {"status": "healthy" if ok else "unhealthy", "message": message}
        return {"status": "healthy" if healthy else "unhealthy", "checks": results}

    async def _health(self, request: HTTPRequest) -> HTTPResponse:
        report = await self.run_checks()
        return json_response(report, 200 if report["status"] == "healthy" else 503)

    async def _ready(self, request: HTTPRequest) -> HTTPResponse:
        if not self.ready:
            return json_response({"status": "not ready"}, 503)
        report = await self.run_checks()
        ok = report["status"] == "healthy"
        return json_response({"status": "ready" if ok else "not ready", **report},
                             200 if ok else 503)  # fmt: skip

    async def _live(self, request: HTTPRequest) -> HTTPResponse:
        return json_response({"status": "alive"})

    def http_routes(self) -> list[tuple[str, str, Handler]]:
        return [("GET", self.health_path, self._health), ("GET", self.ready_path, self._ready),
                ("GET", self.live_path, self._live)]  # fmt: skip


@register(
    "health.checker",
    category="observability",
    provides=("http.routes",),
    doc="""
Health endpoints on the application's router: `healthPath` (default `/healthz`) runs the
health check of every module that has one (databases run `SELECT 1`), answering `200
{"status": "healthy", "checks": {...}}` or `503`; `readyPath` (`/readyz`) is `200` once the
application has started and its checks pass; `livePath` (`/livez`) is always `200`. These
routes win over the control plane's own `/healthz` and `/readyz`. `path` is accepted as an
alias of `healthPath` (the seed documentation writes it).
""",
    schema={
        "type": "object",
        "properties": {
            "healthPath": {"type": "string", "default": "/healthz",
                           "description": "Health endpoint."},
            "readyPath": {"type": "string", "default": "/readyz",
                          "description": "Readiness endpoint."},
            "livePath": {"type": "string", "default": "/livez",
                         "description": "Liveness endpoint."},
            "checkTimeout": {"type": ["string", "number"], "default": "5s",
                             "description": "Per-check timeout."},
            "autoDiscover": {"type": "boolean", "default": True,
                             "description": "Check every module that has a health check."},
        },
    },
    example="""
- name: health
  type: health.checker
  config: {healthPath: /healthz}
""",
    aliases=(("path", "healthPath"),),
)
def _health(name: str, config: dict[str, Any], ctx: BuildContext) -> HealthChecker:
    return HealthChecker(name, config)


# -- metrics.collector ----------------------------------------------------------------------

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in pairs) + "}" if pairs else ""


class MetricsCollector(Module):
    """Counts HTTP requests and pipeline runs; serves the Prometheus text format."""

    type = "metrics.collector"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        prefix = [str(config.get("namespace") or "workflow")]
        if config.get("subsystem"):
            prefix.append(str(config["subsystem"]))
        self.prefix = "_".join(prefix)
        self.path = str(config.get("metricsPath") or "/metrics")
        enabled = config.get("enabledMetrics")
        self.enabled = set(enabled) if isinstance(enabled, list) else {"workflow", "http"}
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}

    def _observe(self, name: str, labels: tuple[tuple[str, str], ...], seconds: float) -> None:
        hist = self.histograms.setdefault((name, labels), [0.0] * (len(_BUCKETS) + 2))
        for i, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                hist[i] += 1
        hist[-2] += 1
        hist[-1] += seconds

    def _count(self, name: str, labels: tuple[tuple[str, str], ...]) -> None:
        self.counters[(name, labels)] = self.counters.get((name, labels), 0.0) + 1

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        if "http" in self.enabled:
            labels = (("method", method), ("route", route), ("status", str(status)))
            self._count("http_requests_total", labels)
            self._observe("http_request_duration_seconds", labels[:2], seconds)

    def observe_pipeline(self, pipeline: str, status: str, seconds: float) -> None:
        if "workflow" in self.enabled:
            self._count("pipeline_executions_total", (("pipeline", pipeline), ("status", status)))
            self._observe("pipeline_duration_seconds", (("pipeline", pipeline),), seconds)

    def render(self) -> str:
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in sorted(self.counters.items()):
            full = f"{self.prefix}_{name}"
            if full not in seen:
                seen.add(full)
                lines.append(f"# TYPE {full} counter")
            lines.append(f"{full}{_labels(labels)} {value:g}")
        for (name, labels), hist in sorted(self.histograms.items()):
            full = f"{self.prefix}_{name}"
            if full not in seen:
                seen.add(full)
                lines.append(f"# TYPE {full} histogram")
            for i, bound in enumerate(_BUCKETS):
                lines.append(f"{full}_bucket{_labels((*labels, ('le', str(bound))))} "
                             f"{hist[i]:g}")  # fmt: skip
            lines.append(f"{full}_bucket{_labels((*labels, ('le', '+Inf')))} {hist[-2]:g}")
            lines.append(f"{full}_count{_labels(labels)} {hist[-2]:g}")
            lines.append(f"{full}_sum{_labels(labels)} {hist[-1]:.6f}")
        return "\n".join(lines) + "\n"

    async def _serve(self, request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                            self.render().encode())  # fmt: skip

    def http_routes(self) -> list[tuple[str, str, Handler]]:
        return [("GET", self.path, self._serve)]


@register(
    "metrics.collector",
    category="observability",
    provides=("http.routes", "metrics"),
    doc="""
Application metrics in the Prometheus text format at `metricsPath` (default `/metrics`,
winning over the control plane's): `<namespace>_http_requests_total{method,route,status}`
and `<namespace>_http_request_duration_seconds` for the config's routes (group `http`), and
`<namespace>_pipeline_executions_total{pipeline,status}` and
`<namespace>_pipeline_duration_seconds` for pipelines started by triggers (group
`workflow`). `path` is accepted as an alias of `metricsPath`.
""",
    schema={
        "type": "object",
        "properties": {
            "namespace": {"type": "string", "default": "workflow",
                          "description": "Metric name prefix."},
            "subsystem": {"type": "string", "description": "Second prefix part."},
            "metricsPath": {"type": "string", "default": "/metrics",
                            "description": "Scrape endpoint."},
            "enabledMetrics": {"type": "array", "items": {"type": "string"},
                               "default": ["workflow", "http", "module", "active_workflows"],
                               "description": "Metric groups (`workflow`, `http`)."},
        },
    },
    example="""
- name: metrics
  type: metrics.collector
  config: {namespace: orders}
""",
    aliases=(("path", "metricsPath"),),
)
def _metrics(name: str, config: dict[str, Any], ctx: BuildContext) -> MetricsCollector:
    return MetricsCollector(name, config)


# -- scheduler.modular ----------------------------------------------------------------------

FireCallback = Callable[[datetime], Awaitable[Any]]


@dataclass(eq=False)
class Job:
    """A cron job: `cron` in `timezone` (UTC by default), calling `callback(scheduled)`."""

    name: str
    cron: str
    callback: FireCallback
    timezone: str | None = None
    next_fire: datetime | None = None
    fired: int = 0

    def following(self, after: datetime) -> datetime:
        """The first fire time strictly after `after` (an aware datetime)."""
        if self.cron.startswith("@every "):
            period = parse_duration_or(self.cron[7:].strip(), "@every", "1m")
            if period <= 0:
                raise ValueError(f"job {self.name!r}: @every needs a positive duration")
            epoch = after.timestamp()
            return datetime.fromtimestamp((epoch // period + 1) * period, UTC)
        from zoneinfo import ZoneInfo

        from treadle.errors import require

        croniter = require("croniter", "cron")
        zone = ZoneInfo(self.timezone) if self.timezone else UTC
        base = after.astimezone(zone)
        nxt: datetime = croniter.croniter(self.cron, base).get_next(datetime)
        return nxt.astimezone(UTC)


def validate_cron(expr: str, timezone: str | None = None) -> str | None:
    """Why `expr` (with `timezone`) is not a usable schedule, or None."""
    async def nothing(when: datetime) -> None:
        return None

    try:
        Job("check", expr, nothing, timezone).following(datetime.now(UTC))
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None


class Scheduler(Module):
    """Fires cron jobs. `tick(now)` fires what is due (the loop calls it; tests call it with
    an explicit time). After a pause, a job that missed several fire times fires once, for
    the latest of them."""

    type = "scheduler.modular"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.cron = str(config.get("cronExpression") or "")
        """The schedule of the jobs a `workflows: scheduler:` section gives it (Go)."""
        if self.cron:
            problem = validate_cron(self.cron)
            if problem is not None:
                raise ValueError(f"cronExpression {self.cron!r}: {problem}")
        self.jobs: list[Job] = []
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.max_sleep = 60.0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def schedule(self, name: str, cron: str, callback: FireCallback,
                 timezone: str | None = None) -> Job:  # fmt: skip
        job = Job(name, cron, callback, timezone)
        job.next_fire = job.following(self.now())
        self.jobs.append(job)
        self._wake.set()
        return job

    async def tick(self, now: datetime | None = None) -> list[tuple[Job, datetime]]:
        """Fire every job due at `now` (default: the clock); returns what fired."""
        moment = now or self.now()
        fired: list[tuple[Job, datetime]] = []
        for job in list(self.jobs):
            if job.next_fire is None or job.next_fire > moment:
                continue
            due = job.next_fire
            while (nxt := job.following(due)) <= moment:
                due = nxt
            job.next_fire = nxt
            job.fired += 1
            fired.append((job, due))
            try:
                await job.callback(due)
            except Exception:
                logger.exception("scheduled job %r failed at %s", job.name, due.isoformat())
        return fired

    async def _loop(self) -> None:
        while True:
            upcoming = [j.next_fire for j in self.jobs if j.next_fire is not None]
            wait = self.max_sleep
            if upcoming:
                wait = min(wait, max(0.0, (min(upcoming) - self.now()).total_seconds()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait + 0.001)
            await self.tick()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(),
                                                                name=f"scheduler:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    def next_fires(self) -> dict[str, str | None]:
        return {j.name: j.next_fire.isoformat() if j.next_fire else None for j in self.jobs}


@register(
    "scheduler.modular",
    category="scheduling",
    provides=("scheduler",),
    doc="""
The cron scheduler that `schedule` triggers register their jobs on (an application with
schedule triggers and no scheduler module gets an implicit one). Cron expressions have five
fields (croniter), or `@hourly`-style names, or `@every 30s`; times are UTC unless a job gives
a `timezone`. Each firing starts the pipeline with an idempotency key derived from the
scheduled time, so a restarted or second process does not fire the same slot twice. After a
pause (a restart, a suspended machine) a job fires once for the latest missed slot.

As in the Go project, `cronExpression` is the schedule of the jobs a `workflows: scheduler:
jobs:` entry puts on this scheduler (`{scheduler: <this>, job: <messaging.handler>}`); each
firing hands the job module a JSON message `{scheduler, job, scheduledAt}`.
""",
    schema={"type": "object", "properties": {
        "cronExpression": {"type": "string",
                           "description": "Schedule of the jobs of `workflows: scheduler:`."},
    }},
    example="""
- name: cron
  type: scheduler.modular
""",
)
def _scheduler(name: str, config: dict[str, Any], ctx: BuildContext) -> Scheduler:
    return Scheduler(name, config)


__all__ = ["HealthChecker", "Job", "MemoryCache", "MetricsCollector", "Scheduler",
           "validate_cron"]  # fmt: skip
