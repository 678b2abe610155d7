"""Typed value objects for a loaded YAML application, plus the map back to its source lines.

Everything here is plain data (standard library only). `treadle.config.loader` builds it;
validation, the registry and the runtime read it. Sub-configs whose shape belongs to a module
or step type stay `dict[str, Any]`; the JSON Schema layer checks those.

Every object remembers its `path` — the key path of its YAML node in `AppConfig.raw` — so
that any later check can say where a problem is:

>>> format_key(("pipelines", "create-order", "steps", 2, "type"))
'pipelines.create-order.steps[2].type'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from treadle.errors import ConfigError

KeyPath = tuple[str | int, ...]
"""Path of a node in the document: mapping keys are `str`, sequence indexes are `int`."""

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-$/:@]+")


def format_key(path: KeyPath) -> str:
    """Render a key path the way errors show it: `pipelines.p.steps[2].config["a.b"]`."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a node starts: file name as shown to users, 1-based line and column."""

    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class SourceMap(Mapping[KeyPath, Position]):
    """Read-only map from key paths to the position each node was written at.

    Mapping entries are recorded at their key (`name:`), sequence items at their first
    character. Nodes reached again through a YAML alias are recorded at the alias only;
    `locate` falls back to the nearest recorded ancestor for anything not recorded itself.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[KeyPath, Position] | None = None) -> None:
        self._entries: dict[KeyPath, Position] = dict(entries or {})

    def __getitem__(self, path: KeyPath) -> Position:
        return self._entries[path]

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"SourceMap({len(self._entries)} entries)"

    def locate(self, path: KeyPath) -> Position | None:
        """The position of `path`, or of its nearest recorded ancestor; None if nothing is."""
        for end in range(len(path), -1, -1):
            found = self._entries.get(path[:end])
            if found is not None:
                return found
        return None


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """A problem that does not stop loading (an unset variable, an unknown key, ...).

    Plain data, not a `warnings.Warning`: the loader returns these in `AppConfig.warnings`
    and `treadle validate` prints them. `str()` has the same shape as `ConfigError`.
    """

    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        key = f" [{self.key}]" if self.key else ""
        return f"{where}{key}: {self.message}" if where or key else self.message


@dataclass(frozen=True, slots=True)
class ModuleConfig:
    """One entry of `modules:` — `{name, type, config, dependsOn, branches, environments}`."""

    name: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    branches: dict[str, str] = field(default_factory=dict)
    environments: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys the Go format does not define for modules (kept, reported as warnings)."""
    path: KeyPath = ()


@dataclass(frozen=True, slots=True)
class StepConfig:
    """One pipeline step. `if_` is the YAML key `if` (a template; run the step when truthy)."""

    name: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    if_: str | None = None
    skip_if: str | None = None
    on_error: str | None = None
    timeout: str | None = None
    error_status: int | None = None
    retry: dict[str, Any] | None = None
    compensate: StepConfig | None = None
    """The seed's saga form: a step-like `{type, config}` run to undo this one."""
    extra: dict[str, Any] = field(default_factory=dict)
    path: KeyPath = ()


@dataclass(frozen=True, slots=True)
class PipelineTriggerConfig:
    """A pipeline's inline `trigger: {type, config}`; other keys (e.g. `source`) in `extra`."""

    type: str
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    path: KeyPath = ()
    config_path: KeyPath | None = None
    """Where `config` was written when it is not at `path.config` (the trigger of a route's
    inline pipeline is the route entry itself)."""


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """One entry of `pipelines:`: its raw mapping plus the parsed parts."""

    name: str
    steps: tuple[StepConfig, ...] = ()
    trigger: PipelineTriggerConfig | None = None
    on_error: str | None = None
    timeout: str | None = None
    compensation: tuple[StepConfig, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)
    strict_templates: bool = False
    retry: dict[str, Any] | None = None
    saga: dict[str, Any] | None = None
    idempotency: dict[str, Any] | None = None
    dead_letter: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    path: KeyPath = ()

    def step(self, name: str) -> StepConfig | None:
        """The step called `name`, or None."""
        return next((s for s in self.steps if s.name == name), None)


