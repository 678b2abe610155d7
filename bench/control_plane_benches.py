"""Control-plane reads on a `treadle serve` subprocess: the timeline and the live stream.

Targets (issue 5): the timeline of a 50-step execution served in under 20 ms; a timeline over
1,000 events under 50 ms; SSE delivery under 100 ms at p99.

- **timeline**: one execution of 50 steps (201 events) and one of 250 steps (1,001 events) run
  to the end first; then `GET /api/v1/executions/{id}/timeline` is asked for back to back on one
  keep-alive connection. The latency is the HTTP round trip seen by the client (httpx), so it
  includes reading the journal from the store, projecting it, rendering and encoding.
- **sse**: a client follows `GET /api/v1/executions/live?pipeline=…` while executions of a
  1-step workflow are started 50 times a second; each event's delay is the time the client
  read it minus the `at` of the event (when the journal append happened, same clock, 1 ms
  resolution). **sse_load**: the same while `http_start`'s closed loop starts executions as
  fast as 8 connections go (the stream follows those executions).

    .venv/bin/python bench/control_plane_benches.py               # SQLite, JSON on stdout
    .venv/bin/python bench/run.py --only control_plane --stores sqlite:normal
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from common import Result, Target
from http_benches import API_KEY, ENDPOINTS, _new_loop, closed_loop, percentile, serving
from http_benches import FLOWS as START_FLOWS
from workloads import Plan, StoreSpec, parse_stores

TIMELINE_50 = Target(20.0)
TIMELINE_1000 = Target(50.0)
SSE_P99 = Target(100.0)

FLOWS = '''
import treadle


@treadle.step(name="bench.step")
async def one(i):
    return {"i": i, "payload": "x" * 64}


@treadle.workflow(name="bench-steps")
async def steps(ctx, n):
    for i in range(n):
        await one(i)
    return n


@treadle.workflow(name="bench-live")
async def live(ctx, i):
    return await one(i)
'''


def _ended(client: httpx.Client, execution_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/api/v1/executions/{execution_id}").json()["status"] not in (
            "completed", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"execution {execution_id} did not end")
        time.sleep(0.02)


def _timeline(client: httpx.Client, steps: int, requests: int) -> dict[str, Any]:
    started = client.post("/api/v1/executions", json={"workflow": "bench-steps", "input": steps})
    execution_id = started.json()["id"]
    _ended(client, execution_id)
    events = client.get(f"/api/v1/executions/{execution_id}/events",
                        params={"limit": 10_000}).json()["items"]
    path = f"/api/v1/executions/{execution_id}/timeline"
    for _ in range(10):  # warm up
        client.get(path)
    latencies = []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(path)
        latencies.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200 or len(response.json()["steps"]) != steps:
            raise RuntimeError(f"bad timeline answer: {response.status_code}")
    return {"steps": steps, "events": len(events), "requests": requests,
            "bytes": len(response.content), **_stats(latencies)}


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 3), "p95_ms": round(percentile(values, 95), 3),
            "p99_ms": round(percentile(values, 99), 3), "max_ms": round(max(values), 3)}


def _follow(base: str, pipeline: str, executions: int, drive: Callable[[], Any]
            ) -> dict[str, Any]:
    """Follow the live stream of `pipeline` while `drive()` starts `executions` of it; the
    delay of each event, append to client."""
    headers = {"X-API-Key": API_KEY}
    delays: list[float] = []
    ended: set[str] = set()
    subscribed = threading.Event()
    failure: list[BaseException] = []

    def follow() -> None:
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=None) as client, \
                    client.stream("GET", "/api/v1/executions/live",
                                  params={"pipeline": pipeline}) as stream:
                kind = ""
                for line in stream.iter_lines():
                    if line.startswith(":"):
                        subscribed.set()
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        now = time.time()
                        data = json.loads(line[6:])
                        at = datetime.fromisoformat(data["at"].replace("Z", "+00:00"))
                        delays.append((now - at.timestamp()) * 1000)
                        if kind == "execution.completed":
                            ended.add(data["execution_id"])
                        if len(ended) >= executions:
                            return
                    elif not line:
                        kind = ""
        except BaseException as exc:  # reported by the caller
            failure.append(exc)
            subscribed.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    if not subscribed.wait(10):
        raise RuntimeError("the live stream did not answer")
    extra = drive()
    reader.join(120)
    if failure:
        raise RuntimeError(f"the stream failed: {failure[0]!r}")
    if reader.is_alive():
        raise RuntimeError(f"only {len(ended)} of {executions} executions were seen ending")
    return {"executions": executions, "events": len(delays), **_stats(delays), **extra}


def _paced(base: str, executions: int) -> Callable[[], dict[str, Any]]:
    """Start `executions` of bench-live, 50 a second."""

    def drive() -> dict[str, Any]:
        with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=30) as client:
            for i in range(executions):
                due = time.perf_counter() + 0.02
                if client.post("/api/v1/executions",
                               json={"workflow": "bench-live", "input": i}).status_code != 201:
                    raise RuntimeError("a start failed")
                time.sleep(max(0.0, due - time.perf_counter()))
        return {"starts_per_s": 50}

    return drive


def _loaded(port: int, pid: int, executions: int) -> Callable[[], dict[str, Any]]:
    """Start `executions` of bench-greet as fast as 8 keep-alive connections go (the
    `http_start` closed loop)."""

    def drive() -> dict[str, Any]:
        loop = _new_loop()
        try:
            run = loop.run_until_complete(closed_loop(port, pid, ENDPOINTS["start"], executions,
                                                      8))
        finally:
            loop.close()
        if run.errors:
            raise RuntimeError(f"unexpected statuses {run.errors}")
        return {"starts_per_s": round(run.rps, 1)}

    return drive


def measure(store_url: str, quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="treadle-cp-") as tmp:
        url = store_url.replace("{dir}", tmp)
        with serving("start", url, Path(tmp), flows=START_FLOWS + FLOWS) as (port, pid):
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY},
                              timeout=60) as client:
                fifty = _timeline(client, 50, 100 if quick else 300)
                thousand = _timeline(client, 250, 30 if quick else 100)
            sse = _follow(base, "bench-live", 100 if quick else 300, _paced(base, 100 if quick
                                                                           else 300))
            busy = 500 if quick else 2000
            loaded = _follow(base, "bench-greet", busy, _loaded(port, pid, busy))
    return {"store": store_url, "timeline_50_steps": fifty, "timeline_1000_events": thousand,
            "sse": sse, "sse_under_load": loaded}


def bench_control_plane(store: StoreSpec, plan: Plan) -> list[Result]:
    figures = measure(store.url, plan.quick)
    sqlite = store.label == "sqlite"  # the targets are for the default store

    def row(metric: str, value: float, note: str, target: Target | None = None,
            n: int = 1) -> Result:
        return Result("control_plane", store.label, metric, "ms", value, n=n,
                      target=target if sqlite else None, note=note, extra=figures)

    fifty, thousand, sse, loaded = (figures["timeline_50_steps"],
                                    figures["timeline_1000_events"], figures["sse"],
                                    figures["sse_under_load"])
    return [
        row("timeline50_p50_ms", fifty["p50_ms"],
            f"GET timeline, 50 steps ({fifty['events']} events), round trip", n=fifty["requests"]),
        row("timeline50_p95_ms", fifty["p95_ms"], "the same, p95", TIMELINE_50,
            n=fifty["requests"]),
        row("timeline1000_p50_ms", thousand["p50_ms"],
            f"GET timeline, {thousand['events']} events ({thousand['steps']} steps)",
            n=thousand["requests"]),
        row("timeline1000_p95_ms", thousand["p95_ms"], "the same, p95", TIMELINE_1000,
            n=thousand["requests"]),
        row("sse_p50_ms", sse["p50_ms"],
            f"journal append to SSE client, {sse['events']} events, 50 starts/s",
            n=sse["events"]),
        row("sse_p99_ms", sse["p99_ms"], "the same, p99", SSE_P99, n=sse["events"]),
        row("sse_max_ms", sse["max_ms"], "the same, the slowest event", n=sse["events"]),
        row("sse_load_p50_ms", loaded["p50_ms"],
            f"the same while starts run flat out ({loaded['starts_per_s']}/s, 8 connections), "
            f"{loaded['events']} events", n=loaded["events"]),
        row("sse_load_p99_ms", loaded["p99_ms"], "the same, p99", SSE_P99, n=loaded["events"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/control_plane_benches.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="sqlite:normal",
                        help="memory, sqlite:normal, sqlite:full, postgres, redis or a URL")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(measure(parse_stores(args.store)[0].url, args.quick), indent=2))
    return 0


__all__ = ["bench_control_plane", "measure"]

if __name__ == "__main__":
    sys.exit(main())
