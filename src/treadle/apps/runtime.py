"""`AppRuntime`: a YAML application wired together — its modules, its pipelines registered
on an engine, and its triggers (HTTP routes on routers, broker subscriptions, cron jobs).

```python
engine = treadle.Engine("sqlite:///runs.db", registry=treadle.Registry())
runtime = build_app("app.yaml", engine)       # ConfigError listing every problem
await runtime.start()                          # modules (dependsOn order), then triggers
response = await runtime.handle(request)      # an HTTPRequest through the config's routes
await runtime.stop()                           # triggers, then modules (reverse order)
```
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treadle.errors import ConfigError
from treadle.modules.base import BuildContext, ModuleSet, build_modules
from treadle.modules.http import HTTPRouter, HTTPServer
from treadle.modules.infra import Scheduler
from treadle.modules.web import HTTPRequest, HTTPResponse, json_response, text_response
from treadle.server import housekeeping
from treadle.triggers.base import Dispatcher, WorkflowHandler
from treadle.triggers.event import EventSubscription, find_broker
from treadle.triggers.handlers import HandlerPlan, collect_handlers
from treadle.triggers.http import route_handler
from treadle.triggers.schedule import ScheduledJob, find_scheduler
from treadle.triggers.spec import collect_triggers

if TYPE_CHECKING:
    from treadle.config.model import AppConfig, KeyPath
    from treadle.engine import Engine
    from treadle.modules.registry import ModuleRegistry
    from treadle.pipelines import Application
    from treadle.steps.registry import StepRegistry

IMPLICIT_ROUTER = "_router"
IMPLICIT_SCHEDULER = "_scheduler"
UNMATCHED = "_unmatched"


_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})


def bodyless(status: int) -> bool:
    """Whether a response with `status` must not carry a body (RFC 9110: 1xx, 204, 304)."""
    return status < 200 or status in (204, 304)


def without_body(response: HTTPResponse) -> HTTPResponse:
    """`response` as it may be sent: for a status that carries no body (`bodyless`), the body
    and the headers describing one (Content-Type, Content-Length, Transfer-Encoding) are
    dropped, whatever the pipeline or middleware set; other responses are returned as is."""
    if not bodyless(response.status):
        return response
    headers = [(k, v) for k, v in response.headers if k.lower() not in _BODY_HEADERS]
    return HTTPResponse(response.status, headers, b"")


class _Errors:
    def __init__(self, app: AppConfig) -> None:
        self.app = app
        self.errors: list[ConfigError] = []

    def add(self, at: KeyPath, message: str) -> None:
        self.errors.append(self.app.error_at(at, message))

    def raise_any(self) -> None:
        if self.errors:
            count = len(self.errors)
            raise ConfigError(f"configuration has {count} error{'s' if count != 1 else ''}",
                              file=self.app.file, errors=self.errors)  # fmt: skip


class AppRuntime:
    """A built application; see the module docs. Build it with `build_app`."""

    def __init__(self, config: AppConfig, engine: Engine, application: Application,
                 modules: ModuleSet, dispatcher: Dispatcher) -> None:  # fmt: skip
        self.config = config
        self.engine = engine
        self.application = application
        self.modules = modules
        self.dispatcher = dispatcher
        self.routers: list[HTTPRouter] = [m for m in modules.values()
                                          if isinstance(m, HTTPRouter)]  # fmt: skip
        self.servers: list[HTTPServer] = [m for m in modules.values()
                                          if isinstance(m, HTTPServer)]  # fmt: skip
        self.global_middlewares: list[Any] = []
        self.server_routers: dict[str, list[HTTPRouter]] = {}
        """The routers each http.server serves (see `for_server`)."""
        self.subscriptions: list[tuple[Any, EventSubscription]] = []
        self.jobs: list[tuple[Any, ScheduledJob]] = []
        self.message_handlers: list[tuple[Any, str, Any]] = []
        """`(broker, topic, handle_message)` of `workflows: messaging:` subscriptions."""
        self.handler_jobs: list[tuple[Any, str, Any]] = []
        """`(scheduler, job id, callback)` of `workflows: scheduler:` jobs."""
        self.metrics = next((m for m in modules.values()
                             if callable(getattr(m, "observe_http", None))), None)  # fmt: skip
        self._live: list[Any] = []
        self.reclaim_seconds: float | None = None
        """With `start(recover=True)`: look for executions of dead processes this often
        (None: every lease period of the engine)."""
        self.prune_seconds = housekeeping.PRUNE_SECONDS
        """With `start(recover=True)`: delete the records past their expiry this often."""
        self._housekeeping: asyncio.Task[None] | None = None
        self.started = False
        self._dispatch = self._route

    # -- properties ------------------------------------------------------------------------

    @property
    def server(self) -> HTTPServer | None:
        """The http.server module the app is served on (the first one), or None."""
        return self.servers[0] if self.servers else None

    @property
    def address(self) -> tuple[str, int]:
        from treadle.modules.http import DEFAULT_HOST, DEFAULT_PORT

        server = self.server
        return (server.host, server.port) if server else (DEFAULT_HOST, DEFAULT_PORT)

    @property
    def response_timeout(self) -> float | None:
        server = self.server
        return server.write_timeout if server is not None else None

    def for_server(self, name: str) -> AppRuntime:
        """The same application serving only the routes of http.server `name`'s routers
        (a router belongs to the server its `workflows: http:` section names, else to the
        server it `dependsOn`, else to the first server). `serve_app` listens on each
        server's address with its view; `handle` on the runtime itself serves every route."""
        if name not in self.server_routers:
            known = ", ".join(self.server_routers) or "none"
            raise KeyError(f"no http.server named {name!r} (servers: {known})")
        view = copy.copy(self)
        view.routers = list(self.server_routers[name])
        view.servers = [s for s in self.servers if s.name == name]
        view._dispatch = _with_global_middlewares(view)
        return view

    def routes(self) -> list[str]:
        """`METHOD /path` of every route the config serves."""
        return [str(r.pattern) for router in self.routers for r in router.router.routes]

    def add_workflow_handler(self, handler: WorkflowHandler) -> None:
        """Let triggers start non-pipeline targets (see `treadle.triggers.base`)."""
        self.dispatcher.add_handler(handler)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, *, recover: bool = True) -> None:
        """Open the engine, start the modules in dependency order, then subscribe and
        schedule the triggers. With `recover`, resume the executions of dead processes first,
        and until `stop` do a server's housekeeping (`treadle.server.housekeeping`): every
        lease period (`reclaim_seconds`), take over the executions of this application whose
        holder died (this server's previous life too, restarted within the lease); hourly
        (`prune_seconds`), delete the records past their expiry (dead letters past their
        retention, expired breakpoints, audit entries, refresh tokens)."""
        if self.started:
            return
        await self.engine.open()
        if recover:
            await housekeeping.recover(self.engine)
        await self.modules.start()
        try:
            for broker, handler in self.subscriptions:
                self._live.append(broker.subscribe(handler.spec.topic, handler))
            for broker, topic, receive in self.message_handlers:
                self._live.append(broker.subscribe(topic, receive))
            for scheduler, job in self.jobs:
                self._live.append(scheduler.schedule(job.spec.job_id, job.spec.cron, job,
                                                     timezone=job.spec.timezone))
            for scheduler, job_id, callback in self.handler_jobs:
                self._live.append(scheduler.schedule(job_id, scheduler.cron, callback))
        except BaseException:
            await self.modules.stop()
            raise
        if recover:
            self._housekeeping = housekeeping.start_housekeeping(
                self.engine, self.reclaim_seconds, self.prune_seconds)
        self.started = True

    async def stop(self) -> None:
        """Stop the triggers (no new executions), then the modules in reverse order.
        Executions still running stay resumable; the engine is left open."""
        for live in self._live:
            unsubscribe = getattr(live, "unsubscribe", None)
            if unsubscribe is not None:
                unsubscribe()
        schedulers: list[Any] = [s for s, _ in self.jobs] + [s for s, _, _ in self.handler_jobs]
        for scheduler in {id(s): s for s in schedulers}.values():
            scheduler.jobs = [j for j in scheduler.jobs if j not in self._live]
        self._live.clear()
        task, self._housekeeping = self._housekeeping, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.modules.stop()
        self.started = False

    async def __aenter__(self) -> AppRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- running ---------------------------------------------------------------------------

    async def run_pipeline(self, name: str, input: Mapping[str, Any] | None = None,
                           *, timeout: float | None = None) -> tuple[str, Any]:  # fmt: skip
        """Run one pipeline and wait: `(execution_id, output)`."""
        return await self.application.run_pipeline(self.engine, name, input, timeout=timeout)

    def matches(self, raw_path: str) -> bool:
        """Whether a config route (any method) matches `raw_path`."""
        return any(r.router.has_path(raw_path) for r in self.routers)

    async def handle(self, request: HTTPRequest) -> HTTPResponse:
        """Serve `request` through the config's routes (404/405 when none fits; then
        `request.state["_unmatched"]` is set for 404). A 204 or 304 response comes back
        without a body or body headers (`without_body`)."""
        start = time.perf_counter()
        response = without_body(await self._dispatch(request))
        if self.metrics is not None and not request.state.get(UNMATCHED):
            self.metrics.observe_http(request.method, request.route_pattern or "unmatched",
                                      response.status, time.perf_counter() - start)
        return response

    async def _route(self, request: HTTPRequest) -> HTTPResponse:
        allowed: list[str] = []
        raw = request.raw_path or request.path
        for router in self.routers:
            route, params, methods = router.router.lookup(request.method, raw)
            if route is not None:
                request.path_params = params
                request.route_pattern = route.pattern.path
                return await route.handler(request)
            allowed += methods
        if allowed:
            response = text_response("Method Not Allowed", 405)
            response.set_header("Allow", ", ".join(sorted(set(allowed))))
            return response
        request.state[UNMATCHED] = True
        return text_response("404 page not found", 404)


