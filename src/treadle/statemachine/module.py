"""The `statemachine.engine` and `state.tracker` application modules.

`StateMachineModule` wraps a `StateMachineEngine` in the module lifecycle (open the store on
start, close it on stop; hook handlers resolve against the application's modules). Steps find
its engine as `module.engine`. `StateTrackerModule` records the latest state of every
instance of every engine of the application (Go's `state.tracker`).

`register_module_types(registry)` registers both in a `treadle.modules` registry; importing
`treadle.statemachine.provider` does it for the default one.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from treadle.statemachine.app import engine_from_module
from treadle.statemachine.engine import StateMachineEngine
from treadle.statemachine.hooks import TransitionEvent
from treadle.statemachine.http import http_routes
from treadle.statemachine.steps import resolve_engine

if TYPE_CHECKING:
    from treadle.modules.registry import ModuleRegistry

ENGINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "description": {"type": "string", "description": "Free text (Go)."},
        "stateTracker": {"type": "string", "description": "Go key; accepted and ignored."},
        "store": {"type": "string", "description": "Instance store URL: memory://, "
                  "sqlite:///…, postgresql://… (default: the engine's SQLite/PostgreSQL store, "
                  "else memory)."},
        "conflict_retries": {"type": "integer", "minimum": 0, "default": 0,
                             "description": "Re-reads after a lost race before failing."},
        "max_auto_transitions": {"type": "integer", "minimum": 0, "default": 32,
                                 "description": "Bound on chained auto transitions."},
        "http_prefix": {"type": "string", "description": "Serve the HTTP binding (instances, "
                        "transitions, history) under this path."},
    },
}  # fmt: skip

TRACKER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"description": {"type": "string", "description": "Free text (Go)."}},
}


class StateMachineModule:
    """A `statemachine.engine` module (see the module docs)."""

    type = "statemachine.engine"

    def __init__(self, name: str, config: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.config: dict[str, Any] = dict(config or {})
        self.explicit_store = bool(self.config.get("store"))
        self.engine: StateMachineEngine = engine_from_module(name, self.config)

    async def init(self, modules: Mapping[str, Any]) -> None:
        self.engine.modules = modules

    async def start(self) -> None:
        await self.engine.open()

    async def stop(self) -> None:
        await self.engine.close()

    def __repr__(self) -> str:
        return f"<StateMachineModule {self.name!r}>"


class ServedStateMachineModule(StateMachineModule):
    """A `statemachine.engine` module with `http_prefix`: it also serves its HTTP binding."""

    def http_routes(self) -> list[tuple[str, str, Any]]:
        """`(method, path, handler)` with handlers of `HTTPRequest` → `HTTPResponse`."""
        from treadle.modules.web import json_response

        out: list[tuple[str, str, Any]] = []
        for route in http_routes(self.engine, str(self.config["http_prefix"])):

            def make(handler: Any) -> Any:
                async def serve(request: Any) -> Any:
                    status, body = await handler({
                        "method": request.method, "path": request.path,
                        "path_params": dict(request.path_params),
                        "query": urllib.parse.parse_qs(request.query_string),
                        "headers": dict(request.headers), "body": request.body,
                    })
                    return json_response(body, status)

                return serve

            out.append((route.method, route.pattern, make(route.handler)))
        return out


class StateTrackerModule:
    """A `state.tracker` module: the latest state of every instance of every engine."""

    type = "state.tracker"

    def __init__(self, name: str, config: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.config: dict[str, Any] = dict(config or {})
        self.states: dict[tuple[str, str], dict[str, Any]] = {}

    async def init(self, modules: Mapping[str, Any]) -> None:
        for module in modules.values():
            try:
                engine = resolve_engine(module)
            except TypeError:
                continue
            engine.add_listener(self._listener(engine.name))

    def _listener(self, engine: str) -> Any:
        def observe(event: TransitionEvent) -> None:
            self.states[(engine, event.instance_id)] = {
                "engine": engine, "instanceId": event.instance_id,
                "workflowType": event.workflow_type, "state": event.to_state,
                "previousState": event.from_state, "transition": event.transition,
                "timestamp": event.timestamp,
            }

        return observe

    def get_state(self, instance_id: str, engine: str | None = None) -> dict[str, Any] | None:
        """The last transition seen for an instance (of `engine`, or of any engine)."""
        for (eng, ident), state in self.states.items():
            if ident == instance_id and (engine is None or eng == engine):
                return state
        return None


def register_module_types(registry: ModuleRegistry | None = None) -> None:
    """Register `statemachine.engine` and `state.tracker` (types already known are skipped)."""
    from treadle.modules.registry import default_registry

    target = registry if registry is not None else default_registry
    if target.find("statemachine.engine") is None:

        @target.register("statemachine.engine", schema=ENGINE_SCHEMA, category="statemachine",
                         doc="State machine definitions (from `workflows: statemachine:`), "
                         "persisted instances, hooks and auto transitions. See "
                         "docs/statemachines.md.",
                         example="- name: orders-sm\n  type: statemachine.engine\n  config:\n"
                         "    description: order lifecycle\n")  # fmt: skip
        def _engine(name: str, config: dict[str, Any], ctx: Any) -> Any:
            cls = ServedStateMachineModule if config.get("http_prefix") else StateMachineModule
            return cls(name, config)

    if target.find("state.tracker") is None:

        @target.register("state.tracker", schema=TRACKER_SCHEMA, category="statemachine",
                         doc="Tracks the latest state of every state machine instance.",
                         example="- name: order-states\n  type: state.tracker\n")
        def _tracker(name: str, config: dict[str, Any], ctx: Any) -> Any:
            return StateTrackerModule(name, config)


__all__ = [
    "ServedStateMachineModule",
    "StateMachineModule",
    "StateTrackerModule",
    "register_module_types",
]
