"""One execution being run by this engine: positions, replay, journal writes, waits, sagas.

Every journaled call of a workflow gets a position in call order (a step, a timer, a signal
wait, a child, a recorded value). On resume the journal's record at that position answers the
call instead of running it again; a call whose kind or name differs from the record is a
`NonDeterminismError`.

Events are emitted into a buffer with their seq and flushed to the store in one transaction at
each step completion, each wait and the end, so a durable step costs one commit. A pure step
(`@step(pure=True)`, the YAML data steps) commits nothing of its own: its events ride with the
next flush, which a step that is not pure makes before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from treadle.engine import current
from treadle.engine.decorators import StepFunction, WorkflowDef
from treadle.engine.hooks import notify
from treadle.engine.serde import (
    error_record,
    json_copies,
    restore_error,
    to_json_input,
    to_json_value,
)
from treadle.errors import (
    ExecutionFailedError,
    JournalConflictError,
    NonDeterminismError,
    SignalTimeoutError,
    StepTimeoutError,
    Suspended,
    TreadleError,
)
from treadle.journal import Event, EventType, ExecutionStatus, ExecutionSummary
from treadle.journal.replay import Recorded
from treadle.stores.base import RowUpdate

if TYPE_CHECKING:
    from treadle.engine.context import Context
    from treadle.engine.engine import Engine

logger = logging.getLogger("treadle")

Outcome = tuple[ExecutionStatus, Any, dict[str, Any] | None]
_MISSING: Any = object()
_TIMEOUT: Any = object()


class Run:
    """The live state of one execution owned by an engine."""

    def __init__(
        self,
        engine: Engine,
        wf: WorkflowDef,
        execution_id: str,
        args: list[Any],
        *,
        seq: int,
        replay: dict[int, Recorded],
        status: ExecutionStatus,
        deadline: float | None,
        created_at: float,
        mocks: dict[str, Any] | None = None,
        tenant_id: str | None = None,
        unborn: tuple[ExecutionSummary, list[Event]] | None = None,
    ) -> None:
        from treadle.engine.context import Context

        self.engine = engine
        self.store = engine.store
        self.wf = wf
        self.id = execution_id
        self.args = args
        self.seq = self.persisted_seq = seq
        self.pending: list[Event] = []
        # A lazy start (`Engine.start(lazy=True)`): the row and first events the first flush
        # creates; until then the execution is in no store.
        self.unborn: ExecutionSummary | None = None
        if unborn is not None:
            self.unborn, self.pending = unborn[0], list(unborn[1])
            self.persisted_seq = 0
        self.replay = replay
        self.replay_end = max(replay, default=-1)
        self.status = self.persisted_status = status
        self.wake_at: float | None = None
        self.persisted_wake_at: float | None = None
        self.deadline = deadline
        self.created_at = created_at
        self.mocks: dict[str, Any] = mocks or {}  # this execution's: {step: {output, delay_ms}}
        self.tenant_id = tenant_id
        self.outputs: dict[str, Any] = {}  # latest output per step name (breakpoint conditions)
        self.failed_step: str | None = None  # the last step that failed for good
        self.active = 1
        self.timers: dict[int, float] = {}
        self.signal_waiters: dict[str, list[asyncio.Future[str]]] = {}
        self.taken_signals: set[int] = set()
        self.compensations: list[tuple[int, StepFunction[..., Any], Any, tuple[Any, ...],
                                       dict[str, Any]]] = []
        self.flush_lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None
        self.done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.cancel_requested: str | None = None
        self.started = False  # drive() began: cancelling the task now reaches its handlers
        self.cancel_when_live = False  # resumed only to be cancelled: stop where replay ends
        self.shutdown = False
        self.timed_out = False
        self.fatal: BaseException | None = None
        # recorded values, notes and pure steps' events must be durable before a step with
        # effects runs
        self.values_pending = unborn is not None
        self._pos = 0
        self.ctx: Context = Context(self)
        self.log = logging.LoggerAdapter(
            logger, {"execution_id": execution_id, "workflow": wf.name}
        )

    # -- journal ------------------------------------------------------------------------------

    def emit(self, kind: str, data: dict[str, Any]) -> Event:
        self.seq += 1
        event = Event(self.id, self.seq, kind, data, self.engine.clock.time())
        self.pending.append(event)
        if self.engine.observers:
            notify(self.engine.observers, event)
        return event

    async def flush(self, *, consume_signal: int | None = None) -> None:
        """Write buffered events (and a changed status) in one transaction."""
        async with self.flush_lock:
            events, self.pending = self.pending, []
            status, wake_at = self.status, self.wake_at
            update = None
            if status != self.persisted_status or wake_at != self.persisted_wake_at:
                finished = events[-1].created_at if status.is_terminal and events else None
                error = None
                if status == ExecutionStatus.FAILED and events:
                    error = str((events[-1].data.get("error") or {}).get("message", ""))[:500]
                update = RowUpdate(status, wake_at=wake_at, error=error, finished_at=finished)
            self.values_pending = False
            if not events and update is None and consume_signal is None:
                return
            try:
                if self.unborn is not None:
                    await self._create(events, update)
                else:
                    await self.store.append(
                        self.id, events, expected_seq=self.persisted_seq,
                        owner=self.engine.owner, update=update, consume_signal=consume_signal,
                    )
            except asyncio.CancelledError:
                # Cancelled while a store that really waits (PostgreSQL, Redis) was writing:
                # the batch (with its row update) landed or not; keep our position true.
                if events and not await self._landed(events[0]):
                    self.pending[:0] = events
                    raise
                self.unborn = None
                if events:
                    self.persisted_seq = events[-1].seq
                self.persisted_status, self.persisted_wake_at = status, wake_at
                raise
            except BaseException as exc:
                self.log.error("journal write failed, execution %s stops here: %s", self.id, exc)
                self.fatal = exc
                raise Suspended(f"journal write failed: {exc}") from exc
            if events:
                self.persisted_seq = events[-1].seq
            self.persisted_status, self.persisted_wake_at = status, wake_at

    async def _create(self, events: list[Event], update: RowUpdate | None) -> None:
        """The first write of a lazy start: its row (as it is now) with every event so far."""
        assert self.unborn is not None
        row = self.unborn
        if update is not None:
            row = dataclasses.replace(
                row, status=update.status, wake_at=update.wake_at, error=update.error,
                finished_at=update.finished_at, updated_at=events[-1].created_at)
        _, created = await self.store.create(row, events)
        if not created:
            raise JournalConflictError(f"execution {self.id} already exists")
        self.unborn = None

    async def _landed(self, first: Event) -> bool:
        found = await self.store.events(self.id, after=first.seq - 1, limit=1)
        return bool(found) and found[0].seq == first.seq and found[0].type == first.type

    # -- positions ----------------------------------------------------------------------------

    def next_pos(self) -> int:
        pos = self._pos
        self._pos += 1
        return pos

    def recorded(self, pos: int, kind: str, name: str) -> Recorded | None:
        rec = self.replay.get(pos)
        if rec is None:
            if self.cancel_when_live and pos > self.replay_end:
                self._cancel_now()
            return None
        if rec.kind != kind or rec.name != name:
            error = NonDeterminismError(
                f"execution {self.id} of workflow {self.wf.name!r}: at position {pos} the code "
                f"calls {kind} {name!r} but the journal recorded {rec.kind} {rec.name!r}; "
                "the workflow's code changed under a running execution"
            )
            self.fatal = error
            raise error
        return rec

    # -- steps --------------------------------------------------------------------------------

    def call_step(
        self, sf: StepFunction[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        return self.step(self.next_pos(), sf, args, kwargs)

    async def step(
        self,
        pos: int,
        sf: StepFunction[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        compensates: int | None = None,
    ) -> Any:
        name = sf.name
        rec = self.recorded(pos, "step", name)
        if rec is not None and rec.done:
            if rec.failed:
                self.failed_step = name
                raise restore_error(rec.error, name)
            if not rec.skipped:
                self._register_compensation(pos, sf, rec.output, args, kwargs, compensates)
            self.outputs[name] = rec.output
            return rec.output
        attempt = (rec.attempts if rec is not None else 0) + 1
        if self.engine.draining:
            raise Suspended("the worker is draining")
        breakpoints = self.engine.breakpoints
        if compensates is None and (rec.paused if rec is not None else breakpoints.armed()):
            decided = await self._breakpoint(pos, name, args, kwargs, rec)
            if decided is None:
                pass
            elif decided[0] == "skip":
                return decided[1]
            else:
                args, kwargs = decided[1]
        if self.mocks and name in self.mocks:
            mock = self.mocks[name]
            await self._pause(float(mock.get("delay_ms") or 0) / 1000)
            return await self._mocked(pos, sf, args, kwargs, lambda *a, **k: mock.get("output"))
        mocks = self.engine.mocks
        if mocks and name in mocks:
            return await self._mocked(pos, sf, args, kwargs, mocks[name])
        started: dict[str, Any] = {"pos": pos, "step_name": name, "attempt": attempt}
        if sf.step_type is not None:
            started["step_type"] = sf.step_type
        if compensates is not None:
            started["compensates"] = compensates
        self.emit(EventType.STEP_STARTED, started)
        self.emit(EventType.STEP_INPUT_RECORDED,
                  {"pos": pos, "step_name": name, "input": to_json_input(args, kwargs)})
        if self.values_pending and not (sf.pure and compensates is None):
            # What a step with effects may use is durable before it runs (with its start:
            # emitted first, parallel branches keep their call order in the journal).
            await self.flush()
        while True:
            t0 = time.perf_counter()
            try:
                value = await self._invoke(sf, args, kwargs, attempt, pos)
                journaled, output = json_copies(value, f"output of step {name!r}")
            except asyncio.CancelledError:
                if not self.shutdown:  # cancelled by a user or a deadline, not a closing engine
                    self.emit(EventType.STEP_FAILED, {
                        "pos": pos, "step_name": name, "attempts": attempt,
                        "duration_ms": (time.perf_counter() - t0) * 1000,
                        "error": {"type": "Cancelled", "message": "the execution was cancelled "
                                  "while this step ran", "retryable": False},
                    })
                raise
            except Exception as exc:
                elapsed = (time.perf_counter() - t0) * 1000
                if sf.policy.should_retry(exc, attempt):
                    delay = sf.policy.delay(attempt)
                    self.emit(EventType.RETRY_ATTEMPTED, {
                        "pos": pos, "step_name": name, "attempt": attempt, "delay": delay,
                        "duration_ms": elapsed, "error": error_record(exc),
                    })
                    await self.flush()
                    await self._pause(delay)
                    attempt += 1
                    self.emit(EventType.STEP_STARTED,
                              {**started, "attempt": attempt})
                    continue
                self.emit(EventType.STEP_FAILED, {
                    "pos": pos, "step_name": name, "attempts": attempt, "duration_ms": elapsed,
                    "error": error_record(exc),
                })
                self.failed_step = name
                await self.flush()
                raise
            elapsed = (time.perf_counter() - t0) * 1000
            self.emit(EventType.STEP_OUTPUT_RECORDED,
                      {"pos": pos, "step_name": name, "output": journaled})
            self.emit(EventType.STEP_COMPLETED, {
                "pos": pos, "step_name": name, "duration_ms": elapsed, "attempt": attempt,
                "status": "completed",
            })
            self._after_step(pos, sf, output, args, kwargs, compensates)
            if sf.pure and compensates is None:
                # No effects to protect: these events ride with the next write, which a step
                # with effects makes before it starts (`values_pending`).
                self.values_pending = True
            else:
                await self.flush()
            return output

    async def _pause(self, seconds: float) -> None:
        """Wait on the engine clock (retry back-off, a mock's delay); it counts as waiting."""
        if seconds <= 0:
            return
        self.active -= 1
        try:
            await self.engine.clock.sleep(seconds)
        finally:
            self.active += 1

    async def _invoke(
        self, sf: StepFunction[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        attempt: int, pos: int,
    ) -> Any:
        token = current.STEP.set(
            {"execution_id": self.id, "workflow": self.wf.name, "step": sf.name,
             "pos": pos, "attempt": attempt}
        )
        try:
            if sf.is_async:
                if sf.timeout is None:
                    return await sf.fn(*args, **kwargs)
                async with asyncio.timeout(sf.timeout) as cm:
                    try:
                        return await sf.fn(*args, **kwargs)
                    except TimeoutError:
                        if not cm.expired():
                            raise
                raise AssertionError("unreachable")  # pragma: no cover
            loop = asyncio.get_running_loop()
            call = functools.partial(contextvars.copy_context().run, sf.fn, *args, **kwargs)
            future = loop.run_in_executor(None, call)
            if sf.timeout is None:
                return await future
            return await asyncio.wait_for(future, sf.timeout)
        except TimeoutError as exc:
            if isinstance(exc, StepTimeoutError) or sf.timeout is None:
                raise
            raise StepTimeoutError(
                f"step {sf.name!r} timed out after {sf.timeout}s (attempt {attempt})"
            ) from exc
        finally:
            current.STEP.reset(token)

    async def _mocked(
        self, pos: int, sf: StepFunction[..., Any], args: tuple[Any, ...],
        kwargs: dict[str, Any], mock: Any,
    ) -> Any:
        name = sf.name
        self.emit(EventType.STEP_STARTED, {"pos": pos, "step_name": name, "attempt": 1})
        self.emit(EventType.STEP_INPUT_RECORDED,
                  {"pos": pos, "step_name": name, "input": to_json_input(args, kwargs)})
        value = mock(*args, **kwargs) if callable(mock) else mock
        if inspect.isawaitable(value):
            value = await value
        journaled, output = json_copies(value, f"output of step {name!r}")
        self.emit(EventType.STEP_OUTPUT_RECORDED,
                  {"pos": pos, "step_name": name, "output": journaled})
        self.emit(EventType.STEP_COMPLETED, {"pos": pos, "step_name": name, "duration_ms": 0.0,
                                             "attempt": 1, "status": "completed", "mocked": True})
        self._after_step(pos, sf, output, args, kwargs, None)
        await self.flush()
        return output

    async def _breakpoint(
        self, pos: int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
        rec: Recorded | None,
    ) -> tuple[str, Any] | None:
        """Pause at a matching breakpoint until decided: None (no breakpoint), ("skip",
        output) or ("resume", (args, kwargs)); an abort cancels the execution."""
        decision = rec.decision if rec is not None else None
        if rec is None:
            journal_input = to_json_input(args, kwargs)
            hit = self.engine.breakpoints.hit(
                self.wf.name, name, self.tenant_id,
                lambda: {"input": journal_input, "steps": dict(self.outputs),
                         "workflow": self.wf.name, "execution_id": self.id})
            if hit is None:
                return None
            self.emit(EventType.BREAKPOINT_HIT, {
                "pos": pos, "step_name": name, "breakpoint_id": hit.id,
                "condition": hit.condition, "input": journal_input,
            })
        if decision is None:
            decision = await self._wait(pos, "breakpoint", self._decision(pos, name), step=name)
        action = decision.get("action")
        if action == "abort":
            self.cancel_requested = str(decision.get("reason") or "aborted at a breakpoint")
            self._cancel_now()
        if action == "skip":
            output = decision.get("output")
            self.emit(EventType.STEP_SKIPPED, {"pos": pos, "step_name": name,
                                               "reason": "breakpoint", "output": output})
            await self.flush()
            self.outputs[name] = output
            return "skip", output
        if "input" in decision:
            from treadle.engine.breakpoints import apply_input

            return "resume", apply_input(args, kwargs, decision["input"])
        return "resume", (args, kwargs)

    async def _decision(self, pos: int, step: str) -> dict[str, Any]:
        from treadle.engine.breakpoints import BREAKPOINT_SIGNAL

        payload = await self._signal_loop(pos, BREAKPOINT_SIGNAL, None, breakpoint_of=step)
        return dict(payload)

    def _after_step(
        self, pos: int, sf: StepFunction[..., Any], output: Any, args: tuple[Any, ...],
        kwargs: dict[str, Any], compensates: int | None,
    ) -> None:
        self.outputs[sf.name] = output
        if compensates is not None:
            self.emit(EventType.STEP_COMPENSATED,
                      {"pos": pos, "step_name": sf.name, "compensates": compensates})
        self._register_compensation(pos, sf, output, args, kwargs, compensates)

    def _register_compensation(
        self, pos: int, sf: StepFunction[..., Any], output: Any, args: tuple[Any, ...],
        kwargs: dict[str, Any], compensates: int | None,
    ) -> None:
        if sf.compensate is not None and compensates is None:
            self.compensations.append((pos, sf, output, args, kwargs))

    async def compensate(self) -> None:
        """Run the compensations of completed steps in reverse order (a saga's rollback)."""
        if not self.compensations:
            return
        todo = list(reversed(self.compensations))
        self.compensations = []
        self.emit(EventType.SAGA_COMPENSATING, {"steps": [sf.name for _, sf, *_ in todo]})
        failed: list[str] = []
        for pos, sf, output, args, kwargs in todo:
            assert sf.compensate is not None
            try:
                await self.step(self.next_pos(), sf.compensate, (output, *args), kwargs,
                                compensates=pos)
            except Exception:
                failed.append(sf.compensate.name)
        self.emit(EventType.SAGA_COMPENSATED,
                  {"steps": [sf.name for _, sf, *_ in todo], "failed": failed})

    # -- recorded values ----------------------------------------------------------------------

    def value(self, name: str, make: Any) -> Any:
        pos = self.next_pos()
        rec = self.recorded(pos, "value", name)
        if rec is not None and rec.done:
            return rec.output
        value = make()
        self.values_pending = True
        self.emit(EventType.STEP_COMPLETED,
                  {"pos": pos, "step_name": name, "kind": "value", "output": value})
        return value

    def note(self, event_type: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """Journal a positional event such as `step.skipped` or `conditional.routed`.

        On replay the recorded data is returned instead, so a decision is made once.
        """
        pos = self.next_pos()
        rec = self.recorded(pos, "note", name)
        if rec is not None:
            return dict(rec.output or {})
        self.values_pending = True
        self.emit(event_type, {"pos": pos, "step_name": name, "kind": "note", "output": data,
                               **data})
        return data

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.value("treadle.now", self.engine.clock.time), UTC)

    def uuid(self) -> str:
        return str(self.value("treadle.uuid", lambda: str(uuid.uuid4())))

    def random(self) -> float:
        return float(self.value("treadle.random", random.random))

    # -- waits --------------------------------------------------------------------------------

    async def _wait(self, pos: int, reason: str, waiting: Awaitable[Any], **info: Any) -> Any:
        """Await `waiting`; while every branch of the execution waits, it is suspended."""
        try:
            if self.cancel_when_live or self.engine.draining:
                if self.engine.draining:
                    raise Suspended("the worker is draining")
                self._cancel_now()
            self.active -= 1
            if self.active == 0:
                self._suspend(pos, reason, info)
            try:
                await self.flush()
                return await waiting
            finally:
                self.timers.pop(pos, None)
                self.active += 1
                if self.status == ExecutionStatus.SUSPENDED:
                    self.status = ExecutionStatus.RUNNING
                    self.wake_at = None
                    self.emit(EventType.EXECUTION_RESUMED, {"pos": pos})
        finally:
            # never awaited when something above raised first: close it (no leak warning)
            if inspect.iscoroutine(waiting) and \
                    inspect.getcoroutinestate(waiting) == inspect.CORO_CREATED:
                waiting.close()

    def _suspend(self, pos: int, reason: str, info: dict[str, Any]) -> None:
        self.wake_at = min(self.timers.values()) if self.timers else None
        if self.status != ExecutionStatus.SUSPENDED:
            self.status = ExecutionStatus.SUSPENDED
            data = {"pos": pos, "reason": reason, **info}
            if self.wake_at is not None:
                data["wake_at"] = self.wake_at
            self.emit(EventType.EXECUTION_SUSPENDED, data)

    def branch_done(self) -> None:
        self.active -= 1
        if self.active == 0 and self.timers:
            self._suspend(min(self.timers), "timer", {})

    def sleep(self, seconds: float, name: str = "sleep") -> Coroutine[Any, Any, None]:
        return self._sleep(self.next_pos(), name, self.engine.clock.time() + max(0.0, seconds))

    def sleep_until(self, when: float, name: str = "sleep") -> Coroutine[Any, Any, None]:
        return self._sleep(self.next_pos(), name, when)

    async def _sleep(self, pos: int, name: str, fire_at: float) -> None:
        rec = self.recorded(pos, "timer", name)
        if rec is not None and rec.fired:
            return
        if rec is not None and rec.fire_at is not None:
            fire_at = rec.fire_at
        else:
            self.emit(EventType.TIMER_STARTED, {"pos": pos, "step_name": name, "fire_at": fire_at})
        self.timers[pos] = fire_at
        await self._wait(pos, "timer", self.engine.clock.sleep_until(fire_at), name=name)
        self.emit(EventType.TIMER_FIRED, {"pos": pos, "step_name": name})

    def wait_for_signal(self, name: str, timeout: float | None) -> Coroutine[Any, Any, Any]:
        check_signal_name(name)
        return self._signal(self.next_pos(), name, timeout)

    async def _signal(self, pos: int, name: str, timeout: float | None) -> Any:
        rec = self.recorded(pos, "signal", name)
        if rec is not None and rec.done:
            return rec.output
        if rec is not None and rec.fired:
            raise SignalTimeoutError(f"signal {name!r} did not arrive within {timeout}s")
        deadline = rec.fire_at if rec is not None and rec.fire_at is not None else None
        if deadline is None and timeout is not None:
            deadline = self.engine.clock.time() + timeout
            self.emit(EventType.TIMER_STARTED,
                      {"pos": pos, "step_name": name, "fire_at": deadline, "for": "signal"})
        payload = await self._take_signal(pos, name)
        if payload is not _MISSING:
            return payload
        if deadline is not None:
            self.timers[pos] = deadline
        payload = await self._wait(pos, "signal", self._signal_loop(pos, name, deadline),
                                   name=name)
        if payload is _TIMEOUT:
            self.emit(EventType.TIMER_FIRED, {"pos": pos, "step_name": name, "for": "signal"})
            await self.flush()
            raise SignalTimeoutError(f"signal {name!r} did not arrive within {timeout}s")
        return payload

    async def _signal_loop(self, pos: int, name: str, deadline: float | None,
                           breakpoint_of: str | None = None) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            woken: asyncio.Future[str] = loop.create_future()
            waiters = self.signal_waiters.setdefault(name, [])
            waiters.append(woken)
            handle = None
            if deadline is not None:
                handle = self.engine.clock.call_at(
                    deadline, lambda f=woken: f.done() or f.set_result("timeout")  # type: ignore[misc]
                )
            try:
                payload = await self._take_signal(pos, name, breakpoint_of)
                if payload is not _MISSING:
                    return payload
                if await woken == "timeout":
                    return _TIMEOUT
            finally:
                waiters.remove(woken)
                if handle is not None:
                    handle.cancel()

    async def _take_signal(self, pos: int, name: str, breakpoint_of: str | None = None) -> Any:
        """Consume the oldest unconsumed signal `name` (for a breakpoint at `pos` when
        `breakpoint_of` names its step: only a decision addressed to that position)."""
        for signal in await self.store.signals(self.id):
            if signal.name != name or signal.id in self.taken_signals:
                continue
            if breakpoint_of is not None and not (
                    isinstance(signal.payload, dict) and signal.payload.get("pos") == pos):
                continue  # a late decision for an earlier pause
            self.taken_signals.add(signal.id)
            data = {"pos": pos, "step_name": breakpoint_of or name, "name": name,
                    "payload": signal.payload, "signal_id": signal.id}
            if breakpoint_of is not None:
                data["for"] = "breakpoint"
            self.emit(EventType.SIGNAL_RECEIVED, data)
            await self.flush(consume_signal=signal.id)
            return signal.payload
        return _MISSING

    def notify_signal(self, name: str | None = None) -> None:
        """Wake the waits for signal `name` (all waits when None) to look at the inbox."""
        for key, waiters in self.signal_waiters.items():
            if name is None or key == name:
                for woken in waiters:
                    if not woken.done():
                        woken.set_result("signal")

    # -- children -----------------------------------------------------------------------------

    def run_child(self, wf: WorkflowDef, args: Sequence[Any]) -> Coroutine[Any, Any, Any]:
        return self._child(self.next_pos(), wf, list(args))

    async def _child(self, pos: int, wf: WorkflowDef, args: list[Any]) -> Any:
        rec = self.recorded(pos, "child", wf.name)
        if rec is not None and rec.done:
            if rec.child_status != ExecutionStatus.COMPLETED:
                raise ExecutionFailedError(rec.child_id or "", rec.error)
            return rec.output
        child_id = rec.child_id if rec is not None and rec.child_id else f"{self.id}-{pos}"
        if rec is None or rec.child_id is None:
            if self.values_pending:
                await self.flush()
            await self.engine._start_child(wf, args, child_id, parent_id=self.id)
            self.emit(EventType.CHILD_STARTED,
                      {"pos": pos, "step_name": wf.name, "child_id": child_id})
        else:
            await self.engine._ensure_running(child_id)
        status, output, error = await self._wait(pos, "child", self.engine.outcome(child_id),
                                                  child_id=child_id)
        done: dict[str, Any] = {"pos": pos, "step_name": wf.name, "child_id": child_id,
                                "status": str(status), "output": output}
        if error is not None:
            done["error"] = error
        self.emit(EventType.CHILD_COMPLETED, done)
        if status != ExecutionStatus.COMPLETED:
            await self.flush()
            raise ExecutionFailedError(child_id, error)
        return output

    # -- gather -------------------------------------------------------------------------------

    async def gather(self, aws: Sequence[Awaitable[Any]], return_exceptions: bool) -> list[Any]:
        if not aws:
            return []
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._branch(aw)) for aw in aws]
        self.active += len(tasks) - 1
        try:
            if return_exceptions:
                return list(await asyncio.gather(*tasks, return_exceptions=True))
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
            if failed:
                for t in tasks:
                    t.cancel()
                await asyncio.wait(tasks)
                raise failed[0].exception()  # type: ignore[misc]
            return [t.result() for t in tasks]
        finally:
            for t in tasks:
                t.cancel()
            self.active += 1

    async def _branch(self, aw: Awaitable[Any]) -> Any:
        try:
            return await aw
        finally:
            self.branch_done()

    # -- the workflow itself ------------------------------------------------------------------

    async def drive(self) -> None:
        """Run (or resume) the workflow function to its end and journal the outcome."""
        self.started = True
        current.RUN.set(self)
        current.STEP.set(None)
        deadline_handle = None
        if self.deadline is not None:
            deadline_handle = self.engine.clock.call_at(self.deadline, self._on_deadline)
        try:
            try:
                if self.shutdown:
                    raise Suspended("stopped before it started")
                if self.cancel_requested is not None and not self.cancel_when_live:
                    raise asyncio.CancelledError(self.cancel_requested)
                result = await self.wf.fn(self.ctx, *self.args)
                if self.fatal is not None:
                    raise self.fatal
                self._check_replayed()
                output = to_json_value(result, f"result of workflow {self.wf.name!r}")
            except asyncio.CancelledError:
                if self.shutdown or self.fatal is not None:
                    raise Suspended("engine closed") from None
                assert self.task is not None
                self.task.uncancel()
                if self.timed_out:
                    await self._fail(StepTimeoutError(
                        f"workflow {self.wf.name!r} ran past its timeout of {self.wf.timeout}s"))
                else:
                    await self.compensate()
                    await self._finish(ExecutionStatus.CANCELLED, EventType.EXECUTION_CANCELLED,
                                       {"reason": self.cancel_requested or "cancelled"})
            except Exception as exc:
                if isinstance(self.fatal, Suspended | asyncio.CancelledError):
                    raise Suspended("journal write failed") from exc
                await self._fail(self.fatal if isinstance(self.fatal, Exception) else exc)
            else:
                await self._finish(ExecutionStatus.COMPLETED, EventType.EXECUTION_COMPLETED,
                                   {"output": output, "duration_ms": self._elapsed_ms()},
                                   output=output)
        except Suspended:
            with contextlib.suppress(Exception):  # hand over at once (no-op if lease lost)
                await self.store.release(self.id, self.engine.owner)
            if not self.done.done():
                self.done.set_exception(Suspended("execution stopped in this process"))
                self.done.exception()  # mark retrieved: waiters elsewhere may resume it
        finally:
            if deadline_handle is not None:
                deadline_handle.cancel()
            self.engine._forget(self)

    async def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, NonDeterminismError):
            await self.compensate()
        error = error_record(exc)
        if self.wf.dead_letter is not None:
            from treadle.engine.dead_letters import post

            await post(self, self.wf.dead_letter, error)
        await self._finish(ExecutionStatus.FAILED, EventType.EXECUTION_FAILED,
                           {"error": error, "duration_ms": self._elapsed_ms()}, error=error)

    async def _finish(
        self, status: ExecutionStatus, kind: str, data: dict[str, Any], *,
        output: Any = None, error: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.wake_at = None
        self.emit(kind, data)
        await self.flush()
        if status == ExecutionStatus.CANCELLED:
            error = {"type": "Cancelled", "message": data["reason"]}
        if not self.done.done():
            self.done.set_result((status, output, error))

    def _check_replayed(self) -> None:
        unreached = [pos for pos in self.replay if pos >= self._pos]
        if unreached:
            rec = self.replay[min(unreached)]
            raise NonDeterminismError(
                f"execution {self.id} of workflow {self.wf.name!r}: the code returned before "
                f"position {rec.pos} ({rec.kind} {rec.name!r}) that the journal recorded; "
                "the workflow's code changed under a running execution"
            )

    def stop_now(self) -> None:
        """Stop running here without writing anything (the execution stays resumable)."""
        self.shutdown = True
        if self.task is not None and self.started:
            self.task.cancel()

    def cancel(self, reason: str) -> None:
        """Cancel the execution: compensate, then end it cancelled."""
        self.cancel_requested = reason
        if self.task is not None and self.started:
            self.task.cancel(reason)
        elif self.replay:  # resumed but not started: replay first, to know what to undo
            self.cancel_when_live = True

    def _cancel_now(self) -> None:
        self.cancel_when_live = False
        raise asyncio.CancelledError(self.cancel_requested)

    def _on_deadline(self) -> None:
        if self.task is not None and not self.task.done():
            self.timed_out = True
            self.task.cancel()

    def _elapsed_ms(self) -> float:
        return (self.engine.clock.time() - self.created_at) * 1000.0


def check_signal_name(name: str) -> None:
    """Names starting with `treadle.` are Treadle's own (e.g. cross-process cancel requests)."""
    if not name or name.startswith("treadle."):
        raise ValueError(f"signal name {name!r} is reserved or empty: names starting with "
                         "'treadle.' are Treadle's own")


__all__ = ["Outcome", "Run", "TreadleError"]
