"""Measure the control plane (no asserts): `python tests/integration/server/measure.py`.

Runs `treadle.server.serve` on SQLite in a subprocess and reports, as JSON on stdout:
the timeline of a 50-step execution (server-side build time and HTTP round trip), the
start-execution endpoint under concurrent load (requests/s, p50/p95/p99), and SSE delivery
latency (event emission to client receipt), idle and under that load.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
SERVER = """
import sys
sys.path.insert(0, {tests!r})
from integration.server.workflows import REGISTRY
from treadle.server import serve
serve({url!r}, "127.0.0.1", {port}, registry=REGISTRY, log_level="warning")
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_done(client: httpx.AsyncClient, ex_id: str) -> None:
    while (await client.get(f"/api/v1/executions/{ex_id}")).json()["status"] not in (
            "completed", "failed", "cancelled"):
        await asyncio.sleep(0.01)


async def timeline(client: httpx.AsyncClient) -> dict[str, Any]:
    ex_id = (await client.post("/api/v1/executions",
                               json={"workflow": "fifty", "input": 0})).json()["id"]
    await wait_done(client, ex_id)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        response = await client.get(f"/api/v1/executions/{ex_id}/timeline")
        times.append((time.perf_counter() - t0) * 1000)
        assert len(response.json()["steps"]) == 50
    events = (await client.get(f"/api/v1/executions/{ex_id}/events")).json()["items"]
    return {"events": len(events), "http_p50_ms": pct(times, 50), "http_p95_ms": pct(times, 95)}


def timeline_build_ms() -> dict[str, Any]:
    """Server-side cost alone: read the journal from SQLite, project, render, encode."""
    sys.path.insert(0, str(ROOT / "tests"))
    import treadle
    from integration.server.workflows import REGISTRY  # type: ignore[import-not-found,unused-ignore]
    from treadle.journal import project
    from treadle.server.views import timeline_view

    async def main() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            engine = treadle.Engine(f"sqlite:///{tmp}/t.db", registry=REGISTRY)
            handle = await engine.start("fifty", 0)
            await handle.result()
            times = []
            for _ in range(500):
                t0 = time.perf_counter()
                events = await engine.store.events(handle.id)
                json.dumps(timeline_view(project(handle.id, events), events))
                times.append((time.perf_counter() - t0) * 1000)
            await engine.close()
            return {"build_p50_ms": pct(times, 50), "build_p95_ms": pct(times, 95)}

    return asyncio.run(main())


async def sse_latencies(url: str, stop: asyncio.Event, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=None) as client, client.stream(
            "GET", "/api/v1/executions/live", params={"pipeline": "greet"}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                now = time.time()
                at = json.loads(line[6:])["at"]
                sent = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
                out.append((now - sent) * 1000)
            if stop.is_set():
                return


async def _raw_connection(host: str, port: int, bodies: Any, latencies: list[float]) -> None:
    """One keep-alive HTTP/1.1 connection posting starts back to back (httpx's pool costs
    more CPU per request than the server does, so it cannot drive this load)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for body in bodies:
            request = (f"POST /api/v1/executions HTTP/1.1\r\nHost: {host}\r\n"
                       "Content-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - t0) * 1000)
            assert status == 201, head
    finally:
        writer.close()


async def load(url: str, total: int, concurrency: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    bodies = iter(json.dumps({"workflow": "greet", "input": f"n{i}"}).encode()
                  for i in range(total))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(_raw_connection(host, int(port), bodies, latencies)
                           for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"requests": total, "concurrency": concurrency,
            "requests_per_s": round(total / elapsed), "p50_ms": pct(latencies, 50),
            "p95_ms": pct(latencies, 95), "p99_ms": pct(latencies, 99),
            "client_cpu_s": round(time.process_time() - cpu0, 2)}


async def measure(url: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        results: dict[str, Any] = {"timeline_50_steps": await timeline(client)}
        idle: list[float] = []
        stop = asyncio.Event()
        reader = asyncio.create_task(sse_latencies(url, stop, idle))
        await asyncio.sleep(0.2)
        for i in range(100):
            await client.post("/api/v1/executions", json={"workflow": "greet", "input": str(i)})
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)
        stop.set()
        await client.post("/api/v1/executions", json={"workflow": "greet", "input": "end"})
        await reader
        results["sse_idle_ms"] = {"events": len(idle), "p50": pct(idle, 50),
                                  "p99": pct(idle, 99), "max": round(max(idle), 3)}
        busy: list[float] = []
        stop = asyncio.Event()
        reader = asyncio.create_task(sse_latencies(url, stop, busy))
        await asyncio.sleep(0.2)
        results["start_endpoint"] = await load(url, 3000, 32)
        results["start_endpoint_c8"] = await load(url, 2000, 8)
        stop.set()
        await client.post("/api/v1/executions", json={"workflow": "greet", "input": "end"})
        await reader
        results["sse_under_load_ms"] = {"events": len(busy), "p50": pct(busy, 50),
                                        "p99": pct(busy, 99), "max": round(max(busy), 3)}
        return results


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        code = SERVER.format(tests=str(ROOT / "tests"), url=f"sqlite:///{tmp}/bench.db",
                             port=port)
        proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            results = asyncio.run(measure(url))
        finally:
            proc.terminate()
            proc.wait(10)
    results["timeline_50_steps"].update(timeline_build_ms())
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
