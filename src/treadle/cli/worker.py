"""`treadle worker`: claim and run enqueued executions until SIGTERM, then drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated

import typer

from treadle.cli.loading import import_all, registry_for
from treadle.cli.options import DEFAULT_STORE, ImportOption, StoreOption
from treadle.cli.session import open_engine, setup_logging


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    store: StoreOption = DEFAULT_STORE,
    queue: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", envvar="TREADLE_QUEUE", metavar="NAME",
        help="Queue to work; repeatable (default: default).")] = None,
    concurrency: Annotated[int, typer.Option(
        envvar="TREADLE_CONCURRENCY", min=1,
        help="Executions this worker works on at once.")] = 16,
    imports: ImportOption = None,
    lease: Annotated[float, typer.Option(
        "--lease", envvar="TREADLE_LEASE", min=0.5,
        help="Lease seconds: a dead worker's executions resume elsewhere after this.")] = 30.0,
    poll_interval: Annotated[float, typer.Option(
        envvar="TREADLE_POLL_INTERVAL", min=0.01,
        help="Seconds between looks for new work when the store cannot push wake-ups "
             "(SQLite across processes, a lost listener connection).")] = 0.5,
    idle_poll: Annotated[float, typer.Option(
        "--idle-poll-interval", envvar="TREADLE_IDLE_POLL_INTERVAL", min=0.1,
        help="With pushed wake-ups (PostgreSQL, Redis): the longest sleep between looks.")
    ] = 5.0,
) -> None:
    """Run enqueued executions of the imported workflows until SIGTERM or Ctrl-C.

    On SIGTERM the worker drains: it claims nothing more, lets steps in flight finish, stops
    every execution at its next journaled call, releases its leases and exits 0.

    Example: treadle worker --store postgresql://127.0.0.1/app -q default -i myapp.flows
    """
    setup_logging()
    logging.getLogger("treadle.worker").setLevel(logging.INFO)
    registry = registry_for(import_all(imports or []))
    queues = queue or ["default"]
    engine = open_engine(store, registry=registry, lease_seconds=lease,
                         idle_poll_interval=idle_poll)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        typer.echo(f"worker {engine.owner}: queues {', '.join(queues)}, "
                   f"concurrency {concurrency}, workflows: "
                   f"{', '.join(wf.name for wf in registry) or 'none'}", err=True)
        try:
            await engine.work(queues=queues, concurrency=concurrency,
                              poll_interval=poll_interval, stop=stop)
        finally:
            await engine.close()
        typer.echo("worker drained", err=True)

    asyncio.run(main())
