"""`StateMachineEngine`: definitions, persisted instances and safe transitions.

```python
from treadle.statemachine import StateMachineEngine

sm = StateMachineEngine("order-processor", store="sqlite:///orders.db")
sm.define({"name": "order", "initialState": "new",
           "states": {"new": {}, "paid": {}, "done": {"isFinal": True}},
           "transitions": {"pay": {"fromState": "new", "toState": "paid"},
                           "close": {"fromState": "paid", "toState": "done",
                                     "autoTransform": True}}})
order = await sm.create_instance("order", "o-1", {"total": 40})
result = await sm.transition("o-1", "pay", {"paid_by": "ann"})
assert result.instance.current_state == "done"        # `close` fired by itself
```

A transition reads the instance, checks the event against the definition, runs the matching
hooks, then commits with an optimistic version check: the store writes the new state and the
history entry only if nobody else committed since the read. Two concurrent transitions of one
instance: exactly one wins; the other re-reads and tries again up to `conflict_retries` times
(re-checking the definition and re-running the hooks: write hooks to be idempotent), then
raises `TransitionConflictError`. A hook that raises aborts the transition (`HookError`) and
nothing is persisted. After a commit, listeners are told and auto transitions out of the new
state fire one after the other (in definition order, the first whose `condition` holds),
within the same call, until none applies or the instance is completed.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from treadle.errors import NotSerializableError
from treadle.statemachine.definition import (
    Definition,
    HookSpec,
    Transition,
    WorkflowSection,
    parse_definition,
    parse_workflow_section,
)
from treadle.statemachine.errors import (
    DefinitionError,
    InstanceNotFoundError,
    InvalidTransitionError,
    StateMachineError,
    TransitionConflictError,
)
from treadle.statemachine.hooks import (
    Hook,
    HookFunction,
    PipelineRunner,
    TransitionEvent,
    _maybe_await,
    run_hook,
)
from treadle.statemachine.store import (
    HistoryEntry,
    Instance,
    InstanceStore,
    open_instance_store,
)

log = logging.getLogger("treadle.statemachine")

Listener = Callable[[TransitionEvent], Any]
"""Told of every committed transition (sync or async); its errors are logged, not raised."""

ERROR_STATE_MESSAGE = "Workflow ended in error state"


def _require_json(data: Mapping[str, Any], what: str) -> None:
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NotSerializableError(f"{what} must be JSON: {exc}") from exc


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """The outcome of `transition`: the instance after it (and after any auto transitions)."""

    instance: Instance
    transition: str
    from_state: str
    to_state: str
    auto_transitions: tuple[str, ...] = ()
    """Auto transitions that fired after it, in order."""
    auto_error: str = ""
    """Why an auto transition did not happen (its hook failed, ...); the requested transition
    is committed regardless."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "instanceId": self.instance.id,
            "transition": self.transition,
            "fromState": self.from_state,
            "toState": self.to_state,
            "currentState": self.instance.current_state,
            "autoTransitions": list(self.auto_transitions),
            "success": True,
            "instance": self.instance.to_json(),
        }
        if self.auto_error:
            out["autoError"] = self.auto_error
        return out


