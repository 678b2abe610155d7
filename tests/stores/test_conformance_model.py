"""Differential check: random operation sequences give the same answers on every backend as on
the memory store (the reference model). Catches index bookkeeping that drifts from the rows
(claim sets, listing sets, inbox-driven wake-ups) after long mixes of operations.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from storekit import T0, ev, row, started

from treadle.errors import JournalConflictError
from treadle.journal import ExecutionStatus, ExecutionSummary
from treadle.stores import ListQuery, MemoryStore, RowUpdate, Store
from treadle.stores.base import ClaimLimits

STATUSES = list(ExecutionStatus)
QUEUES = ["q1", "q2"]


def _comparable(rows: list[ExecutionSummary]) -> list[ExecutionSummary]:
    # updated_at after an event-less update is backend-defined (wall clock or unchanged).
    return [replace(r, updated_at=0.0) for r in rows]


async def _apply(store: Store, op: tuple[Any, ...]) -> Any:
    kind, *args = op
    try:
        if kind == "create":
            ident, at, queue, priority, status, wake, owner = args
            stored, created = await store.create(
                row(ident, created_at=at, queue=queue, priority=priority, status=status,
                    wake_at=wake, owner=owner, lease_until=None if owner is None else at + 5,
                    partition_key=None if priority % 2 else "p", workflow=f"wf{priority % 3}"),
                [started(ident, at)])
            return _comparable([stored]), created
        if kind == "append":
            ident, owner, update, signal = args
            head = await store.get(ident)
            seq = head.last_seq if head else 0
            await store.append(ident, [ev(ident, seq + 1)], expected_seq=seq, owner=owner,
                               update=update, consume_signal=signal)
            return "ok"
        if kind == "claim":
            owner, now, limit, due_only, queues, limits, target = args
            return _comparable(await store.claim(
                owner, now=now, lease_until=now + 7, limit=limit, due_only=due_only,
                queues=queues, limits=limits, execution_id=target))
        if kind == "release":
            await store.release(*args)
            return "ok"
        if kind == "renew":
            owner, ids, until = args
            return await store.renew(owner, ids, until)
        if kind == "signal":
            ident, now = args
            await store.send_signal(ident, "s", {"at": now}, now)
            return [(s.name, s.payload) for s in await store.signals(ident)]
        if kind == "prune":
            return await store.prune(*args)
        if kind == "list":
            return _comparable((await store.list(args[0])).items)
        if kind == "depth":
            return await store.depth(args[0])
    except JournalConflictError:
        return "conflict"
    raise AssertionError(kind)


def _operations(rng: random.Random, count: int) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    ids: list[str] = []
    now = T0
    for n in range(count):
        now += rng.choice([0.0, 0.5, 3.0, 10.0])
        choice = rng.random()
        ident = rng.choice(ids) if ids else "none"
        owner = rng.choice([None, "w1", "w2"])
        if choice < 0.15 or not ids:
            ident = f"e{n:03}"
            ids.append(ident)
            status = rng.choice([ExecutionStatus.PENDING, ExecutionStatus.RUNNING,
                                 ExecutionStatus.SUSPENDED])
            wake = rng.choice([None, now - 1, now + 20])
            ops.append(("create", ident, now + n * 1e-3, rng.choice(QUEUES),
                        rng.randint(-1, 2), status, wake, owner))
        elif choice < 0.40:
            update = None
            if rng.random() < 0.7:
                status = rng.choice(STATUSES)
                update = RowUpdate(status, wake_at=rng.choice([None, now + 15, now - 2]),
                                   finished_at=now if status.is_terminal else None,
                                   error=rng.choice([None, "boom"]))
            ops.append(("append", ident, owner, update, rng.choice([None, None, 1, 2, 3])))
        elif choice < 0.60:
            limits = rng.choice([None, ClaimLimits(queue_concurrency={"q1": 2}),
                                 ClaimLimits(workflow_concurrency={"wf1": 1},
                                             partition_concurrency={"q2": 1},
                                             queue_rate={"q2": (2, 30.0)})])
            ops.append(("claim", rng.choice(["w1", "w2", "w3"]), now, rng.randint(1, 4),
                        rng.random() < 0.6, rng.choice([None, ["q1"], QUEUES]), limits,
                        ident if rng.random() < 0.2 else None))
        elif choice < 0.68:
            ops.append(("release", ident, rng.choice(["w1", "w2", "w3"])))
        elif choice < 0.74:
            ops.append(("renew", rng.choice(["w1", "w2", "w3"]), rng.sample(ids, min(3, len(ids))),
                        now + 9))
        elif choice < 0.84:
            ops.append(("signal", ident, now))
        elif choice < 0.88:
            ops.append(("prune", now - rng.choice([0, 20])))
        elif choice < 0.96:
            ops.append(("list", ListQuery(
                status=rng.choice([None, *STATUSES]), workflow=rng.choice([None, "wf1"]),
                limit=rng.randint(1, 50))))
        else:
            ops.append(("depth", rng.choice(QUEUES)))
    return ops


@pytest.mark.parametrize("seed", range(6))
async def test_random_operations_match_the_memory_model(
    store: Store, store_url: str, seed: int
) -> None:
    if store_url.startswith("memory"):
        pytest.skip("the memory store is the model")
    model = MemoryStore()
    for step, op in enumerate(_operations(random.Random(seed), 160)):
        expected = await _apply(model, op)
        got = await _apply(store, op)
        assert got == expected, f"step {step}: {op}"
    everything = ListQuery(limit=1000)
    assert _comparable((await store.list(everything)).items) == _comparable(
        (await model.list(everything)).items)
