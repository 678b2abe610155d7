"""State machine definitions and hooks, read from the Go project's YAML.

```yaml
workflows:
  statemachine:
    engine: order-processor            # the statemachine.engine module
    definitions:
      - name: order-workflow
        initialState: new
        states:
          new: {description: "Created"}
          paid: {}
          cancelled: {isFinal: true}
          failed: {isFinal: true, isError: true}
        transitions:
          pay:    {fromState: new, toState: paid}
          cancel: {fromState: new, toState: cancelled}
          ship:   {fromState: paid, toState: shipped, autoTransform: true}
    hooks:
      - workflowType: order-workflow
        transitions: [pay]
        handler: payment-handler       # a module; or `pipeline: charge-card` (Treadle)
```

A transition's name is the event that fires it. Treadle also reads a few short forms:
`initial` (= `initialState`), `final` / `error` on states, `from` / `to` / `auto` on
transitions, a list of states for `fromState`, transitions as a list of `{name, ...}` (or
`{event, ...}`), and evaluates `condition` (a template or `${ }` expression over the instance
data merged with the event data; the Go project stores it but never evaluates it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from treadle.statemachine.errors import DefinitionError

_BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


@dataclass(frozen=True, slots=True)
class State:
    """One state. A final state completes the instance; a final error state also sets its
    `error` (Go: "Workflow ended in error state")."""

    name: str
    description: str = ""
    is_final: bool = False
    is_error: bool = False
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transition:
    """A transition, fired by the event of the same name, from any of `from_states`."""

    name: str
    from_states: tuple[str, ...]
    to_state: str
    condition: str = ""
    auto: bool = False
    """Go's `autoTransform`: fired by itself as soon as the instance enters a from state."""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def from_state(self) -> str:
        """The first from state (Go has exactly one)."""
        return self.from_states[0]


