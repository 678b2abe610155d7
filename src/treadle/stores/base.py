"""The `Store` protocol: the only way the engine talks to storage.

A backend keeps three things per execution: its journal (events with a gap-free `seq`), one
summary row (status, lease, wake-up time — an index over the journal, never the truth), and a
signal inbox. The journal has a single writer at a time, the lease holder: `append` takes the
seq the writer expects to follow and fails with `JournalConflictError` when another writer got
there first, so two processes can never interleave events of one execution.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from treadle.journal import Event, ExecutionStatus, ExecutionSummary, Page, Signal

# Aliases for annotations inside classes whose `list` method shadows the builtin.
Events = list[Event]
Summaries = list[ExecutionSummary]
Signals = list[Signal]
Ids = list[str]
Records = list["Record"]


@dataclass(frozen=True, slots=True)
class RowUpdate:
    """Changes to an execution's summary row, applied atomically with an append.

    `wake_at` is stored as given (None clears it). `error` is a short message for listings.
    """

    status: ExecutionStatus
    wake_at: float | None = None
    error: str | None = None
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class ClaimLimits:
    """Global limits on what may run at once, enforced atomically when work is claimed.

    Counted over every worker sharing the store: an execution counts as running while a live
    worker leases it and it is pending or running (waiting for a timer or signal does not).
    """

    queue_concurrency: Mapping[str, int] = field(default_factory=dict)
    partition_concurrency: Mapping[str, int] = field(default_factory=dict)
    workflow_concurrency: Mapping[str, int] = field(default_factory=dict)
    queue_rate: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    """queue → (starts, seconds): at most that many first starts per sliding period."""

    @property
    def rate_window(self) -> float:
        return max((period for _, period in self.queue_rate.values()), default=0.0)


Candidate = tuple[str, str, str, str | None]
"""(execution id, queue, workflow, partition key) of a claimable execution."""


def choose_within_limits(
    candidates: Sequence[Candidate],
    running: Sequence[tuple[str, str, str | None]],
    recent_starts: Mapping[str, int],
    limits: ClaimLimits | None,
    limit: int,
) -> list[str]:
    """Pick claimable executions, in order, without exceeding `limits`.

    `running` lists (queue, workflow, partition key) of what runs now; `recent_starts` how
    many executions of each queue started within that queue's rate period.
    """
    if limits is None:
        return [c[0] for c in candidates[:limit]]
    per_queue: Counter[str] = Counter(q for q, _, _ in running)
    per_workflow: Counter[str] = Counter(w for _, w, _ in running)
    per_partition: Counter[tuple[str, str | None]] = Counter((q, p) for q, _, p in running)
    started: Counter[str] = Counter(recent_starts)
    chosen: list[str] = []
    for ident, queue, workflow, partition in candidates:
        if len(chosen) >= limit:
            break
        if per_queue[queue] >= limits.queue_concurrency.get(queue, 1 << 62):
            continue
        if per_workflow[workflow] >= limits.workflow_concurrency.get(workflow, 1 << 62):
            continue
        if partition is not None and per_partition[(queue, partition)] >= \
                limits.partition_concurrency.get(queue, 1 << 62):
            continue
        rate = limits.queue_rate.get(queue)
        if rate is not None and started[queue] >= rate[0]:
            continue
        chosen.append(ident)
        per_queue[queue] += 1
        per_workflow[workflow] += 1
        per_partition[(queue, partition)] += 1
        started[queue] += 1
    return chosen


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters for `Store.list`: all optional, newest first, cursor-paginated."""

    workflow: str | None = None
    status: ExecutionStatus | None = None
    created_after: float | None = None
    created_before: float | None = None
    parent_id: str | None = None
    tenant_id: str | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A small JSON document kept beside the journals, addressed by (`kind`, `key`).

    The control plane keeps its own state in records: dead letters, breakpoints, tenants,
    users, API keys, the audit log. `tenant_id` scopes a record for listing; `expires_at`
    (epoch seconds) marks it for `prune_records`, which is the only place a store looks at it.
    """

    kind: str
    key: str
    data: Mapping[str, Any]
    created_at: float
    tenant_id: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """Filters for `Store.list_records`: newest first (created_at, then key), cursor-paginated.

    `tenant_id` None means every tenant; `key_prefix` keeps keys that start with it.
    """

    kind: str
    tenant_id: str | None = None
    key_prefix: str | None = None
    limit: int = 50
    cursor: str | None = None


@runtime_checkable
class Store(Protocol):
    """Durable storage for executions. Every backend passes `tests/stores` unchanged."""

    url: str

    async def open(self) -> None:
        """Connect and apply migrations. Idempotent."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def create(
        self, row: ExecutionSummary, events: Sequence[Event]
    ) -> tuple[ExecutionSummary, bool]:
        """Insert a new execution with its first events, atomically.

        When `row.idempotency_key` is already taken, nothing is written and the existing row is
        returned with `False`.
        """

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
        """Append events (whose seqs follow `expected_seq`) in one transaction.

        The store takes ownership of the events: callers must not mutate them afterwards.

        Fails with `JournalConflictError` unless the journal's last seq is `expected_seq` and
        the row's owner is `owner`. Applies `update` to the row and marks the inbox signal
        `consume_signal` as consumed in the same transaction.
        """

    async def get(self, execution_id: str) -> ExecutionSummary | None:
        """The summary row, or None."""

    async def events(
        self, execution_id: str, *, after: int = 0, limit: int | None = None
    ) -> Events:
        """The journal of one execution in seq order, from seq `after + 1`."""

    async def list(self, query: ListQuery) -> Page[ExecutionSummary]:
        """Summary rows matching `query`, newest first."""

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
        """Take the lease on active executions whose lease is free or expired.

        Highest priority first, then oldest. With `execution_id`, only that one; with `queues`,
        only executions of those queues. With `due_only`, an execution with a wake-up time
        (a suspended timer, a pending `start_at`) qualifies only once it has come, and a
        suspended one without also when a signal waits in its inbox. `limits` are checked
        against what runs at that moment, atomically with the claim (see
        `choose_within_limits`). A claimed pending execution becomes running and gets its
        `started_at`.
        """

    async def depth(self, queue: str) -> int:
        """How many executions wait in `queue` (pending, not yet claimed)."""

    async def renew(self, owner: str, execution_ids: Sequence[str], lease_until: float) -> int:
        """Extend the leases `owner` still holds; returns how many were renewed."""

    async def release(self, execution_id: str, owner: str) -> None:
        """Give up the lease (no-op when `owner` does not hold it)."""

    async def send_signal(self, execution_id: str, name: str, payload: Any, now: float) -> int:
        """Put a signal in the inbox; returns its id (ids increase per store)."""

    async def signals(self, execution_id: str) -> Signals:
        """Unconsumed signals of an execution, oldest first."""

    async def prune(self, finished_before: float) -> int:
        """Delete finished executions (rows, journals, inboxes) older than the cutoff."""

    async def put_record(self, record: Record, *, create_only: bool = False) -> bool:
        """Insert or replace a record; returns True when written.

        With `create_only`, an existing record with the same kind and key is left as it is and
        the call returns False (a compare-and-set for "create once").
        """

    async def get_record(self, kind: str, key: str) -> Record | None:
        """The record, or None."""

    async def list_records(self, query: RecordQuery) -> Page[Record]:
        """Records of one kind matching `query`, newest first."""

    async def delete_record(self, kind: str, key: str) -> bool:
        """Delete a record; returns whether it existed."""

    async def prune_records(self, now: float, kind: str | None = None) -> int:
        """Delete records (of `kind`, or of every kind) whose `expires_at` is at or before now."""


