"""`treadle serve` answers on 127.0.0.1 and runs what the API starts."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_serve_control_plane(cli) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = cli.spawn("serve", "--port", str(port), "--import", "cliflows",
                     "--api-key", "s3cret")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if request(f"{base}/healthz")[0] == 200:
                break
        except OSError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "server did not come up"
    status, body = request(f"{base}/api/v1/executions", {"workflow": "add", "args": [2, 3]})
    assert status == 401 and body["error"]["code"]
    status, body = request(f"{base}/api/v1/executions", {"workflow": "add", "args": [2, 3]},
                           key="s3cret")
    assert status == 201, body
    execution_id = body["id"]
    while True:
        status, view = request(f"{base}/api/v1/executions/{execution_id}", key="s3cret")
        if view["status"] == "completed":
            break
        assert time.monotonic() < deadline
    assert view["output"] == 5
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "s3cret" not in err  # secrets never reach the logs
