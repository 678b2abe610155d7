"""The `Store` contract for claims: leases, due work, queues, priorities and global limits."""

from __future__ import annotations

from dataclasses import replace

import pytest
from storekit import T0, ev, make

from treadle.errors import JournalConflictError
from treadle.journal import ExecutionStatus
from treadle.stores import ListQuery, RowUpdate, Store
from treadle.stores.base import ClaimLimits

RUNNING = ExecutionStatus.RUNNING
SUSPENDED = ExecutionStatus.SUSPENDED
PENDING = ExecutionStatus.PENDING
COMPLETED = ExecutionStatus.COMPLETED
FAILED = ExecutionStatus.FAILED
CANCELLED = ExecutionStatus.CANCELLED


# -- leases -------------------------------------------------------------------------------------


async def test_claim_takes_free_executions(store: Store) -> None:
    await make(store, "a", status=PENDING)
    claimed = await store.claim("w1", now=T0, lease_until=T0 + 30, limit=10)
    assert [(r.id, r.owner, r.lease_until, r.status, r.started_at) for r in claimed] == [
        ("a", "w1", T0 + 30, RUNNING, T0)  # a claimed pending execution starts running
    ]
    found = await store.get("a")
    assert found == claimed[0]
    await store.append("a", [ev("a", 2)], expected_seq=1, owner="w1")
    with pytest.raises(JournalConflictError):
        await store.append("a", [ev("a", 3)], expected_seq=2, owner=None)


async def test_claim_respects_live_leases_and_takes_expired_ones(store: Store) -> None:
    await make(store, "live", owner="w1", lease_until=T0 + 10)
    await make(store, "edge", owner="w1", lease_until=T0)
    await make(store, "expired", owner="w1", lease_until=T0 - 1)
    claimed = await store.claim("w2", now=T0, lease_until=T0 + 30, limit=10)
    assert [r.id for r in claimed] == ["expired"]
    # The lease moved: the old owner can no longer write.
    with pytest.raises(JournalConflictError):
        await store.append("expired", [ev("expired", 2)], expected_seq=1, owner="w1")
    await store.append("expired", [ev("expired", 2)], expected_seq=1, owner="w2")
    assert await store.claim("w3", now=T0, lease_until=T0 + 30, limit=10) == []
    later = await store.claim("w3", now=T0 + 11, lease_until=T0 + 50, limit=10)
    assert sorted(r.id for r in later) == ["edge", "live"]


async def test_claim_skips_finished_executions(store: Store) -> None:
    for status in (COMPLETED, FAILED, CANCELLED):
        await make(store, str(status), status=status)
    await make(store, "active", status=SUSPENDED)
    claimed = await store.claim("w", now=T0, lease_until=T0 + 30, limit=10)
    assert [r.id for r in claimed] == ["active"]


async def test_claim_orders_by_priority_then_age_and_honours_limit(store: Store) -> None:
    await make(store, "old-low", created_at=T0, priority=0)
    await make(store, "new-high", created_at=T0 + 5, priority=5)
    await make(store, "old-high", created_at=T0 + 1, priority=5)
    await make(store, "negative", created_at=T0 - 10, priority=-1)
    await make(store, "new-low", created_at=T0 + 6, priority=0)
    first = await store.claim("w", now=T0, lease_until=T0 + 30, limit=2)
    assert [r.id for r in first] == ["old-high", "new-high"]
    rest = await store.claim("w", now=T0, lease_until=T0 + 30, limit=10)
    assert [r.id for r in rest] == ["old-low", "new-low", "negative"]
    assert await store.claim("w", now=T0, lease_until=T0 + 30, limit=10) == []


async def test_claim_one_execution(store: Store) -> None:
    await make(store, "a")
    await make(store, "b")
    await make(store, "done", status=COMPLETED)
    claimed = await store.claim("w", now=T0, lease_until=T0 + 30, limit=5, execution_id="b")
    assert [r.id for r in claimed] == ["b"]
    assert await store.claim("x", now=T0, lease_until=T0 + 30, limit=5, execution_id="b") == []
    assert await store.claim("x", now=T0, lease_until=T0 + 30, limit=5,
                             execution_id="done") == []
    assert await store.claim("x", now=T0, lease_until=T0 + 30, limit=5,
                             execution_id="nope") == []
    found = await store.get("a")
    assert found is not None and found.owner is None