@dataclass(frozen=True, slots=True)
class Definition:
    """A state machine: states, transitions by name (= event) and the initial state."""

    name: str
    initial_state: str
    states: dict[str, State]
    transitions: dict[str, Transition]
    description: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """Problems the Go project accepts (a transition to an undeclared state, ...)."""

    def transition(self, event: str) -> Transition | None:
        return self.transitions.get(event)

    def auto_transitions(self, state: str) -> list[Transition]:
        """The auto transitions out of `state`, in definition order."""
        return [t for t in self.transitions.values() if t.auto and state in t.from_states]

    def events_from(self, state: str) -> list[str]:
        """The events that may fire in `state`."""
        return [t.name for t in self.transitions.values() if state in t.from_states]

    def is_final(self, state: str) -> bool:
        found = self.states.get(state)
        return found is not None and found.is_final

    def to_json(self) -> dict[str, Any]:
        """The definition in the Go YAML form."""
        return {
            "name": self.name,
            "description": self.description,
            "initialState": self.initial_state,
            "states": {s.name: {"description": s.description, "isFinal": s.is_final,
                                "isError": s.is_error, **({"data": s.data} if s.data else {})}
                       for s in self.states.values()},
            "transitions": {
                t.name: {"fromState": t.from_state if len(t.from_states) == 1
                         else list(t.from_states),
                         "toState": t.to_state, "autoTransform": t.auto,
                         **({"condition": t.condition} if t.condition else {}),
                         **({"data": t.data} if t.data else {})}
                for t in self.transitions.values()
            },
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class HookSpec:
    """A hook of the YAML `hooks:` list: which transitions it sees and what it runs.

    Empty filters match everything. Exactly one of `handler` (a module name) and `pipeline`
    (a pipeline name, Treadle) is set.
    """

    workflow_type: str = ""
    transitions: tuple[str, ...] = ()
    from_states: tuple[str, ...] = ()
    to_states: tuple[str, ...] = ()
    handler: str = ""
    pipeline: str = ""

    @property
    def label(self) -> str:
        return f"pipeline:{self.pipeline}" if self.pipeline else self.handler

    def matches(self, workflow_type: str, event: str, from_state: str, to_state: str) -> bool:
        return (
            (not self.workflow_type or self.workflow_type == workflow_type)
            and (not self.transitions or event in self.transitions)
            and (not self.from_states or from_state in self.from_states)
            and (not self.to_states or to_state in self.to_states)
        )


# -- parsing ------------------------------------------------------------------------------------


def _text(raw: Mapping[str, Any], *keys: str, what: str, required: bool = False) -> str:
    for key in keys:
        value = raw.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise DefinitionError(f"{what}: {key!r} must be a string, not {type(value).__name__}")
    if required:
        raise DefinitionError(f"{what}: {keys[0]!r} is required")
    return ""


def _flag(raw: Mapping[str, Any], *keys: str, what: str) -> bool:
    for key in keys:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
        raise DefinitionError(f"{what}: {key!r} must be true or false, not {value!r}")
    return False


def _mapping(raw: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DefinitionError(f"{what}: {key!r} must be a mapping")
    return dict(value)


def _names(raw: Mapping[str, Any], *keys: str, what: str) -> tuple[str, ...]:
    for key in keys:
        value = raw.get(key)
        if value is None or value == "":
            continue
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise DefinitionError(f"{what}: {key!r} must be a name or a list of names")
        return tuple(items)
    return ()


def _state(name: str, raw: Any, where: str) -> State:
    what = f"{where}: state {name!r}"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise DefinitionError(f"{what} must be a mapping")
    return State(name, _text(raw, "description", what=what),
                 _flag(raw, "isFinal", "final", what=what),
                 _flag(raw, "isError", "error", what=what), _mapping(raw, "data", what))


def _transition(name: str, raw: Any, where: str) -> Transition:
    what = f"{where}: transition {name!r}"
    if not isinstance(raw, Mapping):
        raise DefinitionError(f"{what} must be a mapping with fromState and toState")
    sources = _names(raw, "fromState", "from", what=what)
    if not sources:
        raise DefinitionError(f"{what}: 'fromState' is required")
    return Transition(
        name=name, from_states=sources,
        to_state=_text(raw, "toState", "to", what=what, required=True),
        condition=_text(raw, "condition", what=what),
        auto=_flag(raw, "autoTransform", "auto", what=what),
        data=_mapping(raw, "data", what),
    )


def parse_definition(raw: Mapping[str, Any]) -> Definition:
    """A `Definition` from one entry of `definitions:` (the Go YAML form)."""
    if not isinstance(raw, Mapping):
        raise DefinitionError("a state machine definition must be a mapping")
    name = _text(raw, "name", what="state machine definition", required=True)
    where = f"state machine {name!r}"
    initial = _text(raw, "initialState", "initial", what=where, required=True)
    raw_states = raw.get("states")
    if isinstance(raw_states, list):  # a list of names or of {name, ...}
        items: list[tuple[str, Any]] = []
        for entry in raw_states:
            if isinstance(entry, str):
                items.append((entry, {}))
            elif isinstance(entry, Mapping):
                items.append((_text(entry, "name", what=where, required=True), entry))
            else:
                raise DefinitionError(f"{where}: a state must be a name or a mapping")
        states = {n: _state(n, body, where) for n, body in items}
    elif isinstance(raw_states, Mapping):
        states = {str(n): _state(str(n), body, where) for n, body in raw_states.items()}
    else:
        raise DefinitionError(f"{where} must have at least one state")
    if not states:
        raise DefinitionError(f"{where} must have at least one state")
    if initial not in states:
        raise DefinitionError(f"{where}: initial state {initial!r} not found in states "
                              f"({', '.join(states)})")  # fmt: skip
    transitions: dict[str, Transition] = {}
    raw_transitions = raw.get("transitions") or {}
    if isinstance(raw_transitions, Mapping):
        for tname, body in raw_transitions.items():
            transitions[str(tname)] = _transition(str(tname), body, where)
    elif isinstance(raw_transitions, list):
        for body in raw_transitions:
            if not isinstance(body, Mapping):
                raise DefinitionError(f"{where}: a transition must be a mapping")
            tname = _text(body, "name", "event", what=f"{where}: transition", required=True)
            if tname in transitions:
                raise DefinitionError(f"{where}: duplicate transition {tname!r}")
            transitions[tname] = _transition(tname, body, where)
    else:
        raise DefinitionError(f"{where}: 'transitions' must be a mapping or a list")
    warnings = [f"{where}: transition {t.name!r} uses undeclared state {s!r}"
                for t in transitions.values() for s in (*t.from_states, t.to_state)
                if s not in states]  # fmt: skip
    return Definition(name, initial, states, transitions,
                      description=_text(raw, "description", what=where),
                      data=_mapping(raw, "data", where), warnings=tuple(warnings))


def parse_hook(raw: Mapping[str, Any], index: int = 0) -> HookSpec:
    """A `HookSpec` from one entry of `hooks:`."""
    what = f"state machine hook #{index}"
    if not isinstance(raw, Mapping):
        raise DefinitionError(f"{what} must be a mapping")
    hook = HookSpec(
        workflow_type=_text(raw, "workflowType", "workflow_type", what=what),
        transitions=_names(raw, "transitions", what=what),
        from_states=_names(raw, "fromStates", "from_states", what=what),
        to_states=_names(raw, "toStates", "to_states", what=what),
        handler=_text(raw, "handler", what=what),
        pipeline=_text(raw, "pipeline", what=what),
    )
    if hook.handler and hook.pipeline:
        raise DefinitionError(f"{what}: set 'handler' or 'pipeline', not both")
    return hook


@dataclass(frozen=True, slots=True)
class WorkflowSection:
    """The `workflows: statemachine:` block: the engine it configures, definitions, hooks."""

    engine: str
    definitions: tuple[Definition, ...]
    hooks: tuple[HookSpec, ...]


def parse_workflow_section(raw: Mapping[str, Any]) -> WorkflowSection:
    """Read the `workflows.statemachine` block (Go: `StateMachineWorkflowConfig`)."""
    if not isinstance(raw, Mapping):
        raise DefinitionError("the statemachine workflow must be a mapping")
    engine = _text(raw, "engine", what="statemachine workflow", required=True)
    raw_defs = raw.get("definitions")
    if not isinstance(raw_defs, list):
        raise DefinitionError("statemachine workflow: 'definitions' must be a list")
    definitions = tuple(parse_definition(d) for d in raw_defs)
    seen: set[str] = set()
    for d in definitions:
        if d.name in seen:
            raise DefinitionError(f"duplicate state machine definition {d.name!r}")
        seen.add(d.name)
    raw_hooks = raw.get("hooks") or []
    if not isinstance(raw_hooks, list):
        raise DefinitionError("statemachine workflow: 'hooks' must be a list")
    hooks = tuple(parse_hook(h, i) for i, h in enumerate(raw_hooks))
    return WorkflowSection(engine, definitions, hooks)


def workflow_sections(workflows: Mapping[str, Any] | Iterable[Any]) -> list[WorkflowSection]:
    """Every statemachine block of an application's workflows.

    Accepts `AppConfig.workflows` (name → `WorkflowConfig`, whose `type` is `statemachine`)
    or a raw `workflows:` mapping (`{statemachine: {...}}`).
    """
    out: list[WorkflowSection] = []
    items: Sequence[Any] = (list(workflows.values()) if isinstance(workflows, Mapping)
                            else list(workflows))  # fmt: skip
    if isinstance(workflows, Mapping) and all(isinstance(v, Mapping) for v in items):
        for key, body in workflows.items():  # the raw form: type → config
            if key == "statemachine" or (isinstance(body, Mapping)
                                         and body.get("type") == "statemachine"):
                config = body.get("config", body) if body.get("type") == "statemachine" else body
                out.append(parse_workflow_section(config))
        return out
    for wf in items:
        if getattr(wf, "type", None) == "statemachine":
            out.append(parse_workflow_section(wf.config))
    return out


__all__ = [
    "Definition",
    "HookSpec",
    "State",
    "Transition",
    "WorkflowSection",
    "parse_definition",
    "parse_hook",
    "parse_workflow_section",
    "workflow_sections",
]
