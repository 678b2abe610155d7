"""The pipeline interpreter: the workflow function that runs a pipeline's steps in order.

It runs inside the durable core like any `@workflow`: each configured step is one journaled
step call (named after the step, with its type), so a resumed pipeline re-runs this loop and
gets every completed step's recorded output back instead of running it again. Decisions that
are not step outputs (a guard that skipped a step, a conditional jump, a saga) are journaled
as positional notes and replayed from the journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from treadle.errors import NonDeterminismError, TemplateError
from treadle.pipelines._plan import PipelinePlan, StepPlan
from treadle.pipelines.errors import PipelineStepError
from treadle.steps._context import PipelineContext, Runtime
from treadle.steps._runtime import StepInput

if TYPE_CHECKING:
    from treadle.engine import Context
    from treadle.engine.run import Run

SKIPPED = "step.skipped"
Done = tuple[int, StepPlan, dict[str, Any]]
"""A completed step with a `compensate:` block: (journal position, plan, output)."""
ROUTED = "conditional.routed"


def _fatal(run: Run, exc: BaseException) -> bool:
    """Errors no strategy may absorb: the code no longer matches its journal, or I/O died."""
    return isinstance(exc, NonDeterminismError) or run.fatal is not None


def _constant(value: dict[str, Any]) -> Any:
    async def impl(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
        return value

    return impl


class Interpreter:
    """Runs one pipeline plan; `execute` is the workflow function."""

    def __init__(self, plan: PipelinePlan, modules: Mapping[str, Any], runtime: Runtime) -> None:
        self.plan = plan
        self.modules = modules
        self.runtime = runtime

    async def execute(self, ctx: Context, trigger: Any = None, meta: Any = None) -> Any:
        """Run the pipeline on `trigger` (its trigger data); return its output."""
        plan = self.plan
        if trigger is None:
            trigger = {}
        if not isinstance(trigger, dict):
            raise TypeError(f"pipeline {plan.name!r} needs a mapping as input, "
                            f"got {type(trigger).__name__}")  # fmt: skip
        run: Run = ctx._run
        md: dict[str, Any] = {"pipeline": plan.name, "execution_id": ctx.execution_id}
        if isinstance(meta, dict):
            md.update(meta)
        pc = PipelineContext(trigger=trigger, meta=md, modules=self.modules,
                             strict=plan.strict, pipeline=plan.name, durable=ctx,
                             runtime=self.runtime)  # fmt: skip
        saga: list[Done] = []
        steps, i = plan.steps, 0
        while i < len(steps):
            step = steps[i]
            pc.step = step.name
            guard_error: Exception | None = None
            if step.guarded:
                try:
                    if self._skipped(run, step, pc):
                        i += 1
                        continue
                except TemplateError as exc:
                    guard_error = exc
            pos = run._pos
            try:
                output = await self._run(run, step, pc, guard_error)
            except Exception as exc:
                if _fatal(run, exc):
                    raise
                strategy = step.on_error or plan.on_error
                if strategy == "skip":
                    pc.merge(step.name, {"_error": str(exc), "_skipped": True})
                    run.note(SKIPPED, step.name, {"reason": "on_error: skip", "error": str(exc)})
                    i += 1
                    continue
                if strategy == "continue":
                    pc.steps[step.name] = {"_error": str(exc)}
                    i += 1
                    continue
                failed = None
                if strategy == "compensate":
                    failed = await self._compensate(run, pc, saga)
                raise self._failure(step, exc, failed) from exc
            pc.merge(step.name, output)
            spec = step.spec
            if step.compensate is not None:
                saga.append((pos, step, output))
            if spec.stops is not None and spec.stops(output):
                break
            if spec.route is not None and (target := spec.route(output)) is not None:
                routed = run.note(ROUTED, step.name, {"route": target})
                nxt = plan.index.get(str(routed.get("route")))
                if nxt is None:
                    raise PipelineStepError(f"step {step.name!r} routed to unknown step "
                                            f"{routed.get('route')!r}", step.name)  # fmt: skip
                i = nxt
                continue
            i += 1
        result = pc.current.get("_pipeline_output")
        return pc.current if result is None else result

    # -- one step -----------------------------------------------------------------------------

    def _skipped(self, run: Run, step: StepPlan, pc: PipelineContext) -> bool:
        """Whether a guard skips `step` (journaled once: replay reads the decision back)."""
        rec = run.replay.get(run._pos)
        if rec is not None:
            if rec.kind == "note" and rec.name == step.name:
                run.note(SKIPPED, step.name, {})
                return True
            return False
        from treadle.config.templates import evaluate, truthy

        data = pc.data()
        if step.skip_if is not None:
            if not truthy(evaluate(step.skip_if, data, strict=pc.strict)):
                return False
            data_ = {"reason": "skip_if", "condition": step.skip_if}
        else:
            assert step.if_ is not None
            if truthy(evaluate(step.if_, data, strict=pc.strict)):
                return False
            data_ = {"reason": "if", "condition": step.if_}
        run.note(SKIPPED, step.name, data_)
        return True

    def _render(self, step: StepPlan, pc: PipelineContext) -> dict[str, Any]:
        if not step.templated:
            return step.config
        from treadle.config.templates import render_value

        data = pc.data()
        raw = step.spec.raw_keys
        return {k: v if k in raw else render_value(v, data, strict=pc.strict)
                for k, v in step.config.items()}  # fmt: skip

    async def _run(self, run: Run, step: StepPlan, pc: PipelineContext,
                   error: Exception | None = None) -> dict[str, Any]:  # fmt: skip
        config = step.config
        if error is None:
            try:
                config = self._render(step, pc)
            except TemplateError as exc:
                error = exc
        if step.spec.kind == "task":
            out: dict[str, Any] = await step.sf(StepInput(config, pc, step.spec.impl, error))
            return out
        # A flow step: run its durable calls here, then journal its outcome as the step.
        output: dict[str, Any] = {}
        if error is None:
            try:
                output = await step.spec.impl(config, pc)
            except Exception as exc:
                if _fatal(run, exc):
                    raise
                error = exc
        recorded: dict[str, Any] = await step.sf(
            StepInput(config, pc, _constant(output), error))
        return recorded

    def _failure(self, step: StepPlan, exc: Exception, failed: list[str] | None
                 ) -> PipelineStepError:  # fmt: skip
        message = f"step {step.name!r} failed: {exc}"
        if failed is not None:
            message += (f" (compensation also failed: {', '.join(failed)})" if failed
                        else " (compensation executed)")  # fmt: skip
        cause = type(exc).__qualname__
        return PipelineStepError(message, step.name, step.error_status, cause)

    # -- saga ---------------------------------------------------------------------------------

    async def _compensate(self, run: Run, pc: PipelineContext, saga: list[Done]) -> list[str]:
        """Undo completed steps (their `compensate:`, newest first), then run the pipeline's
        `compensation:` steps in reverse order. Returns the names of those that failed."""
        undo = list(reversed(saga))
        extra = list(reversed(self.plan.compensation))
        if not undo and not extra:
            return []
        names = [s.compensate.name for _, s, _ in undo if s.compensate is not None]
        names += [c.name for c in extra]
        run.note("saga.compensating", self.plan.name, {"steps": names})
        failed: list[str] = []
        # Compensations may read each undone step's output as `steps.<name>` (Go form) or
        # `steps.<name>.output` (the seed roadmap's form).
        view = {k: {**v, "output": v} for k, v in pc.steps.items()}
        for pos, step, _output in undo:
            comp = step.compensate
            assert comp is not None
            cpc = pc.child(comp.name)
            cpc.steps = view
            try:
                config, error = comp.config, None
                try:
                    config = self._render(comp, cpc)
                except TemplateError as exc:
                    error = exc
                await run.step(run.next_pos(), comp.sf,
                               (StepInput(config, cpc, comp.spec.impl, error),), {},
                               compensates=pos)  # fmt: skip
            except Exception as exc:
                if _fatal(run, exc):
                    raise
                failed.append(comp.name)
        for comp in extra:
            cpc = pc.child(comp.name)
            cpc.steps = view
            try:
                await self._run(run, comp, cpc)
            except Exception as exc:
                if _fatal(run, exc):
                    raise
                failed.append(comp.name)
        run.note("saga.compensated", self.plan.name, {"steps": names, "failed": failed})
        return failed


__all__ = ["Interpreter"]
