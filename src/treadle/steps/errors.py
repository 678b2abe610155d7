"""Errors raised by steps of the library (all `TreadleError`s; see `treadle.errors`).

```
TreadleError
├── StepFailedError          a step's own check failed (validation, no route, ...)
│   └── ValidationFailedError   data did not pass step.validate            (not retried)
├── HTTPStatusError          step.http_call got an error status (5xx and 429 are retried)
└── CircuitOpenError         step.http_call refused: the host's circuit breaker is open
```

Each keeps its message as its only argument, so a journaled failure is restored as the same
type on replay.
"""

from __future__ import annotations

from treadle.errors import TreadleError


class StepFailedError(TreadleError):
    """A step could not do its job for a reason of its own (not a bug, not I/O)."""

    retryable = False


class ValidationFailedError(StepFailedError):
    """step.validate rejected the data."""


class HTTPStatusError(TreadleError):
    """step.http_call received an error status. 5xx, 408 and 429 are retryable."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message, status)
        self.message = message
        self.status = status
        self.retryable = status >= 500 or status in (408, 429)

    def __str__(self) -> str:
        return self.message


class CircuitOpenError(TreadleError):
    """step.http_call did not call the host: too many recent failures opened its breaker."""


__all__ = ["CircuitOpenError", "HTTPStatusError", "StepFailedError", "ValidationFailedError"]
