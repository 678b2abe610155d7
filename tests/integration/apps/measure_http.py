"""Measure a 5-step HTTP pipeline served by `serve_app` (uvicorn, SQLite store).

    python tests/integration/apps/measure_http.py [--seconds 10] [--concurrency 32]

Starts the server in its own process, drives it with keep-alive connections from raw asyncio
sockets (or `--wrk`), prints requests/s and latency percentiles. A measurement, never a
test: no timed asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

APP = Path(__file__).parent / "bench" / "five_steps.yaml"


async def drive(port: int, seconds: float, concurrency: int) -> tuple[list[float], int]:
    """Keep-alive HTTP/1.1 over raw asyncio sockets (httpx's async pool collapses past a few
    connections and would measure itself)."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        while time.perf_counter() < stop:
            i += 1
            body = b'{"qty": %d}' % i
            writer.write(b"POST /quotes/sku-%d HTTP/1.1\r\nHost: bench\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (n, len(body), body))
            start = time.perf_counter()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return latencies, errors


def run_wrk(port: int, seconds: float, concurrency: int) -> None:
    script = Path(__file__).parent / "bench" / "post_quote.lua"
    subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "-s", str(script),
                    f"http://127.0.0.1:{port}/quotes/sku-1"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--store", default="")
    parser.add_argument("--wrk", action="store_true", help="drive with wrk (if installed)")
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tmp = tempfile.mkdtemp()
    store = args.store or f"sqlite:///{tmp}/bench.db"
    code = ("from treadle.apps import serve_app; "
            f"serve_app({str(APP)!r}, {store!r}, port={port}, log_level='warning', "
            "access_log=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.post(base + "/quotes/x", json={"qty": 1}, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        asyncio.run(drive(port, args.warmup, args.concurrency))
        if args.wrk and shutil.which("wrk"):
            run_wrk(port, args.seconds, args.concurrency)
            return
        latencies, errors = asyncio.run(drive(port, args.seconds, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(f"requests: {len(latencies)} in {args.seconds:.0f}s, concurrency {args.concurrency}, "
          f"errors {errors}")
    print(f"throughput: {len(latencies) / args.seconds:.0f} requests/s")
    print(f"latency ms: p50 {q[49] * 1000:.1f}  p95 {q[94] * 1000:.1f}  "
          f"p99 {q[98] * 1000:.1f}  max {latencies[-1] * 1000:.1f}")


if __name__ == "__main__":
    main()
