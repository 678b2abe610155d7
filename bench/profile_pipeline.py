"""The HTTP pipeline of `http_benches.py` in-process: CPU per request without sockets.

    .venv/bin/python bench/profile_pipeline.py --store memory --rounds 10   # µs per request
    .venv/bin/python bench/profile_pipeline.py --store sqlite --profile --top 40

Builds the application of `http_benches.APP` on a fresh engine, sends `--requests` requests
through `AppRuntime.handle` one at a time (after a warm-up), `--rounds` times, and prints the
thread CPU time per request (the minimum over rounds, and each); with `--profile`, the top
functions of a cProfile of the timed loop. Figures from here leave out uvicorn and the kernel
(the HTTP bench has them) but are far less noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import pstats
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from http_benches import APP

import treadle
from treadle.apps.runtime import build_app
from treadle.modules.web import HTTPRequest


def _request(i: int) -> HTTPRequest:
    body = json.dumps({"id": i, "sku": f"SKU-{i % 97:03d}", "qty": 1}).encode()
    return HTTPRequest(method="POST", path="/orders", raw_path="/orders",
                       headers={"content-type": "application/json",
                                "content-length": str(len(body))}, body=body)


async def measure(store: str, requests: int, profile: cProfile.Profile | None,
                  rounds: int = 1, observers: bool = False) -> list[float]:
    """CPU µs per request of each round of `requests`; with `observers`, the engine has the
    server's (the metrics observer and the live hub, as `treadle serve` attaches them)."""
    with tempfile.TemporaryDirectory(prefix="treadle-prof-") as tmp:
        url = "memory://" if store == "memory" else f"sqlite:///{tmp}/t.db"
        app = Path(tmp) / "app.yaml"
        app.write_text(textwrap.dedent(APP))
        engine = treadle.Engine(url, registry=treadle.Registry())
        if observers:
            from treadle.observability.live import LiveHub
            from treadle.observability.metrics import MetricsObserver

            engine.add_observer(LiveHub())
            engine.add_observer(MetricsObserver())
        runtime = build_app(app, engine)
        await runtime.start(recover=False)
        try:
            for i in range(300):
                response = await runtime.handle(_request(i))
                assert response.status == 201, response
            gc.collect()
            gc.freeze()  # as `treadle serve` does
            if profile is not None:
                profile.enable()
            spent: list[float] = []
            for r in range(rounds):
                t0 = time.thread_time()
                for i in range(requests):
                    await runtime.handle(_request(1000 + r * requests + i))
                spent.append((time.thread_time() - t0) / requests * 1e6)
            if profile is not None:
                profile.disable()
        finally:
            await runtime.stop()
            await engine.close()
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile_pipeline.py", description=__doc__)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the timed loop; the minimum is what noise moves least")
    parser.add_argument("--observers", action="store_true",
                        help="attach the server's observers (metrics, live hub)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    profile = cProfile.Profile() if args.profile else None
    rounds = asyncio.run(measure(args.store, args.requests, profile, args.rounds,
                                 args.observers))
    print(f"{args.store}: {min(rounds):.0f} µs CPU per request (in-process, minimum of "
          f"{len(rounds)} rounds of {args.requests}: {', '.join(f'{r:.0f}' for r in rounds)})")
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
