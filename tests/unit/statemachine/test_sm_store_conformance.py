"""One conformance set for every InstanceStore: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import pytest

from treadle.statemachine import (
    HistoryEntry,
    Instance,
    InstanceExistsError,
    InstanceStore,
    open_instance_store,
)


def _instance(ident: str = "i-1", *, kind: str = "door", state: str = "closed",
              created: float = 100.0) -> Instance:
    return Instance(ident, kind, state, data={"n": 1, "nested": {"a": [1, 2]}}, version=1,
                    created_at=created, updated_at=created)


def _created(instance: Instance) -> HistoryEntry:
    return HistoryEntry(instance.id, 1, "", "", instance.current_state, dict(instance.data),
                        instance.created_at)


async def test_insert_then_get_round_trips_every_field(sm_store: InstanceStore) -> None:
    inst = _instance()
    inst.previous_state, inst.completed, inst.error = "x", True, "bad"
    await sm_store.insert(inst, _created(inst))
    got = await sm_store.get("i-1")
    assert got == inst
    assert await sm_store.get("nope") is None


async def test_insert_twice_is_an_error_and_keeps_the_first(sm_store: InstanceStore) -> None:
    await sm_store.insert(_instance(), _created(_instance()))
    other = _instance(state="open")
    with pytest.raises(InstanceExistsError):
        await sm_store.insert(other, _created(other))
    got = await sm_store.get("i-1")
    assert got is not None and got.current_state == "closed"
    assert len(await sm_store.history("i-1")) == 1


async def test_update_checks_the_version_and_appends_history(sm_store: InstanceStore) -> None:
    inst = _instance()
    await sm_store.insert(inst, _created(inst))
    new = inst.copy()
    new.current_state, new.previous_state, new.version = "open", "closed", 2
    new.data["by"] = "ann"
    entry = HistoryEntry("i-1", 2, "open", "closed", "open", {"by": "ann"}, 101.0)
    assert await sm_store.update(new, 1, entry)
    stale = new.copy()
    stale.current_state, stale.version = "locked", 2
    assert not await sm_store.update(stale, 1, HistoryEntry("i-1", 2, "lock", "closed",
                                                             "locked", {}, 102.0))
    got = await sm_store.get("i-1")
    assert got is not None and (got.current_state, got.version) == ("open", 2)
    assert got.data == {"n": 1, "nested": {"a": [1, 2]}, "by": "ann"}
    history = await sm_store.history("i-1")
    assert [(h.version, h.transition, h.to_state) for h in history] == [
        (1, "", "closed"), (2, "open", "open")]
    assert history[1] == entry


async def test_update_of_a_missing_instance_is_false(sm_store: InstanceStore) -> None:
    inst = _instance("ghost")
    assert not await sm_store.update(inst, 1, _created(inst))
    assert await sm_store.history("ghost") == []


async def test_list_filters_and_orders_by_creation(sm_store: InstanceStore) -> None:
    for ident, kind, state, created in [("b", "door", "open", 2.0), ("a", "door", "closed", 1.0),
                                        ("c", "lamp", "open", 3.0)]:
        inst = _instance(ident, kind=kind, state=state, created=created)
        await sm_store.insert(inst, _created(inst))
    assert [i.id for i in await sm_store.list()] == ["a", "b", "c"]
    assert [i.id for i in await sm_store.list(workflow_type="door")] == ["a", "b"]
    assert [i.id for i in await sm_store.list(state="open")] == ["b", "c"]
    assert [i.id for i in await sm_store.list(workflow_type="door", state="open")] == ["b"]
    assert [i.id for i in await sm_store.list(limit=2)] == ["a", "b"]


async def test_delete_removes_instance_and_history(sm_store: InstanceStore) -> None:
    inst = _instance()
    await sm_store.insert(inst, _created(inst))
    assert await sm_store.delete("i-1")
    assert not await sm_store.delete("i-1")
    assert await sm_store.get("i-1") is None
    assert await sm_store.history("i-1") == []


async def test_values_are_copies(sm_store: InstanceStore) -> None:
    inst = _instance()
    await sm_store.insert(inst, _created(inst))
    inst.data["n"] = 99
    got = await sm_store.get("i-1")
    assert got is not None
    got.data["n"] = 42
    again = await sm_store.get("i-1")
    assert again is not None and again.data["n"] == 1


async def test_namespaces_do_not_see_each_other(sm_store_url: str) -> None:
    if sm_store_url.startswith("memory"):
        pytest.skip("memory stores are separate objects anyway")
    one = open_instance_store(sm_store_url, namespace="one")
    two = open_instance_store(sm_store_url, namespace="two")
    await one.open()
    await two.open()
    try:
        inst = _instance()
        await one.insert(inst, _created(inst))
        await two.insert(inst, _created(inst))  # same id, other namespace: fine
        assert await two.delete("i-1")
        assert await one.get("i-1") is not None
    finally:
        await one.close()
        await two.close()


def test_unknown_url_scheme() -> None:
    with pytest.raises(ValueError, match="no state machine store"):
        open_instance_store("redis://x")
