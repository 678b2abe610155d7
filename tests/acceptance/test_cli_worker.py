"""`treadle worker` runs what producers enqueue, and drains on SIGTERM; `treadle db upgrade`."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import treadle
from treadle.stores import open_store

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import cliflows


def enqueue(store: str, count: int) -> list[str]:
    async def main() -> list[str]:
        engine = treadle.Engine(store)
        ids = [(await engine.start(cliflows.add, i, i, queue="work")).id for i in range(count)]
        await engine.close()
        return ids

    return asyncio.run(main())


def rows(store: str, ids: list[str]) -> list[treadle.ExecutionSummary]:
    async def main() -> list[treadle.ExecutionSummary]:
        db = open_store(store)
        found = [await db.get(i) for i in ids]
        await db.close()
        return [r for r in found if r is not None]

    return asyncio.run(main())


def test_worker_runs_enqueued_work_and_drains_on_sigterm(cli) -> None:  # type: ignore[no-untyped-def]
    ids = enqueue(cli.store, 5)
    assert {str(r.status) for r in rows(cli.store, ids)} == {"pending"}
    proc = cli.spawn("worker", "--queue", "work", "--import", "cliflows",
                     "--poll-interval", "0.05", "--lease", "2")
    cli.wait_for(lambda item: item["status"] == "completed", workflow="add")
    for _ in range(600):
        if all(str(r.status) == "completed" for r in rows(cli.store, ids)):
            break
        assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "drained" in err
    results = cli.json("executions", "show", ids[3])
    assert results["status"] == "completed" and results["output"] == 6
    assert all(r.owner is None or r.status.is_terminal for r in rows(cli.store, ids))


def test_db_upgrade(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli.ok("db", "upgrade")
    assert "schema is up to date" in out
    assert (Path(cli.cwd) / "cli.db").exists()
