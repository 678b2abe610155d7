"""Transition semantics on the Go example: states, hooks before commit, auto transitions,
final and error states, conditions, history, listeners."""

from __future__ import annotations

import pytest
from smkit import SIMPLE, EventRecorder, Recorder, order_engine

from treadle.statemachine import (
    DefinitionError,
    HookError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidTransitionError,
    StateMachineEngine,
    TransitionEvent,
)


async def test_walk_through_the_go_example_with_hooks() -> None:
    validation, payment, notify = Recorder(), Recorder(), Recorder()
    sm, _ = order_engine(validation=validation, payment=payment, notification=notify)
    order = await sm.create_instance("order-workflow", "order-1", {"total": 40})
    assert (order.current_state, order.version, order.completed) == ("new", 1, False)

    r = await sm.transition("order-1", "submit_order", {"customer": "ann"})
    assert (r.from_state, r.to_state, r.instance.current_state) == ("new", "validating",
                                                                    "validating")
    await sm.transition("order-1", "validation_passed")
    await sm.transition("order-1", "process_payment", {"card": "visa"})
    r = await sm.transition("order-1", "payment_succeeded")
    # `fulfill` (paid → fulfillment_pending) is an autoTransform: it fired by itself.
    assert r.to_state == "paid" and r.auto_transitions == ("fulfill",)
    assert r.instance.current_state == "fulfillment_pending"
    assert r.instance.previous_state == "paid"
    await sm.transition("order-1", "ship")
    done = (await sm.transition("order-1", "deliver")).instance
    assert done.completed and done.error == "" and done.current_state == "delivered"
    assert done.data == {"total": 40, "customer": "ann", "card": "visa"}
    assert done.version == 8

    assert validation.transitions == ["submit_order"]
    assert payment.transitions == ["process_payment"]
    assert notify.transitions == ["validation_passed", "payment_succeeded", "ship", "deliver"]
    assert validation.payloads[0] == {"workflowId": "order-workflow", "instanceId": "order-1",
                                      "transition": "submit_order", "fromState": "new",
                                      "toState": "validating"}
    history = await sm.history("order-1")
    assert [(h.version, h.transition, h.from_state, h.to_state, h.auto) for h in history] == [
        (1, "", "", "new", False),
        (2, "submit_order", "new", "validating", False),
        (3, "validation_passed", "validating", "validated", False),
        (4, "process_payment", "validated", "payment_pending", False),
        (5, "payment_succeeded", "payment_pending", "paid", False),
        (6, "fulfill", "paid", "fulfillment_pending", True),
        (7, "ship", "fulfillment_pending", "shipped", False),
        (8, "deliver", "shipped", "delivered", False),
    ]
    assert history[1].data == {"customer": "ann"}


async def test_failing_hook_aborts_and_persists_nothing() -> None:
    payment = Recorder(fail_on=("process_payment",))
    sm, _ = order_engine(payment=payment)
    await sm.create_instance("order-workflow", "o", {"total": 1})
    await sm.transition("o", "submit_order")
    await sm.transition("o", "validation_passed")
    before = await sm.get("o")
    with pytest.raises(HookError, match="rejected process_payment") as info:
        await sm.transition("o", "process_payment", {"card": "amex"})
    assert info.value.hook == "payment-processing-handler"
    assert info.value.cause == "RuntimeError"
    after = await sm.get("o")
    assert after == before  # state, data, version: untouched
    assert [h.transition for h in await sm.history("o")][-1] == "validation_passed"
    # and the instance can still move on another way
    assert (await sm.transition("o", "cancel_after_validation")).instance.completed


async def test_final_error_state_marks_the_instance() -> None:
    sm, _ = order_engine()
    await sm.create_instance("order-workflow", "o")
    await sm.transition("o", "submit_order")
    bad = (await sm.transition("o", "validation_failed")).instance
    assert bad.completed and bad.error == "Workflow ended in error state"
    assert bad.to_json()["error"] == "Workflow ended in error state"


