"""serve_app in its own process: listens on the http.server's address (port overridden),
serves the routes, and shuts down cleanly on a signal leaving the journal behind (uvicorn
re-raises SIGTERM after its graceful shutdown, so that exit status is -15; Ctrl-C exits 0)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import treadle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)  # readiness polling of a separate process, not synchronisation
    raise AssertionError("server did not start")


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 0), (signal.SIGTERM, -15)])
def test_serve_app_runs_until_a_signal(app_dir: Path, tmp_path: Path, sig: int,
                                       status: int) -> None:
    port = _free_port()
    store = f"sqlite:///{tmp_path}/served.db"
    code = ("from treadle.apps import serve_app; "
            f"serve_app({str(app_dir / 'crud.yaml')!r}, {store!r}, port={port}, "
            "log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base + "/healthz", proc)
        created = httpx.post(base + "/items", json={"name": "served"})
        assert created.status_code == 201
        item = httpx.get(base + f"/items/{created.json()['id']}").json()
        assert item["name"] == "served"
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == status
    errors = err.decode()
    assert "Traceback" not in errors and "failed" not in errors, errors

    async def count() -> int:
        async with treadle.Engine(store) as engine:
            page = await engine.list(workflow="pipeline:create-item")
            return len(page.items)

    assert asyncio.run(count()) == 1


TWO_SERVERS = """
modules:
  - {{name: public, type: http.server, config: {{address: "127.0.0.1:{public}"}}}}
  - {{name: admin, type: http.server, config: {{address: "127.0.0.1:{admin}"}}}}
  - {{name: api, type: http.router, dependsOn: [public]}}
  - {{name: ops, type: http.router, dependsOn: [admin]}}
  - {{name: hello, type: http.handler}}
workflows:
  http:
    router: api
    routes:
      - {{method: GET, path: /hello, handler: hello}}
pipelines:
  stats:
    trigger: {{type: http, config: {{path: /stats, method: GET, router: ops}}}}
    steps:
      - {{name: out, type: step.json_response, config: {{status: 200, body: {{ok: true}}}}}}
"""


def test_serve_app_listens_on_every_http_server(tmp_path: Path) -> None:
    public, admin = _free_port(), _free_port()
    config = tmp_path / "two.yaml"
    config.write_text(TWO_SERVERS.format(public=public, admin=admin))
    store = f"sqlite:///{tmp_path}/two.db"
    code = ("from treadle.apps import serve_app; "
            f"serve_app({str(config)!r}, {store!r}, log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        one, two = f"http://127.0.0.1:{public}", f"http://127.0.0.1:{admin}"
        _wait_ready(one + "/hello", proc)
        _wait_ready(two + "/stats", proc)
        assert httpx.get(one + "/hello").json()["handler"] == "hello"
        assert httpx.get(two + "/hello").status_code == 404
        assert httpx.get(two + "/stats").json() == {"ok": True}
        assert httpx.get(one + "/stats").status_code == 404
        assert httpx.get(one + "/healthz").status_code in (200, 401)  # control plane: first
        assert httpx.get(two + "/api/v1/executions").status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
