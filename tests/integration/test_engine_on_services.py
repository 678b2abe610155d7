"""The engine's store-parametrised tests again, on PostgreSQL and Redis.

Unit tests run on memory and SQLite; here the same tests (durability, workers, workflows)
run against the machine's real PostgreSQL and Redis, each test in its own schema or prefix.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import treadle
from stores.storekit import (
    PG_URL,
    REDIS_URL,
    delete_redis_prefix,
    drop_pg_schema,
    require_service,
    with_option,
)

# Import the unit modules under the names pytest gives them (their folder on sys.path): one
# module object each, so workflows registered by name resolve to the same functions.
sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
import test_breakpoints
import test_dead_letters
import test_durability
import test_worker
import test_workflows

pytestmark = pytest.mark.services


@pytest.fixture(params=["postgres", "redis"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgres":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        schema = f"treadle_engine_{uuid.uuid4().hex[:12]}"
        yield with_option(PG_URL, "schema", schema)
        drop_pg_schema(schema)
    else:
        require_service("Redis", "127.0.0.1", 6379)
        prefix = f"treadle-engine:{uuid.uuid4().hex[:12]}:"
        yield with_option(REDIS_URL, "prefix", prefix)
        delete_redis_prefix(prefix)


@pytest.fixture(autouse=True)
async def _close_engines(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Close every engine a test makes: each holds a connection pool on these backends."""
    made: list[treadle.Engine] = []
    original = treadle.Engine.__init__

    def recording(self: treadle.Engine, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(treadle.Engine, "__init__", recording)
    yield
    for engine in made:
        with contextlib.suppress(Exception):
            await engine.close()


def _adopt(module: Any) -> None:
    """Collect the module's store-parametrised async tests (and its fixtures) here.

    Sync tests are left out: `engine.run` opens connections in a loop of its own that ends
    with the call, and on these backends that loop's connections cannot be closed cleanly.
    """
    for name, value in vars(module).items():
        if name.startswith("test_") and inspect.iscoroutinefunction(value):
            if {"store", "store_url"} & set(inspect.signature(value).parameters):
                globals()[name] = value
        elif hasattr(value, "_pytestfixturefunction") or type(value).__name__ == (
                "FixtureFunctionDefinition"):
            globals()[name] = value


for _module in (test_breakpoints, test_dead_letters, test_durability, test_worker, test_workflows):
    _adopt(_module)
