"""Reading triggers out of a config: the top-level `triggers:` section (the Go map form, the
seed's list form) and the inline `trigger:` of each pipeline, normalised to one list of
routes, subscriptions and jobs, each remembering where it was written.

Both the validator and the runtime use this, so what validates is what runs.

Trigger forms accepted (the Go project's native ones first):

```yaml
triggers:
  http:                                   # type http, native: a list of routes
    routes:
      - {path: /orders/{id}, method: GET, workflow: "pipeline:get-order", action: execute}
  event:
    subscriptions:
      - {topic: order.created, event: created, workflow: "pipeline:notify"}
  schedule:
    jobs:
      - {cron: "0 * * * *", workflow: "pipeline:hourly", timezone: Europe/Paris}
  nightly:                                # by name: {type, config}, flat (one route/job)
    type: schedule
    config: {cron: "0 0 * * *", workflow: "pipeline:report"}
pipelines:
  get-order:
    trigger: {type: http, config: {path: /orders/{id}, method: GET}}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from treadle.config.model import AppConfig, KeyPath, kind_of

PIPELINE_PREFIX = "pipeline:"
TRIGGER_TYPES = ("http", "event", "eventbus", "schedule")
_NATIVE = {"http": "routes", "event": "subscriptions", "eventbus": "subscriptions",
           "schedule": "jobs"}  # fmt: skip


@dataclass(slots=True)
class Target:
    """Where a trigger points: `workflow` as written and the action."""

    workflow: str
    action: str = ""

    @property
    def pipeline(self) -> str | None:
        """The pipeline name of a `pipeline:<name>` target, else None."""
        if self.workflow.startswith(PIPELINE_PREFIX):
            return self.workflow[len(PIPELINE_PREFIX):]
        return None


@dataclass(slots=True)
class HTTPRouteSpec:
    path: str
    method: str
    target: Target
    params: dict[str, Any] = field(default_factory=dict)
    middlewares: list[str] = field(default_factory=list)
    router: str = ""
    timeout: Any = None
    trigger: str = ""
    at: KeyPath = ()
    cqrs: str = ""
    """`query` / `command`: the inline pipeline of a Go `workflows: http:` route whose
    handler is an api.query / api.command module — answered as that handler answers (see
    `treadle.triggers.http`)."""


@dataclass(slots=True)
class SubscriptionSpec:
    topic: str
    target: Target
    event: str = ""
    filter: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    broker: str = ""
    trigger: str = ""
    at: KeyPath = ()


@dataclass(slots=True)
class JobSpec:
    cron: str
    target: Target
    timezone: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    scheduler: str = ""
    trigger: str = ""
    at: KeyPath = ()

    @property
    def job_id(self) -> str:
        """Stable across restarts while the config is unchanged: the trigger and position."""
        return f"{self.trigger}[{self.at[-1]}]" if self.at and isinstance(self.at[-1], int) \
            else self.trigger


@dataclass(slots=True)
class TriggerPlan:
    routes: list[HTTPRouteSpec] = field(default_factory=list)
    subscriptions: list[SubscriptionSpec] = field(default_factory=list)
    jobs: list[JobSpec] = field(default_factory=list)
    problems: list[tuple[KeyPath, str]] = field(default_factory=list)
    """`(key path, message)` for every malformed trigger (errors)."""


def _text(entry: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and \
                str(value) != "":  # fmt: skip
            return str(value)
    return ""


def _mapping(entry: dict[str, Any], key: str) -> dict[str, Any]:
    value = entry.get(key)
    return dict(value) if isinstance(value, dict) else {}


def _names(entry: dict[str, Any], key: str) -> list[str]:
    value = entry.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


class _Reader:
    def __init__(self, plan: TriggerPlan) -> None:
        self.plan = plan

    def problem(self, at: KeyPath, message: str) -> None:
        self.plan.problems.append((at, message))

    def entry(self, kind: str, entry: Any, at: KeyPath, trigger: str,
              default_workflow: str = "") -> None:  # fmt: skip
        if not isinstance(entry, dict):
            self.problem(at, f"a {kind} trigger entry must be a mapping, not {kind_of(entry)}")
            return
        workflow = _text(entry, "workflow", "workflowType") or default_workflow
        target = Target(workflow, _text(entry, "action"))
        if not workflow:
            self.problem(at, f"{kind} trigger has no 'workflow' (write \"pipeline:<name>\")")
            return
        params = _mapping(entry, "params")
        if kind == "http":
            path = _text(entry, "path", "route")
            if not path:
                self.problem(at, "http trigger has no 'path'")
                return
            method = (_text(entry, "method") or "GET").upper()
            self.plan.routes.append(HTTPRouteSpec(
                path, method, target, params, _names(entry, "middlewares"),
                _text(entry, "router"), entry.get("timeout"), trigger, at))
        elif kind in ("event", "eventbus"):
            topic = _text(entry, "topic")
            if not topic:
                self.problem(at, f"{kind} trigger has no 'topic'")
                return
            self.plan.subscriptions.append(SubscriptionSpec(
                topic, target, _text(entry, "event"), _mapping(entry, "filter"), params,
                _text(entry, "broker"), trigger, at))
        else:
            cron = _text(entry, "cron", "schedule")
            if not cron:
                self.problem(at, "schedule trigger has no 'cron'")
                return
            self.plan.jobs.append(JobSpec(cron, target, _text(entry, "timezone") or None,
                                          params, _text(entry, "scheduler"), trigger, at))

    def trigger(self, kind: str, config: dict[str, Any], at: KeyPath, trigger: str,
                default_workflow: str = "") -> None:  # fmt: skip
        if kind not in TRIGGER_TYPES:
            from treadle.config.model import suggest

            self.problem((*at[:-1], "type") if at and at[-1] == "config" else at,
                         f"unknown trigger type {kind!r}{suggest(kind, TRIGGER_TYPES)}; "
                         f"known trigger types: {', '.join(TRIGGER_TYPES)}")  # fmt: skip
            return
        native = _NATIVE[kind]
        if native in config:
            items = config[native]
            if not isinstance(items, list):
                self.problem((*at, native), f"{native} must be a list, not {kind_of(items)}")
                return
            for i, item in enumerate(items):
                self.entry(kind, item, (*at, native, i), trigger, default_workflow)
        else:
            self.entry(kind, config, at, trigger, default_workflow)


def collect_triggers(app: AppConfig) -> TriggerPlan:
    """Every route, subscription and job of `app`'s triggers, and the problems found."""
    plan = TriggerPlan()
    reader = _Reader(plan)
    for name, trig in app.triggers.items():
        at = trig.path
        body_at: KeyPath = (*at, "config") if trig.type != name or _by_name(app, at) else at
        reader.trigger(trig.type, trig.config, body_at, name)
    for name, pipeline in app.pipelines.items():
        if pipeline.trigger is None:
            continue
        t = pipeline.trigger
        at = t.config_path if t.config_path is not None else (*t.path, "config")
        first = len(plan.routes)
        reader.trigger(t.type, t.config, at, f"pipeline:{name}",
                       default_workflow=f"{PIPELINE_PREFIX}{name}")
        for route in plan.routes[first:]:
            route.cqrs = str(t.extra.get("cqrs") or "")
    return plan


def _by_name(app: AppConfig, at: KeyPath) -> bool:
    """Whether the trigger at `at` was written as `{type, config}` (not `type: config`)."""
    node: Any = app.raw
    for part in at:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(node, dict) and isinstance(node.get("type"), str)


__all__ = ["PIPELINE_PREFIX", "TRIGGER_TYPES", "HTTPRouteSpec", "JobSpec", "SubscriptionSpec",
           "Target", "TriggerPlan", "collect_triggers"]  # fmt: skip
