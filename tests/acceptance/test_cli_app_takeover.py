"""`treadle serve APP.yaml` takes over the executions of a killed server: a server whose
pipeline waits for a signal is SIGKILLed, a new one on the same store is started within the
lease, and once the lease expires it resumes the execution, which finishes without running
its finished steps again (each step's effect is a row of the app's own SQLite database)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from acceptance.conftest import Cli
from acceptance.test_cli_dlq import Served
from treadle.stores import open_store

if TYPE_CHECKING:
    from treadle.journal import ExecutionSummary

LEASE = "10"  # seconds: the new server starts well within it (heartbeats every third of it),
# so its start-up recovery leaves the execution alone, and only the periodic take-over resumes it

APP = """
name: approvals
modules:
  - name: effects
    type: storage.sqlite
    config:
      dbPath: {db}
      init_sql:
        - CREATE TABLE IF NOT EXISTS effects (step TEXT NOT NULL, payload TEXT)
pipelines:
  approve:
    steps:
      - name: record
        type: step.db_exec
        config:
          database: effects
          query: "INSERT INTO effects (step, payload) VALUES ('record', ?)"
          params: ["{{{{ .order }}}}"]
      - name: approval
        type: step.wait_signal
        config: {{signal: approve}}
      - name: ship
        type: step.db_exec
        config:
          database: effects
          query: "INSERT INTO effects (step, payload) VALUES ('ship', ?)"
          params: ["{{{{ .by }}}}"]
"""


def stored(store_url: str, execution_id: str) -> ExecutionSummary:
    """The execution's row, read from the store as another process would."""

    async def read() -> ExecutionSummary:
        store = open_store(store_url)
        await store.open()
        try:
            row = await store.get(execution_id)
            assert row is not None
            return row
        finally:
            await store.close()

    return asyncio.run(read())


def effects(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT step, payload FROM effects ORDER BY rowid"))


def test_a_restarted_app_server_takes_over_a_killed_servers_execution(tmp_path: Path) -> None:
    db = tmp_path / "effects.db"
    app = tmp_path / "approvals.yaml"
    app.write_text(APP.format(db=db))
    cli = Cli(tmp_path, f"sqlite:///{tmp_path}/runs.db")
    try:
        first = Served(cli, "--lease", LEASE, what=(str(app),))
        try:
            execution = first.start("pipeline:approve", {"order": "o-7"})
            first.reaches(execution, "suspended")  # waiting for its signal
            assert effects(db) == [("record", "o-7")]
        finally:
            first.proc.kill()  # SIGKILL: no shutdown, its lease is left to expire
            first.proc.communicate(timeout=30)
            first.api.close()

        second = Served(cli, "--lease", LEASE, what=(str(app),))
        try:
            # started within the lease: its start-up recovery left the execution to its holder
            row = stored(cli.store, execution)
            assert row.owner is not None and row.lease_until is not None
            assert row.lease_until > time.time(), "the new server started after the lease"
            signalled = second.api.post(f"/api/v1/executions/{execution}/signals",
                                        json={"name": "approve", "payload": {"by": "ann"}})
            assert signalled.status_code == 202, signalled.text
            done = second.reaches(execution, "completed", timeout=60)  # taken over, finished
            assert effects(db) == [("record", "o-7"), ("ship", "ann")]  # record ran once
            steps = {s["name"]: s for s in done["steps"]}
            assert steps["approval"]["output"]["payload"] == {"by": "ann"}
        finally:
            err = second.stop()  # asserts the key is not on stderr
        assert "took over 1 execution(s) of a process that stopped" in err
    finally:
        cli.close()