ANY_TOPIC = "*"
"""The topic of a `Wakeup` that means "wake-ups may have been missed: look at everything"."""


@dataclass(frozen=True, slots=True)
class Wakeup:
    """A hint pushed by a store that something may be ready; receivers re-read the store.

    Topics: `work:<queue>` — an execution of that queue became claimable (at `at`, when given:
    a durable timer or a delayed start); `signal:<execution id>` — a signal arrived in its
    inbox; `done:<execution id>` — it finished; `*` (`ANY_TOPIC`) — wake-ups may have been
    lost (a listener (re)connected): look at everything again. A wake-up is advisory only:
    one may arrive for nothing, and the store stays the truth.
    """

    topic: str
    at: float | None = None

    @property
    def kind(self) -> str:
        """`work`, `signal`, `done` or `*`."""
        return self.topic.partition(":")[0]

    @property
    def key(self) -> str:
        """The queue (work) or the execution id (signal, done)."""
        return self.topic.partition(":")[2]


@runtime_checkable
class Listener(Protocol):
    """A subscription to a store's wake-ups: an endless async iterator (see `Notifier`)."""

    @property
    def complete(self) -> bool:
        """True while every wake-up of every process sharing the store reaches this listener.

        False while disconnected (and always for a backend that only pushes within one
        process, like SQLite): then whoever relies on wake-ups polls as well.
        """

    def __aiter__(self) -> AsyncIterator[Wakeup]: ...


