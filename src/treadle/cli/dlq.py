"""`treadle dlq …`: the dead letters of a pipeline (or code workflow) — executions that failed
for good — listed, shown, replayed, discarded; `prune` drops those past their retention.

Every command but `prune` works on a store (`--store`) or on a control plane (`--server`), with
the API's JSON shapes under `--json` either way (the local views below are the server's, built
from the same `engine.dlq` calls). A replay on a store runs in this process until it ends, like
`treadle executions replay`, so the workflow must be loaded (`--import MODULE`); with `--server`
the server runs it (`--wait` follows it to its end).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from treadle.cli import executions_remote
from treadle.cli.breakpoints import local_workflow, operator
from treadle.cli.errors import CliError
from treadle.cli.loading import import_all, registry_for
from treadle.cli.options import (
    DEFAULT_STORE,
    ApiKeyOption,
    ImportOption,
    JsonOption,
    PipelineArgument,
    ServerOption,
    StoreOption,
)
from treadle.cli.output import (
    TERMINAL,
    compact,
    console,
    dumps,
    error_line,
    execution_view,
    print_execution_view,
    print_json,
    print_table,
    status_text,
)
from treadle.cli.remote import Remote
from treadle.cli.session import audited, run_async, setup_logging
from treadle.cli.times import iso
from treadle.engine import Engine, Handle
from treadle.engine.dead_letters import Letter
from treadle.errors import (
    ExecutionCancelledError,
    ExecutionFailedError,
    TreadleError,
    WorkflowNotFoundError,
    WorkflowVersionError,
)

dlq = typer.Typer(
    name="dlq", no_args_is_help=True,
    help="Dead letters (executions that failed for good): list, show, replay, replay-all, "
    "discard, prune.",
)

DLQ = "/api/v1/dlq/pipelines"

LetterId = Annotated[str, typer.Argument(
    metavar="ID", show_default=False, help="The dead letter's id (the failed execution's).")]
WaitOption = Annotated[bool, typer.Option(
    "--wait", envvar="TREADLE_DLQ_WAIT",
    help="With --server: wait until the replays end and show them. (Without --server they "
    "run here, so this command always waits.)")]


def register(app: typer.Typer) -> None:
    app.add_typer(dlq)


def _path(pipeline: str, *rest: str) -> str:
    return "/".join([DLQ, Remote.quote(pipeline), *(Remote.quote(r) for r in rest)])


def letter_view(letter: Letter, pipeline: str) -> dict[str, Any]:
    """A dead letter as the API shows it (`GET /api/v1/dlq/pipelines/{p}/{id}`)."""
    trigger = letter.input[0] if letter.workflow.startswith("pipeline:") and letter.input \
        else letter.input
    return {"id": letter.id, "execution_id": letter.id, "pipeline": pipeline,
            "workflow": letter.workflow, "trigger_data": trigger, "input": letter.input,
            "error": letter.error, "failed_step": letter.failed_step,
            "failed_at": iso(letter.failed_at), "expires_at": iso(letter.expires_at),
            "replayable": letter.replayable}


async def _letter(engine: Engine, pipeline: str, letter_id: str) -> Letter:
    workflow, _ = await local_workflow(engine, pipeline)
    letter = await engine.dlq.get(workflow, letter_id)
    if letter is None:
        raise CliError(f"no dead letter {letter_id!r} of {pipeline}")
    return letter


# -- reading ------------------------------------------------------------------------------------


@dlq.command("list")
def list_(
    pipeline: PipelineArgument,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", envvar="TREADLE_LIMIT", min=1, max=1000, metavar="N",
        help="At most this many letters per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(
        "--cursor", envvar="TREADLE_CURSOR", metavar="CURSOR",
        help="Continue after the previous page (the cursor it printed).")] = None,
    imports: ImportOption = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the dead letters of PIPELINE, newest first, with the queue's depth."""
    if server:
        with Remote(server, api_key) as api:
            page: dict[str, Any] = api.get(_path(pipeline), {"limit": limit, "cursor": cursor})
    else:
        async def work(engine: Engine) -> dict[str, Any]:
            workflow, _ = await local_workflow(engine, pipeline)
            try:
                found = await engine.dlq.list(workflow, limit=limit, cursor=cursor)
            except ValueError as exc:
                raise CliError(f"invalid --cursor: {exc}") from None
            depth = await engine.dlq.depth(workflow)
            try:
                options = engine.registry.get(workflow).dead_letter
            except TreadleError:  # not loaded here (no --import): no threshold known
                options = None
            threshold = options.alert_threshold if options is not None else None
            return {"pipeline": pipeline,
                    "messages": [letter_view(x, pipeline) for x in found.items],
                    "depth": depth, "alert_threshold": threshold,
                    "alerting": threshold is not None and depth >= threshold,
                    "next_cursor": found.next_cursor}

        page = run_async(store, work, registry=registry_for(import_all(imports or [])))
    if as_json:
        print_json(page)
        return
    out = console()
    head = Text(f"{page['pipeline']}: {page['depth']} dead letter"
                f"{'s' if page['depth'] != 1 else ''}")
    if page.get("alerting"):
        head.append(f" (alerting: threshold {page['alert_threshold']})", style="bold red")
    out.print(head)
    if page["messages"]:
        out.print()
        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in ("id", "failed at", "failed step", "error", "input"):
            table.add_column(name, no_wrap=name in ("id", "failed at"), overflow="fold")
        for letter in page["messages"]:
            table.add_row(letter["id"], letter.get("failed_at") or "",
                          letter.get("failed_step") or "",
                          Text(error_line(letter.get("error")), style="red"),
                          compact(letter.get("trigger_data"), 80))
        print_table(out, table)
    if page.get("next_cursor"):
        out.print(Text(f"\nmore: --cursor {page['next_cursor']}", style="dim"))


