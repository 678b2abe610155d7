"""Three worker processes, killed with SIGKILL and restarted while 300 workflows run."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import treadle
from chaos.worker_app import chaos_five
from stores.storekit import PG_URL, drop_pg_schema, require_service, with_option
from treadle.stores import ListQuery, open_store

APP = Path(__file__).with_name("worker_app.py")
pytestmark = pytest.mark.slow
WORKFLOWS = 300


def start_worker(store: str, effects: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(APP), store, str(effects)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def completed(store: str) -> int:
    async def count() -> int:
        db = open_store(store)
        try:
            total, cursor = 0, None
            while True:
                page = await db.list(ListQuery(status=treadle.ExecutionStatus.COMPLETED,
                                               limit=1000, cursor=cursor))
                total += len(page.items)
                if page.next_cursor is None:
                    return total
                cursor = page.next_cursor
        finally:
            await db.close()

    return asyncio.run(count())


@pytest.fixture
def effects(tmp_path: Path) -> Path:
    path = tmp_path / "effects.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE effects (key TEXT PRIMARY KEY, execution_id TEXT, n INTEGER)")
    conn.execute("CREATE TABLE attempts (execution_id TEXT, pos INTEGER, pid INTEGER, "
                 "started REAL, ended REAL)")
    conn.commit()
    conn.close()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/chaos.db"
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"treadle_chaos_{uuid.uuid4().hex[:12]}"
    yield with_option(PG_URL, "schema", schema)
    drop_pg_schema(schema)


def test_killed_workers_lose_nothing_and_never_overlap(store: str, effects: Path) -> None:

    async def enqueue() -> list[str]:
        engine = treadle.Engine(store)
        ids = [(await engine.start(chaos_five, i, queue="chaos")).id for i in range(WORKFLOWS)]
        await engine.close()
        return ids

    ids = asyncio.run(enqueue())
    workers = [start_worker(store, effects) for _ in range(3)]
    kills: dict[int, float] = {}
    rng = random.Random(7)
    try:
        for round_ in range(6):  # kill a random worker each time progress is made
            target = (round_ + 1) * WORKFLOWS // 8
            deadline = time.monotonic() + 60
            while completed(store) < target:
                assert time.monotonic() < deadline, f"stuck below {target}"
                time.sleep(0.02)
            victim = workers.pop(rng.randrange(len(workers)))
            os.kill(victim.pid, signal.SIGKILL)
            kills[victim.pid] = time.time()
            victim.communicate(timeout=10)
            workers.append(start_worker(store, effects))
        deadline = time.monotonic() + 120
        while completed(store) < WORKFLOWS:
            assert time.monotonic() < deadline, "not every workflow completed"
            time.sleep(0.05)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.communicate(timeout=30)
    assert all(proc.returncode == 0 for proc in workers)  # graceful drain on SIGTERM

    async def outputs() -> dict[str, object]:
        engine = treadle.Engine(store)
        found = {i: (await engine.get(i)).output for i in ids}
        await engine.close()
        return found

    results = asyncio.run(outputs())
    assert [results[i] for i in ids] == [
        sum((b * 10 + k) ** 2 for k in range(5)) for b in range(WORKFLOWS)]

    conn = sqlite3.connect(effects)
    assert conn.execute("SELECT count(*), count(DISTINCT key) FROM effects").fetchone() == (
        WORKFLOWS * 5, WORKFLOWS * 5)  # every effect recorded exactly once
    attempts = conn.execute(
        "SELECT execution_id, pos, pid, started, ended FROM attempts ORDER BY started").fetchall()
    by_execution: dict[str, list[tuple[int, int, float, float | None]]] = {}
    for execution_id, pos, pid, started, ended in attempts:
        by_execution.setdefault(execution_id, []).append((pos, pid, started, ended))
    for runs in by_execution.values():  # one worker at a time per execution
        for (_, pid_a, _, end_a), (_, pid_b, start_b, _) in itertools.pairwise(runs):
            if pid_a != pid_b:
                finished = end_a if end_a is not None else kills.get(pid_a)
                assert finished is not None and finished <= start_b
    assert len(kills) == 6
