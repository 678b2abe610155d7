"""A real control-plane server on 127.0.0.1 (uvicorn in a thread), and helpers to poll it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

import treadle
from treadle.server import create_app

from .workflows import REGISTRY

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


@dataclass
class Server:
    url: str
    engine: treadle.Engine
    uvicorn: uvicorn.Server
    thread: threading.Thread

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0)

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive(), "the server did not stop"


def start_server(engine: treadle.Engine, **options: Any) -> Server:
    app = create_app(engine, **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1,
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10, "the server to start")
    return Server(f"http://127.0.0.1:{port}", engine, server, thread)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    engine = treadle.Engine(f"sqlite:///{tmp_path}/server.db", registry=REGISTRY)
    srv = start_server(engine)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def finished(client: httpx.Client, execution_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll an execution until it ends; its JSON view."""

    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/v1/executions/{execution_id}").json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    return wait_for(check, timeout, f"execution {execution_id} to end")


def start(client: httpx.Client, workflow: str, input: Any = None, **extra: Any) -> str:
    response = client.post("/api/v1/executions", json={"workflow": workflow, "input": input,
                                                       **extra})
    assert response.status_code == 201, response.text
    execution_id: str = response.json()["id"]
    return execution_id


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream response into events: `event`, `id`, `data` (JSON), `comment`."""
    import json

    fields: dict[str, Any] = {}
    for line in response.iter_lines():
        if line == "":
            if fields:
                if "data" in fields:
                    fields["data"] = json.loads(fields["data"])
                yield fields
                fields = {}
            continue
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        fields[name] = f"{fields[name]}\n{value}" if name in fields else value
