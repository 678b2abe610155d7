"""HTTP benchmarks: a real `treadle serve` subprocess on 127.0.0.1, driven over loopback.

Two servers, each on a fresh store (a new SQLite file for `sqlite`):

- `http_start`: the control plane (`treadle serve --import <flows.py> --api-key …`), load
  `POST /api/v1/executions` of a one-step workflow (the execution then runs in the server);
- `http_pipeline`: a YAML application (`treadle serve APP.yaml`) whose route runs a 5-step
  pipeline (request_parse → validate → set → jq → json_response, the pipeline of issue 3's
  target) and answers with its
  response, so every request is a whole journaled execution.

Each is measured twice after a warm-up:

- **closed loop**: `concurrency` keep-alive connections each send their next request as soon
  as the previous answer arrived. Gives the capacity (`requests_per_s`) and the latency at
  that concurrency (`p50_ms`, `p95_ms`, `p99_ms`).
- **open loop**: requests are *offered* at a fixed rate (1,000/s, the target), spread over up
  to 64 connections; each latency runs from the moment the request was due, not from when a
  connection was free to send it (no coordinated omission). This answers "does it sustain
  1,000 req/s with p95 < 20 ms": `open_rps` is what it achieved, `open_p95_ms` the tail.
  A server that falls 2 s behind cannot sustain the rate: the loop stops offering more
  (`not_sent` in the JSON) instead of measuring an ever longer queue.

The load generator is a small asyncio client on raw sockets (uvloop when importable): httpx
costs more CPU per request than the server does. Both sides' CPU time is reported per
request (`server_cpu_us` from /proc/<pid>/stat, `client_cpu_us` from this process), so a
figure limited by the client shows as such. On a 2-CPU machine the server (one process, one
thread) and the client each get about one CPU.

    .venv/bin/python bench/http_benches.py                     # both, SQLite, JSON on stdout
    .venv/bin/python bench/http_benches.py --only pipeline --requests 5000 --concurrency 16
    .venv/bin/python bench/run.py --only http_start,http_pipeline --stores sqlite:normal
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import REPO, Result, Target
from workloads import Plan, StoreSpec, parse_stores

HOST = "127.0.0.1"
API_KEY = "bench-key"
RPS_TARGET = Target(1000.0, ">=")
P95_TARGET = Target(20.0)
OPEN_RATE = 1000.0
OPEN_CONNECTIONS = 64
MAX_BACKLOG_S = 2.0  # the open loop gives up once this many seconds of requests are waiting
# The open loop's achieved rate is n / ((n - 1) / rate + the last answer's latency): a server
# that keeps up with 1,000/s offered shows 99.x % of it. "Sustains 1,000/s" is that, with every
# request offered on time (a server that falls behind is cut off and reported `not_sent`).
OPEN_RPS_TARGET = Target(OPEN_RATE * 0.99, ">=")

FLOWS = '''
import treadle


@treadle.step(name="bench.hello")
async def hello(name):
    return {"greeting": f"hello {name}"}


@treadle.workflow(name="bench-greet")
async def greet(ctx, name):
    return await hello(name)
'''

APP = '''
name: bench-pipeline
version: "1.0"
modules:
  - name: server
    type: http.server
    config:
      address: "127.0.0.1:8080"
  - name: router
    type: http.router
    dependsOn: [server]
workflows:
  http:
    server: server
    router: router
    routes: []
pipelines:
  create-order:
    trigger:
      type: http
      config:
        path: /orders
        method: POST
    steps:
      - name: parse-request
        type: step.request_parse
        config:
          parse_body: true
      - name: check
        type: step.validate
        error_status: 400
        config:
          strategy: json_schema
          source: steps.parse-request.body
          schema:
            type: object
            required: [id, sku]
            properties:
              id: {type: integer}
              sku: {type: string}
      - name: defaults
        type: step.set
        config:
          values:
            status: accepted
            order_id: "{{ .body.id }}"
      - name: shape
        type: step.jq
        config:
          input_from: steps.parse-request.body
          expression: "{id, sku, lines: (.qty // 1)}"
      - name: respond
        type: step.json_response
        config:
          status: 201
          body:
            order_id: "{{ .steps.defaults.order_id }}"
            status: "{{ .steps.defaults.status }}"
'''


# -- the server ---------------------------------------------------------------------------------

@dataclass
class Endpoint:
    """What to load: the path, the bodies, the status every answer must have."""

    name: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, i: int) -> bytes:
        if self.name == "start":
            return json.dumps({"workflow": "bench-greet", "input": f"n{i}"}).encode()
        return json.dumps({"id": i, "sku": f"SKU-{i % 97:03d}", "qty": 1}).encode()

    def request(self, i: int) -> bytes:
        body = self.body(i)
        head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        return (f"POST {self.path} HTTP/1.1\r\nHost: {HOST}\r\n{head}"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body


ENDPOINTS = {
    "start": Endpoint("start", "/api/v1/executions", 201, {"X-API-Key": API_KEY}),
    "pipeline": Endpoint("pipeline", "/orders", 201),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(which: str, store_url: str, folder: Path, extra: Sequence[str] = (),
            flows: str = FLOWS) -> Iterator[tuple[int, int]]:
    """`treadle serve` in a subprocess (its stdout/stderr in `folder`); yields (port, pid).
    `start`: the control plane with `flows` imported, `pipeline`: the YAML app."""
    port = free_port()
    command = [sys.executable, "-m", "treadle.cli", "serve", "--store", store_url,
               "--port", str(port)]
    if which == "start":
        module = folder / "benchflows.py"
        module.write_text(textwrap.dedent(flows))
        command += ["--import", str(module), "--api-key", API_KEY]
    else:
        app = folder / "app.yaml"
        app.write_text(textwrap.dedent(APP))
        command.insert(4, str(app))
    command += list(extra)
    log = (folder / "server.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    raise RuntimeError("the server did not start:\n"
                                       + (folder / "server.log").read_text()[-2000:]) from None
                time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0.0 elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the client ---------------------------------------------------------------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def call(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"a response without Content-Length: {head!r}")
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


@dataclass
class Run:
    latencies_ms: list[float]
    elapsed_s: float
    client_cpu_s: float
    server_cpu_s: float
    errors: dict[int, int]
    not_sent: int = 0  # open loop: requests dropped once the server fell behind

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s


def _check(status: int, target: Endpoint, errors: dict[int, int]) -> None:
    if status != target.status:
        errors[status] = errors.get(status, 0) + 1


async def closed_loop(port: int, pid: int, target: Endpoint, total: int,
                      concurrency: int, first: int = 0) -> Run:
    """`concurrency` connections, each sending its next request when its answer arrived."""
    requests = iter(range(first, first + total))
    latencies: list[float] = []
    errors: dict[int, int] = {}
    connections = [await Connection.open(port) for _ in range(concurrency)]

    async def drive(conn: Connection) -> None:
        for i in requests:
            data = target.request(i)
            t0 = time.perf_counter()
            status = await conn.call(data)
            latencies.append((time.perf_counter() - t0) * 1000)
            _check(status, target, errors)

    cpu0, server0, t0 = time.process_time(), cpu_seconds(pid), time.perf_counter()
    try:
        await asyncio.gather(*(drive(c) for c in connections))
    finally:
        for conn in connections:
            conn.close()
    elapsed = time.perf_counter() - t0
    return Run(latencies, elapsed, time.process_time() - cpu0, cpu_seconds(pid) - server0,
               errors)


async def open_loop(port: int, pid: int, target: Endpoint, total: int, rate: float,
                    connections: int = OPEN_CONNECTIONS, first: int = 0) -> Run:
    """Requests due at `rate` per second; a free connection sends the next due one. The
    latency counts from when it was due (a request that waited for a connection waited)."""
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors: dict[int, int] = {}
    pool = [await Connection.open(port) for _ in range(connections)]

    backlog = 0

    async def schedule(start: float) -> None:
        nonlocal backlog
        for n in range(total):
            when = start + n / rate
            delay = when - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            if due.qsize() > rate * MAX_BACKLOG_S:  # it does not keep up: no point going on
                backlog = total - n
                break
            due.put_nowait((first + n, when))
        for _ in pool:
            due.put_nowait(None)

    async def drive(conn: Connection) -> None:
        while (item := await due.get()) is not None:
            i, when = item
            status = await conn.call(target.request(i))
            latencies.append((time.perf_counter() - when) * 1000)
            _check(status, target, errors)

    cpu0, server0, t0 = time.process_time(), cpu_seconds(pid), time.perf_counter()
    try:
        await asyncio.gather(schedule(t0), *(drive(c) for c in pool))
    finally:
        for conn in pool:
            conn.close()
    elapsed = time.perf_counter() - t0
    return Run(latencies, elapsed, time.process_time() - cpu0, cpu_seconds(pid) - server0,
               errors, not_sent=backlog)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Load:
    warmup: int = 500
    requests: int = 4000
    concurrency: int = 8
    open_requests: int = 4000
    rate: float = OPEN_RATE


def measure(which: str, store_url: str, load: Load,
            extra: Sequence[str] = ()) -> dict[str, Any]:
    """Serve, warm up, run the closed and the open loop; the raw figures as a dict."""
    target = ENDPOINTS[which]
    with tempfile.TemporaryDirectory(prefix="treadle-http-") as tmp:
        folder = Path(tmp)
        url = store_url.replace("{dir}", tmp)
        with serving(which, url, folder, extra) as (port, pid):
            loop = _new_loop()
            try:
                loop.run_until_complete(closed_loop(port, pid, target, load.warmup,
                                                    load.concurrency))
                closed = loop.run_until_complete(closed_loop(
                    port, pid, target, load.requests, load.concurrency, first=load.warmup))
                opened = None
                if load.open_requests:
                    time.sleep(0.5)  # let the server finish what the closed loop started
                    opened = loop.run_until_complete(open_loop(
                        port, pid, target, load.open_requests, load.rate,
                        first=load.warmup + load.requests))
            finally:
                loop.close()
    out: dict[str, Any] = {"which": which, "store": store_url,
                           "closed": _figures(closed, load.concurrency)}
    if opened is not None:
        out["open"] = {**_figures(opened, OPEN_CONNECTIONS), "offered_rps": load.rate}
    return out


def _figures(run: Run, concurrency: int) -> dict[str, Any]:
    n = len(run.latencies_ms)
    return {
        "requests": n, "concurrency": concurrency, "requests_per_s": round(run.rps, 1),
        "p50_ms": round(percentile(run.latencies_ms, 50), 3),
        "p95_ms": round(percentile(run.latencies_ms, 95), 3),
        "p99_ms": round(percentile(run.latencies_ms, 99), 3),
        "max_ms": round(max(run.latencies_ms), 3),
        "server_cpu_us": round(run.server_cpu_s / n * 1e6, 1),
        "client_cpu_us": round(run.client_cpu_s / n * 1e6, 1),
        "unexpected_status": run.errors,
        "not_sent": run.not_sent,
    }


# -- rows for bench/run.py ----------------------------------------------------------------------

def _load(plan: Plan) -> Load:
    if plan.quick:
        return Load(warmup=200, requests=1000, open_requests=1000)
    return Load()


def _rows(name: str, store: StoreSpec, figures: dict[str, Any]) -> list[Result]:
    label = store.label
    closed, opened = figures["closed"], figures.get("open")
    sqlite = label == "sqlite"  # the targets are for the default store (synchronous=NORMAL)
    what = ("POST /api/v1/executions (a 1-step workflow that then runs in the server)"
            if name == "http_start" else "POST /orders: a 5-step YAML pipeline, answered by it")
    c = closed["concurrency"]
    extra = {"closed": closed, "open": opened}

    def one(metric: str, unit: str, value: float, note: str,
            target: Target | None = None) -> Result:
        return Result(name, label, metric, unit, value, n=closed["requests"],
                      target=target if sqlite else None, note=note, extra=extra)

    rows = [
        one("requests_per_s", "req/s", closed["requests_per_s"],
            f"{what}; {c} keep-alive connections, closed loop", RPS_TARGET),
        one("p50_ms", "ms", closed["p50_ms"], f"latency at {c} connections, closed loop"),
        one("p95_ms", "ms", closed["p95_ms"], f"latency at {c} connections, closed loop",
            P95_TARGET),
        one("p99_ms", "ms", closed["p99_ms"], f"latency at {c} connections, closed loop"),
        one("server_cpu_us", "us", closed["server_cpu_us"],
            "server process CPU (user+sys) per request, closed loop"),
        one("client_cpu_us", "us", closed["client_cpu_us"],
            "load generator CPU per request (the bench process), closed loop"),
    ]
    if opened is not None:
        behind = (f"; fell behind, {opened['not_sent']} requests not offered"
                  if opened["not_sent"] else "")
        rows += [
            one("open_rps", "req/s", opened["requests_per_s"],
                f"achieved with {opened['offered_rps']:.0f} req/s offered (open loop; keeping "
                f"up shows as 99.x % of it){behind}", OPEN_RPS_TARGET),
            one("open_p95_ms", "ms", opened["p95_ms"],
                f"p95 from due time at {opened['offered_rps']:.0f} req/s offered", P95_TARGET),
            one("open_p99_ms", "ms", opened["p99_ms"],
                f"p99 from due time at {opened['offered_rps']:.0f} req/s offered"),
        ]
    bad = {**closed["unexpected_status"], **(opened or {}).get("unexpected_status", {})}
    if bad:
        for row in rows:
            row.error = f"unexpected statuses {bad}"
    elif opened is not None and opened["not_sent"]:
        rows[-3].error = f"fell behind: {opened['not_sent']} requests not offered"
    return rows


def bench_http_start(store: StoreSpec, plan: Plan) -> list[Result]:
    """The control plane's start endpoint, on `store` (a fresh database when possible)."""
    return _rows("http_start", store, measure("start", store.url, _load(plan)))


