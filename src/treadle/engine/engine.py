"""`Engine`: starts, runs, resumes, signals, cancels and inspects executions.

Naming rule, applied everywhere: methods are `async`; `run` is the one synchronous wrapper
(start and wait, for scripts). Everything else is awaited.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from treadle.engine.breakpoints import Breakpoints
from treadle.engine.clock import Clock
from treadle.engine.dead_letters import DeadLetterQueue
from treadle.engine.decorators import Registry, WorkflowDef, default_registry
from treadle.engine.hooks import DebugObserver, Observer, notify
from treadle.engine.queues import Queue
from treadle.engine.run import Outcome, Run, check_signal_name
from treadle.engine.serde import json_copies, to_json_value
from treadle.engine.wakeups import Wakeups
from treadle.errors import (
    ExecutionCancelledError,
    ExecutionFailedError,
    ExecutionNotFoundError,
    JournalConflictError,
    QueueFullError,
    Suspended,
    TreadleError,
    WorkflowVersionError,
)
from treadle.journal import (
    Event,
    EventType,
    Execution,
    ExecutionStatus,
    ExecutionSummary,
    Page,
    Signal,
    project,
)
from treadle.journal.replay import index_positions
from treadle.stores.base import ListQuery, Store, open_store
from treadle.stores.locks import store_lock

logger = logging.getLogger("treadle")
CANCEL_SIGNAL = "treadle.cancel"  # reserved inbox name: a cancel request from another process
# Outcomes of executions that ended here, kept for result(); older ones are read back from the
# store. Few: every full garbage collection scans what they hold (10,000 cost ~10 ms each).
_OUTCOME_CACHE = 1_000


class Handle:
    """A reference to an execution, returned by `Engine.start`."""

    __slots__ = ("created", "engine", "id")

    def __init__(self, engine: Engine, execution_id: str, *, created: bool = True) -> None:
        self.engine = engine
        self.id = execution_id
        self.created = created
        """False when `start` found an existing execution with the same idempotency key."""

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the execution to end; its output, or ExecutionFailed/CancelledError."""
        async with asyncio.timeout(timeout):  # no task of its own, unlike wait_for
            status, output, error = await self.engine.outcome(self.id)
        if status == ExecutionStatus.COMPLETED:
            return output
        if status == ExecutionStatus.CANCELLED:
            raise ExecutionCancelledError(f"execution {self.id} was cancelled")
        raise ExecutionFailedError(self.id, error)

    async def get(self) -> Execution:
        return await self.engine.get(self.id)

    async def signal(self, name: str, payload: Any = None) -> None:
        await self.engine.signal(self.id, name, payload)

    async def cancel(self, reason: str = "cancelled") -> None:
        await self.engine.cancel(self.id, reason)

    def __repr__(self) -> str:
        return f"<Handle {self.id}>"


