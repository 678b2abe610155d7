"""A real uvicorn server on 127.0.0.1 (a free port) serving a YAML application, in the
test's event loop so tests can reach the runtime (broker drain, scheduler tick)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import treadle
from treadle.apps import AppRuntime, asgi_app, build_app

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Served:
    runtime: AppRuntime
    url: str
    client: httpx.AsyncClient


@contextlib.asynccontextmanager
async def serve(runtime: AppRuntime, fallback: Any = None) -> AsyncIterator[Served]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app(runtime, fallback), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield Served(runtime, url, client)
    finally:
        server.should_exit = True
        await task
        sock.close()


Serve = Callable[..., contextlib.AbstractAsyncContextManager[Served]]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "apps")
    return tmp_path / "apps"


@pytest.fixture
def serve_app(app_dir: Path, tmp_path: Path) -> Serve:
    """`async with serve_app("crud.yaml") as s:` — the app on an engine over SQLite."""

    def make(name: str, *, fallback: Any = None, control_plane_factory: Any = None,
             **kw: Any) -> Any:
        engine = treadle.Engine(f"sqlite:///{tmp_path}/runs.db", registry=treadle.Registry())
        runtime = build_app(app_dir / name, engine, **kw)
        if control_plane_factory is not None:
            fallback = control_plane_factory(runtime)
        return serve(runtime, fallback)

    return make
