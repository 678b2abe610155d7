"""`PipelineContext`: what a step implementation sees of the running pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from treadle.errors import TreadleError

if TYPE_CHECKING:
    from treadle.engine import Context, WorkflowDef
    from treadle.steps.registry import StepRegistry

_MISSING: Any = object()


class ModuleNotFoundStepError(TreadleError):
    """A step names a module the application does not define."""

    retryable = False


class PathNotFoundError(TreadleError, KeyError):
    """A dotted path (`steps.fetch.items`) does not resolve."""

    retryable = False

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "path not found"


class Runtime(Protocol):
    """Services of the pipeline interpreter that some steps need."""

    @property
    def step_types(self) -> StepRegistry: ...

    def workflow(self, pipeline: str) -> WorkflowDef:
        """The workflow running pipeline `pipeline` (for step.workflow_call)."""
        ...


class PipelineContext:
    """The data of a running pipeline, as Go's PipelineContext holds it.

    `trigger` is the trigger data (never changed), `steps` maps each step that ran to its
    output, `current` is the trigger data with every step output merged in (later keys win),
    `meta` is execution metadata (`pipeline`, `execution_id`, the HTTP request, ...).
    Templates see `current`'s keys at the top level plus `steps`, `trigger` and `meta`.
    """

    __slots__ = ("current", "durable", "meta", "modules", "pipeline", "runtime", "step",
                 "steps", "strict", "trigger")  # fmt: skip

    def __init__(
        self,
        *,
        trigger: dict[str, Any],
        current: dict[str, Any] | None = None,
        steps: dict[str, dict[str, Any]] | None = None,
        meta: dict[str, Any] | None = None,
        modules: Mapping[str, Any] | None = None,
        strict: bool = False,
        pipeline: str = "",
        step: str = "",
        durable: Context | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.trigger = trigger
        self.current = dict(trigger) if current is None else current
        self.steps = {} if steps is None else steps
        self.meta = {} if meta is None else meta
        self.modules: Mapping[str, Any] = modules if modules is not None else {}
        self.strict = strict
        self.pipeline = pipeline
        self.step = step
        self.durable = durable
        self.runtime = runtime

    # -- data ---------------------------------------------------------------------------------

    def data(self) -> dict[str, Any]:
        """The root templates see: current keys, then `steps`, `trigger`, `meta`."""
        root = dict(self.current)
        root["steps"] = self.steps
        root["trigger"] = self.trigger
        root["meta"] = self.meta
        return root

    def render(self, value: Any) -> Any:
        """Render every template inside `value` (one whole action keeps its native type)."""
        from treadle.config.templates import render_value

        return render_value(value, self.data(), strict=self.strict)

    def render_text(self, template: str) -> str:
        """Render `template` to text."""
        from treadle.config.templates import render

        return render(template, self.data(), strict=self.strict)

    def lookup(self, path: str, *, default: Any = _MISSING) -> Any:
        """The value at a dotted path (`steps.fetch.items`, `trigger.id`, `total`).

        A path whose first segment is a current key, `steps`, `trigger` or `meta` walks into
        nested maps (and lists, by numeric segment). Without `default`, a missing segment is a
        PathNotFoundError naming it.
        """
        root = self.data()
        if path in root:
            return root[path]
        value: Any = root
        walked: list[str] = []
        for part in path.split("."):
            if part == "":
                continue
            walked.append(part)
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.lstrip("-").isdigit() \
                    and -len(value) <= int(part) < len(value):
                value = value[int(part)]
            else:
                if default is not _MISSING:
                    return default
                raise PathNotFoundError(f"path {path!r}: key {'.'.join(walked)!r} not found")
        return value

    def module(self, name: str, what: str = "module") -> Any:
        """The application module called `name`, or a clear error listing the known ones."""
        found = self.modules.get(name)
        if found is None:
            known = ", ".join(sorted(self.modules)) or "none"
            raise ModuleNotFoundStepError(
                f"step {self.step!r}: {what} {name!r} is not defined in the application "
                f"(modules: {known})"
            )
        return found

    def child(self, step: str, extra: Mapping[str, Any] | None = None) -> PipelineContext:
        """A copy for a sub-step (foreach item, parallel branch): own current and steps."""
        current = dict(self.current)
        if extra:
            current.update(extra)
        return PipelineContext(trigger=self.trigger, current=current, steps=dict(self.steps),
                               meta=self.meta, modules=self.modules, strict=self.strict,
                               pipeline=self.pipeline, step=step, durable=self.durable,
                               runtime=self.runtime)  # fmt: skip

    def merge(self, step: str, output: Mapping[str, Any]) -> None:
        """Record a step's output at `steps.<step>` and merge it into `current`."""
        self.steps[step] = output if type(output) is dict else dict(output)
        self.current.update(output)


__all__ = ["ModuleNotFoundStepError", "PathNotFoundError", "PipelineContext", "Runtime"]
