"""`treadle executions … --server URL`: each command's data from the REST API.

Every function returns what the local variant of its command computes from the store, in the
same JSON view (`treadle.cli.output`), so that both print alike. The API's views of
executions, steps and events differ a little from the CLI's; `*_from_api` map them. What the
API does not expose (the lease of an active execution: `owner`, `lease_until`, `wake_at`) is
left out, or null in list rows.
"""

from __future__ import annotations

import time
from typing import Any

from treadle.cli.output import TERMINAL
from treadle.cli.remote import Remote, RemoteError

EXECUTIONS = "/api/v1/executions"
_EVENTS_PAGE = 10_000
_MANUAL = {"type": "manual"}


def _path(execution_id: str, *rest: str) -> str:
    return "/".join([EXECUTIONS, Remote.quote(execution_id), *rest])


# -- the API's views as the CLI's -------------------------------------------------------------


def summary_from_api(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"], "workflow": item["workflow"], "version": item.get("version"),
        "status": item["status"], "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"), "finished_at": item.get("finished_at"),
        "duration_ms": item.get("duration_ms"), "error": item.get("error"),
        "idempotency_key": item.get("idempotency_key"), "parent_id": item.get("parent_id"),
        "tenant_id": item.get("tenant_id"), "owner": None,
    }


def step_from_api(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "pos": step["pos"], "name": step["name"], "kind": step["kind"],
        "status": step["status"], "attempts": step.get("attempts", 0),
        "input": step.get("input"), "output": step.get("output"), "error": step.get("error"),
        "started_at": step.get("started_at"), "finished_at": step.get("finished_at"),
        "duration_ms": step.get("duration_ms"), "mocked": bool(step.get("mocked")),
        "compensated": bool(step.get("compensated")), "compensates": step.get("compensates"),
        "child_id": step.get("child_id"),
    }


def execution_from_api(view: dict[str, Any]) -> dict[str, Any]:
    """The API splits `metadata` into `trigger` (manual when absent) and the rest; join them."""
    metadata = dict(view.get("metadata") or {})
    trigger = view.get("trigger")
    if isinstance(trigger, dict) and trigger != _MANUAL:
        metadata["trigger"] = trigger
    return {
        "id": view["id"], "workflow": view["workflow"], "version": view.get("version"),
        "status": view["status"], "input": view.get("input"), "args": view.get("args", []),
        "output": view.get("output"), "error": view.get("error"),
        "created_at": view.get("created_at"), "finished_at": view.get("finished_at"),
        "duration_ms": view.get("duration_ms"), "idempotency_key": view.get("idempotency_key"),
        "parent_id": view.get("parent_id"), "metadata": metadata,
        "last_seq": view.get("last_seq", 0),
        "steps": [step_from_api(s) for s in view.get("steps", [])],
    }


def event_from_api(event: dict[str, Any]) -> dict[str, Any]:
    return {"seq": event["seq"], "time": event.get("created_at"), "type": event["type"],
            "data": event.get("data", {})}


# -- commands ---------------------------------------------------------------------------------


def list_page(api: Remote, *, workflow: str | None, status: str | None, since: str | None,
              until: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    page = api.get(EXECUTIONS, {"workflow": workflow, "status": status, "since": since,
                                "until": until, "limit": limit, "cursor": cursor})
    return {"items": [summary_from_api(i) for i in page["items"]],
            "next_cursor": page.get("next_cursor")}


def show(api: Remote, execution_id: str) -> dict[str, Any]:
    return execution_from_api(api.get(_path(execution_id)))


def events(api: Remote, execution_id: str) -> list[dict[str, Any]]:
    """The whole journal, page after page."""
    out: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page = api.get(_path(execution_id, "events"), {"after": after, "limit": _EVENTS_PAGE})
        out += [event_from_api(e) for e in page["items"]]
        after = page.get("next_after")
    return out


def signal(api: Remote, execution_id: str, name: str, payload: Any) -> None:
    api.post(_path(execution_id, "signals"), {"name": name, "payload": payload})


def cancel(api: Remote, execution_id: str, reason: str) -> tuple[str, dict[str, Any]]:
    """`ended` (it had already), `cancelled` (it ended within the server's wait) or
    `requested` (the server is still unwinding it), and the execution's view."""
    try:
        status, _ = api.post(_path(execution_id, "cancel"), {"reason": reason})
        outcome = "cancelled" if status == 200 else "requested"
    except RemoteError as exc:
        if exc.code != "execution_finished":
            raise
        outcome = "ended"
    return outcome, show(api, execution_id)


def timeline(api: Remote, execution_id: str) -> dict[str, Any]:
    result: dict[str, Any] = api.get(_path(execution_id, "timeline"))
    return result


def diff(api: Remote, left: str, right: str) -> dict[str, Any]:
    result: dict[str, Any] = api.get(f"{EXECUTIONS}/diff", {"left": left, "right": right})
    return result


def replay(api: Remote, execution_id: str, mode: str, modifications: dict[str, Any] | None,
           from_step: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"mode": mode}
    if modifications is not None:
        body["modifications"] = modifications
    if from_step is not None:
        body["from_step"] = from_step
    _, started = api.post(_path(execution_id, "replay"), body)
    result: dict[str, Any] = started
    return result


def wait_until_ended(api: Remote, execution_id: str, *, poll: float = 1.0) -> dict[str, Any]:
    """Poll the execution until it ends; its (CLI) view then. Ctrl-C stops waiting."""
    delay = 0.05
    while True:
        view = show(api, execution_id)
        if view["status"] in TERMINAL:
            return view
        time.sleep(delay)
        delay = min(delay * 2, poll)
