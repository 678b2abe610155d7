"""The Go project's `workflows:` sections that wire handler modules: HTTP routes to handler
modules, broker subscriptions to message handlers, scheduler jobs.

```yaml
workflows:
  http:                         # also http-<anything>: several sections, as in Go
    router: api-router          # optional: else the first http.router
    server: api-server          # optional: the http.server whose address serves these routes
    routes:
      - {method: GET, path: /health, handler: health}            # an http.handler module
      - method: POST                                              # an inline pipeline:
        path: /orders                                             # pipeline "POST /orders"
        middlewares: [auth]
        pipeline: {steps: [...]}                                  # (or `steps:` directly)
  messaging:
    broker: events              # optional: else the first broker module
    subscriptions:
      - {topic: user-events, handler: audit}                      # a messaging.handler
    producers:
      - {name: audit, forwardTo: [archive]}                       # audit republishes to archive
  scheduler:
    jobs:
      - {scheduler: hourly, job: cleanup}   # cleanup (a messaging.handler) on hourly's cron
```

Routes with an inline pipeline are pipelines like any other (`treadle.config.model` adds them
as `"<METHOD> <path>"` with an `http` trigger); the rest is read here, by the validator and by
the runtime alike, so what validates is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from treadle.config.model import AppConfig, KeyPath, kind_of

HTTP_HANDLER = "http.handler"
MESSAGE_HANDLER = "message.handler"


@dataclass(slots=True)
class HandlerRoute:
    """A route served by a module's `handle_http`."""

    method: str
    path: str
    handler: str
    middlewares: list[str] = field(default_factory=list)
    router: str = ""
    server: str = ""
    section: str = ""
    at: KeyPath = ()


@dataclass(slots=True)
class HandlerSubscription:
    """A topic delivered to a module's `handle_message`."""

    topic: str
    handler: str
    broker: str = ""
    at: KeyPath = ()


@dataclass(slots=True)
class Forwarding:
    """A message handler that republishes what it gets (`producers:` … `forwardTo:`)."""

    handler: str
    topics: list[str]
    broker: str = ""
    at: KeyPath = ()


@dataclass(slots=True)
class HandlerJob:
    """A job module run on a scheduler module's `cronExpression`."""

    scheduler: str
    job: str
    at: KeyPath = ()


@dataclass(slots=True)
class SectionRouting:
    """The `router` / `server` an http section names (either may be empty)."""

    router: str
    server: str
    at: KeyPath


@dataclass(slots=True)
class HandlerPlan:
    routes: list[HandlerRoute] = field(default_factory=list)
    subscriptions: list[HandlerSubscription] = field(default_factory=list)
    forwards: list[Forwarding] = field(default_factory=list)
    jobs: list[HandlerJob] = field(default_factory=list)
    sections: list[SectionRouting] = field(default_factory=list)
    problems: list[tuple[KeyPath, str]] = field(default_factory=list)


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) \
        else ""  # fmt: skip


def _entries(plan: HandlerPlan, config: dict[str, Any], key: str,
             at: KeyPath) -> list[tuple[KeyPath, dict[str, Any]]]:  # fmt: skip
    items = config.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        plan.problems.append(((*at, key), f"{key} must be a list, not {kind_of(items)}"))
        return []
    out: list[tuple[KeyPath, dict[str, Any]]] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append(((*at, key, i), item))
        else:
            plan.problems.append(((*at, key, i), f"a {key[:-1]} entry must be a mapping, not "
                                  f"{kind_of(item)}"))  # fmt: skip
    return out


def collect_handlers(app: AppConfig) -> HandlerPlan:
    """Every handler route, subscription, forwarding and job of `app`'s `workflows:`."""
    plan = HandlerPlan()
    for wf in app.workflows.values():
        at, config = wf.config_path, wf.config
        if wf.is_http:
            router, server = _text(config, "router"), _text(config, "server")
            plan.sections.append(SectionRouting(router, server, at))
            for route_at, route in _entries(plan, config, "routes", at):
                if isinstance(route.get("pipeline"), dict) or isinstance(route.get("steps"), list):
                    continue  # an inline pipeline (see the module docs)
                method, path, handler = (_text(route, k) for k in ("method", "path", "handler"))
                if not (method and path and handler):
                    missing = [k for k, v in (("method", method), ("path", path),
                                              ("handler", handler)) if not v]  # fmt: skip
                    plan.problems.append((route_at, "a route needs method, path and handler "
                                          f"(missing: {', '.join(missing)})"))  # fmt: skip
                    continue
                mws = route.get("middlewares")
                plan.routes.append(HandlerRoute(
                    method.upper(), path, handler,
                    [str(m) for m in mws] if isinstance(mws, list) else [], router, server,
                    wf.name, route_at))
        elif wf.type == "messaging":
            broker = _text(config, "broker")
            for sub_at, sub in _entries(plan, config, "subscriptions", at):
                topic, handler = _text(sub, "topic"), _text(sub, "handler")
                if not (topic and handler):
                    plan.problems.append((sub_at, "a subscription needs topic and handler"))
                    continue
                plan.subscriptions.append(HandlerSubscription(topic, handler, broker, sub_at))
            for prod_at, prod in _entries(plan, config, "producers", at):
                name, targets = _text(prod, "name"), prod.get("forwardTo")
                if name and isinstance(targets, list) and targets:
                    plan.forwards.append(Forwarding(name, [str(t) for t in targets], broker,
                                                    prod_at))  # fmt: skip
        elif wf.type == "scheduler":
            for job_at, job in _entries(plan, config, "jobs", at):
                scheduler, name = _text(job, "scheduler"), _text(job, "job")
                if not (scheduler and name):
                    plan.problems.append((job_at, "a job needs scheduler and job"))
                    continue
                plan.jobs.append(HandlerJob(scheduler, name, job_at))
    return plan


__all__ = ["HTTP_HANDLER", "MESSAGE_HANDLER", "Forwarding", "HandlerJob", "HandlerPlan",
           "HandlerRoute", "HandlerSubscription", "SectionRouting", "collect_handlers"]  # fmt: skip
