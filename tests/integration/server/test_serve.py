"""`treadle.server.serve` in its own process: it resumes what a dead process left, and serves."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

import treadle

from .conftest import finished, wait_for
from .workflows import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
SERVER = """
import sys
sys.path.insert(0, {tests!r})
from integration.server.workflows import REGISTRY
from treadle.server import serve
serve({url!r}, "127.0.0.1", {port}, registry=REGISTRY, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def leave_an_execution_waiting(url: str) -> str:
    engine = treadle.Engine(url, registry=REGISTRY)
    handle = await engine.start("approval", {"items": [1]})
    while (await engine.get(handle.id)).status != treadle.ExecutionStatus.SUSPENDED:
        await asyncio.sleep(0.01)
    await engine.close()  # this process goes away; the execution stays suspended in the store
    return handle.id


def test_serve_recovers_and_serves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/serve.db"
    ex_id = asyncio.run(leave_an_execution_waiting(url))
    port = free_port()
    code = SERVER.format(tests=str(ROOT / "tests"), url=url, port=port)
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            def ready() -> bool:
                try:
                    return client.get("/readyz").status_code == 200
                except httpx.TransportError:
                    assert proc.poll() is None, proc.communicate()[0]
                    return False

            wait_for(ready, 20, "the server to be ready")
            response = client.post(f"/api/v1/executions/{ex_id}/signals",
                                   json={"name": "approve", "payload": "ok"})
            assert response.status_code == 202
            view = finished(client, ex_id)
            assert view["status"] == "completed" and view["output"]["decision"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
