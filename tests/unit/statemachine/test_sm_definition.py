"""Reading definitions and hooks from the Go project's YAML."""

from __future__ import annotations

import pytest
from smkit import FIXTURES, SIMPLE

from treadle.config import load_config
from treadle.statemachine import (
    DefinitionError,
    HookSpec,
    parse_definition,
    parse_workflow_section,
    workflow_sections,
)


def test_go_example_definitions_and_hooks() -> None:
    config = load_config(str(FIXTURES / "order_workflow.yaml"))
    [section] = workflow_sections(config.workflows)
    assert section.engine == "order-processor"
    [order] = section.definitions
    assert order.name == "order-workflow" and order.initial_state == "new"
    assert order.description == "E-commerce order processing workflow"
    assert order.states["invalid"].is_final and order.states["invalid"].is_error
    assert order.states["payment_failed"].is_error and not order.states["payment_failed"].is_final
    assert order.states["new"].description == "Order has been created but not validated"
    fulfill = order.transitions["fulfill"]
    assert (fulfill.from_state, fulfill.to_state, fulfill.auto) == ("paid",
                                                                   "fulfillment_pending", True)
    assert order.events_from("new") == ["submit_order", "cancel"]
    assert [t.name for t in order.auto_transitions("paid")] == ["fulfill"]
    assert order.warnings == ()
    assert section.hooks[1] == HookSpec("order-workflow", ("process_payment", "retry_payment"),
                                        (), (), "payment-processing-handler")
    assert section.hooks[2].to_states[0] == "validated"


def test_raw_workflows_mapping_is_accepted_too() -> None:
    sections = workflow_sections({"statemachine": {"engine": "e", "definitions": [SIMPLE]},
                                  "http": {"routes": []}})
    assert [s.engine for s in sections] == ["e"]
    assert sections[0].definitions[0].name == "door"


def test_short_forms() -> None:
    d = parse_definition({
        "name": "t", "initial": "a",
        "states": ["a", {"name": "b", "final": True, "error": "true"}],
        "transitions": [{"event": "go", "from": ["a"], "to": "b", "auto": True,
                         "condition": "{{ .ok }}"}],
    })
    assert d.states["b"].is_final and d.states["b"].is_error
    go = d.transitions["go"]
    assert (go.from_states, go.to_state, go.auto, go.condition) == (("a",), "b", True,
                                                                    "{{ .ok }}")


def test_to_json_is_the_go_shape() -> None:
    d = parse_definition(SIMPLE)
    out = d.to_json()
    assert out["initialState"] == "closed"
    assert out["states"]["broken"] == {"description": "", "isFinal": True, "isError": True}
    assert out["transitions"]["open"] == {"fromState": "closed", "toState": "open",
                                          "autoTransform": False}
    assert out["transitions"]["smash"]["fromState"] == ["closed", "open", "locked"]
    assert parse_definition(out).transitions == d.transitions


def test_undeclared_states_are_warnings_as_in_go() -> None:
    d = parse_definition({"name": "t", "initialState": "a", "states": {"a": {}},
                          "transitions": {"go": {"fromState": "a", "toState": "zz"}}})
    assert d.warnings == ("state machine 't': transition 'go' uses undeclared state 'zz'",)


@pytest.mark.parametrize(("raw", "message"), [
    ({"initialState": "a", "states": {"a": {}}}, "'name' is required"),
    ({"name": "t", "states": {"a": {}}}, "'initialState' is required"),
    ({"name": "t", "initialState": "a"}, "must have at least one state"),
    ({"name": "t", "initialState": "x", "states": {"a": {}}},
     "initial state 'x' not found in states"),
    ({"name": "t", "initialState": "a", "states": {"a": {}},
      "transitions": {"go": {"toState": "a"}}}, "'fromState' is required"),
    ({"name": "t", "initialState": "a", "states": {"a": {}},
      "transitions": {"go": {"fromState": "a"}}}, "'toState' is required"),
    ({"name": "t", "initialState": "a", "states": {"a": {"isFinal": "maybe"}}},
     "'isFinal' must be true or false"),
    ({"name": "t", "initialState": "a", "states": {"a": {}},
      "transitions": [{"name": "x", "fromState": "a", "toState": "a"},
                      {"name": "x", "fromState": "a", "toState": "a"}]},
     "duplicate transition 'x'"),
])
def test_definition_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        parse_definition(raw)


def test_section_errors() -> None:
    with pytest.raises(DefinitionError, match="'engine' is required"):
        parse_workflow_section({"definitions": []})
    with pytest.raises(DefinitionError, match="'definitions' must be a list"):
        parse_workflow_section({"engine": "e"})
    with pytest.raises(DefinitionError, match="duplicate state machine definition 'door'"):
        parse_workflow_section({"engine": "e", "definitions": [SIMPLE, SIMPLE]})
    with pytest.raises(DefinitionError, match="set 'handler' or 'pipeline', not both"):
        parse_workflow_section({"engine": "e", "definitions": [],
                                "hooks": [{"handler": "h", "pipeline": "p"}]})
