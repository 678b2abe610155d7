"""Retry policies as pure values: a decision is a function of (error, attempt)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Backoff = Literal["exponential", "linear", "constant"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before running a failed step again.

    `retries` is the number of extra attempts (so `retries=3` runs a step at most 4 times).
    `retry_on` limits retries to those exception types; errors whose `retryable` attribute is
    False are never retried.

    >>> p = RetryPolicy(retries=3, initial_delay=0.1, max_delay=5, jitter=False)
    >>> [p.delay(n) for n in (1, 2, 3)]
    [0.1, 0.2, 0.4]
    >>> p.should_retry(ValueError("x"), attempt=4)
    False
    """

    retries: int = 0
    backoff: Backoff = "exponential"
    initial_delay: float = 0.1
    max_delay: float = 60.0
    multiplier: float = 2.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether attempt number `attempt` (1-based), which raised `error`, gets another go."""
        if attempt > self.retries:
            return False
        if getattr(error, "retryable", True) is False:
            return False
        return isinstance(error, self.retry_on)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if self.backoff == "constant":
            base = self.initial_delay
        elif self.backoff == "linear":
            base = self.initial_delay * attempt
        else:
            base = self.initial_delay * self.multiplier ** (attempt - 1)
        base = min(base, self.max_delay)
        if self.jitter:
            # "Full jitter" keeps the mean near the base while spreading thundering herds.
            base = random.uniform(base / 2, base)
        return base


NO_RETRY = RetryPolicy()
