"""A served application's housekeeping (`AppRuntime.start(recover=True)`, the control plane's
`treadle.server.housekeeping`): expired records are deleted while it serves, live ones kept.
The take-over of a killed server's executions is in tests/acceptance/test_cli_app_takeover.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import treadle
from treadle.apps import build_app
from treadle.stores import Record


async def until(check: Callable[[], Awaitable[bool]], what: str,
                timeout: float = 30.0) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_serving_app_deletes_expired_records(app_dir: Path, tmp_path: Path) -> None:
    engine = treadle.Engine(f"sqlite:///{tmp_path}/runs.db", registry=treadle.Registry())
    runtime = build_app(app_dir / "crud.yaml", engine)
    runtime.reclaim_seconds = runtime.prune_seconds = 0.05
    async with runtime:
        store = engine.store
        now = time.time()
        await store.put_record(Record("audit", "old", {"action": "x"}, now - 10,
                                      expires_at=now - 1))
        await store.put_record(Record("audit", "kept", {"action": "y"}, now))

        async def deleted() -> bool:
            return await store.get_record("audit", "old") is None

        await until(deleted, "the expired record to be deleted")
        assert await store.get_record("audit", "kept") is not None
    assert runtime._housekeeping is None  # stopped with the runtime
    await engine.close()


async def test_without_recover_there_is_no_housekeeping(app_dir: Path, tmp_path: Path) -> None:
    engine = treadle.Engine(f"sqlite:///{tmp_path}/runs.db", registry=treadle.Registry())
    runtime = build_app(app_dir / "crud.yaml", engine)
    await runtime.start(recover=False)
    try:
        assert runtime._housekeeping is None
    finally:
        await runtime.stop()
        await engine.close()
