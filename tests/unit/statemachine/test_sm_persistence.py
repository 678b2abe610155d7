"""Round trips through SQLite files: instances and history survive the engine."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smkit import SIMPLE, order_engine

import treadle
from treadle.statemachine import StateMachineEngine


async def test_instances_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sm/orders.db"  # the folder is created
    first, _ = order_engine(url)
    async with first:
        await first.create_instance("order-workflow", "o-1", {"total": 12.5, "items": ["a"]})
        await first.transition("o-1", "submit_order", {"note": "ünïcode ✓"})
        await first.transition("o-1", "validation_passed")
        before = await first.get("o-1")
        history = await first.history("o-1")

    second, _ = order_engine(url)
    async with second:
        again = await second.get("o-1")
        assert again == before
        assert again.data == {"total": 12.5, "items": ["a"], "note": "ünïcode ✓"}
        assert await second.history("o-1") == history
        r = await second.transition("o-1", "process_payment")
        assert r.instance.version == 4
        r = await second.transition("o-1", "payment_succeeded")
        assert r.instance.current_state == "fulfillment_pending"
    third, _ = order_engine(url)
    async with third:
        assert [h.transition for h in await third.history("o-1")] == [
            "", "submit_order", "validation_passed", "process_payment", "payment_succeeded",
            "fulfill"]
        assert (await third.history("o-1"))[-1].auto


async def test_engines_are_namespaced_by_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    a = StateMachineEngine("a", store=url)
    b = StateMachineEngine("b", store=url)
    for sm in (a, b):
        sm.define(SIMPLE)
        await sm.open()
    try:
        await a.create_instance("door", "d")
        await b.create_instance("door", "d")
        await a.transition("d", "open")
        assert (await b.get("d")).current_state == "closed"
        assert [i.id for i in await b.list()] == ["d"]
    finally:
        await a.close()
        await b.close()


async def test_shares_a_file_with_the_journal_store(tmp_path: Path) -> None:
    db = tmp_path / "treadle.db"
    engine = treadle.Engine(f"sqlite:///{db}")

    @treadle.workflow(name="noop", registry=treadle.Registry())
    async def noop(ctx: treadle.Context) -> int:
        return 1

    async with engine:
        assert await (await engine.start(noop)).result() == 1
        sm = StateMachineEngine("orders", store=f"sqlite:///{db}")
        sm.define(SIMPLE)
        async with sm:
            await sm.create_instance("door", "d")
            await sm.transition("d", "open")
    tables = {r[0] for r in sqlite3.connect(db).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"statemachine_instances", "statemachine_history", "executions"} <= tables
