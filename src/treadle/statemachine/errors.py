"""Errors of the state machines (all `TreadleError`s; see `treadle.errors`).

```
TreadleError
└── StateMachineError             base of the errors below
    ├── DefinitionError           a definition is malformed, or no definition has that name
    ├── InstanceNotFoundError     no instance has that id                         (also KeyError)
    ├── InstanceExistsError       create_instance with an id already taken
    ├── InvalidTransitionError    unknown event, wrong current state or condition not met
    ├── HookError                 a hook failed: the transition was aborted, nothing persisted
    └── TransitionConflictError   another writer committed first (optimistic version check)
```

None is retried by a step's retry policy except `TransitionConflictError`. Each keeps its
message as its first argument, so a journaled failure is restored as the same type on replay.
"""

from __future__ import annotations

from treadle.errors import TreadleError


class StateMachineError(TreadleError):
    """Base of the state machine errors."""

    retryable = False

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class DefinitionError(StateMachineError):
    """A state machine definition is malformed, or no definition has the requested name."""


class InstanceNotFoundError(StateMachineError, KeyError):
    """No instance has that id."""


class InstanceExistsError(StateMachineError):
    """An instance with that id exists already."""


class InvalidTransitionError(StateMachineError):
    """The event is not a transition of the definition, the instance is not in its
    `fromState`, or the transition's `condition` is false."""


class HookError(StateMachineError):
    """A hook raised: the transition was aborted and nothing was persisted.

    `hook` names the hook (its handler or pipeline), `cause` the type of its error.
    """

    def __init__(self, message: str, hook: str = "", cause: str = "") -> None:
        super().__init__(message, hook, cause)
        self.hook = hook
        self.cause = cause


class TransitionConflictError(StateMachineError):
    """Another writer moved the instance on between our read and our commit.

    Raised once the engine's `conflict_retries` are used up. Retryable: a step that retries it
    re-reads the instance and tries again.
    """

    retryable = True


__all__ = [
    "DefinitionError",
    "HookError",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InvalidTransitionError",
    "StateMachineError",
    "TransitionConflictError",
]
