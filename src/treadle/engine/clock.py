"""The engine's clock: durable timers, retry back-off and workflow deadlines read it.

`Clock` is wall time. `treadle.testing.FakeClock` replaces it in tests to skip waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock:
    """Wall-clock time in epoch seconds, with timers on the running event loop."""

    def time(self) -> float:
        return time.time()

    def attach(self, engine: Any) -> None:
        """Called by each engine using this clock (a fake clock watches them for idleness)."""

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback` on the running loop at epoch time `when` (at once if past)."""
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - self.time()), callback)

    async def sleep_until(self, when: float) -> None:
        """Wait until epoch time `when` on this clock."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        def wake() -> None:
            if not done.done():
                done.set_result(None)

        handle = self.call_at(when, wake)
        try:
            await done
        finally:
            handle.cancel()

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.time() + seconds)