async def test_claim_due_only(store: Store) -> None:
    await make(store, "running")
    await make(store, "pending", status=PENDING)
    await make(store, "sleeping", status=SUSPENDED, wake_at=T0 + 60)
    await make(store, "woken", status=SUSPENDED, wake_at=T0 - 1)
    await make(store, "on-time", status=SUSPENDED, wake_at=T0)
    await make(store, "waiting", status=SUSPENDED)
    await make(store, "signalled", status=SUSPENDED)
    await make(store, "signalled-late", status=SUSPENDED, wake_at=T0 + 60)
    await make(store, "delayed", status=PENDING, wake_at=T0 + 60)  # start_at in the future
    await make(store, "delayed-past", status=PENDING, wake_at=T0 - 5)
    await make(store, "lapsed-sleeping", status=SUSPENDED, wake_at=T0 + 60, owner="dead",
               lease_until=T0 - 1)
    await make(store, "lapsed-delayed", status=PENDING, wake_at=T0 + 60, owner="dead",
               lease_until=T0 - 1)
    await make(store, "lapsed-woken", status=SUSPENDED, wake_at=T0 - 1, owner="dead",
               lease_until=T0 - 1)
    await make(store, "lapsed-signalled", status=SUSPENDED, owner="dead", lease_until=T0 - 1)
    await make(store, "lapsed-running", owner="dead", lease_until=T0 - 1)
    await make(store, "leased-signalled", status=SUSPENDED, owner="w0", lease_until=T0 + 1)
    for ident in ("signalled", "signalled-late", "lapsed-signalled", "leased-signalled"):
        await store.send_signal(ident, "go", None, T0)
    due = await store.claim("w", now=T0, lease_until=T0 + 30, limit=100, due_only=True)
    assert sorted(r.id for r in due) == [
        "delayed-past", "lapsed-running", "lapsed-signalled", "lapsed-woken", "on-time",
        "pending", "running", "signalled", "signalled-late", "woken"]
    for ident in ("sleeping", "delayed", "lapsed-delayed"):
        assert await store.claim("w", now=T0, lease_until=T0 + 30, limit=100, due_only=True,
                                 execution_id=ident) == []
    rest = await store.claim("w", now=T0, lease_until=T0 + 30, limit=100)
    assert sorted(r.id for r in rest) == [
        "delayed", "lapsed-delayed", "lapsed-sleeping", "sleeping", "waiting"]


async def test_claim_only_from_given_queues(store: Store) -> None:
    await make(store, "q1-old", queue="q1", created_at=T0)
    await make(store, "q2-high", queue="q2", priority=9, created_at=T0 + 1)
    await make(store, "q1-high", queue="q1", priority=5, created_at=T0 + 2)
    await make(store, "default", created_at=T0 - 5)
    await make(store, "q3-lapsed", queue="q3", owner="dead", lease_until=T0 - 1,
               created_at=T0 - 3)
    await make(store, "q1-delayed", queue="q1", status=PENDING, wake_at=T0 + 60,
               created_at=T0 + 3)
    assert await store.claim("w", now=T0, lease_until=T0 + 9, limit=9, queues=[]) == []
    assert await store.claim("w", now=T0, lease_until=T0 + 9, limit=9, queues=["nope"]) == []
    assert await store.claim("w", now=T0, lease_until=T0 + 9, limit=9, queues=["q2"],
                             execution_id="q1-old") == []
    got = await store.claim("w", now=T0, lease_until=T0 + 9, limit=9, queues=["q1", "q2"],
                            due_only=True)
    assert [r.id for r in got] == ["q2-high", "q1-high", "q1-old"]
    got = await store.claim("w", now=T0, lease_until=T0 + 9, limit=9, queues=("q3", "q1"))
    assert [(r.id, r.queue) for r in got] == [("q3-lapsed", "q3"), ("q1-delayed", "q1")]
    got = await store.claim("w", now=T0, lease_until=T0 + 9, limit=9, queues=["default"],
                            execution_id="default")
    assert [r.id for r in got] == ["default"]


