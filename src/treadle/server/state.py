"""What the routes share: the engine, the live hub, metrics, the authenticator, settings,
the JWT issuer and the accounts (tenants, users, API keys) in the store."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from treadle.engine import Engine
from treadle.observability.live import LiveHub
from treadle.observability.metrics import MetricsObserver
from treadle.server.accounts import Accounts
from treadle.server.auth import Authenticator
from treadle.server.housekeeping import PRUNE_SECONDS
from treadle.server.tokens import Tokens

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
    access_token_seconds: float = 900.0  # JWT access tokens
    refresh_token_seconds: float = 7 * 86400.0
    password_time_cost: int = 3  # argon2id parameters (argon2-cffi's defaults, RFC 9106)
    password_memory_kib: int = 65536
    password_parallelism: int = 4
    audit_retention_seconds: float | None = None  # audit entries expire after (None: kept)
    audit_scan_limit: int = 10_000  # entries one filtered GET /audit reads at most
    reclaim_seconds: float | None = None  # with `recover`: look for executions of dead
    # processes this often (None: every lease period of the engine)
    prune_seconds: float = PRUNE_SECONDS  # with `recover`: delete expired records this often


@dataclass(slots=True)
class ServerState:
    engine: Engine
    hub: LiveHub
    metrics: MetricsObserver
    auth: Authenticator
    settings: Settings
    tokens: Tokens = field(default_factory=Tokens)
    background: set[asyncio.Future[Any]] = field(default_factory=set)
    accounts: Accounts = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.accounts = Accounts(self.engine, time_cost=s.password_time_cost,
                                 memory_kib=s.password_memory_kib,
                                 parallelism=s.password_parallelism)

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
