"""Opening an engine for one command and running its coroutine to completion."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer

from treadle.engine import Engine, Registry

T = TypeVar("T")


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the command; the engine was closed (leases released)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def open_engine(store: str, *, registry: Registry | None = None, **options: Any) -> Engine:
    """An engine on `store`; an unknown URL scheme is a usage error naming `--store`."""
    try:
        return Engine(store, registry=registry, **options)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--store") from exc


def run_async(store: str, work: Callable[[Engine], Coroutine[Any, Any, T]], *,
              registry: Registry | None = None, **options: Any) -> T:
    """`await work(engine)` in a fresh event loop, then close the engine.

    SIGTERM (like Ctrl-C) cancels the work and closes the engine, so executions running here
    give up their leases and stay resumable; either raises `Interrupted`.
    """
    engine = open_engine(store, registry=registry, **options)
    received: list[int] = []

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            received.append(signum)
            task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, stop, signal.SIGTERM)
        async with engine:
            return await work(engine)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT) from None
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise


def setup_logging() -> None:
    """Warnings of the engine (e.g. an execution it cannot resume) go to stderr."""
    logger = logging.getLogger("treadle")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


async def audited(engine: Engine, action: str, target: str, details: dict[str, Any],
                  tenant_id: str | None = None) -> None:
    """Record a decision this command took on the store in the audit log, as the server does
    for its routes (actor: the operating-system user, kind `cli`)."""
    from treadle.engine.audit_log import cli_actor, write_entry

    await write_entry(engine.store, action, target, details, actor=cli_actor(),
                      tenant_id=tenant_id)
