"""The audit log: who did what to what, kept as `audit` records in the store.

Call `audit` once an administrative action or an operator's decision has succeeded:

    from treadle.server.audit import audit

    await audit(request, "execution.replay", f"execution:{execution_id}",
                {"mode": body.mode, "new_execution": handle.id})

Entries are read back with `GET /api/v1/audit` (admins; a tenant's admins see their tenant's
entries only). Naming:

- `action` is `<resource>.<verb>`: `tenant.create`, `tenant.delete`, `project.create`,
  `project.delete`, `user.create`, `user.update`, `user.delete`, `api_key.create`,
  `api_key.revoke`, `auth.login_failed`, `auth.refresh_reused`; and for operators' decisions
  `execution.cancel`, `execution.replay`, `execution.retry`, `breakpoint.set`,
  `breakpoint.remove`, `breakpoint.resume` / `.skip` / `.abort`, `dlq.replay`,
  `dlq.replay_all`, `dlq.discard` (`test_every_change_is_audited` holds every changing route
  to one of these, or to its short list of exemptions).
- `target` is `<kind>:<id>` (`execution:8f8f…`, `user:ann@example.com`, `tenant:acme`).
- `details` is a JSON mapping of what matters (the new role, the replay mode, …). Values
  under keys that look secret (`password`, `token`, `secret`, `key`, `digest`, `hash`,
  `authorization`, `credential`, at any depth) are replaced by `"[redacted]"`; still, never
  pass secrets.

The actor is the request's principal (set by the route's `requires(...)` dependency), or
`actor=` when there is none (a failed login). The entry belongs to the actor's tenant; an
instance admin (no tenant) acting on a tenant's resource should pass `tenant_id=` so that
tenant's admins see it. `audit` raises the store's error when the write fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from treadle.engine.audit_log import KIND, write_entry
from treadle.server.auth import ANONYMOUS, Principal
from treadle.server.views import iso
from treadle.stores.base import Record, RecordQuery, Store, decode_cursor, encode_cursor


async def audit(
    request: Request,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
    *,
    tenant_id: str | None = None,
    actor: Principal | None = None,
) -> None:
    """Record that the caller of `request` did `action` to `target` (see the module docs)."""
    from treadle.server.state import state_of

    state = state_of(request)
    who = actor or getattr(request.state, "principal", None) or ANONYMOUS
    await state.engine.open()
    await write_entry(
        state.engine.store, action, target, details,
        actor={"id": who.id, "kind": who.kind, "roles": sorted(who.roles)},
        tenant_id=tenant_id if tenant_id is not None else who.tenant_id,
        request_id=request.headers.get("x-request-id"),
        client=request.client.host if request.client else None,
        retention=state.settings.audit_retention_seconds)


def entry_view(record: Record) -> dict[str, Any]:
    d = record.data
    return {"id": record.key, "at": iso(record.created_at), "action": d.get("action"),
            "target": d.get("target"), "tenant_id": record.tenant_id, "actor": d.get("actor"),
            "details": d.get("details") or {}, "request_id": d.get("request_id"),
            "client": d.get("client")}


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of `GET /audit`. `action` ending in `.*` matches a prefix (`user.*`);
    `since` is inclusive, `until` exclusive (epoch seconds)."""

    tenant_id: str | None = None
    action: str | None = None
    actor: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    cursor: str | None = None

    def matches(self, record: Record) -> bool:
        d = record.data
        if self.action is not None:
            action = str(d.get("action"))
            if self.action.endswith(".*"):
                if not action.startswith(self.action[:-1]):
                    return False
            elif action != self.action:
                return False
        actor = d.get("actor")
        if self.actor is not None and not (isinstance(actor, Mapping)
                                           and actor.get("id") == self.actor):
            return False
        return self.target is None or d.get("target") == self.target


async def list_entries(store: Store, query: AuditQuery,
                       scan_limit: int = 10_000) -> tuple[list[dict[str, Any]], str | None]:
    """Entries matching `query`, newest first, and the cursor for more (None: no more).

    Reads at most `scan_limit` entries per call: a rare filter may return a short (even empty)
    page with a cursor to go on from.
    """
    cursor = query.cursor
    if cursor is None and query.until is not None:
        cursor = encode_cursor(query.until, "")  # entries strictly before `until`
    found: list[dict[str, Any]] = []
    scanned = 0
    batch = min(1000, max(query.limit, 100))
    while True:
        page = await store.list_records(RecordQuery(KIND, tenant_id=query.tenant_id,
                                                    limit=batch, cursor=cursor))
        for record in page.items:
            if query.since is not None and record.created_at < query.since:
                return found, None
            scanned += 1
            cursor = encode_cursor(record.created_at, record.key)
            if query.matches(record):
                found.append(entry_view(record))
                if len(found) >= query.limit:
                    return found, cursor
            if scanned >= scan_limit:
                return found, cursor
        if page.next_cursor is None:
            return found, None


def valid_cursor(cursor: str) -> bool:
    try:
        created, key = decode_cursor(cursor)
    except ValueError:
        return False
    return math.isfinite(created) and 0 < len(key) <= 300 and key.isprintable()