async def test_invalid_transitions_use_the_go_messages() -> None:
    sm, _ = order_engine()
    await sm.create_instance("order-workflow", "o")
    with pytest.raises(InvalidTransitionError,
                       match="transition 'fly' not found in workflow 'order-workflow'"):
        await sm.transition("o", "fly")
    with pytest.raises(InvalidTransitionError,
                       match="cannot trigger transition 'ship' from state 'new', "
                             "expected 'fulfillment_pending'"):
        await sm.transition("o", "ship")
    with pytest.raises(InstanceNotFoundError, match="'nope' not found"):
        await sm.transition("nope", "ship")
    with pytest.raises(DefinitionError, match="workflow type 'nope' not found"):
        await sm.create_instance("nope")
    with pytest.raises(InstanceExistsError):
        await sm.create_instance("order-workflow", "o")
    assert (await sm.get("o")).version == 1


async def test_python_hooks_filters_and_async_handlers() -> None:
    sm = StateMachineEngine("doors")
    sm.define(SIMPLE)
    seen: list[tuple[str, str, str]] = []
    sm.add_hook(lambda e: seen.append(("all", e.transition, e.to_state)))
    sm.add_hook(lambda e: seen.append(("to-open", e.transition, e.to_state)),
                to_states=("open",))
    sm.add_hook(lambda e: seen.append(("from-locked", e.transition, e.from_state)),
                from_states=("locked",))
    sm.add_hook(lambda e: seen.append(("other-type", e.transition, "")),
                workflow_type="lamp")
    recorder = EventRecorder()
    sm.modules = {"rec": recorder}
    from treadle.statemachine import HookSpec

    sm.add_hook(HookSpec(transitions=("lock",), handler="rec"))
    sm.add_hook(HookSpec(handler="missing-module"))  # skipped, as in Go
    await sm.create_instance("door", "d", {"color": "red"})
    await sm.transition("d", "open")
    await sm.transition("d", "close")
    await sm.transition("d", "lock", {"key": 7})
    await sm.transition("d", "unlock")
    assert seen == [("all", "open", "open"), ("to-open", "open", "open"),
                    ("all", "close", "closed"), ("all", "lock", "locked"),
                    ("all", "unlock", "closed"), ("from-locked", "unlock", "locked")]
    [event] = recorder.events
    assert isinstance(event, TransitionEvent)
    assert (event.transition, event.from_state, event.to_state) == ("lock", "closed", "locked")
    assert event.data == {"key": 7} and event.instance_data == {"color": "red"}
    assert event.to_json()["workflowId"] == "d"


async def test_async_hook_error_aborts() -> None:
    sm = StateMachineEngine("doors")
    sm.define(SIMPLE)

    async def deny(event: TransitionEvent) -> None:
        raise PermissionError("no entry")

    sm.add_hook(deny, transitions=("open",))
    await sm.create_instance("door", "d")
    with pytest.raises(HookError, match="no entry"):
        await sm.transition("d", "open")
    assert (await sm.get("d")).current_state == "closed"


async def test_conditions_gate_transitions_and_choose_auto_transitions() -> None:
    sm = StateMachineEngine("review")
    sm.define({
        "name": "doc", "initialState": "draft",
        "states": {"draft": {}, "review": {}, "approved": {"isFinal": True},
                   "rejected": {"isFinal": True}, "escalated": {}},
        "transitions": {
            "submit": {"fromState": "draft", "toState": "review",
                       "condition": "${ len(title) > 0 }"},
            "auto_reject": {"fromState": "review", "toState": "rejected",
                            "autoTransform": True, "condition": "{{ lt .score 3 }}"},
            "auto_approve": {"fromState": "review", "toState": "approved",
                             "autoTransform": True, "condition": "{{ ge .score 8 }}"},
            "escalate": {"fromState": "review", "toState": "escalated"},
        },
    })
    await sm.create_instance("doc", "a", {"title": "", "score": 9})
    with pytest.raises(InvalidTransitionError, match=r"condition .* is false"):
        await sm.transition("a", "submit")
    r = await sm.transition("a", "submit", {"title": "Hello"})
    assert r.auto_transitions == ("auto_approve",) and r.instance.current_state == "approved"
    await sm.create_instance("doc", "b", {"title": "x", "score": 1})
    assert (await sm.transition("b", "submit")).instance.current_state == "rejected"
    await sm.create_instance("doc", "c", {"title": "x", "score": 5})
    r = await sm.transition("c", "submit")
    assert r.auto_transitions == () and r.instance.current_state == "review"
    assert await sm.events("c") == ["auto_reject", "auto_approve", "escalate"]