@dataclass(frozen=True, slots=True)
class WorkflowConfig:
    """One entry of `workflows:`. In the Go map form the key is the workflow type
    (`http`, `messaging`, `statemachine`, ...) and the value its config."""

    name: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    path: KeyPath = ()

    @property
    def config_path(self) -> KeyPath:
        """Where `config` was written: the entry itself in the map form, its `config` key in
        the list form."""
        return (*self.path, "config") if self.path and isinstance(self.path[-1], int) \
            else self.path  # fmt: skip

    @property
    def is_http(self) -> bool:
        """An HTTP routes section: type `http` or `http-<anything>` (several, as in Go)."""
        return self.type == "http" or self.type.startswith("http-")


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """One entry of `triggers:`. Either `type: {config}` (the key is the trigger type) or
    `name: {type, config}`."""

    name: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    path: KeyPath = ()


@dataclass(frozen=True, slots=True)
class AppConfig:
    """A loaded application: typed views, the merged raw document and its source map."""

    file: str
    name: str | None = None
    version: str | None = None
    description: str | None = None
    modules: tuple[ModuleConfig, ...] = ()
    workflows: dict[str, WorkflowConfig] = field(default_factory=dict)
    triggers: dict[str, TriggerConfig] = field(default_factory=dict)
    pipelines: dict[str, PipelineConfig] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    """Other top-level keys, untyped: `platform`, `requires`, `plugins`, `sidecars`, ..."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The merged document after imports and env expansion; paths in `source_map` index it."""
    source_map: SourceMap = field(default_factory=SourceMap)
    files: tuple[str, ...] = ()
    """Every file read: the main file first, then imports in load order."""
    warnings: tuple[ConfigWarning, ...] = ()

    def module(self, name: str) -> ModuleConfig | None:
        """The module called `name`, or None."""
        return next((m for m in self.modules if m.name == name), None)

    def position(self, path: KeyPath) -> Position | None:
        """Where `path` (or its nearest ancestor) was written."""
        return self.source_map.locate(path)

    def error_at(self, path: KeyPath, message: str) -> ConfigError:
        """A `ConfigError` naming the file, line and key of `path` (for later validation)."""
        pos = self.source_map.locate(path)
        return ConfigError(
            message,
            file=pos.file if pos else self.file,
            line=pos.line if pos else None,
            key=format_key(path) or None,
        )


# ---------------------------------------------------------------------------------------
# Construction: a raw mapping (already parsed and merged) -> the typed objects above
# ---------------------------------------------------------------------------------------

Report = Callable[[KeyPath, str, bool], None]
"""Receives `(path, message, is_error)` for each problem found while building."""

MODULE_KEYS = ("name", "type", "config", "dependsOn", "branches", "environments")
STEP_KEYS = (
    "name", "type", "config", "if", "skip_if", "on_error", "timeout", "error_status",
    "retry", "compensate",
)  # fmt: skip
PIPELINE_KEYS = (
    "trigger", "steps", "on_error", "timeout", "compensation", "outputs", "strict_templates",
    "retry", "saga", "idempotency", "dead_letter",
)  # fmt: skip
_TYPED_TOP = ("name", "version", "description", "modules", "workflows", "triggers",
              "pipelines", "imports", "application")  # fmt: skip
_TRUTHY = {"true": True, "yes": True, "on": True, "y": True,
           "false": False, "no": False, "off": False, "n": False}  # fmt: skip


