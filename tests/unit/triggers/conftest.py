"""Fixtures: build an application from YAML text on a fresh engine (memory store)."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import treadle
from treadle.apps import AppRuntime, build_app

Build = Callable[..., AppRuntime]


@pytest.fixture
async def build(tmp_path: Path) -> AsyncIterator[Build]:
    runtimes: list[AppRuntime] = []

    def make(text: str, *, store: str = "memory://", **kw: Any) -> AppRuntime:
        path = tmp_path / "app.yaml"
        path.write_text(textwrap.dedent(text))
        engine = treadle.Engine(store, registry=treadle.Registry())
        runtime = build_app(path, engine, **kw)
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        await runtime.stop()
        await runtime.engine.close()
