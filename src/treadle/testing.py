"""Testing helpers: a fake clock that skips durable waits, and engines built for tests.

```python
from treadle.testing import FakeClock, test_engine

engine = test_engine(mocks={"charge": {"id": "ch_1"}})   # memory store, auto-advancing clock
assert engine.run(process_order, {"id": 1})["ok"]
```

The memory store (`treadle.stores.MemoryStore`) is public testing API too.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from treadle.engine.clock import Clock
from treadle.engine.decorators import Registry
from treadle.engine.engine import Engine
from treadle.engine.hooks import Observer
from treadle.stores.base import Store


class _FakeTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock(Clock):
    """A clock that only moves when told to (or, with `auto_advance`, whenever a timer waits).

    Durable sleeps, signal timeouts, retry back-off and workflow deadlines read it. With
    `auto_advance=True` (the default) every timer fires as soon as the event loop gets to it,
    in deadline order, and the clock jumps to its deadline: a workflow that sleeps a week runs
    in microseconds. With `auto_advance=False`, call `advance(seconds)`.
    """

    def __init__(self, start: float | None = None, *, auto_advance: bool = True) -> None:
        self._now = time.time() if start is None else start
        self.auto_advance = auto_advance
        self._timers: list[tuple[float, int, _FakeTimer, Callable[[], None]]] = []
        self._ids = itertools.count()
        self._engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._scheduled = False

    def attach(self, engine: Engine) -> None:
        self._engines.add(engine)

    def _idle(self) -> bool:
        return all(run.active <= 0 for e in self._engines for run in e._runs.values())

    def time(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer()
        heapq.heappush(self._timers, (when, next(self._ids), timer, callback))
        if self.auto_advance and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._fire_when_idle)
        return timer

    def _fire_when_idle(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if not self._timers:
            self._scheduled = False
            return
        loop = asyncio.get_running_loop()
        if not self._idle():
            loop.call_later(0.0005, self._fire_when_idle)  # look again once work settles
            return
        when, _, _timer, callback = heapq.heappop(self._timers)
        self._now = max(self._now, when)
        callback()
        loop.call_soon(self._fire_when_idle)

    def advance(self, seconds: float) -> None:
        """Move time forward and fire every timer that falls due."""
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer, callback = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._now = max(self._now, when)
                callback()
        self._now = target

    @property
    def pending(self) -> int:
        """How many timers are waiting."""
        return sum(1 for *_, timer, _cb in self._timers if not timer.cancelled)


def test_engine(
    store: str | Store = "memory://",
    *,
    mocks: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
    registry: Registry | None = None,
    observers: Iterable[Observer] = (),
    debug: bool = False,
) -> Engine:
    """An engine for tests: memory store and an auto-advancing `FakeClock` unless given.

    `mocks` maps step names to the output they return instead of running (a value, or a
    callable taking the step's arguments); mocked steps are journaled with `mocked: true`.
    """
    return Engine(store, mocks=mocks, clock=clock or FakeClock(), registry=registry,
                  observers=observers, debug=debug)


test_engine.__test__ = False  # type: ignore[attr-defined]  # not a pytest test

__all__ = ["FakeClock", "test_engine"]
