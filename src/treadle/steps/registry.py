"""The step registry: every step type's config schema, documentation and implementation.

```python
from treadle.steps.registry import default_registry

spec = default_registry.get("step.set")     # StepType: schema, doc, impl, kind
schemas = default_registry.all_schemas()   # {"step.set": {...JSON Schema...}, ...}
```

An implementation is `async def impl(config: dict, ctx: PipelineContext) -> dict`: `config` is the
step's `config:` with its templates rendered (except the keys listed in `raw_keys`), `ctx` gives
the pipeline data, the application's modules and, for `kind="flow"` steps, the durable Context.

Two kinds of steps:

* `task` (most): runs as one journaled step. Its body must not make durable calls (sleep,
  signals, children); its output is checkpointed once it returns.
* `flow`: runs inside the workflow itself and is built from durable calls (`ctx.sleep`,
  `ctx.wait_for_signal`, `ctx.run_child`, journaled sub-steps). Only at the top level of a
  pipeline, never inside step.foreach / step.parallel.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from treadle.errors import ConfigError, require

if TYPE_CHECKING:
    from treadle.steps._context import PipelineContext

StepImpl = Callable[[dict[str, Any], "PipelineContext"], Awaitable[dict[str, Any]]]
"""`async def impl(config, ctx) -> output`."""

Check = Callable[[dict[str, Any], "Checker"], None]
"""Build-time check of a step's raw config (compile expressions, check references)."""

Kind = Literal["task", "flow"]

FAMILIES = ("data", "http", "webhook", "db", "cache", "messaging", "flow", "statemachine")
"""Modules of `treadle.steps` that register the built-in step types, in documentation order."""


class Checker:
    """What a build-time `check` may use: the registry and a way to report problems."""

    def __init__(self, registry: StepRegistry, step_names: frozenset[str] = frozenset()) -> None:
        self.registry = registry
        self.step_names = step_names

    def fail(self, message: str, key: str | None = None) -> None:
        """Reject the config; `key` names the offending config key (`routes.ok`)."""
        raise StepConfigError(message, key)


class StepConfigError(ValueError):
    """A step's config is invalid; the pipeline builder turns it into a located ConfigError."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


@dataclass(frozen=True, slots=True)
class StepType:
    """One registered step type."""

    type: str
    schema: dict[str, Any]
    doc: str
    impl: StepImpl
    kind: Kind = "task"
    raw_keys: frozenset[str] = frozenset()
    """Config keys passed to `impl` unrendered (sub-step definitions, dotted paths)."""
    outputs: dict[str, str] = field(default_factory=dict)
    """Output keys and what they hold (for the reference)."""
    route: Callable[[dict[str, Any]], str | None] | None = None
    """The step to jump to, from the step's output (step.conditional)."""
    stops: Callable[[dict[str, Any]], bool] | None = None
    """Whether the pipeline ends after this step, from its output (step.json_response)."""
    check: Check | None = None
    example: str = ""
    """A YAML example for the reference."""
    pure: bool = False
    """No side effects (its output comes from its config and the pipeline data): its journal
    events ride with the execution's next write instead of a commit of their own."""


class StepRegistry:
    """Step types by name. `default_registry` holds the built-in ones."""

    def __init__(self, *, parent: StepRegistry | None = None,
                 load_builtins: bool = False) -> None:  # fmt: skip
        """A registry; with `parent`, types not registered here are looked up there."""
        self._types: dict[str, StepType] = {}
        self._parent = parent
        self._builtins_loaded = not load_builtins
        self.substitutes: dict[str, StepType] = {}
        """Stand-ins for sub-steps (inside step.foreach, step.parallel,
        step.retry_with_backoff) by step name or step type: `treadle test` mocks."""

    def register(
        self,
        type: str,
        *,
        schema: dict[str, Any],
        doc: str,
        kind: Kind = "task",
        raw_keys: tuple[str, ...] = (),
        outputs: Mapping[str, str] | None = None,
        route: Callable[[dict[str, Any]], str | None] | None = None,
        stops: Callable[[dict[str, Any]], bool] | None = None,
        check: Check | None = None,
        example: str = "",
        pure: bool = False,
    ) -> Callable[[StepImpl], StepImpl]:
        """Decorator: register `impl` as the implementation of step type `type`."""

        def decorate(impl: StepImpl) -> StepImpl:
            self.add(StepType(type, schema, doc.strip(), impl, kind, frozenset(raw_keys),
                              dict(outputs or {}), route, stops, check, example.strip(),
                              pure and kind == "task"))
            return impl

        return decorate

    def add(self, spec: StepType) -> None:
        if spec.type in self._types:
            raise ValueError(f"step type {spec.type!r} is already registered")
        self._types[spec.type] = spec

    def _load(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True
            for family in FAMILIES:
                importlib.import_module(f"treadle.steps.{family}")

    def _all(self) -> dict[str, StepType]:
        self._load()
        if self._parent is None:
            return self._types
        return {**self._parent._all(), **self._types}

    def get(self, type: str) -> StepType:
        """The step type `type`; ConfigError listing the known types if there is none."""
        spec = self.find(type)
        if spec is None:
            known = ", ".join(self.types())
            raise ConfigError(f"unknown step type {type!r}; known step types: {known}")
        return spec

    def substep(self, name: str, type: str) -> StepType:
        """What runs a sub-step called `name` of type `type`: its substitute by name, else by
        type, else the type itself."""
        if self.substitutes:
            found = self.substitutes.get(name) or self.substitutes.get(type)
            if found is not None:
                return found
        return self.get(type)

    def find(self, type: str) -> StepType | None:
        self._load()
        spec = self._types.get(type)
        if spec is None and self._parent is not None:
            return self._parent.find(type)
        return spec

    def types(self) -> list[str]:
        return sorted(self._all())

    def all_schemas(self) -> dict[str, dict[str, Any]]:
        """`{type: JSON Schema of its config}` for the config validator."""
        types = self._all()
        return {name: types[name].schema for name in sorted(types)}

    def __iter__(self) -> Iterator[StepType]:
        types = self._all()
        return iter([types[name] for name in sorted(types)])

    def __contains__(self, type: object) -> bool:
        return isinstance(type, str) and self.find(type) is not None


@lru_cache(maxsize=512)
def _schema_validator(schema_json: str) -> Any:
    jsonschema = require("jsonschema", "config")
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def schema_problems(
    spec: StepType, config: dict[str, Any]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Violations of the step type's config schema, except unknown keys (the Go project ignores
    those; the config validator reports them as warnings)."""
    validator = _schema_validator(json.dumps(spec.schema, sort_keys=True))
    out: list[tuple[tuple[str | int, ...], str]] = []
    for err in validator.iter_errors(config):
        if err.validator == "additionalProperties" and not err.absolute_path:
            continue
        path = tuple(err.absolute_path)
        if err.validator == "required":
            out.append((path, err.message))
        elif isinstance(err.instance, str) and ("{{" in err.instance or "${" in err.instance):
            continue  # a template: its type is known only when rendered
        else:
            out.append((path, err.message))
    return out


default_registry = StepRegistry(load_builtins=True)
"""The built-in step types (loaded on first use)."""

register = default_registry.register


def all_schemas() -> dict[str, dict[str, Any]]:
    """`{type: config schema}` of the built-in step types."""
    return default_registry.all_schemas()


__all__ = [
    "Checker",
    "StepConfigError",
    "StepImpl",
    "StepRegistry",
    "StepType",
    "all_schemas",
    "default_registry",
    "register",
    "schema_problems",
]
