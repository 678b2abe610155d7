"""engine.replay: exact, modified, and step_from (earlier steps return their recorded outputs)."""

from __future__ import annotations

from typing import Any

import pytest

import treadle

ran: list[str] = []
broken = {"c": True}


@pytest.fixture(autouse=True)
def _reset_replay() -> None:
    ran.clear()
    broken["c"] = True


@treadle.step
async def step_a(order: dict[str, Any]) -> int:
    ran.append("a")
    return int(order["qty"]) * 10


@treadle.step
async def step_b(total: int) -> int:
    ran.append("b")
    return total + 1


@treadle.step
async def step_c(total: int) -> dict[str, Any]:
    ran.append("c")
    if broken["c"]:
        raise RuntimeError("c is broken")
    return {"total": total}


@treadle.workflow(name="replayable")
async def replayable(ctx: treadle.Context, order: dict[str, Any]) -> dict[str, Any]:
    return await step_c(await step_b(await step_a(order)))


async def failed_run(engine: treadle.Engine) -> str:
    handle = await engine.start(replayable, {"qty": 2, "meta": {"who": "ann", "n": 1}})
    with pytest.raises(treadle.ExecutionFailedError):
        await handle.result()
    ran.clear()
    broken["c"] = False  # "fix" the bug, then replay
    return handle.id


async def test_exact_replay(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    original = await failed_run(engine)
    replay = await engine.replay(original)
    assert await replay.result() == {"total": 21}
    assert ran == ["a", "b", "c"]
    ex = await engine.get(replay.id)
    assert ex.metadata["replay_of"] == original and ex.metadata["replay_mode"] == "exact"


async def test_modified_replay_deep_merges_into_the_input(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    original = await failed_run(engine)
    replay = await engine.replay(original, "modified",
                                 modifications={"qty": 5, "meta": {"n": 2}})
    assert await replay.result() == {"total": 51}
    assert (await engine.get(replay.id)).input == {"qty": 5, "meta": {"who": "ann", "n": 2}}


async def test_step_from_replays_recorded_outputs_before_the_step(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    original = await failed_run(engine)
    replay = await engine.replay(original, "step_from", from_step=step_b.name)
    assert await replay.result() == {"total": 21}
    assert ran == ["b", "c"]  # step a returned its recorded output
    ex = await engine.get(replay.id)
    assert [(s.name.rsplit(".", 1)[-1], str(s.status)) for s in ex.steps] == [
        ("step_a", "completed"), ("step_b", "completed"), ("step_c", "completed")]
    seqs = [e.seq for e in await engine.events(replay.id)]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_replay_errors_are_clear() -> None:
    engine = treadle.Engine()
    original = await failed_run(engine)
    with pytest.raises(ValueError, match="no step 'nope' to replay from"):
        await engine.replay(original, "step_from", from_step="nope")
    with pytest.raises(ValueError, match="unknown replay mode"):
        await engine.replay(original, "sideways")
    with pytest.raises(treadle.ExecutionNotFoundError):
        await engine.replay("no-such-id")