def kind_of(value: Any) -> str:
    """How errors name the type of a YAML value: `a mapping`, `a list`, `a string`, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def suggest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {match[0]!r}?)" if match else ""


def build_app_config(
    raw: Mapping[str, Any],
    *,
    file: str = "<mapping>",
    source_map: SourceMap | None = None,
    files: tuple[str, ...] = (),
    report: Report | None = None,
) -> AppConfig:
    """Build an `AppConfig` from an application mapping (parsed YAML or JSON).

    Imports, `${VAR}` and the set of top-level keys are the loader's business, not checked
    here; the typed parts (modules, pipelines, steps, ...) are. With no
    `report`, problems are collected: errors raise one `ConfigError`, warnings end up in
    `AppConfig.warnings`. With a `report`, every problem goes to it and nothing is raised.
    """
    smap = source_map if source_map is not None else SourceMap()
    problems: list[ConfigError | ConfigWarning] = []

    def collect(path: KeyPath, message: str, is_error: bool) -> None:
        pos = smap.locate(path)
        kind = ConfigError if is_error else ConfigWarning
        problems.append(kind(message, file=pos.file if pos else file,
                             line=pos.line if pos else None, key=format_key(path) or None))

    parts = _Parts(report or collect)
    app = parts.app(dict(raw), file, smap, files)
    if report is not None:
        return app
    errors = [p for p in problems if isinstance(p, ConfigError)]
    if errors:
        count = len(errors)
        raise ConfigError(f"configuration has {count} error{'s' if count != 1 else ''}",
                          file=file, errors=errors)  # fmt: skip
    return replace(app, warnings=tuple(p for p in problems if isinstance(p, ConfigWarning)))


_SectionT = TypeVar("_SectionT", WorkflowConfig, TriggerConfig)


class _Parts:
    """Reads the typed parts out of raw mappings, reporting each problem at its key path."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def error(self, path: KeyPath, message: str) -> None:
        self.report(path, message, True)

    def warn(self, path: KeyPath, message: str) -> None:
        self.report(path, message, False)

    # -- fields ---------------------------------------------------------------------------

    def text(self, entry: Mapping[str, Any], key: str, path: KeyPath, what: str,
             *, required: bool = False) -> str | None:  # fmt: skip
        """A string field. Numbers and booleans read as text, as yaml.v3 reads them into a
        Go string."""
        value = entry.get(key)
        if value is None or value == "":
            if required:
                self.error((*path, key), f"{what} has no {key!r}" if value is None
                           else f"{what} {key!r} is empty")  # fmt: skip
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | str):
            return str(value)
        self.error((*path, key), f"{what} {key!r} must be a string, not {kind_of(value)}")
        return None

    def mapping(self, entry: Mapping[str, Any], key: str, path: KeyPath,
                what: str) -> dict[str, Any] | None:  # fmt: skip
        value = entry.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.error((*path, key), f"{what} {key!r} must be a mapping, not {kind_of(value)}")
        return None

    def sequence(self, entry: Mapping[str, Any], key: str, path: KeyPath,
                 what: str) -> list[Any]:  # fmt: skip
        value = entry.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.error((*path, key), f"{what} {key!r} must be a list, not {kind_of(value)}")
        return []

    def boolean(self, entry: Mapping[str, Any], key: str, path: KeyPath, what: str) -> bool:
        value = entry.get(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUTHY:  # yaml.v3 into a Go bool
            return _TRUTHY[value.lower()]
        self.error((*path, key), f"{what} {key!r} must be true or false, not {value!r}")
        return False

    def extra(self, entry: Mapping[str, Any], known: tuple[str, ...], path: KeyPath,
              what: str) -> dict[str, Any]:  # fmt: skip
        """Keys outside `known`: kept, and each reported as a warning."""
        out: dict[str, Any] = {}
        for key, value in entry.items():
            if key not in known:
                out[key] = value
                self.warn((*path, key), f"unknown {what} key {key!r}{suggest(key, known)} "
                          "(kept in 'extra')")  # fmt: skip
        return out

    # -- the application ------------------------------------------------------------------

    def app(self, raw: dict[str, Any], file: str, smap: SourceMap,
            files: tuple[str, ...]) -> AppConfig:  # fmt: skip
        top: KeyPath = ()
        modules = tuple(
            m for i, entry in enumerate(self.sequence(raw, "modules", top, "top-level"))
            if (m := self.module(entry, ("modules", i))) is not None
        )
        pipelines: dict[str, PipelineConfig] = {}
        for name, body in (self.mapping(raw, "pipelines", top, "top-level") or {}).items():
            pipeline = self.pipeline(name, body, ("pipelines", name))
            if pipeline is not None:
                pipelines[name] = pipeline
        workflows = self.named_sections(raw, "workflows", WorkflowConfig)
        types = {m.name: m.type for m in modules}
        for wf in workflows.values():
            if wf.is_http:
                self.route_pipelines(wf, pipelines, types)
        return AppConfig(
            file=file,
            name=self.text(raw, "name", top, "top-level"),
            version=self.text(raw, "version", top, "top-level"),
            description=self.text(raw, "description", top, "top-level"),
            modules=modules,
            workflows=workflows,
            triggers=self.named_sections(raw, "triggers", TriggerConfig),
            pipelines=pipelines,
            sections={k: v for k, v in raw.items() if k not in _TYPED_TOP},
            raw=raw,
            source_map=smap,
            files=files or (file,),
        )

    def module(self, entry: Any, path: KeyPath) -> ModuleConfig | None:
        if not isinstance(entry, dict):
            self.error(path, f"a module must be a mapping with name and type, not "
                       f"{kind_of(entry)}")  # fmt: skip
            return None
        name = self.text(entry, "name", path, "module", required=True)
        type_ = self.text(entry, "type", path, "module", required=True)
        config = self.mapping(entry, "config", path, "module") or {}
        depends: list[str] = []
        for i, dep in enumerate(self.sequence(entry, "dependsOn", path, "module")):
            if isinstance(dep, str) and dep:
                depends.append(dep)
            else:
                self.error((*path, "dependsOn", i),
                           f"dependsOn entries must be module names, not {kind_of(dep)}")
        branches: dict[str, str] = {}
        for key, target in (self.mapping(entry, "branches", path, "module") or {}).items():
            if isinstance(target, str):
                branches[key] = target
            else:
                self.error((*path, "branches", key),
                           f"a branch must name a module, not {kind_of(target)}")
        environments: dict[str, dict[str, Any] | None] = {}
        for key, env in (self.mapping(entry, "environments", path, "module") or {}).items():
            if env is None or isinstance(env, dict):
                environments[key] = env
            else:
                self.error((*path, "environments", key),
                           f"an environment override must be a mapping, not {kind_of(env)}")
        extra = self.extra(entry, MODULE_KEYS, path, "module")
        if name is None or type_ is None:
            return None
        return ModuleConfig(name, type_, config, tuple(depends), branches, environments,
                            extra, path)  # fmt: skip

    def step(self, entry: Any, path: KeyPath, *, default_name: str | None = None,
             what: str = "step") -> StepConfig | None:  # fmt: skip
        if not isinstance(entry, dict):
            self.error(path, f"a {what} must be a mapping with name and type, not "
                       f"{kind_of(entry)}")  # fmt: skip
            return None
        name = self.text(entry, "name", path, what, required=default_name is None)
        type_ = self.text(entry, "type", path, what, required=True)
        status = entry.get("error_status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            self.error((*path, "error_status"),
                       f"error_status must be an HTTP status code, not {status!r}")
            status = None
        compensate = None
        if entry.get("compensate") is not None:
            compensate = self.step(entry["compensate"], (*path, "compensate"),
                                   default_name=f"{name or default_name}.compensate",
                                   what="compensate step")  # fmt: skip
        step = StepConfig(
            name=name or default_name or "",
            type=type_ or "",
            config=self.mapping(entry, "config", path, what) or {},
            if_=self.text(entry, "if", path, what),
            skip_if=self.text(entry, "skip_if", path, what),
            on_error=self.text(entry, "on_error", path, what),
            timeout=self.text(entry, "timeout", path, what),
            error_status=status,
            retry=self.mapping(entry, "retry", path, what),
            compensate=compensate,
            extra=self.extra(entry, STEP_KEYS, path, what),
            path=path,
        )
        return step if type_ is not None and (name or default_name) else None

    def steps(self, body: Mapping[str, Any], key: str, path: KeyPath) -> tuple[StepConfig, ...]:
        out: list[StepConfig] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(self.sequence(body, key, path, "pipeline")):
            step = self.step(entry, (*path, key, i))
            if step is None:
                continue
            if step.name in seen:
                self.warn((*path, key, i, "name"), f"duplicate step name {step.name!r} (also "
                          f"{key}[{seen[step.name]}])")  # fmt: skip
            seen.setdefault(step.name, i)
            out.append(step)
        return tuple(out)

    def pipeline(self, name: str, body: Any, path: KeyPath) -> PipelineConfig | None:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            self.error(path, f"a pipeline must be a mapping with steps, not {kind_of(body)}")
            return None
        trigger = None
        raw_trigger = self.mapping(body, "trigger", path, "pipeline")
        if raw_trigger is not None:
            tpath = (*path, "trigger")
            trigger = PipelineTriggerConfig(
                type=self.text(raw_trigger, "type", tpath, "trigger", required=True) or "",
                config=self.mapping(raw_trigger, "config", tpath, "trigger") or {},
                extra={k: v for k, v in raw_trigger.items() if k not in ("type", "config")},
                path=tpath,
            )
        return PipelineConfig(
            name=name,
            steps=self.steps(body, "steps", path),
            trigger=trigger,
            on_error=self.text(body, "on_error", path, "pipeline"),
            timeout=self.text(body, "timeout", path, "pipeline"),
            compensation=self.steps(body, "compensation", path),
            outputs=self.mapping(body, "outputs", path, "pipeline") or {},
            strict_templates=self.boolean(body, "strict_templates", path, "pipeline"),
            retry=self.mapping(body, "retry", path, "pipeline"),
            saga=self.mapping(body, "saga", path, "pipeline"),
            idempotency=self.mapping(body, "idempotency", path, "pipeline"),
            dead_letter=self.mapping(body, "dead_letter", path, "pipeline"),
            extra=self.extra(body, PIPELINE_KEYS, path, "pipeline"),
            raw=body,
            path=path,
        )

    def route_pipelines(self, wf: WorkflowConfig, pipelines: dict[str, PipelineConfig],
                        module_types: Mapping[str, str]) -> None:  # fmt: skip
        """Add the inline pipelines of `wf`'s routes (`pipeline: {steps}` or `steps:`, as the
        Go engine's configureRoutePipelines reads them) to `pipelines`, each named
        `"<METHOD> <path>"` and triggered by its route. A route whose `handler` is an
        `api.query` / `api.command` module is answered as that Go handler answers
        (`PipelineTriggerConfig.extra["cqrs"]`)."""
        routes = wf.config.get("routes")
        for i, route in enumerate(routes if isinstance(routes, list) else []):
            at: KeyPath = (*wf.config_path, "routes", i)
            if not isinstance(route, dict):
                continue  # reported with the routes (treadle.triggers.spec)
            if isinstance(route.get("pipeline"), dict):
                body, body_at = route["pipeline"], (*at, "pipeline")
            elif isinstance(route.get("steps"), list):
                body, body_at = {"steps": route["steps"]}, at
            else:
                continue
            method = (self.text(route, "method", at, "route") or "GET").upper()
            path = self.text(route, "path", at, "route", required=True)
            if path is None:
                continue
            name = f"{method} {path}"
            if name in pipelines:
                self.error((*at, "path"), f"route pipeline {name!r}: a pipeline of that name "
                           "already exists")  # fmt: skip
                continue
            pipeline = self.pipeline(name, body, body_at)
            if pipeline is None:
                continue
            trigger_config: dict[str, Any] = {"path": path, "method": method}
            for key in ("middlewares", "timeout", "params"):
                if route.get(key) is not None:
                    trigger_config[key] = route[key]
            if isinstance(wf.config.get("router"), str):
                trigger_config["router"] = wf.config["router"]
            handler = module_types.get(str(route.get("handler") or ""), "")
            extra = {"cqrs": handler[4:]} if handler in ("api.query", "api.command") else {}
            trigger = PipelineTriggerConfig("http", trigger_config, extra, path=at,
                                            config_path=at)  # fmt: skip
            pipelines[name] = replace(pipeline, trigger=trigger)

    def named_sections(
        self, raw: Mapping[str, Any], key: str, cls: type[_SectionT]
    ) -> dict[str, _SectionT]:
        """`workflows` / `triggers`: the Go map form, or the seed's list of {name, type,
        config}. In the map form a body with a string `type` is `{type, config}` (the key is
        its name); otherwise the key is the type and the body its config."""
        value = raw.get(key)
        what = key[:-1]
        out: dict[str, _SectionT] = {}
        if isinstance(value, dict):
            for name, body in value.items():
                path: KeyPath = (key, name)
                if body is None:
                    body = {}
                if not isinstance(body, dict):
                    self.error(path, f"a {what} must be a mapping, not {kind_of(body)}")
                elif cls is TriggerConfig and isinstance(body.get("type"), str):
                    config = self.mapping(body, "config", path, what) or {}
                    out[name] = cls(name, body["type"], config, path)
                else:
                    out[name] = cls(name, name, body, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                path = (key, i)
                if not isinstance(item, dict):
                    self.error(path, f"a {what} must be a mapping with name and type, not "
                               f"{kind_of(item)}")  # fmt: skip
                    continue
                name = self.text(item, "name", path, what, required=True)
                type_ = self.text(item, "type", path, what, required=True)
                config = self.mapping(item, "config", path, what) or {}
                self.extra(item, ("name", "type", "config"), path, what)
                if name is None or type_ is None:
                    continue
                if name in out:
                    self.error((*path, "name"), f"duplicate {what} name {name!r}")
                    continue
                out[name] = cls(name, type_, config, path)
        return out