@dlq.command("show")
def show(pipeline: PipelineArgument, letter_id: LetterId, store: StoreOption = DEFAULT_STORE,
         server: ServerOption = None, api_key: ApiKeyOption = None,
         as_json: JsonOption = False) -> None:
    """Show a dead letter: its input (a pipeline's trigger data), error and failed step."""
    if server:
        with Remote(server, api_key) as api:
            view: dict[str, Any] = api.get(_path(pipeline, letter_id))
    else:
        async def work(engine: Engine) -> dict[str, Any]:
            return letter_view(await _letter(engine, pipeline, letter_id), pipeline)

        view = run_async(store, work)
    if as_json:
        print_json(view)
        return
    out = console()
    out.print(Text(f"dead letter {view['id']}  {view['workflow']}", style="bold"))
    fields = [("failed at", view.get("failed_at") or ""),
              ("failed step", view.get("failed_step") or ""),
              ("expires", view.get("expires_at") or "never"),
              ("replayable", "yes" if view.get("replayable") else "no"),
              ("input", compact(view.get("trigger_data"), 2000))]
    for label, value in fields:
        out.print(Text(f"{label + ':':<13}", style="dim").append(value))
    out.print(Text(f"{'error:':<13}", style="dim").append(error_line(view.get("error")),
                                                            style="red"))
    out.print(Text(f"\njournal: treadle executions show {view['id']}", style="dim"))


# -- replaying ----------------------------------------------------------------------------------


def _not_loaded(workflow: str) -> CliError:
    return CliError(f"workflow {workflow!r} is not loaded: pass --import MODULE so this process "
                    "can run the replay (or replay it with --server)")


async def _ended(engine: Engine, handle: Handle) -> dict[str, Any]:
    try:
        await handle.result()
    except (ExecutionFailedError, ExecutionCancelledError):
        pass  # reported from its view
    return execution_view(await engine.get(handle.id))


