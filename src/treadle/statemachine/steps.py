"""Pipeline steps on state machines: step.statemachine_transition, step.statemachine_get and
(Treadle) step.statemachine_create.

They find the engine as an application module named by `statemachine` (the Go key; `engine`
is accepted too): a `StateMachineEngine`, or a module object exposing one as `.engine` /
`.state_machine`. Register them with `register_steps(registry)`.

```yaml
- name: approve
  type: step.statemachine_transition
  config:
    statemachine: order-processor
    entity_id: "{{ .order_id }}"
    event: approve
    data: {approved_by: "{{ .user_id }}"}
    fail_on_error: false
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from treadle.statemachine.engine import StateMachineEngine
from treadle.statemachine.errors import InstanceExistsError, StateMachineError

if TYPE_CHECKING:
    from treadle.steps._context import PipelineContext
    from treadle.steps.registry import Checker, StepRegistry

_ENGINE_KEYS = ("statemachine", "engine")
_ID_KEYS = ("entity_id", "instanceId", "instance_id")
_EVENT_KEYS = ("event", "transition")
_TYPE_KEYS = ("workflow_type", "workflowType", "definition")


def resolve_engine(module: Any) -> StateMachineEngine:
    """The `StateMachineEngine` of an application module (itself, `.engine` or
    `.state_machine`); TypeError if it has none."""
    if isinstance(module, StateMachineEngine):
        return module
    for attr in ("engine", "state_machine"):
        inner = getattr(module, attr, None)
        if isinstance(inner, StateMachineEngine):
            return inner
    raise TypeError(f"module {module!r} is not a state machine engine")


def _first(config: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = config.get(key)
        if value is not None and value != "":
            return value
    return None


def _engine(config: Mapping[str, Any], ctx: PipelineContext) -> StateMachineEngine:
    name = str(_first(config, _ENGINE_KEYS))
    module = ctx.module(name, "state machine engine")
    try:
        return resolve_engine(module)
    except TypeError as exc:
        raise StateMachineError(f"step {ctx.step!r}: module {name!r} is not a "
                                "statemachine.engine") from exc  # fmt: skip


def _check(*required: tuple[str, ...]) -> Any:
    def check(config: dict[str, Any], checker: Checker) -> None:
        for keys in required:
            if _first(config, keys) is None:
                checker.fail(f"{keys[0]!r} is required", keys[0])

    return check


def _schema(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False}


_ENGINE_PROPS: dict[str, Any] = {
    "statemachine": {"type": "string", "description": "Name of the statemachine.engine "
                     "module (required, or `engine`)."},
    "engine": {"type": "string", "description": "Same as `statemachine`."},
}  # fmt: skip


def _id_props(required: bool) -> dict[str, Any]:
    need = "required, or `instanceId`" if required else "default: a UUID"
    return {
        "entity_id": {"type": "string", "description": f"Instance id, templates allowed "
                      f"({need})."},
        "instanceId": {"type": "string", "description": "Same as `entity_id`."},
        "instance_id": {"type": "string", "description": "Same as `entity_id`."},
    }  # fmt: skip


TRANSITION_DOC = """
Fires a transition (`event`, the transition's name) on a state machine instance, merging `data`
into its data; hooks run before the commit and auto transitions after it. On failure (unknown
instance or event, wrong state, a hook failed, a lost race) the output is `transition_ok: false`
with `error`, unless `fail_on_error: true` fails the step.
"""

GET_DOC = """
Reads a state machine instance: its current state, previous state, completion and the whole
instance (Go JSON shape). Fails the step when there is no such instance.
"""

CREATE_DOC = """
Creates an instance of a state machine definition in its initial state (Treadle; the Go project
creates instances through its API handler). `entity_id` defaults to a UUID; with
`if_exists: ignore` an existing instance is returned instead of failing.
"""


async def statemachine_transition(config: dict[str, Any],
                                  ctx: PipelineContext) -> dict[str, Any]:  # fmt: skip
    engine = _engine(config, ctx)
    data = config.get("data") or {}
    if not isinstance(data, Mapping):
        raise StateMachineError(f"step {ctx.step!r}: data must be a mapping")
    try:
        result = await engine.transition(str(_first(config, _ID_KEYS)),
                                         str(_first(config, _EVENT_KEYS)), dict(data))
    except StateMachineError as exc:
        if config.get("fail_on_error") is True:
            raise
        return {"transition_ok": False, "error": str(exc)}
    return {"transition_ok": True, "new_state": result.instance.current_state}


async def statemachine_get(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    engine = _engine(config, ctx)
    entity_id = str(_first(config, _ID_KEYS))
    instance = await engine.get(entity_id)
    return {"current_state": instance.current_state, "entity_id": entity_id,
            "previous_state": instance.previous_state, "completed": instance.completed,
            "instance": instance.to_json()}  # fmt: skip


async def statemachine_create(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    engine = _engine(config, ctx)
    entity_id = _first(config, _ID_KEYS)
    data = config.get("data") or {}
    if not isinstance(data, Mapping):
        raise StateMachineError(f"step {ctx.step!r}: data must be a mapping")
    created = True
    try:
        instance = await engine.create_instance(str(_first(config, _TYPE_KEYS)),
                                                None if entity_id is None else str(entity_id),
                                                dict(data))  # fmt: skip
    except InstanceExistsError:
        if config.get("if_exists") != "ignore" or entity_id is None:
            raise
        instance = await engine.get(str(entity_id))
        created = False
    return {"entity_id": instance.id, "current_state": instance.current_state,
            "created": created}  # fmt: skip


STEP_TYPES = ("step.statemachine_transition", "step.statemachine_get",
              "step.statemachine_create")  # fmt: skip


def register_steps(registry: StepRegistry | None = None) -> None:
    """Register the state machine step types in `registry` (default: the built-in registry).
    Types it already knows (itself or through its parent) are left alone, so calling it twice
    is harmless."""
    from treadle.steps.registry import default_registry

    target = default_registry if registry is None else registry
    present = {t for t in STEP_TYPES if target.find(t) is not None}
    data_prop = {"type": "object", "description": "Data merged into the instance data."}
    if "step.statemachine_transition" not in present:
        target.register(
            "step.statemachine_transition", doc=TRANSITION_DOC,
            schema=_schema({**_ENGINE_PROPS, **_id_props(True),
                            "event": {"type": "string", "description": "Transition name "
                                      "(required, or `transition`)."},
                            "transition": {"type": "string", "description": "Same as `event`."},
                            "data": data_prop,
                            "fail_on_error": {"type": "boolean", "default": False,
                                              "description": "Fail the step when the "
                                              "transition fails."}}),
            check=_check(_ENGINE_KEYS, _ID_KEYS, _EVENT_KEYS),
            outputs={"transition_ok": "whether the transition committed",
                     "new_state": "the instance's state afterwards (after auto transitions)",
                     "error": "why it failed (only when transition_ok is false)"},
            example="""
- name: approve
  type: step.statemachine_transition
  config:
    statemachine: order-processor
    entity_id: "{{ .order_id }}"
    event: approve
    data:
      approved_by: "{{ .user_id }}"
""",
        )(statemachine_transition)  # fmt: skip
    if "step.statemachine_get" not in present:
        target.register(
            "step.statemachine_get", doc=GET_DOC,
            schema=_schema({**_ENGINE_PROPS, **_id_props(True)}),
            check=_check(_ENGINE_KEYS, _ID_KEYS),
            outputs={"current_state": "the state", "entity_id": "the instance id",
                     "previous_state": "the state before the last transition",
                     "completed": "whether it is in a final state",
                     "instance": "the whole instance (Go JSON shape)"},
            example="""
- name: status
  type: step.statemachine_get
  config:
    statemachine: order-processor
    entity_id: "{{ .order_id }}"
""",
        )(statemachine_get)  # fmt: skip
    if "step.statemachine_create" not in present:
        target.register(
            "step.statemachine_create", doc=CREATE_DOC,
            schema=_schema({**_ENGINE_PROPS, **_id_props(False),
                            "workflow_type": {"type": "string", "description": "Definition "
                                              "name (required, or `workflowType`)."},
                            "workflowType": {"type": "string",
                                             "description": "Same as `workflow_type`."},
                            "definition": {"type": "string",
                                           "description": "Same as `workflow_type`."},
                            "data": {"type": "object", "description": "Initial data."},
                            "if_exists": {"enum": ["error", "ignore"], "default": "error",
                                          "description": "What an existing id does."}}),
            check=_check(_ENGINE_KEYS, _TYPE_KEYS),
            outputs={"entity_id": "the instance id", "current_state": "its state",
                     "created": "false when it existed already (if_exists: ignore)"},
            example="""
- name: open-order
  type: step.statemachine_create
  config:
    statemachine: order-processor
    workflow_type: order-workflow
    entity_id: "{{ .order_id }}"
""",
        )(statemachine_create)  # fmt: skip


__all__ = [
    "STEP_TYPES",
    "register_steps",
    "resolve_engine",
    "statemachine_create",
    "statemachine_get",
    "statemachine_transition",
]
