"""Wiring state machines into a YAML application.

```python
from treadle.statemachine.app import attach, build_engines

# served by Treadle: the statemachine.engine modules are built with the others, then
engines = attach(app_config, modules, application, engine)   # once, before starting
# stand-alone: engines straight from a config (memory stores unless configured)
engines = build_engines(app_config, modules=modules, default_store="sqlite:///app.db")
```

A `statemachine.engine` module's `config` may set (Treadle keys; the Go keys `description`
and `stateTracker` are accepted and ignored):

| key | default | |
| --- | --- | --- |
| `store` | the caller's default | store URL: `memory://`, `sqlite:///…`, `postgresql://…` |
| `conflict_retries` | `0` | how often a transition that lost a race re-reads and retries |
| `max_auto_transitions` | `32` | bound on chained auto transitions per call |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from treadle.statemachine.definition import workflow_sections
from treadle.statemachine.engine import StateMachineEngine
from treadle.statemachine.errors import DefinitionError
from treadle.statemachine.hooks import PipelineRunner
from treadle.statemachine.steps import resolve_engine
from treadle.statemachine.store import open_instance_store

if TYPE_CHECKING:
    from treadle.config.model import AppConfig
    from treadle.engine import Engine
    from treadle.pipelines import Application

MODULE_TYPE = "statemachine.engine"


def engine_from_module(
    name: str,
    config: Mapping[str, Any] | None = None,
    *,
    modules: Mapping[str, Any] | None = None,
    pipeline_runner: PipelineRunner | None = None,
    default_store: str = "memory://",
) -> StateMachineEngine:
    """The engine of a `statemachine.engine` module called `name` with config `config`."""
    cfg = dict(config or {})

    def count(key: str, default: int) -> int:
        value = cfg.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DefinitionError(f"statemachine.engine {name!r}: {key} must be an integer "
                                  f">= 0, not {value!r}")  # fmt: skip
        return value

    store = cfg.get("store") or default_store
    if not isinstance(store, str):
        raise DefinitionError(f"statemachine.engine {name!r}: store must be a URL")
    return StateMachineEngine(
        name, store=store, modules=modules, pipeline_runner=pipeline_runner,
        conflict_retries=count("conflict_retries", 0),
        max_auto_transitions=count("max_auto_transitions", 32),
    )


def configure_engines(config: AppConfig | Mapping[str, Any], engines: Mapping[str, Any]) -> None:
    """Apply every `workflows: statemachine:` block of `config` (an `AppConfig`, or a raw
    `workflows:` mapping) to the engine it names in `engines` (engines or module objects
    exposing one)."""
    workflows = config.workflows if hasattr(config, "workflows") else config
    for section in workflow_sections(workflows):
        target = engines.get(section.engine)
        if target is None:
            known = ", ".join(sorted(engines)) or "none"
            raise DefinitionError(f"state machine engine {section.engine!r} not found "
                                  f"(statemachine.engine modules: {known})")  # fmt: skip
        resolve_engine(target).configure(section)


def build_engines(
    config: AppConfig,
    *,
    modules: Mapping[str, Any] | None = None,
    pipeline_runner: PipelineRunner | None = None,
    default_store: str = "memory://",
) -> dict[str, StateMachineEngine]:
    """An engine for every `statemachine.engine` module of `config`, configured with the
    application's `workflows: statemachine:` definitions and hooks."""
    engines = {
        m.name: engine_from_module(m.name, m.config, modules=modules,
                                   pipeline_runner=pipeline_runner,
                                   default_store=default_store)
        for m in config.modules if m.type == MODULE_TYPE
    }
    configure_engines(config, engines)
    return engines


def attach(
    config: AppConfig,
    modules: Mapping[str, Any],
    application: Application | None = None,
    engine: Engine | None = None,
    *,
    share_store: bool = True,
) -> dict[str, StateMachineEngine]:
    """Wire the state machine modules of a built application (call once, before starting it).

    Applies `workflows: statemachine:` (definitions and hooks) to the engines it names, lets
    hook handlers resolve against `modules`, runs pipeline hooks on `engine` through
    `application`, and — with `share_store` — keeps the instances of engine modules that set no
    `store` in the execution store's own SQLite or PostgreSQL database (separate tables).
    Returns the engines by module name.
    """
    engines: dict[str, StateMachineEngine] = {}
    for name, module in modules.items():
        try:
            sm = resolve_engine(module)
        except TypeError:
            continue
        engines[name] = sm
        sm.modules = modules
        if application is not None and engine is not None:
            sm.pipeline_runner = pipeline_runner(application, engine)
        url = getattr(getattr(engine, "store", None), "url", None)
        if (share_store and isinstance(url, str) and getattr(module, "explicit_store", True)
                is False and url.split(":", 1)[0] in ("sqlite", "postgres", "postgresql")):
            sm.store = open_instance_store(url, namespace=sm.name)
    configure_engines(config, engines)
    return engines


def pipeline_runner(app: Application, engine: Engine) -> PipelineRunner:
    """A runner for hooks that name a pipeline: runs it on `engine` and waits; a failed
    pipeline raises (which aborts the transition)."""

    async def run(name: str, data: dict[str, Any]) -> Any:
        _, output = await app.run_pipeline(engine, name, data)
        return output

    return run


__all__ = [
    "MODULE_TYPE",
    "attach",
    "build_engines",
    "configure_engines",
    "engine_from_module",
    "pipeline_runner",
]
