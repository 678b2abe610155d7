"""Kill a process running workflows with SIGKILL; another process resumes them.

Synchronisation is on the effects file and the journal, never on a sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import treadle
from treadle.stores.sqlite import SQLiteStore

APP = Path(__file__).with_name("crash_app.py")
pytestmark = pytest.mark.slow


def spawn(*args: str, block: str | None = None, app: Path = APP) -> subprocess.Popen[str]:
    """Run the crash app script `app` with `args`; `block` names a step that hangs once started."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TREADLE_BLOCK", None)
    if block:
        env["TREADLE_BLOCK"] = block
    return subprocess.Popen([sys.executable, str(app), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_until(predicate: object, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def effects(path: Path) -> Counter[str]:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def status(store: str, execution_id: str) -> str | None:
    async def read() -> str | None:
        db = SQLiteStore(store)
        try:
            row = await db.get(execution_id)
            return None if row is None else str(row.status)
        finally:
            await db.close()

    return asyncio.run(read())


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)  # reap it and close its pipes
    assert proc.returncode == -signal.SIGKILL


def recover(store: str, effects_file: Path, app: Path = APP) -> dict[str, object]:
    proc = spawn("recover", store, str(effects_file), app=app)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.fixture
def paths(tmp_path: Path) -> tuple[str, Path]:
    return f"sqlite:///{tmp_path}/crash.db", tmp_path / "effects.txt"


def test_sigkill_mid_step_reruns_only_the_step_in_flight(paths: tuple[str, Path]) -> None:
    store, effects_file = paths
    proc = spawn("start", store, str(effects_file), "five-steps", block="s3")
    assert proc.stdout is not None
    execution_id = proc.stdout.readline().strip()
    wait_until(lambda: effects(effects_file)["start:s3"] == 1)
    kill(proc)
    assert status(store, execution_id) == "running"

    assert recover(store, effects_file) == {execution_id: ["s1", "s2", "s3", "s4", "s5"]}
    seen = effects(effects_file)
    assert seen["start:s3"] == 2  # the step in flight ran again...
    for name in ("s1", "s2", "s3", "s4", "s5"):
        assert seen[f"done:{name}"] == 1, name  # ...and every completed effect happened once
    assert seen["start:s1"] == seen["start:s2"] == 1
    assert status(store, execution_id) == "completed"


def test_sigkill_while_suspended_on_a_signal(paths: tuple[str, Path]) -> None:
    store, effects_file = paths
    proc = spawn("start", store, str(effects_file), "wait-signal")
    assert proc.stdout is not None
    execution_id = proc.stdout.readline().strip()
    wait_until(lambda: status(store, execution_id) == "suspended")
    kill(proc)

    async def send() -> None:  # from a third process's point of view: only the store
        engine = treadle.Engine(store)
        await engine.signal(execution_id, "go", "now")
        await engine.close()

    asyncio.run(send())
    assert recover(store, effects_file) == {execution_id: ["a", "b", "c-now"]}
    seen = effects(effects_file)
    assert seen["start:a"] == seen["done:a"] == seen["start:b"] == seen["done:b"] == 1
    assert seen["done:c-now"] == 1


def test_sigkill_while_suspended_on_a_durable_timer(paths: tuple[str, Path]) -> None:
    store, effects_file = paths
    proc = spawn("start", store, str(effects_file), "wait-timer")
    assert proc.stdout is not None
    execution_id = proc.stdout.readline().strip()
    wait_until(lambda: status(store, execution_id) == "suspended")
    kill(proc)

    assert recover(store, effects_file) == {execution_id: ["a", "b"]}
    seen = effects(effects_file)
    assert seen["start:a"] == seen["done:a"] == 1 and seen["done:b"] == 1

    async def timer_events() -> list[str]:
        engine = treadle.Engine(store)
        events = await engine.events(execution_id)
        await engine.close()
        return [e.type for e in events]

    types = asyncio.run(timer_events())
    assert types.count("timer.started") == 1 and types.count("timer.fired") == 1
