"""Queues: where enqueued executions wait for workers, and the limits that apply to them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from treadle.engine.decorators import Registry
from treadle.stores.base import ClaimLimits

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(s|sec|m|min|h|hour)\s*$")
_UNIT = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(text: str) -> tuple[int, float]:
    """`"100/s"` → (100, 1.0); `"10/5m"` → (10, 300.0)."""
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f"rate limit {text!r}: expected '<count>/<unit>' like '100/s' or '10/5m'")
    count, amount, unit = match.groups()
    return int(count), float(amount or 1) * _UNIT[unit]


@dataclass(frozen=True, slots=True)
class Queue:
    """A named queue and its limits, counted across every worker sharing the store.

    - `concurrency`: executions of this queue running at once.
    - `partition_concurrency`: running at once per partition key (`start(partition_key=)`,
      defaulting to the tenant), e.g. 1 to serialise each customer's work.
    - `rate_limit`: starts per period, e.g. `"100/s"`, `"10/m"`.
    - `max_depth`: pending executions; beyond it `start` fails fast with `QueueFullError`.

    >>> Queue("emails", concurrency=10, rate_limit="100/s").rate
    (100, 1.0)
    """

    name: str
    concurrency: int | None = None
    partition_concurrency: int | None = None
    rate_limit: str | None = None
    max_depth: int | None = None

    def __post_init__(self) -> None:
        for label in ("concurrency", "partition_concurrency", "max_depth"):
            value = getattr(self, label)
            if value is not None and value < 1:
                raise ValueError(f"queue {self.name!r}: {label} must be at least 1")
        if self.rate_limit is not None:
            parse_rate(self.rate_limit)

    @property
    def rate(self) -> tuple[int, float] | None:
        return None if self.rate_limit is None else parse_rate(self.rate_limit)


def claim_limits(queues: Iterable[Queue], registry: Registry) -> ClaimLimits | None:
    """The limits a worker's claims must respect (None when nothing is limited)."""
    queues = list(queues)
    workflows = {wf.name: wf.concurrency for wf in registry if wf.concurrency is not None}
    limits = ClaimLimits(
        queue_concurrency={q.name: q.concurrency for q in queues if q.concurrency is not None},
        partition_concurrency={q.name: q.partition_concurrency for q in queues
                               if q.partition_concurrency is not None},
        workflow_concurrency=workflows,
        queue_rate={q.name: r for q in queues if (r := q.rate) is not None},
    )
    empty = not (limits.queue_concurrency or limits.partition_concurrency
                 or limits.workflow_concurrency or limits.queue_rate)
    return None if empty else limits
