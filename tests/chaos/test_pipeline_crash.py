"""Kill a process mid-pipeline with SIGKILL; another process resumes it.

Pure steps commit nothing of their own (their events ride with the next journal write), so
after a crash a pure step may run again; a step with effects never runs again once it
completed, and it never starts before the pure results it may use are durable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_crash import effects, kill, recover, spawn, status, wait_until

from treadle.stores.sqlite import SQLiteStore

APP = Path(__file__).with_name("pipeline_crash_app.py")
pytestmark = pytest.mark.slow
ORDER = ["p1", "e1", "p2", "p3", "e2", "p4"]


def completed_steps(store: str, execution_id: str) -> list[str]:
    async def read() -> list[str]:
        db = SQLiteStore(store)
        try:
            return [str(e.data["step_name"]) for e in await db.events(execution_id)
                    if e.type == "step.completed"]
        finally:
            await db.close()

    return asyncio.run(read())


def crash_at(store: str, effects_file: Path, block: str) -> str:
    proc = spawn("start", store, str(effects_file), block=block, app=APP)
    assert proc.stdout is not None
    execution_id = proc.stdout.readline().strip()
    wait_until(lambda: effects(effects_file)[f"start:{block}"] == 1)
    kill(proc)
    assert status(store, execution_id) == "running"
    return execution_id


def check_result(result: dict[str, object], execution_id: str) -> None:
    output = result[execution_id]
    assert isinstance(output, dict)
    assert output["picked"] == "order-7"
    assert all(output[name] is True for name in ORDER)


@pytest.fixture
def paths(tmp_path: Path) -> tuple[str, Path]:
    return f"sqlite:///{tmp_path}/crash.db", tmp_path / "effects.txt"


def test_pure_steps_after_the_last_effect_run_again(paths: tuple[str, Path]) -> None:
    store, effects_file = paths
    execution_id = crash_at(store, effects_file, "p3")
    # p2 and `shape` completed, but only with the next write would they have been durable
    assert completed_steps(store, execution_id) == ["p1", "e1"]

    check_result(recover(store, effects_file, APP), execution_id)
    seen = effects(effects_file)
    assert seen["start:e1"] == seen["done:e1"] == 1  # the effect never ran again
    assert seen["start:p1"] == 1  # made durable before e1 started
    assert seen["start:p2"] == seen["done:p2"] == 2  # completed, then ran again: pure
    assert seen["start:p3"] == 2 and seen["done:p3"] == 1
    assert seen["done:e2"] == seen["done:p4"] == 1
    assert status(store, execution_id) == "completed"
    assert completed_steps(store, execution_id) == [
        "p1", "e1", "p2", "shape", "p3", "pick", "e2", "p4"]


def test_an_effect_starts_only_once_what_it_uses_is_durable(paths: tuple[str, Path]) -> None:
    store, effects_file = paths
    execution_id = crash_at(store, effects_file, "e2")
    # the pure steps before e2 were written before it started
    assert completed_steps(store, execution_id) == ["p1", "e1", "p2", "shape", "p3", "pick"]

    check_result(recover(store, effects_file, APP), execution_id)
    seen = effects(effects_file)
    for name in ("p1", "e1", "p2", "p3"):
        assert seen[f"start:{name}"] == seen[f"done:{name}"] == 1, name  # none ran again
    assert seen["start:e2"] == 2 and seen["done:e2"] == 1  # the step in flight ran again
    assert seen["start:p4"] == seen["done:p4"] == 1
    assert status(store, execution_id) == "completed"