# -- building -------------------------------------------------------------------------------


def _pick_router(runtime: AppRuntime, name: str, at: KeyPath, errors: _Errors,
                 fallback: tuple[str, ...] = ("httpRouter", "api-router", "router")
                 ) -> HTTPRouter | None:  # fmt: skip
    modules = runtime.modules
    if name:
        found = modules.get(name)
        if isinstance(found, HTTPRouter):
            return found
        errors.add(at, f"router {name!r} is not an http.router module")
        return None
    for candidate in fallback:
        found = modules.get(candidate)
        if isinstance(found, HTTPRouter):
            return found
    return runtime.routers[0]


def _module_router(runtime: AppRuntime, module_name: str) -> HTTPRouter:
    """The router a route-serving module registers on: its `router` config, a router it
    dependsOn, a router depending on a server it dependsOn, else the first router."""
    cfg = runtime.config.module(module_name)
    explicit = getattr(runtime.modules[module_name], "router_name", "")
    if explicit and isinstance(runtime.modules.get(explicit), HTTPRouter):
        return runtime.modules[explicit]  # type: ignore[no-any-return]
    deps = cfg.depends_on if cfg is not None else ()
    for dep in deps:
        if isinstance(runtime.modules.get(dep), HTTPRouter):
            return runtime.modules[dep]  # type: ignore[no-any-return]
    for router_cfg in runtime.config.modules:
        if router_cfg.type == "http.router" and set(router_cfg.depends_on) & set(deps):
            return runtime.modules[router_cfg.name]  # type: ignore[no-any-return]
    return runtime.routers[0]


