"""`treadle executions …`: list, show, events, signal, cancel, resume, prune.

`timeline`, `diff` and `replay` live in `executions_history`. The commands that can talk to a
server (`--server URL`) get their data from `executions_remote` then, in the same JSON views
as from the store, and print them alike.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from rich.text import Text

from treadle.cli import executions_history
from treadle.cli import executions_remote as remote
from treadle.cli.errors import CliError
from treadle.cli.loading import import_all, registry_for
from treadle.cli.options import (
    DEFAULT_STORE,
    ApiKeyOption,
    IdArgument,
    ImportOption,
    JsonOption,
    ServerOption,
    StoreOption,
    read_json,
)
from treadle.cli.output import (
    console,
    event_view,
    events_table,
    execution_view,
    page_view,
    print_execution_view,
    print_json,
    print_table,
    status_text,
    summaries_table,
)
from treadle.cli.remote import Remote
from treadle.cli.session import audited, run_async, setup_logging
from treadle.cli.times import human_duration, iso, parse_duration, parse_instant
from treadle.engine import Engine, Registry
from treadle.errors import ExecutionNotFoundError, WorkflowNotFoundError, WorkflowVersionError
from treadle.journal import Execution, ExecutionStatus

executions = typer.Typer(
    name="executions", no_args_is_help=True,
    help="Inspect and control executions: list, show, events, timeline, diff, replay, "
    "signal, cancel, resume, prune.",
)


def register(app: typer.Typer) -> None:
    app.add_typer(executions)


def _instant(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@executions.command("list")
def list_(
    workflow: Annotated[str | None, typer.Option(
        "--workflow", "-w", envvar="TREADLE_WORKFLOW", metavar="NAME",
        help="Only executions of this workflow (its registered name).")] = None,
    status: Annotated[ExecutionStatus | None, typer.Option(
        "--status", "-s", envvar="TREADLE_STATUS", help="Only executions in this status.",
    )] = None,
    since: Annotated[str | None, typer.Option(
        "--since", envvar="TREADLE_SINCE", metavar="WHEN",
        help="Created at or after WHEN: ISO 8601 (2024-05-01T12:00Z) or ago (30m, 2h, 7d).",
    )] = None,
    until: Annotated[str | None, typer.Option(
        "--until", envvar="TREADLE_UNTIL", metavar="WHEN",
        help="Created before WHEN (same forms as --since).")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", envvar="TREADLE_LIMIT", min=1, max=1000, metavar="N",
        help="At most this many executions per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(
        "--cursor", envvar="TREADLE_CURSOR", metavar="CURSOR",
        help="Continue after the previous page (the cursor it printed).")] = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List executions, newest first."""
    after, before = _instant(since, "--since"), _instant(until, "--until")
    if server:
        with Remote(server, api_key) as api:
            page = remote.list_page(api, workflow=workflow,
                                    status=None if status is None else str(status),
                                    since=iso(after), until=iso(before), limit=limit,
                                    cursor=cursor)
    else:
        page = page_view(run_async(store, lambda engine: engine.list(
            workflow=workflow, status=status, since=after, until=before, limit=limit,
            cursor=cursor)))
    if as_json:
        print_json(page)
        return
    out = console()
    if not page["items"]:
        out.print("no executions")
    else:
        print_table(out, summaries_table(page["items"]))
    if page["next_cursor"]:
        out.print(Text(f"\nmore: --cursor {page['next_cursor']}", style="dim"))


@executions.command("show")
def show(execution_id: IdArgument, store: StoreOption = DEFAULT_STORE,
         server: ServerOption = None, api_key: ApiKeyOption = None,
         as_json: JsonOption = False) -> None:
    """Show an execution: status, input, output, error with traceback, timing and steps."""

    async def work(engine: Engine) -> dict[str, Any]:
        return execution_view(await engine.get(execution_id),
                              await engine.store.get(execution_id))

    if server:
        with Remote(server, api_key) as api:
            view = remote.show(api, execution_id)
    else:
        view = run_async(store, work)
    if as_json:
        print_json(view)
    else:
        print_execution_view(console(), view)


@executions.command("events")
def events(execution_id: IdArgument, store: StoreOption = DEFAULT_STORE,
           server: ServerOption = None, api_key: ApiKeyOption = None,
           as_json: JsonOption = False) -> None:
    """Print the journal of an execution: seq, time, type and data of every event."""
    if server:
        with Remote(server, api_key) as api:
            journal = remote.events(api, execution_id)
    else:
        journal = [event_view(ev) for ev in
                   run_async(store, lambda engine: engine.events(execution_id))]
    if as_json:
        print_json(journal)
    else:
        print_table(console(), events_table(journal))


executions_history.register(executions)  # timeline, diff, replay: listed after events


