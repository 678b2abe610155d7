"""`validate_config(path)`: every problem of an application file, all at once, each naming
file, line and key.

```python
from treadle.config.validate import validate_config, check_config

errors = validate_config("app.yaml")            # [] when the file is valid
report = check_config(load_config("app.yaml"))  # errors and warnings of a loaded config
```

What is checked, in order:

1. loading: YAML syntax, `imports:` merging, `${VAR}` expansion (`treadle.config.loader`);
2. the JSON Schema of the whole file (`config_schema()`): module configs by type, trigger
   shapes, pipeline and step keys; unknown keys are warnings (the Go engine ignores them);
3. modules: unknown types (with the known ones), unsupported Go types, `dependsOn` naming
   unknown modules, `dependsOn` cycles, and each factory's own checks (addresses, drivers);
4. pipelines: unknown step types, step config schemas and checks (jq programs, SQL without
   templates, conditional routes to unknown steps...), retry policies, durations
   (`treadle.pipelines`), `step.workflow_call` to unknown pipelines, and steps naming
   modules that do not exist or cannot serve them (`database:` must name a database);
5. triggers: `workflow: "pipeline:<name>"` naming unknown pipelines, unknown trigger types,
   route patterns and conflicts between routes, middlewares and routers that are not
   modules of that kind, cron expressions and time zones, event triggers without a broker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from treadle.config.model import AppConfig, ConfigWarning, KeyPath, StepConfig, format_key, suggest
from treadle.errors import ConfigError

if TYPE_CHECKING:
    from treadle.modules.registry import ModuleRegistry
    from treadle.steps.registry import StepRegistry

STEP_MODULE_KEYS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "step.db_query": (("database", "database"),),
    "step.db_exec": (("database", "database"),),
    "step.cache_get": (("cache", "cache"),),
    "step.cache_set": (("cache", "cache"),),
    "step.publish": (("broker", "broker"),),
    "step.delegate": (("service", None),),
    "step.transform": (("transformer", None),),
}
"""Config keys of step types that name a module, and the capability it must provide."""


@dataclass
class ValidationReport:
    """The outcome of a validation: errors (the file does not run) and warnings."""

    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    strict_env: bool = False,
    module_types: ModuleRegistry | None = None,
    step_types: StepRegistry | None = None,
) -> list[ConfigError]:
    """Every error of the application in `path` (empty when it is valid)."""
    return validate_report(path, env=env, strict_env=strict_env, module_types=module_types,
                           step_types=step_types).errors  # fmt: skip


def validate_report(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    strict_env: bool = False,
    module_types: ModuleRegistry | None = None,
    step_types: StepRegistry | None = None,
) -> ValidationReport:
    """Errors and warnings of the application in `path`."""
    from treadle.config.loader import load_config

    try:
        app = load_config(path, env=env, strict_env=strict_env)
    except ConfigError as exc:
        return ValidationReport(errors=list(exc.errors) or [exc])
    return check_config(app, module_types=module_types, step_types=step_types)


def check_config(
    app: AppConfig,
    *,
    module_types: ModuleRegistry | None = None,
    step_types: StepRegistry | None = None,
) -> ValidationReport:
    """Errors and warnings of a loaded application (see the module docs)."""
    from treadle.modules.registry import default_registry as default_modules
    from treadle.steps.registry import default_registry as default_steps

    checker = _Checker(app, module_types or default_modules, step_types or default_steps)
    checker.run()
    order = {name: i for i, name in enumerate(app.files)}

    def key(problem: ConfigError | ConfigWarning) -> tuple[int, int, str]:
        return order.get(problem.file or "", len(order)), problem.line or 0, problem.key or ""

    errors = sorted({(e.file, e.line, e.key, e.message): e for e in checker.errors}.values(),
                    key=key)  # fmt: skip
    seen: dict[tuple[Any, ...], ConfigWarning] = {}
    for w in [*app.warnings, *checker.warnings]:
        seen.setdefault((w.file, w.line, w.key), w)
    return ValidationReport(errors, sorted(seen.values(), key=key))


def _validator(module_types: ModuleRegistry, step_types: StepRegistry) -> Any:
    """The schema validator, rebuilt when either registry gains a type."""
    return _cached_validator(module_types, step_types, tuple(module_types.types()),
                             tuple(step_types.types()))  # fmt: skip


@lru_cache(maxsize=8)
def _cached_validator(module_types: Any, step_types: Any, _m: tuple[str, ...],
                      _s: tuple[str, ...]) -> Any:  # fmt: skip
    from treadle.config.schema import config_schema
    from treadle.errors import require

    jsonschema = require("jsonschema", "config")

    schema = config_schema(module_types=module_types, step_types=step_types)
    return jsonschema.Draft202012Validator(schema)


def _templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "${" in value)


class _Checker:
    def __init__(self, app: AppConfig, modules: ModuleRegistry, steps: StepRegistry) -> None:
        self.app = app
        self.module_types = modules
        self.step_types = steps
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigWarning] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(self.app.error_at(path, message))

    def warn(self, path: KeyPath, message: str) -> None:
        pos = self.app.position(path)
        self.warnings.append(ConfigWarning(message, pos.file if pos else self.app.file,
                                           pos.line if pos else None,
                                           format_key(path) or None))  # fmt: skip

    def run(self) -> None:
        self.schema()
        self.modules()
        self.pipelines()
        self.triggers()

    # -- 2. the JSON Schema -------------------------------------------------------------------

    def _skip(self, path: KeyPath) -> bool:
        """Paths the pipeline builder checks itself (step types and configs) and module
        types (reported with the list of known ones)."""
        if len(path) >= 4 and path[0] == "pipelines" and path[2] in ("steps", "compensation"):
            return len(path) > 4 and path[4] in ("type", "config", "compensate")
        return len(path) == 3 and path[0] == "modules" and path[2] == "type"

    def schema(self) -> None:
        validator = _validator(self.module_types, self.step_types)
        for err in validator.iter_errors(self.app.raw):
            path: KeyPath = tuple(err.absolute_path)
            if err.validator == "additionalProperties":
                if not _loader_checks_keys(path):
                    allowed = list(err.schema.get("properties", {}))
                    for extra in sorted(set(err.instance) - set(allowed)):
                        self.warn((*path, extra), f"unknown key {extra!r}"
                                  f"{suggest(extra, allowed)} (ignored)")  # fmt: skip
                continue
            if self._skip(path) or _templated(err.instance):
                continue
            if err.validator in ("anyOf", "oneOf") and err.context:
                best = max(err.context, key=lambda e: len(e.absolute_path))
                if _templated(best.instance):
                    continue
                self.error(tuple(best.absolute_path), best.message)
                continue
            self.error(path, err.message)

    # -- 3. modules -----------------------------------------------------------------------------

    def modules(self) -> None:
        from treadle.modules.base import BuildContext, dependency_order, normalise_config
        from treadle.modules.registry import unknown_type_message

        known = self.module_types.types()
        seen: dict[str, int] = {}
        for i, cfg in enumerate(self.app.modules):
            if cfg.name in seen:
                self.error((*cfg.path, "name"), f"duplicate module name {cfg.name!r} (also "
                           f"modules[{seen[cfg.name]}])")  # fmt: skip
            seen.setdefault(cfg.name, i)
        _, problems = dependency_order(self.app.modules)
        for index, message in problems:
            key = "dependsOn" if "unknown" in message else "name"
            self.error((*self.app.modules[index].path, key), message)
        self.server_addresses()
        self.module_sections()
        from pathlib import Path

        ctx = BuildContext(base_dir=Path(self.app.file).resolve().parent,
                           sections=self.app.sections)  # fmt: skip
        flagged = {e.key for e in self.errors}
        for cfg in self.app.modules:
            spec = self.module_types.find(cfg.type)
            if spec is None:
                self.error((*cfg.path, "type"), unknown_type_message(cfg.type, known))
                continue
            prefix = format_key(cfg.path)
            if any(k and (k == prefix or k.startswith(prefix + ".")) for k in flagged):
                continue  # the schema already said what is wrong with this module
            config = normalise_config(spec.aliases, cfg.config)
            if any(_templated(v) for v in config.values()):
                continue  # an unset ${VAR}: the loader warned; the factory would guess
            try:
                spec.factory(cfg.name, config, ctx)
            except (ValueError, TypeError, KeyError, ConfigError) as exc:
                message = exc.message if isinstance(exc, ConfigError) else str(exc)
                self.error((*cfg.path, "config"), f"{cfg.type}: {message}")

    def server_addresses(self) -> None:
        """Two http.server modules cannot listen on the same port (each serves its own
        routers, see `AppRuntime.for_server`)."""
        from treadle.modules.http import parse_address

        seen: dict[int, str] = {}
        for cfg in self.app.modules:
            address = cfg.config.get("address")
            if cfg.type != "http.server" or _templated(address):
                continue
            try:
                _, port = parse_address(str(address or ""))
            except ValueError:
                continue  # the factory check reports it
            if port and port in seen:
                self.error((*cfg.path, "config", "address"), f"http.server {cfg.name!r} uses "
                           f"port {port}, as {seen[port]!r} does")  # fmt: skip
            seen.setdefault(port, cfg.name)

    def module_sections(self) -> None:
        """Keys of the top-level sections module types read (modular's `httpserver:`,
        `chimux:`) that the type does not know, and such sections no module reads: warnings
        (modular ignores them too)."""
        readers: dict[str, list[str]] = {}
        for spec in self.module_types:
            if spec.section:
                readers.setdefault(spec.section, []).append(spec.type)
        used = [self.module_types.find(m.type) for m in self.app.modules]
        for key, types in readers.items():
            body = self.app.sections.get(key)
            if not isinstance(body, dict):
                continue
            specs = [s for s in used if s is not None and s.section == key]
            if not specs:
                self.warn((key,), f"{key!r} is ignored: no {' or '.join(types)} module "
                          "reads it")  # fmt: skip
                continue
            known = specs[0].schema.get("properties", {})
            for name in body:
                if name not in known:
                    self.warn((key, name), f"unknown key {name!r} for {specs[0].type} "
                              f"(ignored, as modular does){suggest(str(name), list(known))}; "
                              f"known keys: {', '.join(known)}")  # fmt: skip

    def provides(self, name: str) -> frozenset[str] | None:
        cfg = self.app.module(name)
        if cfg is None:
            return None
        spec = self.module_types.find(cfg.type)
        return spec.provides if spec is not None else frozenset()

    # -- 4. pipelines ---------------------------------------------------------------------------

    def pipelines(self) -> None:
        from treadle.pipelines._plan import build_plans

        try:
            build_plans(self.app, self.step_types)
        except ConfigError as exc:
            self.errors.extend(exc.errors or [exc])
        for pipeline in self.app.pipelines.values():
            for step in (*pipeline.steps, *pipeline.compensation):
                for path, kind, config in _walk_step(step):
                    self.step_references(path, kind, config)

    def step_references(self, path: KeyPath, kind: str, config: Mapping[str, Any]) -> None:
        modules = [m.name for m in self.app.modules]
        for key, capability in STEP_MODULE_KEYS.get(kind, ()):
            value = config.get(key)
            if not isinstance(value, str) or not value or _templated(value):
                continue
            provided = self.provides(value)
            where = (*path, "config", key)
            if provided is None:
                self.error(where, f"{kind}: {key} {value!r} is not a module of the "
                           f"application{suggest(value, modules)} (modules: "
                           f"{', '.join(modules) or 'none'})")  # fmt: skip
            elif capability is not None and provided and capability not in provided:
                fitting = [m for m in modules if capability in (self.provides(m) or ())]
                self.error(where, f"{kind}: module {value!r} is not a {capability} "
                           f"({capability} modules: {', '.join(fitting) or 'none'})")
        if kind == "step.workflow_call":
            target = config.get("workflow")
            if isinstance(target, str) and target and not _templated(target):
                name = target.removeprefix("pipeline:")
                if name not in self.app.pipelines:
                    self.error((*path, "config", "workflow"), self.unknown_pipeline(name))

    def unknown_pipeline(self, name: str) -> str:
        known = sorted(self.app.pipelines)
        return (f"no pipeline named {name!r}{suggest(name, known)} "
                f"(pipelines: {', '.join(known) or 'none'})")  # fmt: skip

    # -- 5. triggers ----------------------------------------------------------------------------

    def target(self, at: KeyPath, workflow: str) -> None:
        from treadle.triggers.spec import PIPELINE_PREFIX

        if workflow.startswith(PIPELINE_PREFIX):
            name = workflow[len(PIPELINE_PREFIX):]
            if name not in self.app.pipelines:
                self.error(at, self.unknown_pipeline(name))
            return
        if workflow in _workflow_names(self.app):
            return  # a state machine definition (started by its own handler)
        hint = f' (did you mean "pipeline:{workflow}"?)' if workflow in self.app.pipelines \
            else ""  # fmt: skip
        self.error(at, f"workflow {workflow!r} is not defined{hint}: triggers start pipelines "
                   "(workflow: \"pipeline:<name>\")")  # fmt: skip

    def module_of(self, at: KeyPath, name: str, capability: str, what: str) -> bool:
        provided = self.provides(name)
        if provided is None:
            known = [m.name for m in self.app.modules]
            self.error(at, f"{what} {name!r} is not a module of the application"
                       f"{suggest(name, known)}")  # fmt: skip
            return False
        if provided and capability not in provided:
            self.error(at, f"module {name!r} is not a {what}")
            return False
        return True

    def triggers(self) -> None:
        from treadle.modules.infra import validate_cron
        from treadle.modules.web import Router
        from treadle.triggers.spec import collect_triggers

        plan = collect_triggers(self.app)
        for at, message in plan.problems:
            self.error(at, message)
        router = Router()

        async def nothing(request: Any) -> Any:  # pragma: no cover - never called
            return None

        for route in plan.routes:
            self.target((*route.at, "workflow"), route.target.workflow)
            for i, mw in enumerate(route.middlewares):
                self.module_of((*route.at, "middlewares", i), mw, "http.middleware",
                               "middleware")  # fmt: skip
            if route.router:
                self.module_of((*route.at, "router"), route.router, "http.router", "router")
            try:
                if router.add(route.method, route.path, nothing, route.trigger) is None:
                    self.warn((*route.at, "path"), f"route {route.method} {route.path} is "
                              "defined twice; the first one is used")  # fmt: skip
            except ValueError as exc:
                self.error((*route.at, "path"), str(exc))
        has_broker = any("broker" in (self.provides(m.name) or ()) for m in self.app.modules)
        for sub in plan.subscriptions:
            self.target((*sub.at, "workflow"), sub.target.workflow)
            if sub.broker:
                self.module_of((*sub.at, "broker"), sub.broker, "broker", "broker")
            elif not has_broker:
                self.error((*sub.at, "topic"), "event trigger needs a messaging.broker module")
        for job in plan.jobs:
            self.target((*job.at, "workflow"), job.target.workflow)
            problem = validate_cron(job.cron, job.timezone)
            if problem is not None:
                self.error((*job.at, "cron"), f"invalid schedule {job.cron!r}"
                           f"{' in ' + job.timezone if job.timezone else ''}: {problem}")
            if job.scheduler:
                self.module_of((*job.at, "scheduler"), job.scheduler, "scheduler", "scheduler")
        self.handlers(router)

    def handlers(self, router: Any) -> None:
        """The Go `workflows:` handler sections (`treadle.triggers.handlers`)."""
        from treadle.triggers.handlers import HTTP_HANDLER, MESSAGE_HANDLER, collect_handlers

        plan = collect_handlers(self.app)
        for at, message in plan.problems:
            self.error(at, message)
        for cfg in self.app.modules:
            delegate = cfg.config.get("delegate")
            if cfg.type in ("api.query", "api.command") and isinstance(delegate, str) \
                    and delegate:  # fmt: skip
                self.module_of((*cfg.path, "config", "delegate"), delegate, HTTP_HANDLER,
                               "http.handler")  # fmt: skip
        for section in plan.sections:
            if section.router:
                self.module_of((*section.at, "router"), section.router, "http.router", "router")
            if section.server:
                self.module_of((*section.at, "server"), section.server, "http.server", "server")

        async def nothing(request: Any) -> Any:  # pragma: no cover - never called
            return None

        for route in plan.routes:
            self.module_of((*route.at, "handler"), route.handler, HTTP_HANDLER, "http.handler")
            for i, mw in enumerate(route.middlewares):
                self.module_of((*route.at, "middlewares", i), mw, "http.middleware",
                               "middleware")  # fmt: skip
            try:
                if router.add(route.method, route.path, nothing, route.section) is None:
                    self.warn((*route.at, "path"), f"route {route.method} {route.path} is "
                              "defined twice; the first one is used")  # fmt: skip
            except ValueError as exc:
                self.error((*route.at, "path"), str(exc))
        for sub in plan.subscriptions:
            self.module_of((*sub.at, "handler"), sub.handler, MESSAGE_HANDLER,
                           "messaging.handler")  # fmt: skip
            if sub.broker:
                self.module_of((*sub.at[:-2], "broker"), sub.broker, "broker", "broker")
        if plan.subscriptions and not any(s.broker for s in plan.subscriptions) and not any(
                "broker" in (self.provides(m.name) or ()) for m in self.app.modules):
            self.error(plan.subscriptions[0].at, "messaging subscriptions need a "
                       "messaging.broker module")  # fmt: skip
        for fwd in plan.forwards:
            provided = self.provides(fwd.handler)
            if provided and HTTP_HANDLER in provided and MESSAGE_HANDLER not in provided:
                self.warn((*fwd.at, "name"), f"module {fwd.handler!r} is an http.handler, "
                          "not a messaging.handler: its forwardTo is ignored (the Go engine "
                          "only logs producers)")  # fmt: skip
            else:
                self.module_of((*fwd.at, "name"), fwd.handler, MESSAGE_HANDLER,
                               "messaging.handler")  # fmt: skip
        for job in plan.jobs:
            if self.module_of((*job.at, "scheduler"), job.scheduler, "scheduler", "scheduler"):
                scheduler = self.app.module(job.scheduler)
                if scheduler is not None and not scheduler.config.get("cronExpression"):
                    self.error((*job.at, "scheduler"), f"scheduler {job.scheduler!r} has no "
                               "cronExpression to run jobs on")  # fmt: skip
            self.module_of((*job.at, "job"), job.job, MESSAGE_HANDLER, "messaging.handler")


def _loader_checks_keys(path: KeyPath) -> bool:
    """Whether the loader already warned about unknown keys of the mapping at `path`
    (module entries, pipelines, steps and their `compensate:`)."""
    n = len(path)
    if n == 2 and path[0] in ("modules", "pipelines"):
        return True
    if path[:1] == ("pipelines",) and n >= 4 and path[2] in ("steps", "compensation"):
        return n == 4 or (n == 5 and path[4] == "compensate")
    return n == 0


def _walk_step(step: StepConfig) -> Iterator[tuple[KeyPath, str, Mapping[str, Any]]]:
    """A step, its `compensate:` and the sub-steps inside its config (foreach, parallel,
    retry_with_backoff): `(path, type, config)` each."""
    yield step.path, step.type, step.config
    if step.compensate is not None:
        yield from _walk_step(step.compensate)
    yield from _nested(step.path, step.config)


def _nested(path: KeyPath, config: Mapping[str, Any]) -> Iterator[tuple[KeyPath, str,
                                                                           Mapping[str, Any]]]:
    sub = config.get("step")
    if isinstance(sub, dict) and isinstance(sub.get("type"), str):
        at = (*path, "config", "step")
        inner = sub.get("config") if isinstance(sub.get("config"), dict) else {}
        assert isinstance(inner, dict)
        yield at, sub["type"], inner
        yield from _nested(at, inner)
    subs = config.get("steps")
    for i, item in enumerate(subs if isinstance(subs, list) else []):
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            at = (*path, "config", "steps", i)
            inner = item.get("config") if isinstance(item.get("config"), dict) else {}
            assert isinstance(inner, dict)
            yield at, item["type"], inner
            yield from _nested(at, inner)


def _workflow_names(app: AppConfig) -> set[str]:
    """Names defined in `workflows:` sections (state machine definitions)."""
    names: set[str] = set()
    for wf in app.workflows.values():
        for item in wf.config.get("definitions") or ():
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                names.add(item["name"])
    return names


__all__ = ["STEP_MODULE_KEYS", "ValidationReport", "check_config", "validate_config",
           "validate_report"]  # fmt: skip