class Engine:
    """The entry point: one engine per process (or per test), over one store.

    >>> import treadle
    >>> @treadle.step
    ... async def add(a: int, b: int) -> int:
    ...     return a + b
    >>> @treadle.workflow(name="doc-add", registry=treadle.Registry())
    ... async def total(ctx: treadle.Context, xs: list[int]) -> int:
    ...     return await add(xs[0], xs[1])
    >>> treadle.Engine().run(total, [2, 3])
    5
    """

    def __init__(
        self,
        store: str | Store = "memory://",
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        observers: Iterable[Observer] = (),
        debug: bool = False,
        mocks: Mapping[str, Any] | None = None,
        lease_seconds: float = 30.0,
        heartbeat_interval: float | None = None,
        signal_poll_interval: float = 0.5,
        queues: Iterable[Queue] = (),
        owner: str | None = None,
        idle_poll_interval: float = 5.0,
    ) -> None:
        self.store: Store = open_store(store) if isinstance(store, str) else store
        self.registry = registry or default_registry
        self.clock = clock or Clock()
        self.clock.attach(self)
        self.observers: builtins.list[Observer] = builtins.list(observers)
        if debug:
            self.observers.append(DebugObserver())
        self.mocks: dict[str, Any] = dict(mocks or {})
        self.lease_seconds = lease_seconds
        self.heartbeat_interval = heartbeat_interval or max(0.05, lease_seconds / 3)
        self.signal_poll_interval = signal_poll_interval
        self.idle_poll_interval = idle_poll_interval
        """With wake-ups pushed by the store (`treadle.stores.base.Notifier`), the longest a
        worker, a signal wait or `Handle.result()` goes without looking at the store anyway."""
        self.queues: dict[str, Queue] = {q.name: q for q in queues}
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._runs: dict[str, Run] = {}
        self._outcomes: OrderedDict[str, Outcome] = OrderedDict()  # recently finished here
        self.draining = False
        self.work_available = asyncio.Event()
        self._opened = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._wakeups = Wakeups(self)
        self.breakpoints = Breakpoints(self)
        """Pause executions before chosen steps; see `treadle.engine.breakpoints`."""
        self.dlq = DeadLetterQueue(self)
        """Executions of `dead_letter` workflows that failed; see `treadle.engine.dead_letters`."""

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if not self._opened:
            await self.store.open()
            self._opened = True
            await self.breakpoints.load()

    async def close(self) -> None:
        """Stop running executions here (they stay resumable), then close the store."""
        await self.detach()
        await self.store.close()
        self._opened = False

    async def detach(self) -> None:
        """Stop this engine's work in the current event loop and give up its leases."""
        runs = builtins.list(self._runs.values())
        for run in runs:
            run.stop_now()
        for run in runs:
            if run.task is not None:
                with contextlib.suppress(BaseException):
                    await run.task
            with contextlib.suppress(Exception):
                await self.store.release(run.id, self.owner)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(BaseException):
                await self._heartbeat
            self._heartbeat = None
        await self._wakeups.stop()
        self.breakpoints.stop()

    def add_observer(self, observer: Observer) -> None:
        self.observers.append(observer)

    def resolve(self, workflow: WorkflowDef | str) -> WorkflowDef:
        if isinstance(workflow, WorkflowDef):
            return workflow
        if isinstance(workflow, str):
            return self.registry.get(workflow)
        raise TypeError(f"expected a @workflow or a workflow name, got {workflow!r}")

    # -- starting -----------------------------------------------------------------------------

    def run(self, workflow: WorkflowDef | str, *args: Any, **options: Any) -> Any:
        """Start an execution and wait for its result, synchronously (for scripts)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "Engine.run() cannot be called inside a running event loop; "
                "use `handle = await engine.start(...)` then `await handle.result()`"
            )

        async def main() -> Any:
            try:
                handle = await self.start(workflow, *args, **options)
                return await handle.result()
            finally:
                await self.detach()

        return asyncio.run(main())

    async def start(
        self,
        workflow: WorkflowDef | str,
        *args: Any,
        idempotency_key: str | None = None,
        execution_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        start_at: datetime | float | None = None,
        partition_key: str | None = None,
        mocks: Mapping[str, Mapping[str, Any]] | None = None,
        lazy: bool = False,
    ) -> Handle:
        """Start an execution of `workflow(ctx, *args)` and return at once.

        Without `queue` (and `start_at`) it runs in this engine right away. With `queue`, it
        is only enqueued: a worker working that queue (`treadle worker`, `Engine.work`) runs
        it, highest `priority` first; `start_at` (a datetime or epoch seconds) delays it;
        `partition_key` (default: the tenant) is what the queue's `partition_concurrency`
        counts. A queue at its `max_depth` refuses with `QueueFullError`, writing nothing.
        `mocks` makes a mock run: `{step name: {"output": ..., "delay_ms": n}}` — those steps
        return the output after the delay instead of running (journaled `mocked: true`; kept
        in `execution.started`, so a resumed mock run stays mocked).
        With `idempotency_key`, a second start with the same key returns the first execution
        instead of starting another.

        `lazy=True` is for a caller that waits for the result here (an HTTP route answering
        with the pipeline's output): the execution is first written at its first durable
        point — before a step with effects, a wait, or with its end — instead of before it
        starts, so a short execution costs one commit instead of two. Until then it exists
        only in this process: one interrupted before that point leaves no trace, as if it had
        never started. Not with `queue` / `start_at`; with `idempotency_key` the start is
        written first as usual (the key must be checked before anything runs).
        """
        wf = self.resolve(workflow)
        when = start_at.timestamp() if isinstance(start_at, datetime) else start_at
        if lazy and (queue is not None or when is not None):
            raise ValueError("lazy=True runs the execution here at once: not with queue/start_at")
        if queue is None and when is not None:
            queue = "default"
        if queue is not None:
            await self._check_depth(queue)
        run = await self._create(wf, builtins.list(args), execution_id or str(uuid.uuid4()),
                                 idempotency_key=idempotency_key, metadata=metadata,
                                 tenant_id=tenant_id, parent_id=None, queue=queue,
                                 priority=priority, start_at=when,
                                 partition_key=partition_key or tenant_id, mocks=mocks,
                                 lazy=lazy and idempotency_key is None)
        if isinstance(run, Run):
            return Handle(self, run.id)
        return Handle(self, run[0], created=run[1])

    async def _check_depth(self, queue: str) -> None:
        config = self.queues.get(queue)
        if config is None or config.max_depth is None:
            return
        await self.open()
        depth = await self.store.depth(queue)
        if depth >= config.max_depth:
            raise QueueFullError(queue, depth, config.max_depth)

    async def _start_child(
        self, wf: WorkflowDef, args: builtins.list[Any], child_id: str, *, parent_id: str
    ) -> None:
        """Start a child with a deterministic id; if it already exists, make sure it runs."""
        try:
            await self._create(wf, args, child_id, idempotency_key=None, metadata=None,
                               tenant_id=None, parent_id=parent_id)
        except JournalConflictError:
            await self._ensure_running(child_id)

    async def _create(
        self,
        wf: WorkflowDef,
        args: builtins.list[Any],
        execution_id: str,
        *,
        idempotency_key: str | None,
        metadata: Mapping[str, Any] | None,
        tenant_id: str | None,
        parent_id: str | None,
        queue: str | None = None,
        priority: int = 0,
        start_at: float | None = None,
        partition_key: str | None = None,
        seed: Sequence[Event] = (),
        mocks: Mapping[str, Mapping[str, Any]] | None = None,
        lazy: bool = False,
    ) -> Run | tuple[str, bool]:
        await self.open()
        now = self.clock.time()
        what = f"input of workflow {wf.name!r}"
        # A lazy start writes its `execution.started` later: the run gets its own copy of the
        # arguments, so that nothing the workflow does to them can reach the journal.
        args_json, run_args = json_copies(args, what) if lazy else (to_json_value(args, what),) * 2
        data: dict[str, Any] = {"workflow": wf.name, "version": wf.version, "args": args_json}
        if idempotency_key is not None:
            data["idempotency_key"] = idempotency_key
        if parent_id is not None:
            data["parent_id"] = parent_id
        if metadata:
            data["metadata"] = to_json_value(dict(metadata), "metadata")
        if tenant_id is not None:
            data["tenant_id"] = tenant_id
        if mocks:
            data["mocks"] = to_json_value({k: dict(v) for k, v in mocks.items()}, "mocks")
        if queue is not None:
            data.update(queue=queue, priority=priority)
            if start_at is not None:
                data["start_at"] = start_at
        deadline = None if wf.timeout is None else (start_at or now) + wf.timeout
        if deadline is not None:
            data["deadline"] = deadline
        started = Event(execution_id, 1, EventType.EXECUTION_STARTED, data, now)
        events = [started, *(Event(execution_id, seq, ev.type, ev.data, now)
                             for seq, ev in enumerate(seed, start=2))]
        enqueue = queue is not None
        row = ExecutionSummary(
            id=execution_id, workflow=wf.name, version=wf.version,
            status=ExecutionStatus.PENDING if enqueue else ExecutionStatus.RUNNING,
            created_at=now, updated_at=now, idempotency_key=idempotency_key,
            parent_id=parent_id, tenant_id=tenant_id, queue=queue or "default",
            priority=priority, wake_at=start_at, partition_key=partition_key,
            owner=None if enqueue else self.owner,
            lease_until=None if enqueue else time.time() + self.lease_seconds,
            last_seq=events[-1].seq,
        )
        if lazy:  # written by the run's first flush (`Run.unborn`)
            created = True
        else:
            stored, created = await self.store.create(row, events)
            if not created:
                return stored.id, False
        if enqueue:
            if self.observers:
                notify(self.observers, started)
            self.work_available.set()
            return execution_id, True
        if self.observers:
            for event in events:
                notify(self.observers, event)
        run = Run(self, wf, execution_id, run_args, seq=events[-1].seq,
                  replay=index_positions(events) if seed else {},
                  status=ExecutionStatus.RUNNING, deadline=deadline, created_at=now,
                  mocks=data.get("mocks"), tenant_id=tenant_id,
                  unborn=(row, events) if lazy else None)
        self._launch(run)
        return run

    def _launch(self, run: Run) -> None:
        self._runs[run.id] = run
        run.task = asyncio.get_running_loop().create_task(
            run.drive(), name=f"treadle:{run.wf.name}:{run.id}"
        )
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._heartbeat_loop(), name="treadle:heartbeat"
            )

    def _forget(self, run: Run) -> None:
        if self._runs.get(run.id) is run:
            del self._runs[run.id]
            self.work_available.set()
        if run.done.done() and run.done.exception() is None:
            self._outcomes[run.id] = run.done.result()
            while len(self._outcomes) > _OUTCOME_CACHE:
                self._outcomes.popitem(last=False)

    # -- resuming -----------------------------------------------------------------------------

    async def recover(self, *, limit: int = 1000) -> builtins.list[Handle]:
        """Resume every active execution whose lease is free or expired (dead owners).

        Executions of workflows (or versions) not loaded here are left for another process
        and logged.
        """
        await self.open()
        rows = await self._claim(limit=limit)
        handles = []
        for row in rows:
            try:
                await self._resume(row)
            except TreadleError as exc:
                logger.warning("cannot resume execution %s: %s", row.id, exc,
                               extra={"execution_id": row.id, "workflow": row.workflow})
                await self.store.release(row.id, self.owner)
                continue
            handles.append(Handle(self, row.id))
        return handles

    async def resume(self, execution_id: str) -> Handle:
        """Resume one execution now, or raise why it cannot be (not found, leased, version)."""
        await self.open()
        if execution_id in self._runs:
            return Handle(self, execution_id)
        rows = await self._claim(execution_id)
        if not rows:
            row = await self.store.get(execution_id)
            if row is None:
                raise ExecutionNotFoundError(f"no execution {execution_id}")
            if row.status.is_terminal:
                return Handle(self, execution_id)
            raise TreadleError(
                f"execution {execution_id} is leased by {row.owner} until {row.lease_until}"
            )
        try:
            await self._resume(rows[0])
        except BaseException:
            await self.store.release(execution_id, self.owner)
            raise
        return Handle(self, execution_id)

    async def _ensure_running(self, execution_id: str) -> None:
        """Resume an execution if nobody holds it (used for children of resumed parents)."""
        if execution_id in self._runs:
            return
        for row in await self._claim(execution_id):
            try:
                await self._resume(row)
            except BaseException:  # e.g. its workflow is not loaded here: hand it back
                await self.store.release(execution_id, self.owner)
                raise

    async def _claim(
        self, execution_id: str | None = None, *, limit: int = 1
    ) -> builtins.list[ExecutionSummary]:
        """Take a fresh lease on free or expired active executions (or on that one)."""
        now = time.time()
        return await self.store.claim(self.owner, now=now, lease_until=now + self.lease_seconds,
                                      limit=limit, execution_id=execution_id)

    async def work(
        self,
        *,
        queues: Sequence[str] = ("default",),
        concurrency: int = 16,
        poll_interval: float = 0.5,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Run as a worker until `stop` is set, then drain; see `treadle.engine.worker`."""
        from treadle.engine.worker import Worker

        await Worker(self, queues=queues, concurrency=concurrency,
                     poll_interval=poll_interval).run(stop or asyncio.Event())

    async def _resume(self, row: ExecutionSummary, cancel: str | None = None) -> None:
        if cancel is None:
            cancel = _cancel_reason(await self.store.signals(row.id))
        events = await self.store.events(row.id)
        if not events or events[0].type != EventType.EXECUTION_STARTED:
            raise TreadleError(f"execution {row.id} has no execution.started event")
        started = events[0].data
        wf = self.registry.get(started["workflow"], started.get("version"), exact=True)
        view = project(row.id, events)
        if view.status.is_terminal:
            return
        run = Run(self, wf, row.id, view.args, seq=events[-1].seq,
                  replay=index_positions(events), status=view.status,
                  deadline=started.get("deadline"), created_at=events[0].created_at,
                  mocks=started.get("mocks"), tenant_id=row.tenant_id)
        if view.status == ExecutionStatus.PENDING:  # a claimed enqueued execution starts now
            run.status = ExecutionStatus.RUNNING
        run.persisted_status = row.status
        if cancel is not None:
            run.cancel_requested, run.cancel_when_live = cancel, True
        self._launch(run)

    async def replay(
        self,
        execution_id: str,
        mode: str = "exact",
        *,
        modifications: Mapping[str, Any] | None = None,
        from_step: str | None = None,
        record_as: str = "replay",
    ) -> Handle:
        """Run an execution again as a new one, linked to it (`metadata.replay_of`).

        - `exact`: the same workflow and input.
        - `modified`: `modifications` deep-merged into the input (a single JSON object).
        - `step_from`: the steps before the first call of step `from_step` return their
          recorded outputs (their events are copied into the new journal); execution is live
          from that step on.
        """
        original = await self.get(execution_id)
        events = await self.store.events(execution_id)
        try:
            wf = self.registry.get(original.workflow, original.version)
        except WorkflowVersionError:  # replay on the code loaded now (e.g. a fix)
            wf = self.registry.get(original.workflow)
        args = builtins.list(original.args)
        metadata = {"replay_of": execution_id, "replay_mode": mode, "record_as": record_as}
        seed: builtins.list[Event] = []
        if mode == "modified":
            if len(args) != 1 or not isinstance(args[0], dict):
                raise ValueError("mode 'modified' needs an execution whose input is one object")
            args = [deep_merge(args[0], dict(modifications or {}))]
        elif mode == "step_from":
            seed = _events_before_step(events, from_step)
        elif mode != "exact":
            raise ValueError(f"unknown replay mode {mode!r}: exact, modified or step_from")
        run = await self._create(wf, args, str(uuid.uuid4()), idempotency_key=None,
                                 metadata=metadata, tenant_id=events[0].data.get("tenant_id"),
                                 parent_id=None, seed=seed)
        return Handle(self, run.id if isinstance(run, Run) else run[0])

    # -- interacting --------------------------------------------------------------------------

    async def signal(self, execution_id: str, name: str, payload: Any = None) -> None:
        """Send a signal; it waits in the inbox until the workflow asks for it."""
        check_signal_name(name)
        await self.open()
        await self.persist(execution_id)
        row = await self.store.get(execution_id)
        if row is None:
            raise ExecutionNotFoundError(f"no execution {execution_id}")
        if row.status.is_terminal:
            raise TreadleError(f"execution {execution_id} is {row.status}; it takes no signals")
        value = to_json_value(payload, f"payload of signal {name!r}")
        await self.store.send_signal(execution_id, name, value, self.clock.time())
        run = self._runs.get(execution_id)
        if run is not None:
            run.notify_signal(name)

    async def cancel(self, execution_id: str, reason: str = "cancelled") -> bool:
        """Cancel an execution: completed saga steps are compensated, then it ends cancelled.

        Returns True once it has ended here. When another live process runs it, the request
        goes to its inbox and that process cancels it — at once on stores that push wake-ups
        (PostgreSQL, Redis, this process's memory/SQLite), else within `signal_poll_interval`;
        a process that resumes it later honours the request too: then False.
        """
        await self.open()
        run = self._runs.get(execution_id)
        if run is None:
            row = await self.store.get(execution_id)
            if row is None:
                raise ExecutionNotFoundError(f"no execution {execution_id}")
            if row.status.is_terminal:
                return True
            rows = await self._claim(execution_id)
            if not rows:
                await self.store.send_signal(execution_id, CANCEL_SIGNAL, {"reason": reason},
                                             self.clock.time())
                return False
            try:
                await self._resume(rows[0], cancel=reason)
            except BaseException:
                await self.store.release(execution_id, self.owner)
                raise
            run = self._runs.get(execution_id)
            if run is None:
                return True
        else:
            run.cancel(reason)
        with contextlib.suppress(Exception):
            await asyncio.shield(run.done)
        return True

    async def persist(self, execution_id: str) -> None:
        """Write a lazily started execution (`start(lazy=True)`) running here now, so that
        its id can be handed out; a no-op for any other."""
        run = self._runs.get(execution_id)
        if run is not None and run.unborn is not None:
            await run.flush()

    async def outcome(self, execution_id: str) -> Outcome:
        """Wait until an execution ends (here or in any process) and return how it ended."""
        if execution_id in self._outcomes:
            return self._outcomes[execution_id]
        run = self._runs.get(execution_id)
        if run is not None:
            try:
                return await asyncio.shield(run.done)
            except Suspended:
                pass
        delay = 0.01
        self._wakeups.start()  # a store that pushes `done:<id>` wakes us at once
        while True:
            with self._wakeups.watching(execution_id) as finished:
                row = await self.store.get(execution_id)
                if row is None:
                    raise ExecutionNotFoundError(f"no execution {execution_id}")
                if row.status.is_terminal:
                    view = await self.get(execution_id)
                    return view.status, view.output, view.error
                run = self._runs.get(execution_id)
                if run is not None:
                    with contextlib.suppress(Suspended):
                        return await asyncio.shield(run.done)
                if self._wakeups.live:
                    await asyncio.wait({finished}, timeout=self.idle_poll_interval)
                else:
                    await asyncio.wait({finished}, timeout=delay)
                    delay = min(delay * 2, 0.5)

    def lock(
        self, name: str, *, timeout: float | None = 10.0
    ) -> AbstractAsyncContextManager[None]:
        """A lock shared by every process using this store: `async with engine.lock("name"):`.

        Raises `LockTimeoutError` when not acquired within `timeout` seconds (None: wait for
        ever). PostgreSQL advisory locks, Redis locks (expiring `lease_seconds` after a holder
        that vanished), file locks beside a SQLite database, in-process on memory; see
        `treadle.stores.locks`.
        """
        return store_lock(self.store, name, timeout=timeout, ttl=self.lease_seconds)

    # -- inspecting ---------------------------------------------------------------------------

    async def get(self, execution_id: str) -> Execution:
        """The execution rebuilt from its journal: status, input, output, error, steps."""
        await self.open()
        events = await self.store.events(execution_id)
        if not events:
            raise ExecutionNotFoundError(f"no execution {execution_id}")
        return project(execution_id, events)

    async def events(self, execution_id: str, *, after: int = 0) -> builtins.list[Event]:
        """The journal of an execution, in seq order."""
        await self.open()
        events = await self.store.events(execution_id, after=after)
        if not events and after == 0:
            raise ExecutionNotFoundError(f"no execution {execution_id}")
        return events

    async def list(
        self,
        *,
        workflow: str | None = None,
        status: ExecutionStatus | str | None = None,
        since: float | None = None,
        until: float | None = None,
        parent_id: str | None = None,
        tenant_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ExecutionSummary]:
        """Executions newest first, filtered; pass `page.next_cursor` for the next page."""
        await self.open()
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        query = ListQuery(
            workflow=workflow, status=None if status is None else ExecutionStatus(status),
            created_after=since, created_before=until, parent_id=parent_id,
            tenant_id=tenant_id, limit=limit, cursor=cursor,
        )
        return await self.store.list(query)

    async def prune(self, older_than: timedelta | float) -> int:
        """Delete executions that finished more than `older_than` (seconds or timedelta) ago.

        Records past their own expiry (dead letters past retention, expired breakpoints) go
        too. Returns how many executions were deleted.
        """
        await self.open()
        seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
        self._outcomes.clear()
        pruned = await self.store.prune(self.clock.time() - seconds)
        await self.store.prune_records(self.clock.time())
        return pruned

    # -- background ---------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """Renew the leases of executions running here; notice signals sent by other processes.

        Signals sent through this engine wake their waits at once. When the store pushes
        wake-ups (`treadle.stores.base.Notifier`), so do signals and cancel requests sent from
        elsewhere; otherwise the inbox of waits whose signal may come from elsewhere is looked
        at every `signal_poll_interval` seconds, and cancel requests at each heartbeat.
        """
        wakeups = self._wakeups
        wakeups.start()
        nudge = wakeups.nudge = asyncio.Event()
        next_renewal = time.monotonic() + self.heartbeat_interval
        while self._runs:
            pushed = wakeups.live
            tick = self.heartbeat_interval if pushed else \
                min(self.heartbeat_interval, self.signal_poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudge.wait(),
                                       max(0.0, min(tick, next_renewal - time.monotonic())))
            nudge.clear()
            dirty = wakeups.take_dirty()
            try:
                renewal = time.monotonic() >= next_renewal
                if renewal:
                    next_renewal = time.monotonic() + self.heartbeat_interval
                    await self.store.renew(self.owner, builtins.list(self._runs),
                                           time.time() + self.lease_seconds)
                for run in builtins.list(self._runs.values()):
                    waiting = {name for name, futures in run.signal_waiters.items() if futures}
                    if not (renewal or run.id in dirty or (waiting and not pushed)):
                        continue  # running executions look for cancel requests per heartbeat
                    inbox = await self.store.signals(run.id)
                    reason = _cancel_reason(inbox)
                    if reason is not None and run.cancel_requested is None:
                        run.cancel(reason)
                    elif waiting and any(s.name in waiting for s in inbox):
                        run.notify_signal()
            except Exception:
                wakeups.dirty.update(dirty)  # look at those inboxes again next time
                logger.exception("heartbeat failed; will retry")


def _cancel_reason(inbox: Iterable[Signal]) -> str | None:
    for signal in inbox:
        if signal.name == CANCEL_SIGNAL:
            payload = signal.payload if isinstance(signal.payload, dict) else {}
            return str(payload.get("reason", "cancelled"))
    return None


_REPLAYED = frozenset({
    EventType.STEP_STARTED, EventType.STEP_INPUT_RECORDED, EventType.STEP_OUTPUT_RECORDED,
    EventType.STEP_COMPLETED, EventType.STEP_FAILED, EventType.STEP_SKIPPED,
    EventType.RETRY_ATTEMPTED, EventType.CONDITIONAL_ROUTED, EventType.TIMER_STARTED,
    EventType.TIMER_FIRED, EventType.SIGNAL_RECEIVED, EventType.CHILD_STARTED,
    EventType.CHILD_COMPLETED,
})


def _events_before_step(events: Sequence[Event], step: str | None) -> builtins.list[Event]:
    """The journaled calls before the first call of `step`, to seed a `step_from` replay."""
    target = next((ev.data["pos"] for ev in events
                   if ev.type == EventType.STEP_STARTED and ev.data.get("step_name") == step
                   and isinstance(ev.data.get("pos"), int)), None)
    if target is None:
        names = sorted({str(ev.data.get("step_name")) for ev in events
                        if ev.type == EventType.STEP_STARTED})
        raise ValueError(f"execution has no step {step!r} to replay from (steps: "
                         f"{', '.join(names) or 'none'})")
    return [ev for ev in events if ev.type in _REPLAYED
            and isinstance(ev.data.get("pos"), int) and ev.data["pos"] < target]


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` merged into `base`: nested objects merge, everything else replaces."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
