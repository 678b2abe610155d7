"""Lease takeover: a SIGKILLed worker's executions resume on another within lease + 1 s.

Two real `treadle worker` processes share one PostgreSQL schema with a 2 s lease. Worker A
claims every execution and is killed while each is in its second step; worker B, already up,
must resume each one within lease + 1 s of the kill — measured from the kill to the first
event the execution's journal gets afterwards — without re-running the finished first step.

The bound is the lease (A's heartbeat renews it every lease / 3, so at most 2 s are left at
the kill), plus the time until B next looks for work (at most its poll interval, 0.5 s by
default; at the lease's end when the store pushes wake-ups), plus B's claim and resume.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

import treadle
from chaos.takeover_app import takeover_three
from stores.storekit import PG_URL, drop_pg_schema, require_service, with_option

APP = Path(__file__).with_name("takeover_app.py")
LEASE = 2.0
HELD = 8
QUEUE = "takeover"
pytestmark = [pytest.mark.slow, pytest.mark.services]
T = TypeVar("T")


@pytest.fixture
def store() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"treadle_takeover_{uuid.uuid4().hex[:12]}"
    yield with_option(PG_URL, "schema", schema)
    drop_pg_schema(schema)


class Worker:
    """`treadle worker` in a subprocess; stderr in a log file."""

    def __init__(self, store: str, folder: Path, name: str, effects: Path) -> None:
        self.log = folder / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "treadle.cli", "worker", "--store", store,
                 "--queue", QUEUE, "--concurrency", str(4 * HELD), "--lease", str(LEASE),
                 "--import", str(APP)],
                env={**os.environ, "TAKEOVER_EFFECTS": str(effects)},
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)

    def ready(self) -> bool:
        """Logged once its store is open, right before it first looks for work."""
        assert self.proc.poll() is None, self.log.read_text()
        return " on queues " in self.log.read_text()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def effects(path: Path, step: str) -> list[tuple[str, int, float]]:
    """(execution id, pid, time) of every attempt of `step`."""
    if not path.exists():
        return []
    found = [line.split() for line in path.read_text().splitlines()]
    return [(ident, int(pid), float(at)) for kind, ident, pid, at in found if kind == step]


def test_a_killed_workers_executions_resume_within_lease_plus_one_second(
        store: str, tmp_path: Path) -> None:
    effects_log, gate = tmp_path / "effects.log", tmp_path / "gate"

    def with_engine(work: Callable[[treadle.Engine], Awaitable[T]]) -> T:
        async def main() -> T:
            async with treadle.Engine(store) as engine:
                return await work(engine)
        return asyncio.run(main())

    async def enqueue(engine: treadle.Engine) -> list[str]:
        return [(await engine.start(takeover_three, str(gate), queue=QUEUE)).id
                for _ in range(HELD)]

    def journals(ids: list[str]) -> dict[str, list[treadle.Event]]:
        async def read(engine: treadle.Engine) -> dict[str, list[treadle.Event]]:
            return {i: await engine.events(i) for i in ids}
        return with_engine(read)

    def executions(ids: list[str]) -> list[treadle.Execution]:
        async def read(engine: treadle.Engine) -> list[treadle.Execution]:
            return [await engine.get(i) for i in ids]
        return with_engine(read)

    a = Worker(store, tmp_path, "a", effects_log)
    b: Worker | None = None
    try:
        wait_for(a.ready, "worker a is up")
        ids = with_engine(enqueue)
        wait_for(lambda: len({i for i, pid, _ in effects(effects_log, "hold")
                              if pid == a.proc.pid}) == HELD,
                 "worker a runs the second step of every execution")
        before = journals(ids)
        for events in before.values():  # mid-way: the first step is durable, the second is not
            done = [e.data["step_name"] for e in events if e.type == "step.completed"]
            assert done == ["takeover.first"]
        b = Worker(store, tmp_path, "b", effects_log)
        wait_for(b.ready, "worker b is up")

        killed = time.time()
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait(timeout=10)
        gate.touch()

        wait_for(lambda: all(e.status.is_terminal for e in executions(ids)),
                 "every execution finished", timeout=LEASE + 20)
        assert [e.output for e in executions(ids)] == [6] * HELD
        after = journals(ids)
    finally:
        if a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()
        if b is not None:
            b.proc.send_signal(signal.SIGTERM)
            b.proc.wait(timeout=30)
    assert b.proc.returncode == 0, b.log.read_text()  # B drained cleanly

    delays = {}
    for ident in ids:
        new = [e for e in after[ident] if e.seq > before[ident][-1].seq]
        assert new, f"{ident}: nothing journaled after the kill"
        assert new[0].created_at > killed
        delays[ident] = new[0].created_at - killed
    assert max(delays.values()) <= LEASE + 1.0, delays

    firsts, holds, lasts = (effects(effects_log, s) for s in ("first", "hold", "last"))
    assert sorted(i for i, _, _ in firsts) == sorted(ids)  # the finished step never re-ran
    assert all(pid == a.proc.pid for _, pid, _ in firsts)
    by_b = [(i, at) for i, pid, at in holds if pid == b.proc.pid]
    assert sorted(i for i, _ in by_b) == sorted(ids)  # the interrupted step re-ran on B only
    assert all(at > killed for _, at in by_b)  # ... and only after the kill
    assert len(holds) == 2 * HELD
    assert sorted(i for i, _, _ in lasts) == sorted(ids)
    assert all(pid == b.proc.pid for _, pid, _ in lasts)
