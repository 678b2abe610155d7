"""`engine.lock(name)`: named locks shared by every process using a store (the `Locker`
capability), on every backend; processes are real subprocesses, killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

import treadle
from treadle.errors import LockTimeoutError, StoreError
from treadle.stores import Store
from treadle.stores.base import Locker

APP = Path(__file__).with_name("lock_app.py")


def lock(
    store: Store, name: str, timeout: float | None, ttl: float = 30.0
) -> AbstractAsyncContextManager[None]:
    assert isinstance(store, Locker)
    return store.lock(name, timeout=timeout, ttl=ttl)


@pytest.fixture
def shared_url(store_url: str) -> str:
    if store_url.startswith("memory"):
        pytest.skip("memory:// is not shared between processes")
    return store_url


def spawn(url: str, name: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(APP), url, name, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_lock_excludes_other_processes(shared_url: str, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    procs = [spawn(shared_url, "counter", "count", str(counter), "60") for _ in range(3)]
    for proc in procs:
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "ready"
    for proc in procs:  # all at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = await asyncio.to_thread(proc.communicate, timeout=50)
        assert proc.returncode == 0 and out.strip() == "done", err
    assert counter.read_text() == "180"  # no lost update


async def test_lock_excludes_tasks_of_one_process(store: Store) -> None:
    inside, most, total = 0, 0, 0

    async def bump() -> None:
        nonlocal inside, most, total
        for _ in range(10):
            async with lock(store, "tasks", timeout=30):
                inside += 1
                most = max(most, inside)
                value = total
                await asyncio.sleep(0)
                total = value + 1
                inside -= 1

    await asyncio.gather(*(bump() for _ in range(8)))
    assert (most, total) == (1, 80)


async def test_a_lock_held_elsewhere_times_out(store: Store, peer: Store) -> None:
    async with lock(store, "busy", timeout=None):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught:
            async with lock(peer, "busy", timeout=0.3):
                pytest.fail("acquired a held lock")
        assert 0.25 <= time.monotonic() - started < 5
        assert isinstance(caught.value, TimeoutError) and caught.value.name == "busy"
        assert "'busy'" in str(caught.value) and "0.3" in str(caught.value)
        with pytest.raises(LockTimeoutError):
            async with lock(peer, "busy", timeout=0):
                pytest.fail("acquired a held lock")
        async with lock(peer, "other-name", timeout=0):
            pass  # names are independent
    async with lock(peer, "busy", timeout=5):
        pass  # released: free again


async def test_a_waiter_gets_the_lock_when_it_is_released(store: Store, peer: Store) -> None:
    order: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with lock(store, "handover", timeout=5):
            order.append("first")
            await release.wait()
            order.append("first-out")

    holder = asyncio.create_task(first())
    while not order:
        await asyncio.sleep(0.001)

    async def second() -> None:
        async with lock(peer, "handover", timeout=10):
            order.append("second")

    waiter = asyncio.create_task(second())
    await asyncio.sleep(0.05)  # give the waiter time to (wrongly) get in
    assert order == ["first"]
    release.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first", "first-out", "second"]


async def test_a_failing_block_releases_the_lock(store: Store, peer: Store) -> None:
    with pytest.raises(ValueError, match="boom"):
        async with lock(store, "fails", timeout=5):
            raise ValueError("boom")
    async with lock(peer, "fails", timeout=0):
        pass


async def test_a_killed_holder_frees_the_lock(shared_url: str) -> None:
    holder = spawn(shared_url, "doomed", "hold")
    try:
        assert holder.stdout is not None
        line = await asyncio.to_thread(holder.stdout.readline)
        assert line.strip() == "held", holder.stderr.read() if holder.stderr else ""
        engine = treadle.Engine(shared_url)
        try:
            with pytest.raises(LockTimeoutError):
                async with engine.lock("doomed", timeout=0):
                    pytest.fail("acquired a held lock")
            os.kill(holder.pid, signal.SIGKILL)
            killed = time.monotonic()
            # PostgreSQL: the session ends; SQLite: the OS drops the flock; Redis: TTL 1 s
            async with engine.lock("doomed", timeout=20):
                waited = time.monotonic() - killed
            assert waited < 5
        finally:
            await engine.close()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate(timeout=10)


async def test_engine_lock_is_the_store_lock(store_url: str) -> None:
    engine = treadle.Engine(store_url)
    try:
        async with engine.lock("facade"):
            with pytest.raises(LockTimeoutError):
                async with engine.lock("facade", timeout=0.05):
                    pass
        with pytest.raises(ValueError):
            engine.lock("")
    finally:
        await engine.close()


async def test_a_lock_lost_with_its_connection_is_reported(backend: str, store: Store) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL: a session lock ends with its connection")
    import psycopg
    from storekit import PG_URL

    from treadle.stores.locks import lock_key

    # Only this lock's holder: other sessions on the server (other tests) hold advisory locks.
    k1, k2 = lock_key(store.schema, "fragile")  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match="lost while held"):
        async with lock(store, "fragile", timeout=5):
            async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
                cur = await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
                    "AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
                    (k1 & 0xFFFFFFFF, k2 & 0xFFFFFFFF))
                assert len(await cur.fetchall()) == 1