class StateMachineEngine:
    """State machine definitions and their instances, persisted in an `InstanceStore`.

    `store` is a store or a URL (`memory://` default, `sqlite:///…`, `postgresql://…`);
    the engine's `name` is its namespace there. `modules` are the application modules hooks
    name as `handler`; `pipeline_runner` runs hooks that name a `pipeline`.
    """

    def __init__(
        self,
        name: str = "statemachine.engine",
        *,
        store: InstanceStore | str = "memory://",
        modules: Mapping[str, Any] | None = None,
        pipeline_runner: PipelineRunner | None = None,
        conflict_retries: int = 0,
        max_auto_transitions: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if conflict_retries < 0 or max_auto_transitions < 0:
            raise ValueError("conflict_retries and max_auto_transitions must be >= 0")
        self.name = name
        self.store: InstanceStore = (open_instance_store(store, namespace=name)
                                     if isinstance(store, str) else store)  # fmt: skip
        self.modules: Mapping[str, Any] = modules if modules is not None else {}
        self.pipeline_runner = pipeline_runner
        self.conflict_retries = conflict_retries
        self.max_auto_transitions = max_auto_transitions
        self.clock = clock
        self.definitions: dict[str, Definition] = {}
        self.hooks: list[Hook] = []
        self.listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"<StateMachineEngine {self.name} definitions={sorted(self.definitions)}>"

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> StateMachineEngine:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- definitions and hooks ------------------------------------------------------------------

    def define(self, definition: Definition | Mapping[str, Any]) -> Definition:
        """Register a definition (a `Definition` or its Go YAML mapping); replaces one of the
        same name."""
        parsed = definition if isinstance(definition, Definition) else \
            parse_definition(definition)
        for warning in parsed.warnings:
            log.warning("%s", warning)
        self.definitions[parsed.name] = parsed
        return parsed

    def definition(self, name: str) -> Definition:
        found = self.definitions.get(name)
        if found is None:
            known = ", ".join(sorted(self.definitions)) or "none"
            raise DefinitionError(f"workflow type {name!r} not found (definitions: {known})")
        return found

    def add_hook(
        self,
        hook: HookSpec | HookFunction,
        *,
        workflow_type: str = "",
        transitions: tuple[str, ...] = (),
        from_states: tuple[str, ...] = (),
        to_states: tuple[str, ...] = (),
    ) -> None:
        """Run `hook` before matching transitions commit (empty filters match all).

        `hook` is a `HookSpec` (from YAML: a handler module or a pipeline; one equal to a
        registered one is ignored) or a callable `hook(event)`, sync or async, for which the
        keyword filters apply.
        """
        if isinstance(hook, HookSpec):
            if Hook(hook) not in self.hooks:  # configuring twice adds each YAML hook once
                self.hooks.append(Hook(hook))
        else:
            spec = HookSpec(workflow_type, tuple(transitions), tuple(from_states),
                            tuple(to_states))  # fmt: skip
            self.hooks.append(Hook(spec, hook))

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(event)` after every committed transition (Go's transition listener).
        Its errors are logged and never undo the transition."""
        self.listeners.append(listener)

    def configure(self, section: WorkflowSection | Mapping[str, Any]) -> None:
        """Apply a `workflows: statemachine:` block: its definitions and hooks."""
        parsed = section if isinstance(section, WorkflowSection) else \
            parse_workflow_section(section)
        for definition in parsed.definitions:
            self.define(definition)
        for hook in parsed.hooks:
            self.add_hook(hook)

    # -- instances ------------------------------------------------------------------------------

    async def create_instance(
        self, workflow_type: str, instance_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Instance:
        """A new instance of `workflow_type` in its initial state (`InstanceExistsError` if
        `instance_id` is taken; a UUID when it is None)."""
        definition = self.definition(workflow_type)
        _require_json(data or {}, "instance data")
        now = self.clock()
        state = definition.initial_state
        instance = Instance(
            id=instance_id or str(uuid.uuid4()), workflow_type=workflow_type,
            current_state=state, data=dict(data or {}), version=1, created_at=now,
            updated_at=now,
        )
        self._mark_final(definition, instance)
        entry = HistoryEntry(instance.id, 1, "", "", state, dict(instance.data), now)
        await self.store.insert(instance, entry)
        return instance

    async def find(self, instance_id: str) -> Instance | None:
        """The instance, or None."""
        return await self.store.get(instance_id)

    async def get(self, instance_id: str) -> Instance:
        """The instance; `InstanceNotFoundError` if there is none."""
        found = await self.store.get(instance_id)
        if found is None:
            raise InstanceNotFoundError(f"workflow instance with ID {instance_id!r} not found")
        return found

    async def list(self, workflow_type: str | None = None, state: str | None = None,
                   limit: int | None = None) -> builtins.list[Instance]:  # fmt: skip
        """Instances, oldest first, optionally of one definition and/or in one state."""
        return await self.store.list(workflow_type=workflow_type, state=state, limit=limit)

    async def history(self, instance_id: str) -> builtins.list[HistoryEntry]:
        """The committed changes of an instance, oldest first (its creation first)."""
        await self.get(instance_id)
        return await self.store.history(instance_id)

    async def events(self, instance_id: str) -> builtins.list[str]:
        """The events that may fire in the instance's current state."""
        instance = await self.get(instance_id)
        return self.definition(instance.workflow_type).events_from(instance.current_state)

    async def delete(self, instance_id: str) -> bool:
        return await self.store.delete(instance_id)

    # -- transitions ----------------------------------------------------------------------------

    async def transition(self, instance_id: str, event: str,
                         data: Mapping[str, Any] | None = None) -> TransitionResult:  # fmt: skip
        """Fire `event` (a transition name) on the instance, merging `data` into its data.

        Raises `InstanceNotFoundError`, `InvalidTransitionError` (unknown event, wrong state,
        condition false), `HookError` (nothing persisted), `TransitionConflictError`, or
        `NotSerializableError` when `data` is not JSON.
        """
        _require_json(data or {}, f"the data of event {event!r}")
        before, after = await self._apply(instance_id, event, dict(data or {}), auto=False)
        autos: list[str] = []
        auto_error = ""
        current = after
        while not current.completed:
            definition = self.definitions.get(current.workflow_type)
            nxt = None if definition is None else self._next_auto(definition, current)
            if nxt is None:
                break
            if len(autos) >= self.max_auto_transitions:
                auto_error = (f"auto transitions stopped after {self.max_auto_transitions} "
                              "(a cycle of autoTransform transitions?)")  # fmt: skip
                break
            try:
                _, current = await self._apply(instance_id, nxt.name, dict(current.data),
                                               auto=True)  # fmt: skip
            except StateMachineError as exc:
                auto_error = f"auto transition {nxt.name!r}: {exc}"
                log.warning("%s", auto_error)
                break
            autos.append(nxt.name)
        return TransitionResult(current, event, before.current_state, after.current_state,
                                tuple(autos), auto_error)  # fmt: skip

    def _next_auto(self, definition: Definition, instance: Instance) -> Transition | None:
        for candidate in definition.auto_transitions(instance.current_state):
            if self._condition_holds(candidate, instance, dict(instance.data)):
                return candidate
        return None

    async def _apply(self, instance_id: str, event: str, data: dict[str, Any],
                     *, auto: bool) -> tuple[Instance, Instance]:  # fmt: skip
        """One transition with its hooks and the optimistic commit: (before, after)."""
        attempt = 0
        while True:
            instance = await self.get(instance_id)
            definition = self.definition(instance.workflow_type)
            transition = definition.transition(event)
            if transition is None:
                raise InvalidTransitionError(f"transition {event!r} not found in workflow "
                                             f"{instance.workflow_type!r}")  # fmt: skip
            if instance.current_state not in transition.from_states:
                expected = "' or '".join(transition.from_states)
                raise InvalidTransitionError(
                    f"cannot trigger transition {event!r} from state "
                    f"{instance.current_state!r}, expected '{expected}'")
            if not self._condition_holds(transition, instance, data):
                raise InvalidTransitionError(f"transition {event!r}: condition "
                                             f"{transition.condition!r} is false")  # fmt: skip
            now = self.clock()
            evt = TransitionEvent(instance.id, instance.workflow_type, event,
                                  instance.current_state, transition.to_state, dict(data),
                                  dict(instance.data), now, auto)  # fmt: skip
            for hook in self.hooks:
                if hook.spec.matches(evt.workflow_type, event, evt.from_state, evt.to_state):
                    await run_hook(hook, evt, self.modules, self.pipeline_runner)
            updated = instance.copy()
            updated.previous_state = instance.current_state
            updated.current_state = transition.to_state
            updated.updated_at = now
            updated.data.update(data)
            updated.version = instance.version + 1
            updated.completed, updated.error = False, ""
            self._mark_final(definition, updated)
            entry = HistoryEntry(instance.id, updated.version, event, instance.current_state,
                                 transition.to_state, dict(data), now, auto)  # fmt: skip
            if await self.store.update(updated, instance.version, entry):
                await self._notify(evt)
                return instance, updated
            attempt += 1
            if attempt > self.conflict_retries:
                raise TransitionConflictError(
                    f"transition {event!r} of instance {instance_id!r} lost a race: another "
                    f"writer committed after version {instance.version}"
                    + (f" ({attempt} attempts)" if attempt > 1 else ""))

    def _condition_holds(self, transition: Transition, instance: Instance,
                         data: Mapping[str, Any]) -> bool:  # fmt: skip
        if not transition.condition:
            return True
        from treadle.config.templates import evaluate, truthy

        merged = {**instance.data, **data}
        root = {**merged, "data": merged, "event": dict(data), "instance": instance.to_json(),
                "state": instance.current_state, "transition": transition.name}  # fmt: skip
        return truthy(evaluate(transition.condition, root))

    @staticmethod
    def _mark_final(definition: Definition, instance: Instance) -> None:
        state = definition.states.get(instance.current_state)
        if state is not None and state.is_final:
            instance.completed = True
            if state.is_error:
                instance.error = ERROR_STATE_MESSAGE

    async def _notify(self, event: TransitionEvent) -> None:
        for listener in self.listeners:
            try:
                await _maybe_await(listener(event))
            except Exception:
                log.exception("state machine listener %r failed", listener)


__all__ = ["ERROR_STATE_MESSAGE", "Listener", "StateMachineEngine", "TransitionResult"]
