"""The error a failed pipeline ends with.

```
TreadleError
└── PipelineStepError   a step failed and the error strategy did not absorb it
```

It keeps the failed step's name and the `error_status` configured on it (for HTTP triggers),
and is rebuilt from the journal with the same fields (its arguments are JSON).
"""

from __future__ import annotations

from treadle.errors import TreadleError


class PipelineStepError(TreadleError):
    """Step `step` of a pipeline failed; `status` is its `error_status` (None if unset)."""

    retryable = False

    def __init__(self, message: str, step: str = "", status: int | None = None,
                 cause: str = "") -> None:  # fmt: skip
        super().__init__(message, step, status, cause)
        self.message = message
        self.step = step
        self.status = status
        self.cause = cause
        """Type name of the step's own error."""

    def __str__(self) -> str:
        return self.message


__all__ = ["PipelineStepError"]
