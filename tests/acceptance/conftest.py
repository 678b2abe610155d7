"""Running the `treadle` CLI as a user would: a subprocess, a SQLite store in `tmp_path`.

The workflow modules under `fixtures/` are importable by the subprocess (PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


class Cli:
    """`cli("executions", "list")` runs `python -m treadle.cli executions list` in `cwd`."""

    def __init__(self, cwd: Path, store: str) -> None:
        self.cwd = cwd
        self.store = store
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TREADLE_") and k not in ("COLUMNS", "FORCE_COLOR")}
        paths = [str(FIXTURES), *filter(None, [os.environ.get("PYTHONPATH")])]
        env.update(PYTHONPATH=os.pathsep.join(paths), TREADLE_STORE=store, NO_COLOR="1")
        self.env = env
        self.spawned: list[subprocess.Popen[str]] = []

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "treadle.cli", *args]

    def __call__(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, input=stdin,
                              cwd=self.cwd, env={**self.env, **(env or {})}, timeout=timeout)

    def ok(self, *args: str, **kwargs: Any) -> str:
        """Run, expect exit 0, return stdout."""
        out = self(*args, **kwargs)
        assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kwargs))

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """Start the CLI in the background (stopped at teardown if still running)."""
        proc = subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.cwd, env=self.env)
        self.spawned.append(proc)
        return proc

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], *, workflow: str,
                 deadline: float = 30.0) -> dict[str, Any]:
        """Poll `executions list --json` until an execution of `workflow` satisfies it."""
        end = time.monotonic() + deadline
        while True:
            for item in self.json("executions", "list", "--workflow", workflow)["items"]:
                if predicate(item):
                    return dict(item)
            if time.monotonic() > end:
                raise AssertionError(f"no {workflow} execution got there within {deadline}s")

    def close(self) -> None:
        for proc in self.spawned:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path, f"sqlite:///{tmp_path}/cli.db")
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, list[str]]]:
    """A store with 3 greet executions, then 1 failed pay and 1 add (ids oldest first)."""
    folder = tmp_path_factory.mktemp("populated")
    runner = Cli(folder, f"sqlite:///{folder}/cli.db")
    ids = [runner.json("run", "cliflows:greet", "--input", json.dumps({"name": n}))["id"]
           for n in ("ann", "bob", "cy")]
    failed = runner("run", "cliflows:pay", "--input", '{"amount": 5}', "--json")
    assert failed.returncode == 1, failed.stderr
    ids.append(json.loads(failed.stdout)["id"])
    ids.append(runner.json("run", "cliflows:add", "--args", "[1, 2]")["id"])
    yield runner, ids
    runner.close()
