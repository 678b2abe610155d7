"""Running step implementations as journaled steps of the durable core.

A configured step becomes a `StepFunction` whose one argument is a `StepInput`: the step's
rendered config (a dict, journaled as the step's input) that also carries the live
`PipelineContext` (never journaled). So the timeline shows each step's own rendered config
and output, never a copy of the whole pipeline state.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Sequence
from typing import Any

from treadle.engine import StepFunction
from treadle.journal.retry import RetryPolicy
from treadle.steps._context import PipelineContext
from treadle.steps.registry import StepImpl

NO_RETRY = RetryPolicy()


class StepInput(dict[str, Any]):
    """A step's rendered config, carrying the pipeline context it runs against.

    `error` set means rendering the config failed: the step raises it, so the failure is
    journaled on the step like any other.
    """

    __slots__ = ("error", "impl", "pc")

    def __init__(self, config: dict[str, Any], pc: PipelineContext, impl: StepImpl,
                 error: BaseException | None = None) -> None:  # fmt: skip
        super().__init__(config)
        self.pc = pc
        self.impl = impl
        self.error = error


async def _body(inp: StepInput) -> dict[str, Any]:
    if inp.error is not None:
        raise inp.error
    output = await inp.impl(inp, inp.pc)
    if not isinstance(output, dict):
        raise TypeError(f"step {inp.pc.step!r} returned {type(output).__name__}, not a mapping")
    return output


def task_function(
    name: str,
    step_type: str | None,
    *,
    policy: RetryPolicy = NO_RETRY,
    timeout: float | None = None,
    pure: bool = False,
) -> StepFunction[..., Any]:
    """The StepFunction that runs one configured step: `await sf(StepInput(...))`."""
    return StepFunction(_body, name=name, policy=policy, timeout=timeout, compensate=None,
                        step_type=step_type, pure=pure)  # fmt: skip


async def bounded_gather(
    pc: PipelineContext, calls: Sequence[Awaitable[Any]], *, concurrency: int,
    return_exceptions: bool,
) -> list[Any]:
    """Await journaled calls in parallel, at most `concurrency` at a time (0: no limit).

    The calls must already be made (`sf(...)` returns an awaitable with its journal position
    assigned), so positions follow list order however the branches interleave.
    """
    if pc.durable is None:
        raise RuntimeError(f"step {pc.step!r} needs a running workflow")
    if concurrency <= 0 or concurrency >= len(calls):
        return await pc.durable.gather(*calls, return_exceptions=return_exceptions)
    gate = asyncio.Semaphore(concurrency)

    async def limited(call: Awaitable[Any]) -> Any:
        try:
            await gate.acquire()
        except BaseException:
            if inspect.iscoroutine(call):
                call.close()  # cancelled while queued: it never ran
            raise
        try:
            return await call
        finally:
            gate.release()

    return await pc.durable.gather(*(limited(c) for c in calls),
                                   return_exceptions=return_exceptions)


__all__ = ["NO_RETRY", "StepInput", "bounded_gather", "task_function"]