async def test_auto_transition_hook_failure_keeps_the_requested_transition() -> None:
    sm, _ = order_engine()

    def warehouse(event: TransitionEvent) -> None:
        raise RuntimeError("warehouse down")

    sm.add_hook(warehouse, transitions=("fulfill",))
    await sm.create_instance("order-workflow", "o")
    for event in ("submit_order", "validation_passed", "process_payment"):
        await sm.transition("o", event)
    r = await sm.transition("o", "payment_succeeded")
    assert r.instance.current_state == "paid" and r.auto_transitions == ()
    assert "warehouse down" in r.auto_error


async def test_auto_transition_cycles_are_bounded() -> None:
    sm = StateMachineEngine("loop", max_auto_transitions=5)
    sm.define({"name": "ping", "initialState": "a", "states": {"a": {}, "b": {}},
               "transitions": {"go": {"fromState": "a", "toState": "b"},
                               "back": {"fromState": "b", "toState": "a", "auto": True},
                               "forth": {"fromState": "a", "toState": "b", "auto": True}}})
    await sm.create_instance("ping", "p")
    r = await sm.transition("p", "go")
    assert len(r.auto_transitions) == 5 and "cycle" in r.auto_error
    assert (await sm.get("p")).version == 7


async def test_leaving_a_final_state_reopens_the_instance() -> None:
    sm = StateMachineEngine("doors")
    transitions = {**SIMPLE["transitions"],
                   "repair": {"fromState": "broken", "toState": "closed"}}
    sm.define({**SIMPLE, "transitions": transitions})
    await sm.create_instance("door", "d")
    assert (await sm.transition("d", "smash")).instance.completed
    fixed = (await sm.transition("d", "repair")).instance
    assert not fixed.completed and fixed.error == ""


async def test_listeners_see_committed_transitions_only() -> None:
    sm = StateMachineEngine("doors")
    sm.define(SIMPLE)
    told: list[str] = []

    async def listener(event: TransitionEvent) -> None:
        told.append(event.transition)

    def broken(event: TransitionEvent) -> None:
        raise RuntimeError("listener bug")  # logged, never undoes the transition

    sm.add_listener(listener)
    sm.add_listener(broken)

    def deny(event: TransitionEvent) -> None:
        raise ValueError("no")

    sm.add_hook(deny, transitions=("lock",))
    await sm.create_instance("door", "d")
    await sm.transition("d", "open")
    await sm.transition("d", "close")
    with pytest.raises(HookError):
        await sm.transition("d", "lock")
    assert told == ["open", "close"]


async def test_list_and_instance_json() -> None:
    sm = StateMachineEngine("doors", clock=lambda: 1_700_000_000.0)
    sm.define(SIMPLE)
    for ident in ("a", "b", "c"):
        await sm.create_instance("door", ident)
    await sm.transition("b", "open")
    assert [i.id for i in await sm.list("door", "closed")] == ["a", "c"]
    assert [i.id for i in await sm.list(limit=1)] == ["a"]
    generated = await sm.create_instance("door")
    assert len(generated.id) == 36
    body = (await sm.get("b")).to_json()
    assert body == {"id": "b", "workflowType": "door", "currentState": "open",
                    "previousState": "closed", "data": {},
                    "startTime": "2023-11-14T22:13:20Z", "lastUpdated": "2023-11-14T22:13:20Z",
                    "completed": False, "version": 2}


async def test_data_must_be_json() -> None:
    from treadle.errors import NotSerializableError

    sm = StateMachineEngine("doors")
    sm.define(SIMPLE)
    with pytest.raises(NotSerializableError, match="instance data must be JSON"):
        await sm.create_instance("door", "d", {"when": object()})
    await sm.create_instance("door", "d")
    with pytest.raises(NotSerializableError, match="the data of event 'open' must be JSON"):
        await sm.transition("d", "open", {"x": {1, 2}})
    assert (await sm.get("d")).version == 1
