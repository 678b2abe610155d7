"""Every error Treadle raises, in one shallow tree.

```
TreadleError
├── ConfigError                 a config file is malformed (file, line, key)
├── TemplateError               a template failed to parse or render
├── StoreError                  a storage backend failed
│   └── JournalConflictError    another writer appended first (lost lease)
├── ExecutionNotFoundError      no execution with that id
├── WorkflowNotFoundError       no registered workflow with that name/version
├── WorkflowVersionError        the journal was written by another workflow version
├── NonDeterminismError         the code no longer matches its journal
├── NotSerializableError        a step produced a value that is not JSON
├── StepError                   a step failed (stands in for an exception that cannot be restored)
├── StepTimeoutError            a step or workflow ran past its timeout (also a TimeoutError)
├── SignalTimeoutError          wait_for_signal timed out (also a TimeoutError)
├── QueueFullError              a queue is at its max_depth: nothing was enqueued
├── LockTimeoutError            engine.lock(name) was not acquired in time (also a TimeoutError)
├── ExecutionFailedError        awaited a result of an execution that failed
└── ExecutionCancelledError     awaited a result of an execution that was cancelled

BaseException
└── Suspended                   internal: unwinds a workflow whose lease was lost or engine closed
```

Retryability lives on the error: `retryable` is consulted by the retry policy; errors that
signal a programming or determinism problem are never retried.
"""

from __future__ import annotations

from typing import Any


class TreadleError(Exception):
    """Base of every error Treadle raises."""

    retryable: bool = True


class ConfigError(TreadleError):
    """A configuration file is malformed. Carries file, line and key when known."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        errors: list[ConfigError] | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        self.errors = errors or []
        super().__init__(self._render())

    def _render(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        key = f" [{self.key}]" if self.key else ""
        head = f"{where}{key}: {self.message}" if where or key else self.message
        if self.errors:
            head += "".join(f"\n  - {err}" for err in self.errors)
        return head


class TemplateError(TreadleError):
    """A template failed to parse or to render (e.g. a missing key in strict mode)."""

    retryable = False


class StoreError(TreadleError):
    """A storage backend failed."""


class JournalConflictError(StoreError):
    """The journal moved on under us: another writer appended, or our lease was lost."""

    retryable = False


class ExecutionNotFoundError(TreadleError, KeyError):
    """No execution has that id (or it is not visible to the caller)."""

    retryable = False

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "execution not found"


class WorkflowNotFoundError(TreadleError, LookupError):
    """No workflow with that name (and version) is registered in this process."""

    retryable = False


class WorkflowVersionError(TreadleError):
    """The execution was started by another version of the workflow than the one loaded."""

    retryable = False


class NonDeterminismError(TreadleError):
    """Resumed code asked for a different step, at a position, than its journal records."""

    retryable = False


class NotSerializableError(TreadleError, TypeError):
    """A value that must be journaled is not JSON-serialisable."""

    retryable = False


class StepError(TreadleError):
    """A step failed. Raised on replay when the original exception cannot be restored."""

    def __init__(self, message: str, *, error_type: str = "Exception", step: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.step = step


class StepTimeoutError(TreadleError, TimeoutError):
    """A step or a workflow ran past its timeout."""


class SignalTimeoutError(TreadleError, TimeoutError):
    """`ctx.wait_for_signal` reached its timeout before the signal arrived."""

    retryable = False


class QueueFullError(TreadleError):
    """The queue holds `max_depth` pending executions already; the start was refused.

    Nothing was written: retry later (HTTP 429 from the server).
    """

    def __init__(self, queue: str, depth: int, max_depth: int) -> None:
        super().__init__(f"queue {queue!r} is full: {depth} pending, max_depth {max_depth}")
        self.queue = queue
        self.depth = depth
        self.max_depth = max_depth


class LockTimeoutError(TreadleError, TimeoutError):
    """`engine.lock(name, timeout=…)` did not get the lock in time: another holder kept it.

    Nothing is held; trying again later may succeed.
    """

    def __init__(self, name: str, timeout: float | None) -> None:
        super().__init__(f"lock {name!r} was not acquired within {timeout}s")
        self.name = name
        self.timeout = timeout


class ExecutionFailedError(TreadleError):
    """The awaited execution failed; `error` holds its recorded error."""

    retryable = False

    def __init__(self, execution_id: str, error: dict[str, Any] | None) -> None:
        self.execution_id = execution_id
        self.error = error or {}
        message = self.error.get("message", "failed")
        kind = self.error.get("type", "Error")
        super().__init__(f"execution {execution_id} failed: {kind}: {message}")


class ExecutionCancelledError(TreadleError):
    """The awaited execution was cancelled."""

    retryable = False


class Suspended(BaseException):
    """Unwinds a workflow that must stop running here (engine closing, lease lost).

    Derives from BaseException so that user code's `except Exception` cannot swallow it.
    """


class MissingExtraError(TreadleError, ImportError):
    """An optional dependency is not installed."""

    retryable = False

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"{module} is needed for this feature: pip install 'treadle[{extra}]'"
        )


def require(module: str, extra: str) -> Any:
    """Import an optional dependency or raise MissingExtraError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(extra, module) from exc


def describe(exc: BaseException) -> str:
    """`Type: message` (just `Type` when the message is empty), for error messages that name
    what a connection or a call to another service failed with."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