async def test_due_only_follows_timers_signals_and_status(store: Store) -> None:
    await make(store, "a", owner="w1", lease_until=T0 + 5)
    await store.append("a", [ev("a", 2)], expected_seq=1, owner="w1",
                       update=RowUpdate(SUSPENDED, wake_at=T0 + 100))
    await store.release("a", "w1")
    assert await store.claim("w", now=T0, lease_until=T0 + 9, limit=9, due_only=True) == []
    claimed = await store.claim("w", now=T0 + 100, lease_until=T0 + 130, limit=9,
                                due_only=True)
    assert [r.id for r in claimed] == ["a"]
    await store.append("a", [ev("a", 3)], expected_seq=2, owner="w",
                       update=RowUpdate(SUSPENDED))
    await store.release("a", "w")
    assert await store.claim("w", now=T0 + 200, lease_until=T0 + 230, limit=9,
                             due_only=True) == []
    signal = await store.send_signal("a", "go", 1, T0)
    claimed = await store.claim("w", now=T0 + 200, lease_until=T0 + 230, limit=9,
                                due_only=True)
    assert [r.id for r in claimed] == ["a"]
    await store.append("a", [ev("a", 4)], expected_seq=3, owner="w", consume_signal=signal)
    await store.release("a", "w")
    assert await store.claim("w", now=T0 + 300, lease_until=T0 + 330, limit=9,
                             due_only=True) == []
    await store.append("a", [ev("a", 5)], expected_seq=4, owner=None,
                       update=RowUpdate(RUNNING))
    claimed = await store.claim("w", now=T0 + 300, lease_until=T0 + 330, limit=9,
                                due_only=True)
    assert [r.id for r in claimed] == ["a"]


async def test_expired_lease_on_a_sleeping_execution_waits_for_its_timer(store: Store) -> None:
    await make(store, "a", owner="dead", lease_until=T0 + 1, status=SUSPENDED, wake_at=T0 + 50)
    assert await store.claim("w", now=T0 + 10, lease_until=T0 + 40, limit=9, due_only=True) == []
    claimed = await store.claim("w", now=T0 + 60, lease_until=T0 + 90, limit=9, due_only=True)
    assert [(r.id, r.owner) for r in claimed] == [("a", "w")]


async def test_renew_extends_only_own_leases(store: Store) -> None:
    await make(store, "a", owner="w1", lease_until=T0 + 10)
    await make(store, "b", owner="w1", lease_until=T0 + 10)
    await make(store, "c", owner="w2", lease_until=T0 + 10)
    assert await store.renew("w1", ["a", "b", "c", "nope"], T0 + 99) == 2
    assert await store.renew("w1", [], T0 + 99) == 0
    leases = {i: (await store.get(i)) for i in "abc"}
    assert {i: (r.owner, r.lease_until) for i, r in leases.items() if r} == {
        "a": ("w1", T0 + 99), "b": ("w1", T0 + 99), "c": ("w2", T0 + 10)}
    assert await store.claim("w3", now=T0 + 50, lease_until=T0 + 80, limit=9) == [
        replace(leases["c"], owner="w3", lease_until=T0 + 80,  # type: ignore[arg-type]
                started_at=T0 + 50)]


async def test_release_gives_the_lease_back(store: Store) -> None:
    await make(store, "a", owner="w1", lease_until=T0 + 60)
    await store.release("a", "w2")
    found = await store.get("a")
    assert found is not None and found.owner == "w1"
    await store.release("a", "w1")
    await store.release("nope", "w1")
    found = await store.get("a")
    assert found is not None and (found.owner, found.lease_until) == (None, None)
    claimed = await store.claim("w2", now=T0, lease_until=T0 + 60, limit=1)
    assert [r.id for r in claimed] == ["a"]


async def test_claim_starts_a_pending_execution_once(store: Store) -> None:
    await make(store, "a", status=PENDING, queue="q")
    [first] = await store.claim("w1", now=T0, lease_until=T0 + 10, limit=1)
    assert (first.status, first.started_at) == (RUNNING, T0)
    assert [r.id for r in (await store.list(ListQuery(status=RUNNING))).items] == ["a"]
    assert (await store.list(ListQuery(status=PENDING))).items == []
    await store.release("a", "w1")
    [again] = await store.claim("w2", now=T0 + 20, lease_until=T0 + 30, limit=1)
    assert (again.status, again.started_at, again.owner) == (RUNNING, T0, "w2")
    await make(store, "s", status=SUSPENDED, wake_at=T0 - 1)
    [woken] = await store.claim("w", now=T0 + 5, lease_until=T0 + 9, limit=1, due_only=True)
    assert (woken.id, woken.status, woken.started_at) == ("s", SUSPENDED, T0 + 5)


