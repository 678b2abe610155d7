"""The audit log's entries, written to a store: `audit` records (who did what to what).

The control plane writes them for its routes (`treadle.server.audit`, which adds the request's
principal and client); the CLI writes them for the same decisions taken directly on a store
(`treadle breakpoints resume …`, `treadle dlq replay …`, `treadle executions replay …`), with
the operating-system user as the actor (kind `cli`). `GET /api/v1/audit` reads both.
Standard library only.
"""

from __future__ import annotations

import getpass
import math
import secrets
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from treadle.stores.base import Record

if TYPE_CHECKING:
    from treadle.stores.base import Store

KIND = "audit"
REDACTED = "[redacted]"
_SECRET_WORDS = ("password", "token", "secret", "digest", "hash", "authorization",
                 "credential", "api_key")
_SECRET_NAMES = {"key", "keys"}
_MAX_DEPTH = 16


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


def redact(value: Any, depth: int = 0) -> Any:
    """`value` with the values of secret-looking keys replaced (JSON-safe)."""
    if depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): REDACTED if is_secret_name(str(k)) else redact(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


async def write_entry(
    store: Store,
    action: str,
    target: str,
    details: Mapping[str, Any] | None,
    *,
    actor: Mapping[str, Any],
    tenant_id: str | None,
    request_id: str | None = None,
    client: str | None = None,
    retention: float | None = None,
) -> None:
    """Append an entry (`actor`: `id`, `kind`, `roles`); it expires after `retention`
    seconds (None: kept). Raises the store's error when the write fails."""
    now = time.time()
    key = f"{int(now * 1_000_000):017d}-{secrets.token_hex(4)}"
    data = {"action": action, "target": target, "actor": dict(actor),
            "details": redact(dict(details or {})), "request_id": request_id,
            "client": client}
    await store.put_record(Record(KIND, key, data, now, tenant_id,
                                  None if retention is None else now + retention))


def cli_actor() -> dict[str, Any]:
    """The actor of a command run on a store: `user@host` of the operating system."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "unknown"
    return {"id": f"{user}@{socket.gethostname()}", "kind": "cli", "roles": []}
