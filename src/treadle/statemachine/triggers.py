"""Triggers that name a state machine definition instead of a pipeline.

```yaml
triggers:
  http:
    routes:
      - {path: /api/orders, method: POST, workflow: order-lifecycle, action: validate_order}
  event:
    subscriptions:
      - {topic: order.validated, workflow: fulfillment-lifecycle, action: start_picking}
```

`workflow` names a definition of a `workflows: statemachine:` block and `action` the transition
to fire (Go's `engine:transition` form picks the engine too). The instance is the one whose id
is the trigger data's `instanceId` or `id` (the keys Go's state machine handler reads), else the
same key of its JSON `body` (where HTTP triggers put the request body). An instance that does
not exist yet is created first, in the definition's initial state with the trigger data, so a
trigger can start a lifecycle; without any id a new instance gets a generated one. An empty
`action` only creates the instance.

The Go engine registers its state machine handler for the workflow type `statemachine` only,
so there such triggers fail at run time ("no handler"); Treadle starts them. Each trigger
starts a journaled execution, `statemachine:<definition>`, whose one step creates and/or
transitions the instance and returns Go's result `{instanceId, currentState, transition,
success}`; a refused transition fails that execution (an HTTP trigger answers 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from treadle.engine.decorators import Registry, WorkflowDef, step
from treadle.statemachine.engine import StateMachineEngine

if TYPE_CHECKING:
    from treadle.engine import Context, Engine, Handle

PREFIX = "statemachine:"
ID_KEYS = ("instanceId", "id")


def instance_id(data: Mapping[str, Any]) -> str | None:
    """The instance id a trigger's data names (`instanceId` / `id`, then in `body`), or
    None."""
    body = data.get("body")
    for source in (data, body if isinstance(body, Mapping) else {}):
        for key in ID_KEYS:
            value = source.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


class StateMachineTriggers:
    """The trigger handler (`treadle.triggers.base.WorkflowHandler`) of an application's
    state machine definitions; registers one workflow per definition in `registry`."""

    def __init__(self, engines: Mapping[str, StateMachineEngine], registry: Registry) -> None:
        self.engines = dict(engines)
        self.definitions: dict[str, StateMachineEngine] = {}
        for sm in self.engines.values():
            for name in sm.definitions:
                self.definitions.setdefault(name, sm)
        self.workflows: dict[str, WorkflowDef] = {}
        for name in self.definitions:
            wf = WorkflowDef(name=PREFIX + name, fn=self._workflow(name))
            registry.add(wf)
            self.workflows[name] = wf

    def can_handle(self, workflow: str) -> bool:
        return workflow in self.definitions

    async def start(
        self, engine: Engine, workflow: str, action: str, data: dict[str, Any],
        meta: dict[str, Any] | None, idempotency_key: str | None,
    ) -> Handle:
        args: list[Any] = [action, data] if meta is None else [action, data, meta]
        options: dict[str, Any] = {}
        if idempotency_key is not None:
            options["idempotency_key"] = idempotency_key
        return await engine.start(self.workflows[workflow], *args, **options)

    def _workflow(self, definition: str) -> Any:
        fire = step(name=f"{PREFIX}{definition}")(self._fire)

        async def run(ctx: Context, action: str, data: dict[str, Any],
                      meta: Any = None) -> Any:  # fmt: skip
            return await fire(definition, action, data)

        return run

    async def _fire(self, definition: str, action: str, data: dict[str, Any]) -> dict[str, Any]:
        sm = self.definitions[definition]
        transition = action
        if ":" in action:
            engine_name, transition = action.split(":", 1)
            sm = self.engines.get(engine_name, sm)
        wanted = instance_id(data)
        instance = await sm.find(wanted) if wanted is not None else None
        created = instance is None
        if instance is None:
            instance = await sm.create_instance(definition, wanted, data)
        if not transition:
            return {"instanceId": instance.id, "currentState": instance.current_state,
                    "created": created}  # fmt: skip
        result = await sm.transition(instance.id, transition, data)
        return {"instanceId": instance.id, "currentState": result.instance.current_state,
                "transition": transition, "success": True}  # fmt: skip


__all__ = ["PREFIX", "StateMachineTriggers", "instance_id"]