async def test_depth_counts_pending_executions_of_a_queue(store: Store) -> None:
    for i in range(2):
        await make(store, f"q1-{i}", status=PENDING, queue="q1", created_at=T0 + i)
    await make(store, "q2", status=PENDING, queue="q2")
    await make(store, "q1-running", queue="q1")
    await make(store, "q1-done", status=COMPLETED, queue="q1")
    assert [await store.depth(q) for q in ("q1", "q2", "nope")] == [2, 1, 0]
    await store.claim("w", now=T0, lease_until=T0 + 9, limit=1, queues=["q1"])
    assert await store.depth("q1") == 1


async def test_queue_concurrency_counts_live_running_leases(store: Store) -> None:
    await make(store, "busy", queue="q", owner="other", lease_until=T0 + 100)
    await make(store, "lapsed", queue="q", owner="dead", lease_until=T0 - 1)
    await make(store, "asleep", queue="q", status=SUSPENDED, owner="other", lease_until=T0 + 100)
    for i in range(3):
        await make(store, f"p{i}", queue="q", status=PENDING, created_at=T0 + 1 + i)
    await make(store, "elsewhere", queue="other", status=PENDING, created_at=T0 + 9)
    limits = ClaimLimits(queue_concurrency={"q": 2})
    got = await store.claim("w", now=T0, lease_until=T0 + 30, limit=10, limits=limits)
    assert [r.id for r in got] == ["lapsed", "elsewhere"]
    assert await store.claim("w", now=T0, lease_until=T0 + 30, limit=10, limits=limits) == []
    await store.append("busy", [ev("busy", 2)], expected_seq=1, owner="other",
                       update=RowUpdate(COMPLETED, finished_at=T0))
    got = await store.claim("w", now=T0, lease_until=T0 + 30, limit=10, limits=limits)
    assert [r.id for r in got] == ["p0"]
    # Without limits the same claim takes everything that is left.
    got = await store.claim("w", now=T0, lease_until=T0 + 30, limit=10)
    assert [r.id for r in got] == ["p1", "p2"]


async def test_workflow_and_partition_concurrency(store: Store) -> None:
    specs = [("a1", "wf-a", None), ("a2", "wf-a", None), ("k1", "wf-b", "k"),
             ("k2", "wf-b", "k"), ("j1", "wf-b", "j"), ("n1", "wf-b", None)]
    for i, (ident, workflow, partition) in enumerate(specs):
        await make(store, ident, workflow=workflow, queue="q", partition_key=partition,
                   status=PENDING, created_at=T0 + i)
    await make(store, "other-k", workflow="wf-b", queue="r", partition_key="k", status=PENDING,
               created_at=T0 + 10)
    limits = ClaimLimits(workflow_concurrency={"wf-a": 1},
                         partition_concurrency={"q": 1, "r": 1})
    got = await store.claim("w", now=T0, lease_until=T0 + 30, limit=10, limits=limits)
    assert [r.id for r in got] == ["a1", "k1", "j1", "n1", "other-k"]
    assert await store.claim("w", now=T0, lease_until=T0 + 30, limit=10, limits=limits) == []
    got = await store.claim("w", now=T0, lease_until=T0 + 30, limit=10, limits=limits,
                            execution_id="k2")
    assert got == []


async def test_queue_start_rate(store: Store) -> None:
    await make(store, "old", queue="q", status=COMPLETED, started_at=T0 - 100)
    await make(store, "recent", queue="q", status=COMPLETED, started_at=T0 - 10)
    for i in range(3):
        await make(store, f"p{i}", queue="q", status=PENDING, created_at=T0 + i)
    limits = ClaimLimits(queue_rate={"q": (2, 60.0)})
    got = await store.claim("w", now=T0, lease_until=T0 + 99, limit=10, limits=limits)
    assert [r.id for r in got] == ["p0"]
    assert await store.claim("w", now=T0 + 1, lease_until=T0 + 99, limit=10,
                             limits=limits) == []
    got = await store.claim("w", now=T0 + 55, lease_until=T0 + 99, limit=10, limits=limits)
    assert [r.id for r in got] == ["p1"]
