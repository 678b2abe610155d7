"""`Application`: a loaded YAML config whose pipelines are registered workflows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treadle.engine import Handle, Registry, WorkflowDef
from treadle.pipelines._interpreter import Interpreter
from treadle.pipelines._plan import PipelinePlan, build_plans
from treadle.steps.registry import StepRegistry, default_registry

if TYPE_CHECKING:
    from treadle.config.model import AppConfig, PipelineConfig
    from treadle.engine import Engine

PREFIX = "pipeline:"


def workflow_name(pipeline: str) -> str:
    """The workflow name a pipeline is registered under: `pipeline:<name>`."""
    return f"{PREFIX}{pipeline}"


class Pipeline:
    """One pipeline of an application: its config, plan and registered workflow."""

    def __init__(self, config: PipelineConfig, plan: PipelinePlan, workflow: WorkflowDef) -> None:
        self.name = config.name
        self.config = config
        self.plan = plan
        self.workflow = workflow

    def idempotency_key(self, trigger: Mapping[str, Any] | None) -> str | None:
        """The execution's idempotency key from `idempotency.key_template`, or None.

        The template sees the trigger data at the top level and as `trigger`.
        """
        if self.plan.idempotency is None:
            return None
        from treadle.config.templates import render

        data = dict(trigger or {})
        data.update(trigger=dict(trigger or {}), steps={}, meta={"pipeline": self.name})
        return render(self.plan.idempotency.key_template, data, strict=self.plan.strict)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name} ({len(self.plan.steps)} steps)>"


class Application:
    """A YAML application: its config, its modules by name and its pipelines as workflows.

    Every pipeline is registered in `registry` as the workflow `pipeline:<name>`, so
    `engine.start("pipeline:orders", trigger_data)` runs it and recovery finds it again
    (build the engine with the same registry).
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        registry: Registry,
        modules: Mapping[str, Any] | None = None,
        step_types: StepRegistry | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.modules: dict[str, Any] = dict(modules or {})
        self.step_types = step_types or default_registry
        self.pipelines: dict[str, Pipeline] = {}
        for name, plan in build_plans(config, self.step_types).items():
            interpreter = Interpreter(plan, self.modules, self)
            wf = WorkflowDef(name=workflow_name(name), fn=interpreter.execute,
                             timeout=plan.timeout, dead_letter=plan.dead_letter)  # fmt: skip
            registry.add(wf)
            self.pipelines[name] = Pipeline(config.pipelines[name], plan, wf)

    # -- the Runtime protocol of steps ---------------------------------------------------------

    def workflow(self, pipeline: str) -> WorkflowDef:
        return self.pipeline(pipeline).workflow

    # -- lookups ------------------------------------------------------------------------------

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline `name` (a `pipeline:` prefix is accepted)."""
        key = name.removeprefix(PREFIX)
        found = self.pipelines.get(key)
        if found is None:
            known = ", ".join(sorted(self.pipelines)) or "none"
            raise KeyError(f"no pipeline named {key!r} (pipelines: {known})")
        return found

    # -- running ------------------------------------------------------------------------------

    async def start_pipeline(
        self,
        engine: Engine,
        name: str,
        input: Mapping[str, Any] | None = None,
        *,
        meta: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Handle:
        """Start pipeline `name` on `input` (its trigger data); return at once.

        Applies the pipeline's `idempotency:`: a second start with the same rendered key
        returns the first execution while it is younger than `ttl`.
        """
        pipeline = self.pipeline(name)
        trigger = dict(input or {})
        args: list[Any] = [trigger] if meta is None else [trigger, dict(meta)]
        key = options.pop("idempotency_key", None) or pipeline.idempotency_key(trigger)
        if key is None:
            return await engine.start(pipeline.workflow, *args, **options)
        ttl = pipeline.plan.idempotency.ttl if pipeline.plan.idempotency else None
        for generation in range(1_000):
            # The engine keeps keys forever; a TTL is emulated with a generation suffix: once
            # an execution of key k is older than ttl, k~1 is used, then k~2, ...
            attempt = key if generation == 0 else f"{key}~{generation}"
            handle = await engine.start(pipeline.workflow, *args, idempotency_key=attempt,
                                        **options)  # fmt: skip
            if ttl is None or math.isinf(ttl):
                return handle
            row = await engine.store.get(handle.id)
            if row is None or engine.clock.time() - row.created_at < ttl:
                return handle
        raise RuntimeError(f"idempotency key {key!r} expired too many times")

    async def run_pipeline(
        self,
        engine: Engine,
        name: str,
        input: Mapping[str, Any] | None = None,
        *,
        meta: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[str, Any]:
        """Run pipeline `name` once and wait: `(execution_id, output)`.

        Raises `ExecutionFailedError` (with the execution id) if the pipeline fails.
        """
        handle = await self.start_pipeline(engine, name, input, meta=meta)
        return handle.id, await handle.result(timeout)

    def __repr__(self) -> str:
        return f"<Application {self.config.file} pipelines={sorted(self.pipelines)}>"


def load_application(
    source: str | Path | AppConfig,
    *,
    registry: Registry,
    modules: Mapping[str, Any] | None = None,
    step_types: StepRegistry | None = None,
) -> Application:
    """Load a YAML application (a path, or an `AppConfig` already loaded) and register its
    pipelines in `registry`. Every problem in its pipelines raises one ConfigError listing
    each with file:line [key]."""
    from treadle.config import load_config

    config = source if not isinstance(source, str | Path) else load_config(str(source))
    return Application(config, registry=registry, modules=modules, step_types=step_types)


__all__ = ["PREFIX", "Application", "Pipeline", "load_application", "workflow_name"]
