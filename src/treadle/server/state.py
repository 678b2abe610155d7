"""What the routes share: the engine, the live hub, metrics, the authenticator, settings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from treadle.engine import Engine
from treadle.observability.live import LiveHub
from treadle.observability.metrics import MetricsObserver
from treadle.server.auth import Authenticator

logger = logging.getLogger("treadle.server")


@dataclass(slots=True)
class Settings:
    """Tunables of the control plane (all have defaults that suit a single server)."""

    live_ping_seconds: float = 15.0
    live_poll_seconds: float = 0.5  # an execution-scoped stream also polls the store this often
    live_send_timeout: float = 30.0  # a client that takes longer to accept an event is dropped
    dashboard_max_executions: int = 100_000
    dashboard_step_sample: int = 500
    cancel_wait_seconds: float = 5.0
    public_metrics: bool = False


@dataclass(slots=True)
class ServerState:
    engine: Engine
    hub: LiveHub
    metrics: MetricsObserver
    auth: Authenticator
    settings: Settings
    background: set[asyncio.Future[Any]] = field(default_factory=set)

    def keep(self, task: asyncio.Future[Any]) -> None:
        """Hold a task that may outlive its request until it ends (its error is logged)."""
        self.background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.info("background task failed: %s", task.exception())


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.treadle
    return state
