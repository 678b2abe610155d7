"""Transition events, and the hooks that see them before a transition commits.

A hook is one of:

* a `HookSpec` from YAML naming a `handler` module — called as `handle_transition(event)`,
  else `handle_message(payload: bytes)` (the Go payload), else the module itself if callable;
* a `HookSpec` naming a `pipeline` (Treadle) — run through the engine's pipeline runner with
  the event as trigger data (`event.trigger_data()`);
* a Python callable `hook(event)`, sync or async, added with `StateMachineEngine.add_hook`.

Any exception aborts the transition (`HookError`); nothing is persisted. As in the Go
project, a YAML hook whose handler module does not exist is skipped with a warning.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from treadle.statemachine.definition import HookSpec
from treadle.statemachine.errors import HookError, StateMachineError

log = logging.getLogger("treadle.statemachine")

PipelineRunner = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""`await runner(pipeline_name, trigger_data)`: runs a pipeline, raises if it fails."""

HookFunction = Callable[["TransitionEvent"], Any]
"""A Python hook: `hook(event)`, sync or async; raising aborts the transition."""


@dataclass(frozen=True, slots=True)
class TransitionEvent:
    """A transition about to commit (hooks) or just committed (listeners)."""

    instance_id: str
    workflow_type: str
    transition: str
    from_state: str
    to_state: str
    data: dict[str, Any] = field(default_factory=dict)
    """The data passed with the event (merged into the instance data on commit)."""
    instance_data: dict[str, Any] = field(default_factory=dict)
    """The instance data before the transition."""
    timestamp: float = 0.0
    auto: bool = False

    def to_json(self) -> dict[str, Any]:
        """Go's `TransitionEvent` JSON (`workflowId` is the instance id there) plus Treadle's
        `instanceId`, `workflowType` and `auto`."""
        return {
            "workflowId": self.instance_id,
            "instanceId": self.instance_id,
            "workflowType": self.workflow_type,
            "transitionId": self.transition,
            "fromState": self.from_state,
            "toState": self.to_state,
            "timestamp": datetime.fromtimestamp(self.timestamp, UTC).isoformat()
            .replace("+00:00", "Z"),
            "data": self.data,
            "auto": self.auto,
        }

    def trigger_data(self) -> dict[str, Any]:
        """What a hook pipeline receives as trigger data: the event data's keys at the top
        level, then `instanceId`, `workflowType`, `transition`, `fromState`, `toState`,
        `data` (the event data) and `instance` (the instance data before the transition)."""
        out = dict(self.data)
        out.update(instanceId=self.instance_id, workflowType=self.workflow_type,
                   transition=self.transition, fromState=self.from_state,
                   toState=self.to_state, data=dict(self.data),
                   instance=dict(self.instance_data), auto=self.auto)  # fmt: skip
        return out

    def message_payload(self) -> bytes:
        """The payload the Go project hands a `messaging.handler` hook."""
        return json.dumps({"workflowId": self.workflow_type, "instanceId": self.instance_id,
                           "transition": self.transition, "fromState": self.from_state,
                           "toState": self.to_state}).encode()  # fmt: skip


@dataclass(frozen=True, slots=True)
class Hook:
    """A registered hook: its filter and what it runs."""

    spec: HookSpec
    function: HookFunction | None = None

    @property
    def label(self) -> str:
        if self.function is not None:
            return getattr(self.function, "__qualname__", repr(self.function))
        return self.spec.label


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def run_hook(hook: Hook, event: TransitionEvent, modules: Mapping[str, Any],
                   runner: PipelineRunner | None) -> None:  # fmt: skip
    """Run one hook on `event`; `HookError` if it fails."""
    label = hook.label
    try:
        if hook.function is not None:
            await _maybe_await(hook.function(event))
        elif hook.spec.pipeline:
            if runner is None:
                raise StateMachineError(f"hook runs pipeline {hook.spec.pipeline!r} but the "
                                        "engine has no pipeline runner")  # fmt: skip
            await runner(hook.spec.pipeline, event.trigger_data())
        elif hook.spec.handler:
            target = modules.get(hook.spec.handler)
            if target is None:
                log.warning("state machine hook handler %r not found; skipped",
                            hook.spec.handler)  # fmt: skip
                return
            await _call_handler(target, event, hook.spec.handler)
    except HookError:
        raise
    except Exception as exc:
        raise HookError(f"hook {label!r} failed on transition {event.transition!r} of "
                        f"instance {event.instance_id!r}: {exc}", label,
                        type(exc).__qualname__) from exc  # fmt: skip


async def _call_handler(target: Any, event: TransitionEvent, name: str) -> None:
    for attr in ("handle_transition", "HandleTransition"):
        method = getattr(target, attr, None)
        if callable(method):
            await _maybe_await(method(event))
            return
    for attr in ("handle_message", "HandleMessage"):
        method = getattr(target, attr, None)
        if callable(method):
            await _maybe_await(method(event.message_payload()))
            return
    if callable(target):
        await _maybe_await(target(event))
        return
    log.warning("state machine hook handler %r has no handle_transition / handle_message; "
                "skipped", name)  # fmt: skip


__all__ = ["Hook", "HookFunction", "PipelineRunner", "TransitionEvent", "run_hook"]