@executions.command("signal")
def signal(
    execution_id: IdArgument,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The signal's name.",
                                        show_default=False)],
    payload: Annotated[str | None, typer.Option(
        "--payload", "-p", envvar="TREADLE_PAYLOAD", metavar="JSON",
        help="The signal's payload as JSON; @file.json reads a file, @- standard input.",
    )] = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a signal; the execution takes it when it waits for NAME (now or later)."""
    value = None if payload is None else read_json(payload, "--payload")
    if server:
        with Remote(server, api_key) as api:
            remote.signal(api, execution_id, name, value)
    else:
        run_async(store, lambda engine: engine.signal(execution_id, name, value))
    if as_json:
        print_json({"id": execution_id, "signal": name, "payload": value, "sent": True})
    else:
        console().print(f"sent signal {name!r} to execution {execution_id}")


@executions.command("cancel")
def cancel(
    execution_id: IdArgument,
    reason: Annotated[str, typer.Option(
        "--reason", "-r", envvar="TREADLE_CANCEL_REASON", metavar="TEXT",
        help="Why; recorded in the journal.")] = "cancelled",
    imports: ImportOption = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel an execution: its completed saga steps are compensated, then it ends cancelled.

    An execution that no process runs is cancelled here, so its workflow's code must be
    loaded (`--import MODULE`) to run the compensations. One that another live process runs
    is sent a cancel request, which that process carries out (within a second while the
    execution waits, within a heartbeat while it runs). With --server, the server cancels it.
    """
    if server:
        with Remote(server, api_key) as api:
            outcome, view = remote.cancel(api, execution_id, reason)
    else:
        outcome, view = _cancel_here(store, execution_id, reason, imports or [])
    if as_json:
        print_json({**view, "cancel": outcome})
        return
    out = console()
    if outcome == "ended":
        out.print(Text(f"execution {view['id']} had already ended: ").append_text(
            status_text(view["status"])))
        return
    if outcome == "requested":
        where = "the server is cancelling" if server else "the process running it cancels"
        out.print(f"cancel requested: {where} execution {view['id']}")
        return
    compensated = [s["name"] for s in view["steps"] if s["compensated"]]
    line = Text(f"execution {view['id']} ").append_text(status_text(view["status"]))
    if compensated:
        line.append(f"; compensated: {', '.join(compensated)}")
    out.print(line)


def _cancel_here(store: str, execution_id: str, reason: str,
                 imports: list[str]) -> tuple[str, dict[str, Any]]:
    registry = registry_for(import_all(imports))

    async def work(engine: Engine) -> tuple[str, Execution]:
        row = await engine.store.get(execution_id)
        if row is None:
            raise ExecutionNotFoundError(f"no execution {execution_id}")
        if row.status.is_terminal:
            return "ended", await engine.get(execution_id)
        held = row.owner is not None and (row.lease_until or 0) > time.time()
        if not held:
            _require_loaded(registry, row.workflow, row.version)
        await audited(engine, "execution.cancel", f"execution:{execution_id}",
                      {"reason": reason}, row.tenant_id)
        done = await engine.cancel(execution_id, reason)
        return ("cancelled" if done else "requested"), await engine.get(execution_id)

    outcome, ex = run_async(store, work, registry=registry)
    return outcome, execution_view(ex)


def _require_loaded(registry: Registry, workflow: str, version: str | None) -> None:
    try:
        registry.get(workflow, version, exact=True)
    except (WorkflowNotFoundError, WorkflowVersionError) as exc:
        raise CliError(
            f"workflow {workflow!r} (version {version!r}) is not loaded: pass "
            "--import MODULE so this process can run its compensations"
        ) from exc


@executions.command("resume")
def resume(
    ids: Annotated[list[str] | None, typer.Argument(
        metavar="ID", help="Only these executions (default: every one nobody runs).",
        show_default=False)] = None,
    imports: ImportOption = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", envvar="TREADLE_RESUME_LIMIT", min=1, metavar="N",
        help="Resume at most this many executions.")] = 1000,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", envvar="TREADLE_RESUME_TIMEOUT", min=0, metavar="SECONDS",
        help="Stop waiting after SECONDS; unfinished executions stay resumable.")] = None,
    poll_interval: Annotated[float, typer.Option(
        "--poll-interval", envvar="TREADLE_POLL_INTERVAL", min=0.05, metavar="SECONDS",
        help="How often to renew leases and look for signals while waiting.")] = 1.0,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Resume executions left by dead or stopped processes, and wait for them to end.

    Only workflows loaded with `--import` (or registered by them) resume here; others are
    reported and left for another process. Exits 1 when one of them fails.
    """
    setup_logging()
    registry = registry_for(import_all(imports or []))

    async def work(engine: Engine) -> list[Execution]:
        if ids:
            handles = [await engine.resume(i) for i in ids]
        else:
            handles = await engine.recover(limit=limit)
        if handles:
            waits = [asyncio.ensure_future(h.result()) for h in handles]
            done, pending = await asyncio.wait(waits, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in done:
                task.exception()  # consumed: failures are reported from the journal
        return [await engine.get(h.id) for h in handles]

    views = run_async(store, work, registry=registry, heartbeat_interval=poll_interval)
    if as_json:
        print_json({"items": [execution_view(ex) for ex in views]})
    else:
        out = console()
        if not views:
            out.print("nothing to resume here")
        for ex in views:
            line = Text(f"{ex.id}  {ex.workflow}  ").append_text(status_text(ex.status))
            if ex.duration_ms is not None:
                line.append(f"  {human_duration(ex.duration_ms)}")
            if ex.error:
                line.append(f"  {ex.error.get('type')}: {ex.error.get('message')}", style="red")
            out.print(line)
    if any(ex.status == ExecutionStatus.FAILED for ex in views):
        raise typer.Exit(1)


@executions.command("prune")
def prune(
    older_than: Annotated[str, typer.Option(
        "--older-than", envvar="TREADLE_PRUNE_OLDER_THAN", metavar="AGE",
        help="Delete executions that finished more than AGE ago: 45s, 30m, 12h, 30d, 2w.",
        show_default=False)],
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Delete finished executions (journal, row, inbox) older than --older-than."""
    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    cutoff = time.time() - seconds
    count = run_async(store, lambda engine: engine.prune(seconds))
    if as_json:
        print_json({"pruned": count, "finished_before": iso(cutoff)})
    else:
        console().print(f"pruned {count} execution{'s' if count != 1 else ''} "
                        f"finished before {iso(cutoff)}")
