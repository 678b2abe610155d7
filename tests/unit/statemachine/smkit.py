"""Helpers of the state machine tests: recording hook handlers, engines from YAML fixtures and
the racing functions run in threads and spawned processes."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from treadle.config import load_config
from treadle.statemachine import StateMachineEngine, TransitionEvent
from treadle.statemachine.app import build_engines

FIXTURES = Path(__file__).parent / "fixtures"

SIMPLE = {
    "name": "door",
    "initialState": "closed",
    "states": {"closed": {}, "open": {}, "locked": {}, "broken": {"isFinal": True,
                                                                  "isError": True}},
    "transitions": {
        "open": {"fromState": "closed", "toState": "open"},
        "close": {"fromState": "open", "toState": "closed"},
        "lock": {"fromState": "closed", "toState": "locked"},
        "unlock": {"fromState": "locked", "toState": "closed"},
        "touch": {"fromState": "open", "toState": "open"},
        "smash": {"fromState": ["closed", "open", "locked"], "toState": "broken"},
    },
}


class Recorder:
    """A `messaging.handler`-like module: records the Go payloads it receives; fails on
    demand (`fail_on` transitions)."""

    def __init__(self, fail_on: tuple[str, ...] = ()) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.fail_on = fail_on

    def handle_message(self, payload: bytes) -> None:
        message = json.loads(payload)
        self.payloads.append(message)
        if message["transition"] in self.fail_on:
            raise RuntimeError(f"rejected {message['transition']}")

    @property
    def transitions(self) -> list[str]:
        return [p["transition"] for p in self.payloads]


class EventRecorder:
    """A module with `handle_transition(event)` (async)."""

    def __init__(self) -> None:
        self.events: list[TransitionEvent] = []

    async def handle_transition(self, event: TransitionEvent) -> None:
        self.events.append(event)


def order_engine(store: str = "memory://", **handlers: Any) -> tuple[StateMachineEngine,
                                                                       dict[str, Any]]:
    """The engine of fixtures/order_workflow.yaml with recording handler modules."""
    config = load_config(str(FIXTURES / "order_workflow.yaml"))
    modules: dict[str, Any] = {
        "order-validation-handler": handlers.get("validation", Recorder()),
        "payment-processing-handler": handlers.get("payment", Recorder()),
        "notification-handler": handlers.get("notification", Recorder()),
    }
    engines = build_engines(config, modules=modules, default_store=store)
    modules.update(engines)
    return engines["order-processor"], modules


# -- racing helpers (threads and spawned processes) ---------------------------------------------


def race_transition(url: str, instance_id: str, event: str, barrier: Any,
                    conflict_retries: int = 0) -> str:
    """Open an own engine on `url`, wait at `barrier` inside a hook (after the read, before the
    commit) and fire `event`. Returns "ok", or the error's type name."""

    first = [True]

    def wait_for_peer(evt: TransitionEvent) -> None:
        if first[0]:  # only the first attempt: a retry runs alone
            first[0] = False
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass

    async def main() -> str:
        engine = StateMachineEngine("race", store=url, conflict_retries=conflict_retries)
        engine.define(SIMPLE)
        engine.add_hook(wait_for_peer)
        await engine.open()
        try:
            await engine.transition(instance_id, event, {f"by_{event}": True})
            return "ok"
        except Exception as exc:
            return type(exc).__name__
        finally:
            await engine.close()

    return asyncio.run(main())
