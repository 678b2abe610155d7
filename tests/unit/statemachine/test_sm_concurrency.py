"""Transitions under concurrency: coroutines, threads and processes racing on one instance.

Each racer waits at a barrier inside a hook — after reading the instance and before committing —
so both always read the same version: exactly one commit wins.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from smkit import SIMPLE, race_transition

from treadle.statemachine import (
    InvalidTransitionError,
    StateMachineEngine,
    TransitionConflictError,
    TransitionEvent,
)


async def _seed(url: str, instance_id: str = "d", event: str | None = None) -> None:
    engine = StateMachineEngine("race", store=url)
    engine.define(SIMPLE)
    async with engine:
        await engine.create_instance("door", instance_id)
        if event:
            await engine.transition(instance_id, event)


async def _state(url: str, instance_id: str = "d") -> tuple[str, int, list[str]]:
    engine = StateMachineEngine("race", store=url)
    engine.define(SIMPLE)
    async with engine:
        inst = await engine.get(instance_id)
        history = [h.transition for h in await engine.history(instance_id)]
    return inst.current_state, inst.version, history


async def test_two_coroutines_exactly_one_wins(sm_store_url: str) -> None:
    engine = StateMachineEngine("race", store=sm_store_url)
    engine.define(SIMPLE)
    barrier = asyncio.Barrier(2)

    async def both_read_first(event: TransitionEvent) -> None:
        await barrier.wait()

    engine.add_hook(both_read_first)
    async with engine:
        await engine.create_instance("door", "d")
        results = await asyncio.gather(engine.transition("d", "open"),
                                       engine.transition("d", "lock"),
                                       return_exceptions=True)
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1 and len(losers) == 1
        assert isinstance(losers[0], TransitionConflictError)
        assert "lost a race" in str(losers[0])
        inst = await engine.get("d")
        history = [h.transition for h in await engine.history("d")]
    assert inst.version == 2 and inst.current_state == winners[0].instance.current_state
    assert history == ["", winners[0].transition]


def test_two_threads_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    asyncio.run(_seed(url))
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(race_transition, [url, url], ["d", "d"], ["open", "lock"],
                                 [barrier, barrier]))
    assert sorted(outcomes) == ["TransitionConflictError", "ok"]
    state, version, history = asyncio.run(_state(url))
    winner = "open" if outcomes[0] == "ok" else "lock"
    assert (version, history) == (2, ["", winner])
    assert state == {"open": "open", "lock": "locked"}[winner]


@pytest.mark.slow
def test_two_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    asyncio.run(_seed(url))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            futures = [pool.submit(race_transition, url, "d", event, barrier)
                       for event in ("open", "lock")]
            outcomes = [f.result(timeout=60) for f in futures]
    assert sorted(outcomes) == ["TransitionConflictError", "ok"]
    _, version, history = asyncio.run(_state(url))
    assert version == 2 and len(history) == 2


def test_retries_let_compatible_transitions_both_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    asyncio.run(_seed(url, event="open"))
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(race_transition, [url, url], ["d", "d"], ["touch", "touch"],
                                 [barrier, barrier], [1, 1]))
    assert outcomes == ["ok", "ok"]
    state, version, history = asyncio.run(_state(url))
    assert (state, version, history) == ("open", 4, ["", "open", "touch", "touch"])


def test_a_retry_rechecks_the_definition(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    asyncio.run(_seed(url))
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(race_transition, [url, url], ["d", "d"], ["open", "lock"],
                                 [barrier, barrier], [3, 3]))
    # the loser re-read the instance: its event is no longer valid from the winner's state
    assert sorted(outcomes) == ["InvalidTransitionError", "ok"]


@pytest.mark.slow
def test_no_lost_updates_under_contention(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    asyncio.run(_seed(url, event="open"))
    threads, per_thread = 4, 15

    def hammer(n: int) -> int:
        async def main() -> int:
            engine = StateMachineEngine("race", store=url, conflict_retries=1000)
            engine.define(SIMPLE)
            async with engine:
                for i in range(per_thread):
                    await engine.transition("d", "touch", {f"t{n}": i})
            return n

        return asyncio.run(main())

    with ThreadPoolExecutor(threads) as pool:
        assert sorted(pool.map(hammer, range(threads))) == list(range(threads))
    _, version, history = asyncio.run(_state(url))
    assert version == 2 + threads * per_thread
    assert history.count("touch") == threads * per_thread


async def test_conflict_error_is_retryable_and_invalid_is_not() -> None:
    assert TransitionConflictError("x").retryable
    assert not InvalidTransitionError("x").retryable