@dlq.command("replay")
def replay(
    pipeline: PipelineArgument,
    letter_id: LetterId,
    wait: WaitOption = False,
    imports: ImportOption = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a dead letter's workflow again on its input, as a new execution (linked by
    `metadata.dlq_of`); the letter leaves the queue.

    Without --server the replay runs in this process until it ends, so its workflow must be
    loaded (`--import MODULE`). Exits 1 when the replay is known to have failed.
    """
    view: dict[str, Any] | None = None
    if server:
        with Remote(server, api_key) as api:
            _, started = api.post(_path(pipeline, letter_id, "replay"))
            if wait:
                view = executions_remote.wait_until_ended(api, started["id"])
                started["status"] = view["status"]
    else:
        setup_logging()

        async def work(engine: Engine) -> tuple[dict[str, Any], dict[str, Any]]:
            letter = await _letter(engine, pipeline, letter_id)
            try:
                handle = await engine.dlq.replay(letter.workflow, letter.id, by=operator())
            except (WorkflowNotFoundError, WorkflowVersionError) as exc:
                raise _not_loaded(letter.workflow) from exc
            except TreadleError as exc:  # not replayable
                raise CliError(str(exc)) from None
            await audited(engine, "dlq.replay", f"execution:{letter.id}",
                          {"workflow": letter.workflow, "new_execution": handle.id},
                          letter.tenant_id)
            ended = await _ended(engine, handle)
            return ({"id": handle.id, "execution_id": handle.id, "replay_of": letter.id,
                     "status": ended["status"]}, ended)

        started, view = run_async(store, work, registry=registry_for(import_all(imports or [])))
    if as_json:
        print_json(started)
    else:
        _print_replay(started, view)
    if started["status"] in TERMINAL and started["status"] != "completed":
        raise typer.Exit(1)


def _print_replay(started: dict[str, Any], view: dict[str, Any] | None) -> None:
    out = console()
    out.print(f"replay of dead letter {started['replay_of']}: execution {started['id']}")
    if view is None:
        out.print(Text("status: ", style="dim").append_text(status_text(started["status"])))
        out.print(Text(f"follow it: treadle executions timeline {started['id']} (or replay "
                       "with --wait)", style="dim"))
        return
    out.print()
    print_execution_view(out, view, details=False)
    if view["status"] == "completed":
        out.print()
        out.print(Text(dumps(view["output"])), soft_wrap=True)
    elif view.get("error"):
        console(stderr=True).print(Text(f"error: {error_line(view['error'])}", style="red"))


@dlq.command("replay-all")
def replay_all(
    pipeline: PipelineArgument,
    wait: WaitOption = False,
    imports: ImportOption = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay every dead letter of PIPELINE, oldest first; each leaves the queue.

    Without --server the replays run in this process until they end (`--import MODULE`).
    Exits 1 when one of them is known to have failed.
    """
    if server:
        with Remote(server, api_key) as api:
            _, result = api.post(_path(pipeline, "replay-all"))
            if wait:
                for item in result["replayed"]:
                    item["status"] = executions_remote.wait_until_ended(api, item["id"])["status"]
    else:
        setup_logging()

        async def work(engine: Engine) -> dict[str, Any]:
            workflow, _ = await local_workflow(engine, pipeline)
            try:
                handles = await engine.dlq.replay_all(workflow, by=operator())
            except (WorkflowNotFoundError, WorkflowVersionError) as exc:
                raise _not_loaded(workflow) from exc
            except TreadleError as exc:  # not replayable
                raise CliError(str(exc)) from None
            await audited(engine, "dlq.replay_all", f"pipeline:{pipeline}",
                          {"workflow": workflow, "count": len(handles)})
            views = await asyncio.gather(*(_ended(engine, h) for h in handles.values()))
            replayed = [{"id": h.id, "execution_id": h.id, "status": v["status"],
                         "replay_of": of} for (of, h), v in zip(handles.items(), views,
                                                                 strict=True)]
            return {"pipeline": pipeline, "replayed": replayed, "count": len(replayed)}

        result = run_async(store, work, registry=registry_for(import_all(imports or [])))
    if as_json:
        print_json(result)
    else:
        out = console()
        count = result["count"]
        out.print(f"replayed {count} dead letter{'s' if count != 1 else ''} of {pipeline}")
        for item in result["replayed"]:
            out.print(Text(f"{item['replay_of']} → execution {item['id']}  ").append_text(
                status_text(item["status"])))
    if any(i["status"] in TERMINAL and i["status"] != "completed" for i in result["replayed"]):
        raise typer.Exit(1)


# -- removing -----------------------------------------------------------------------------------


@dlq.command("discard")
def discard(pipeline: PipelineArgument, letter_id: LetterId, store: StoreOption = DEFAULT_STORE,
            server: ServerOption = None, api_key: ApiKeyOption = None,
            as_json: JsonOption = False) -> None:
    """Remove a dead letter without replaying it (its execution's journal stays)."""
    if server:
        with Remote(server, api_key) as api:
            api.request("DELETE", _path(pipeline, letter_id))
    else:
        async def work(engine: Engine) -> None:
            letter = await _letter(engine, pipeline, letter_id)
            await engine.dlq.discard(letter.workflow, letter.id)
            await audited(engine, "dlq.discard", f"execution:{letter.id}",
                          {"workflow": letter.workflow}, letter.tenant_id)

        run_async(store, work)
    if as_json:
        print_json({"id": letter_id, "pipeline": pipeline, "discarded": True})
    else:
        console().print(f"discarded dead letter {letter_id} of {pipeline}")


@dlq.command("prune")
def prune(store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """Delete the dead letters past their retention, of every workflow (on the store only;
    listings already hide them)."""
    count = run_async(store, lambda engine: engine.dlq.prune())
    if as_json:
        print_json({"pruned": count})
    else:
        console().print(f"pruned {count} dead letter{'s' if count != 1 else ''} past their "
                        "retention")