def _static_endpoint(response: Mapping[str, Any]) -> Any:
    status = int(response.get("statusCode") or response.get("status") or 200)
    body = response.get("body", "")
    raw = body if isinstance(body, str) else json_response(body).body.decode()
    headers = [(str(k), str(v)) for k, v in (response.get("headers") or {}).items()]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))

    async def endpoint(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(status, list(headers), raw.encode())

    return endpoint


def _middlewares(runtime: AppRuntime, names: list[str], at: KeyPath,
                 errors: _Errors) -> list[Any]:  # fmt: skip
    """The http.middleware modules `names` lists (each one that is not, an error)."""
    found = []
    for mw_name in names:
        mw = runtime.modules.get(mw_name)
        if mw is None or not callable(getattr(mw, "wrap", None)):
            errors.add((*at, "middlewares"),
                       f"middleware {mw_name!r} is not an http.middleware module")
        else:
            found.append(mw)
    return found


def _wire(runtime: AppRuntime, errors: _Errors, timeout: float | None) -> None:
    config, modules = runtime.config, runtime.modules
    plan = collect_triggers(config)
    for at, message in plan.problems:
        errors.add(at, message)
    handlers = collect_handlers(config)
    for at, message in handlers.problems:
        errors.add(at, message)
    needs_router = bool(plan.routes) or bool(handlers.routes) or any(
        callable(getattr(m, "http_routes", None)) for m in modules.values())
    for wf in config.workflows.values():
        needs_router = needs_router or (wf.type == "http" and bool(wf.config.get("endpoints")))
    if needs_router and not runtime.routers:
        implicit = HTTPRouter(IMPLICIT_ROUTER, {})
        modules.add(IMPLICIT_ROUTER, implicit, "http.router")
        runtime.routers.append(implicit)
    for spec in plan.routes:
        why = runtime.dispatcher.check(spec.target)
        if why is not None:
            errors.add((*spec.at, "workflow") if spec.at else spec.at, why)
            continue
        middlewares = _middlewares(runtime, spec.middlewares, spec.at, errors)
        router = _pick_router(runtime, spec.router, (*spec.at, "router"), errors)
        if router is None:
            continue
        route_timeout = timeout
        if spec.timeout is not None:
            from treadle.steps._durations import parse_duration

            route_timeout = parse_duration(spec.timeout, "timeout")
        handler = route_handler(spec, runtime.dispatcher, middlewares, route_timeout)
        try:
            router.add_route(spec.method, spec.path, handler, owner=spec.trigger)
        except ValueError as exc:
            errors.add((*spec.at, "path"), str(exc))
    for name in modules.order:
        serve = getattr(modules[name], "http_routes", None)
        if not callable(serve):
            continue
        router = _module_router(runtime, name)
        for method, path, handler in serve():
            try:
                router.add_route(method, path, handler, owner=name)
            except ValueError as exc:
                errors.add(("modules",), f"module {name!r}: {exc}")
    for wf in config.workflows.values():
        endpoints = wf.config.get("endpoints") if wf.type == "http" else None
        for i, ep in enumerate(endpoints if isinstance(endpoints, list) else []):
            if isinstance(ep, dict) and isinstance(ep.get("path"), str):
                runtime.routers[0].add_route(str(ep.get("method") or "GET"), ep["path"],
                                             _static_endpoint(ep.get("response") or {}),
                                             owner=f"workflows.{wf.name}")  # fmt: skip
            else:
                errors.add((*wf.path, "endpoints", i), "an endpoint needs a path")
    _wire_handlers(runtime, handlers, errors)
    for sub in plan.subscriptions:
        why = runtime.dispatcher.check(sub.target)
        broker = find_broker(modules, sub.broker)
        if why is not None:
            errors.add((*sub.at, "workflow"), why)
        elif broker is None:
            errors.add(sub.at, "event trigger needs a messaging.broker module"
                       + (f" named {sub.broker!r}" if sub.broker else ""))
        else:
            runtime.subscriptions.append((broker, EventSubscription(sub, runtime.dispatcher)))
    for job in plan.jobs:
        why = runtime.dispatcher.check(job.target)
        if why is not None:
            errors.add((*job.at, "workflow"), why)
            continue
        scheduler = find_scheduler(modules, job)
        if scheduler is None and job.scheduler:
            errors.add((*job.at, "scheduler"), f"no scheduler module named {job.scheduler!r}")
            continue
        if scheduler is None:
            scheduler = Scheduler(IMPLICIT_SCHEDULER, {})
            modules.add(IMPLICIT_SCHEDULER, scheduler, "scheduler.modular")
        runtime.jobs.append((scheduler, ScheduledJob(job, runtime.dispatcher)))
    runtime.global_middlewares = [m for m in modules.values() if getattr(m, "is_global", False)]
    runtime._dispatch = _with_global_middlewares(runtime)
    runtime.server_routers = _server_routers(runtime, handlers)


def _with_global_middlewares(runtime: AppRuntime) -> Any:
    dispatch = runtime._route
    for mw in reversed(runtime.global_middlewares):
        dispatch = mw.wrap(dispatch)
    return dispatch


def _server_routers(runtime: AppRuntime, handlers: HandlerPlan) -> dict[str, list[HTTPRouter]]:
    """Which routers each http.server serves (see `AppRuntime.for_server`)."""
    names = [s.name for s in runtime.servers]
    if not names or not runtime.routers:
        return {name: [] for name in names}
    owner: dict[str, str] = {}
    ignore = _Errors(runtime.config)
    for section in handlers.sections:
        if section.server in names:
            router = _pick_router(runtime, section.router, section.at, ignore)
            if router is not None:
                owner.setdefault(router.name, section.server)
    for cfg in runtime.config.modules:
        if cfg.type == "http.router":
            server = next((d for d in cfg.depends_on if d in names), None)
            if server is not None:
                owner.setdefault(cfg.name, server)
    out: dict[str, list[HTTPRouter]] = {name: [] for name in names}
    for router in runtime.routers:
        out[owner.get(router.name, names[0])].append(router)
    return out


def _wire_handlers(runtime: AppRuntime, plan: HandlerPlan, errors: _Errors) -> None:
    """Wire the Go `workflows:` handler sections (see `treadle.triggers.handlers`)."""
    modules = runtime.modules
    for route in plan.routes:
        serve = getattr(modules.get(route.handler), "handle_http", None)
        if not callable(serve):
            errors.add((*route.at, "handler"), _not_a(modules, route.handler, "http.handler",
                                                      "handle_http"))  # fmt: skip
            continue
        handler = serve
        for mw in reversed(_middlewares(runtime, route.middlewares, route.at, errors)):
            handler = mw.wrap(handler)
        router = _pick_router(runtime, route.router, (*route.at, "router"), errors)
        if router is None:
            continue
        try:
            router.add_route(route.method, route.path, handler, owner=f"workflows.{route.section}")
        except ValueError as exc:
            errors.add((*route.at, "path"), str(exc))
    for sub in plan.subscriptions:
        receive = getattr(modules.get(sub.handler), "handle_message", None)
        broker = find_broker(modules, sub.broker)
        if not callable(receive):
            errors.add((*sub.at, "handler"), _not_a(modules, sub.handler, "messaging.handler",
                                                    "handle_message"))  # fmt: skip
        elif broker is None:
            errors.add(sub.at, "a messaging subscription needs a messaging.broker module"
                       + (f" named {sub.broker!r}" if sub.broker else ""))
        else:
            runtime.message_handlers.append((broker, sub.topic, receive))
    for fwd in plan.forwards:
        producer = modules.get(fwd.handler)
        forward = getattr(producer, "forward", None)
        broker = find_broker(modules, fwd.broker)
        if producer is not None and not callable(forward) and \
                callable(getattr(producer, "handle_http", None)):
            continue  # an http.handler producer: only logged by Go, ignored (a warning)
        if not callable(forward):
            errors.add((*fwd.at, "name"), _not_a(modules, fwd.handler, "messaging.handler",
                                                 "forward"))  # fmt: skip
        elif broker is None:
            errors.add(fwd.at, "forwardTo needs a messaging.broker module")
        else:
            forward(broker, fwd.topics)
    for job in plan.jobs:
        scheduler = modules.get(job.scheduler)
        receive = getattr(modules.get(job.job), "handle_message", None)
        cron = getattr(scheduler, "cron", None)
        if not isinstance(scheduler, Scheduler):
            errors.add((*job.at, "scheduler"), _not_a(modules, job.scheduler,
                                                      "scheduler.modular", "schedule"))
        elif not cron:
            errors.add((*job.at, "scheduler"), f"scheduler {job.scheduler!r} has no "
                       "cronExpression to run jobs on")  # fmt: skip
        elif not callable(receive):
            errors.add((*job.at, "job"), _not_a(modules, job.job, "messaging.handler",
                                                "handle_message"))  # fmt: skip
        else:
            runtime.handler_jobs.append((scheduler, f"{job.scheduler}:{job.job}",
                                         _job_callback(job.scheduler, job.job, receive)))


def _job_callback(scheduler: str, job: str, receive: Any) -> Any:
    """A scheduler callback handing the job module a JSON message about the firing."""
    import json

    async def fire(when: Any) -> None:
        await receive(json.dumps({"scheduler": scheduler, "job": job,
                                  "scheduledAt": when.isoformat()}).encode())  # fmt: skip

    return fire


def _not_a(modules: ModuleSet, name: str, kind: str, method: str) -> str:
    if name not in modules:
        known = ", ".join(sorted(modules)) or "none"
        return f"no module named {name!r} (modules: {known})"
    return f"module {name!r} ({modules.types.get(name) or 'custom'}) is not a {kind} " \
           f"(it has no {method})"  # fmt: skip


def build_app(
    config: str | os.PathLike[str] | AppConfig,
    engine: Engine,
    *,
    modules: Mapping[str, Any] | None = None,
    module_types: ModuleRegistry | None = None,
    step_types: StepRegistry | None = None,
    handlers: list[WorkflowHandler] | None = None,
) -> AppRuntime:
    """Load `config` (a path or an AppConfig), build its modules, register its pipelines on
    `engine.registry` and wire its triggers. One ConfigError lists every problem.

    `modules` replaces or adds modules by name (test doubles); `handlers` take trigger
    targets that are not pipelines.
    """
    from treadle.config import load_config
    from treadle.pipelines import load_application

    app = config if not isinstance(config, str | os.PathLike) else load_config(config)
    ctx = BuildContext(base_dir=Path(app.file).resolve().parent, app_name=app.name or "app",
                       sections=app.sections)  # fmt: skip
    module_set = build_modules(app, module_types, ctx=ctx, extra=modules)
    application = load_application(app, registry=engine.registry, modules=module_set,
                                   step_types=step_types)  # fmt: skip
    from treadle.statemachine.app import attach
    from treadle.statemachine.triggers import StateMachineTriggers

    state_machines = attach(app, module_set, application, engine)
    metrics = next((m for m in module_set.values()
                    if callable(getattr(m, "observe_pipeline", None))), None)  # fmt: skip
    dispatcher = Dispatcher(engine, application, metrics)
    for handler in handlers or ():
        dispatcher.add_handler(handler)
    if state_machines:  # triggers naming a state machine definition
        dispatcher.add_handler(StateMachineTriggers(state_machines, engine.registry))
    runtime = AppRuntime(app, engine, application, module_set, dispatcher)
    errors = _Errors(app)
    _wire(runtime, errors, runtime.response_timeout)
    errors.raise_any()
    return runtime


__all__ = ["AppRuntime", "build_app"]
