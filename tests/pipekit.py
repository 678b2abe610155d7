"""Helpers for pipeline and step tests: load YAML applications, engines, journal views.

The fixtures are re-exported by the conftest of tests/unit/pipelines and tests/unit/steps."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import treadle
from treadle.apps import AppRuntime, build_app
from treadle.pipelines import Application, load_application
from treadle.steps import StepRegistry
from treadle.testing import FakeClock

LoadApp = Callable[..., Application]


@pytest.fixture
def registry() -> treadle.Registry:
    return treadle.Registry()


@pytest.fixture
def load_app(tmp_path: Path, registry: treadle.Registry) -> LoadApp:
    """`load_app(yaml_text, modules=...)`: write app.yaml and load it into `registry`."""

    def load(text: str, *, modules: dict[str, Any] | None = None, name: str = "app.yaml",
             step_types: StepRegistry | None = None) -> Application:  # fmt: skip
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return load_application(path, registry=registry, modules=modules,
                                step_types=step_types)  # fmt: skip

    return load


@pytest.fixture
def engine(store_url: str, registry: treadle.Registry) -> treadle.Engine:
    """An engine over memory or SQLite with an auto-advancing fake clock."""
    return treadle.Engine(store_url, registry=registry, clock=FakeClock())


def kinds(events: list[treadle.Event]) -> list[tuple[str, str | None, str | None]]:
    """(type, step_name, step_type) of the step-ish events of a journal."""
    return [(e.type, e.data.get("step_name"), e.data.get("step_type")) for e in events
            if e.type not in ("step.input_recorded", "step.output_recorded")]


CALLS: list[tuple[str, dict[str, Any]]] = []
GATES: dict[str, Any] = {}
"""asyncio.Events that test.gate steps wait for, by name."""
"""(step name, rendered config) of every call of the test step types, in order."""


def test_steps() -> StepRegistry:
    """The built-in step types plus test ones: test.record, test.fail, test.flaky, test.slow."""
    import asyncio

    from treadle.steps import PipelineContext, default_registry

    types = StepRegistry(parent=default_registry)
    any_config = {"type": "object"}

    @types.register("test.record", schema=any_config, doc="Records the call; outputs config.")
    async def record(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
        CALLS.append((ctx.step, dict(config)))
        return dict(config.get("output") or {})

    @types.register("test.fail", schema=any_config, doc="Always fails.")
    async def fail(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
        CALLS.append((ctx.step, dict(config)))
        raise RuntimeError(str(config.get("message", "boom")))

    @types.register("test.flaky", schema=any_config, doc="Fails `fail_times` times first.")
    async def flaky(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
        CALLS.append((ctx.step, dict(config)))
        if sum(1 for name, _ in CALLS if name == ctx.step) <= int(config["fail_times"]):
            raise ConnectionError("flaky")
        return {"ok": True}

    @types.register("test.gate", schema=any_config, doc="Waits for GATE[config.gate].")
    async def gate(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
        CALLS.append((ctx.step, dict(config)))
        await GATES.setdefault(str(config["gate"]), asyncio.Event()).wait()
        return dict(config.get("output") or {})

    @types.register("test.slow", schema=any_config, doc="Sleeps (real time).")
    async def slow(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
        CALLS.append((ctx.step, dict(config)))
        await asyncio.sleep(float(config.get("seconds", 5)))
        return {"slept": True}

    return types
test_steps.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()
    GATES.clear()


@contextlib.asynccontextmanager
async def running_app(tmp_path: Path, text: str,
                      name: str = "app.yaml") -> AsyncIterator[AppRuntime]:  # fmt: skip
    """The application `text` (written to `tmp_path / name`), built on a fresh memory engine
    and started; stopped and its engine closed afterwards."""
    path = tmp_path / name
    path.write_text(text)
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    try:
        async with build_app(path, engine) as runtime:
            yield runtime
    finally:
        await engine.close()