@runtime_checkable
class Notifier(Protocol):
    """Optional store capability: push wake-ups instead of being polled.

    Stores without it are polled. A listener reconnects by itself after a connection loss;
    while it is down `complete` is False, and once it is back it yields `ANY_TOPIC` first.
    """

    def listen(self) -> AbstractAsyncContextManager[Listener]:
        """Subscribe to the wake-ups of this store (one connection for the subscription)."""

    async def next_wake(self, queues: Sequence[str] | None, now: float) -> float | None:
        """The earliest time at which an execution of `queues` (of every queue when None)
        that is not claimable at `now` becomes claimable with no write in between: the
        wake-up time of a free execution (a timer, a delayed start; later than `now`) or the
        end of a lease (not before `now`). None when there is none.

        May return an earlier time than the true one (a receiver then looks again), never a
        later one.
        """


@runtime_checkable
class Locker(Protocol):
    """Optional store capability: named locks shared by every process using the store."""

    def lock(
        self, name: str, *, timeout: float | None, ttl: float
    ) -> AbstractAsyncContextManager[None]:
        """Hold the lock `name` for the block; `LockTimeoutError` after `timeout` seconds
        (None: wait for ever). `ttl` bounds how long a lock outlives a holder that vanished
        without releasing it, on backends that cannot tell (Redis)."""


def open_store(url: str) -> Store:
    """The backend for a URL: `memory://`, `sqlite:///path.db`, `postgresql://…`, `redis://…`."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from treadle.stores.memory import MemoryStore

        return MemoryStore(url)
    if scheme == "sqlite":
        from treadle.stores.sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        from treadle.stores.postgres import PostgresStore

        store: Store = PostgresStore(url)
        return store
    if scheme in ("redis", "rediss"):
        from treadle.stores.redis import RedisStore

        redis_store: Store = RedisStore(url)
        return redis_store
    raise ValueError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path.db, postgresql://… or redis://…"
    )


_Row = TypeVar("_Row", ExecutionSummary, Record)


def paginate(rows: Sequence[_Row], limit: int) -> Page[_Row]:
    """A page from up to `limit + 1` rows (newest first): the extra row means more follow.

    Executions page by (created_at, id), records by (created_at, key).
    """
    if len(rows) > limit:
        last = rows[limit - 1]
        ident = last.id if isinstance(last, ExecutionSummary) else last.key
        return Page(list(rows[:limit]), encode_cursor(last.created_at, ident))
    return Page(list(rows))


def select_records(records: Iterable[Record], query: RecordQuery) -> Page[Record]:
    """`list_records` over records held in memory (the memory and Redis backends)."""
    after = decode_cursor(query.cursor) if query.cursor else None
    chosen = [
        r for r in records
        if r.kind == query.kind
        and (query.tenant_id is None or r.tenant_id == query.tenant_id)
        and (query.key_prefix is None or r.key.startswith(query.key_prefix))
        and (after is None or (r.created_at, r.key) < after)
    ]
    chosen.sort(key=lambda r: (r.created_at, r.key), reverse=True)
    return paginate(chosen[:query.limit + 1], query.limit)


def encode_cursor(created_at: float, execution_id: str) -> str:
    """An opaque cursor for keyset pagination over (created_at desc, id desc)."""
    return f"{created_at!r}:{execution_id}"


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        ts, _, ident = cursor.partition(":")
        return float(ts), ident
    except ValueError as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