def bench_http_pipeline(store: StoreSpec, plan: Plan) -> list[Result]:
    """A 5-step YAML pipeline behind an HTTP route, on `store`."""
    return _rows("http_pipeline", store, measure("pipeline", store.url, _load(plan)))


# -- standalone ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/http_benches.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(ENDPOINTS), action="append")
    parser.add_argument("--store", default="sqlite:normal",
                        help="memory, sqlite:normal, sqlite:full, postgres, redis or a URL")
    parser.add_argument("--requests", type=int, default=Load.requests)
    parser.add_argument("--warmup", type=int, default=Load.warmup)
    parser.add_argument("--concurrency", type=int, default=Load.concurrency)
    parser.add_argument("--open-requests", type=int, default=Load.open_requests,
                        help="requests of the open loop (0: skip it)")
    parser.add_argument("--rate", type=float, default=OPEN_RATE, help="open-loop req/s")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="an extra argument for `treadle serve` (repeatable)")
    args = parser.parse_args(argv)
    spec = parse_stores(args.store)[0]
    load = Load(args.warmup, args.requests, args.concurrency, args.open_requests, args.rate)
    for which in args.only or sorted(ENDPOINTS, reverse=True):
        figures = measure(which, spec.url, load, args.server_arg)
        print(json.dumps(figures), flush=True)
    return 0


__all__ = ["API_KEY", "bench_http_pipeline", "bench_http_start", "measure", "percentile",
           "serving"]

if __name__ == "__main__":
    sys.exit(main())
