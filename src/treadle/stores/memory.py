"""The in-memory store: the default for the library and the backend of the unit tests.

Everything lives in one process and dies with it. It follows the same contract as the durable
backends (it passes the same conformance suite), so tests written against it hold elsewhere.
Wake-ups (`Notifier`) and locks (`Locker`) reach every engine sharing the store instance.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from treadle.errors import JournalConflictError
from treadle.journal import ACTIVE_STATUSES, Event, ExecutionStatus, ExecutionSummary, Page, Signal
from treadle.stores.base import (
    ClaimLimits,
    Events,
    ListQuery,
    Record,
    RecordQuery,
    RowUpdate,
    Signals,
    Summaries,
    choose_within_limits,
    decode_cursor,
    paginate,
    select_records,
)

if TYPE_CHECKING:
    from treadle.stores.notify import LocalListener


class MemoryStore:
    """A `Store` held in dictionaries, safe to share between threads."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._rows: dict[str, ExecutionSummary] = {}
        self._journals: dict[str, list[Event]] = {}
        self._keys: dict[str, str] = {}
        self._inbox: dict[str, list[Signal]] = {}
        self._signal_ids = 0
        self._records: dict[tuple[str, str], Record] = {}
        self._lock = threading.Lock()
        # imported here: declaring workflows (which imports this module) must not load asyncio
        from treadle.stores.locks import LocalLocks
        from treadle.stores.notify import LocalHub

        self._hub = LocalHub()
        self._locks = LocalLocks()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create(
        self, row: ExecutionSummary, events: Sequence[Event]
    ) -> tuple[ExecutionSummary, bool]:
        with self._lock:
            key = row.idempotency_key
            if key is not None and key in self._keys:
                return replace(self._rows[self._keys[key]]), False
            if row.id in self._rows:
                raise JournalConflictError(f"execution {row.id} already exists")
            stored = replace(row, last_seq=events[-1].seq if events else 0)
            self._rows[row.id] = stored
            self._journals[row.id] = list(events)
            if key is not None:
                self._keys[key] = row.id
            self._wake_workers(stored)
            return replace(stored), True

    async def append(
        self,
        execution_id: str,
        events: Sequence[Event],
        *,
        expected_seq: int,
        owner: str | None,
        update: RowUpdate | None = None,
        consume_signal: int | None = None,
    ) -> None:
        with self._lock:
            row = self._rows.get(execution_id)
            if row is None:
                raise JournalConflictError(f"execution {execution_id} does not exist")
            if row.last_seq != expected_seq or row.owner != owner:
                raise JournalConflictError(
                    f"execution {execution_id}: journal at seq {row.last_seq} owned by "
                    f"{row.owner!r}, writer expected seq {expected_seq} as {owner!r}"
                )
            journal = self._journals[execution_id]
            for offset, ev in enumerate(events, start=1):
                if ev.seq != expected_seq + offset:
                    raise JournalConflictError(f"event seq {ev.seq} does not follow the journal")
            journal.extend(events)
            if events:
                row.last_seq = events[-1].seq
                row.updated_at = events[-1].created_at
            if update is not None:
                if update.status.is_terminal and not row.status.is_terminal:
                    self._hub.publish("done", execution_id)
                row.status = update.status
                row.wake_at = update.wake_at
                row.finished_at = update.finished_at
                if update.error is not None:
                    row.error = update.error
            if consume_signal is not None:
                inbox = self._inbox.get(execution_id, [])
                self._inbox[execution_id] = [s for s in inbox if s.id != consume_signal]

    async def get(self, execution_id: str) -> ExecutionSummary | None:
        row = self._rows.get(execution_id)
        return None if row is None else replace(row)

    async def events(
        self, execution_id: str, *, after: int = 0, limit: int | None = None
    ) -> Events:
        journal = self._journals.get(execution_id, [])
        end = None if limit is None else after + limit
        return [_copy(ev) for ev in journal[after:end]]

    async def list(self, query: ListQuery) -> Page[ExecutionSummary]:
        with self._lock:
            rows = sorted(self._rows.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        if query.cursor:
            after = decode_cursor(query.cursor)
            rows = [r for r in rows if (r.created_at, r.id) < after]
        picked: Summaries = []
        for row in rows:
            if _matches(row, query):
                picked.append(replace(row))
                if len(picked) > query.limit:
                    break
        return paginate(picked, query.limit)

    async def claim(
        self,
        owner: str,
        *,
        now: float,
        lease_until: float,
        limit: int,
        execution_id: str | None = None,
        due_only: bool = False,
        queues: Sequence[str] | None = None,
        limits: ClaimLimits | None = None,
    ) -> Summaries:
        with self._lock:
            rows = list(self._rows.values())
            candidates = sorted(
                (r for r in rows if self._claimable(r, now, execution_id, due_only, queues)),
                key=lambda r: (-r.priority, r.created_at),
            )
            running = [(r.queue, r.workflow, r.partition_key) for r in rows
                       if r.owner is not None and (r.lease_until or 0) >= now
                       and r.status in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)]
            window = now - (limits.rate_window if limits else 0.0)
            recent = Counter(r.queue for r in rows
                             if r.started_at is not None and r.started_at >= window)
            chosen = choose_within_limits(
                [(r.id, r.queue, r.workflow, r.partition_key) for r in candidates],
                running, recent, limits, limit,
            )
            claimed: Summaries = []
            for ident in chosen:
                row = self._rows[ident]
                row.owner, row.lease_until = owner, lease_until
                if row.started_at is None:
                    row.started_at = now
                if row.status == ExecutionStatus.PENDING:
                    row.status = ExecutionStatus.RUNNING
                claimed.append(replace(row))
            return claimed

    def _claimable(
        self, row: ExecutionSummary, now: float, execution_id: str | None, due_only: bool,
        queues: Sequence[str] | None,
    ) -> bool:
        return (
            row.status in ACTIVE_STATUSES
            and (row.owner is None or (row.lease_until or 0) < now)
            and (execution_id is None or row.id == execution_id)
            and (queues is None or row.queue in queues)
            and (not due_only or self._is_due(row, now))
        )

    async def depth(self, queue: str) -> int:
        with self._lock:
            return sum(1 for r in self._rows.values()
                       if r.queue == queue and r.status == ExecutionStatus.PENDING)

    def _is_due(self, row: ExecutionSummary, now: float) -> bool:
        if row.status != ExecutionStatus.SUSPENDED:
            return row.wake_at is None or row.wake_at <= now  # a pending start_at
        if row.wake_at is not None and row.wake_at <= now:
            return True
        return bool(self._inbox.get(row.id))

    async def renew(self, owner: str, execution_ids: Sequence[str], lease_until: float) -> int:
        renewed = 0
        with self._lock:
            for execution_id in execution_ids:
                row = self._rows.get(execution_id)
                if row is not None and row.owner == owner:
                    row.lease_until = lease_until
                    renewed += 1
        return renewed

    async def release(self, execution_id: str, owner: str) -> None:
        with self._lock:
            row = self._rows.get(execution_id)
            if row is not None and row.owner == owner:
                row.owner = None
                row.lease_until = None
                self._wake_workers(row)

    async def send_signal(self, execution_id: str, name: str, payload: Any, now: float) -> int:
        with self._lock:
            if execution_id not in self._rows:
                raise JournalConflictError(f"execution {execution_id} does not exist")
            self._signal_ids += 1
            signal = Signal(self._signal_ids, execution_id, name, copy.deepcopy(payload), now)
            self._inbox.setdefault(execution_id, []).append(signal)
            self._hub.publish("signal", execution_id)
            self._wake_workers(self._rows[execution_id])
            return signal.id

    async def signals(self, execution_id: str) -> Signals:
        with self._lock:
            inbox = list(self._inbox.get(execution_id, []))
        return [replace(s, payload=copy.deepcopy(s.payload)) for s in inbox]

    async def prune(self, finished_before: float) -> int:
        with self._lock:
            doomed = [
                r.id
                for r in self._rows.values()
                if r.status.is_terminal and r.finished_at is not None
                and r.finished_at < finished_before
            ]
            for execution_id in doomed:
                row = self._rows.pop(execution_id)
                self._journals.pop(execution_id, None)
                self._inbox.pop(execution_id, None)
                if row.idempotency_key is not None:
                    self._keys.pop(row.idempotency_key, None)
            return len(doomed)

    # -- wake-ups and locks -------------------------------------------------------------------

    def listen(self) -> LocalListener:
        return self._hub.listen(complete=True)

    async def next_wake(self, queues: Sequence[str] | None, now: float) -> float | None:
        times: list[float] = []
        with self._lock:
            for r in self._rows.values():
                if r.status not in ACTIVE_STATUSES or (queues is not None
                                                       and r.queue not in queues):
                    continue
                if r.owner is not None and r.lease_until is not None and r.lease_until >= now:
                    times.append(r.lease_until)
                elif r.owner is None and r.wake_at is not None and r.wake_at > now:
                    times.append(r.wake_at)
        return min(times, default=None)

    def lock(
        self, name: str, *, timeout: float | None, ttl: float
    ) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(name, timeout)

    def _wake_workers(self, row: ExecutionSummary) -> None:
        """Tell workers of the row's queue when it is (or will become) claimable by them."""
        if row.owner is not None or row.status not in ACTIVE_STATUSES:
            return
        if row.wake_at is not None or row.status != ExecutionStatus.SUSPENDED \
                or self._inbox.get(row.id):
            self._hub.publish("work", row.queue, row.wake_at)

    # -- records ------------------------------------------------------------------------------

    async def put_record(self, record: Record, *, create_only: bool = False) -> bool:
        with self._lock:
            address = (record.kind, record.key)
            if create_only and address in self._records:
                return False
            self._records[address] = replace(record, data=copy.deepcopy(record.data))
            return True

    async def get_record(self, kind: str, key: str) -> Record | None:
        with self._lock:
            found = self._records.get((kind, key))
            return None if found is None else replace(found, data=copy.deepcopy(found.data))

    async def list_records(self, query: RecordQuery) -> Page[Record]:
        with self._lock:
            page = select_records(self._records.values(), query)
        return Page([replace(r, data=copy.deepcopy(r.data)) for r in page.items], page.next_cursor)

    async def delete_record(self, kind: str, key: str) -> bool:
        with self._lock:
            return self._records.pop((kind, key), None) is not None

    async def prune_records(self, now: float, kind: str | None = None) -> int:
        with self._lock:
            doomed = [address for address, r in self._records.items()
                      if r.expires_at is not None and r.expires_at <= now
                      and (kind is None or r.kind == kind)]
            for address in doomed:
                del self._records[address]
            return len(doomed)


def _matches(row: ExecutionSummary, q: ListQuery) -> bool:
    return (
        (q.workflow is None or row.workflow == q.workflow)
        and (q.status is None or row.status == q.status)
        and (q.created_after is None or row.created_at >= q.created_after)
        and (q.created_before is None or row.created_at < q.created_before)
        and (q.parent_id is None or row.parent_id == q.parent_id)
        and (q.tenant_id is None or row.tenant_id == q.tenant_id)
    )


def _copy(ev: Event) -> Event:
    """Hand out copies so a reader's mutation cannot rewrite history."""
    return Event(ev.execution_id, ev.seq, ev.type, copy.deepcopy(ev.data), ev.created_at)
