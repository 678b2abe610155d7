"""`treadle executions timeline|diff|replay`: look back at executions, and run them again.

`--json` prints the server's documents (`GET …/timeline`, `GET …/diff`, `POST …/replay`), built
from the store by the same pure functions the server uses (`treadle.server.views`,
`treadle.server.diff`) or fetched from a server with `--server URL`.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.text import Text

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
    TERMINAL,
    console,
    dumps,
    execution_view,
    print_diff,
    print_execution_view,
    print_json,
    print_timeline,
    status_text,
)
from treadle.cli.remote import Remote
from treadle.cli.session import audited, run_async, setup_logging
from treadle.engine import Engine
from treadle.errors import (
    ExecutionCancelledError,
    ExecutionFailedError,
    WorkflowNotFoundError,
    WorkflowVersionError,
)
from treadle.journal import project


class ReplayMode(StrEnum):
    EXACT = "exact"
    MODIFIED = "modified"
    STEP_FROM = "step_from"


def register(group: typer.Typer) -> None:
    group.command("timeline")(timeline)
    group.command("diff")(diff)
    group.command("replay")(replay)


def timeline(execution_id: IdArgument, store: StoreOption = DEFAULT_STORE,
             server: ServerOption = None, api_key: ApiKeyOption = None,
             as_json: JsonOption = False) -> None:
    """Show the timeline of an execution: every step with its type, status, start, duration,
    attempts and output (or error)."""
    if server:
        with Remote(server, api_key) as api:
            document = remote.timeline(api, execution_id)
    else:
        document = _local_timeline(store, execution_id)
    if as_json:
        print_json(document)
    else:
        print_timeline(console(), document)


def _local_timeline(store: str, execution_id: str) -> dict[str, Any]:
    from treadle.server.views import timeline_view

    async def work(engine: Engine) -> dict[str, Any]:
        journal = await engine.events(execution_id)
        return timeline_view(project(execution_id, journal), journal)

    return run_async(store, work)


def diff(
    left: Annotated[str, typer.Argument(metavar="LEFT", help="An execution id.",
                                        show_default=False)],
    right: Annotated[str, typer.Argument(metavar="RIGHT", help="The execution to compare it "
                                         "with (e.g. its replay).", show_default=False)],
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two executions step by step: identical, output_different, input_different,
    status_different, left_skipped or right_skipped, with what differs."""
    if server:
        with Remote(server, api_key) as api:
            document = remote.diff(api, left, right)
    else:
        document = _local_diff(store, left, right)
    if as_json:
        print_json(document)
    else:
        print_diff(console(), document)


def _local_diff(store: str, left: str, right: str) -> dict[str, Any]:
    from treadle.server.diff import diff_executions

    async def work(engine: Engine) -> dict[str, Any]:
        return diff_executions(await engine.get(left), await engine.get(right))

    return run_async(store, work)


def replay(
    execution_id: IdArgument,
    mode: Annotated[ReplayMode | None, typer.Option(
        "--mode", "-m", envvar="TREADLE_REPLAY_MODE", show_default=False,
        help="exact: the same input; modified: --modifications merged into it; step_from: "
        "the steps before --from-step return their recorded outputs. Default: modified with "
        "--modifications, step_from with --from-step, else exact.")] = None,
    modifications: Annotated[str | None, typer.Option(
        "--modifications", envvar="TREADLE_REPLAY_MODIFICATIONS", metavar="JSON",
        help="A JSON object deep-merged into the input (mode modified); @file.json reads a "
        "file, @- standard input.")] = None,
    from_step: Annotated[str | None, typer.Option(
        "--from-step", envvar="TREADLE_REPLAY_FROM_STEP", metavar="NAME",
        help="Run live from the first call of step NAME on (mode step_from).")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", envvar="TREADLE_REPLAY_WAIT",
        help="With --server: wait until the replay ends and show it. (Without --server the "
        "replay runs here, so this command always waits.)")] = False,
    imports: ImportOption = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run an execution again as a new one, linked to it by `metadata.replay_of`.

    Without --server the replay runs in this process until it ends, like `treadle run`, so
    its workflow must be loaded (`--import MODULE`). Exits 1 when the replay is known to have
    failed or been cancelled.
    """
    chosen = _mode(mode, modifications, from_step)
    changes = None if modifications is None else read_json(modifications, "--modifications")
    if changes is not None and not isinstance(changes, dict):
        raise typer.BadParameter("must be a JSON object, merged into the input",
                                 param_hint="--modifications")
    view: dict[str, Any] | None = None
    if server:
        with Remote(server, api_key) as api:
            started = remote.replay(api, execution_id, chosen, changes, from_step)
            if wait:
                view = remote.wait_until_ended(api, started["id"])
                started["status"] = view["status"]
    else:
        started, view = _replay_here(store, execution_id, chosen, changes, from_step,
                                     imports or [])
    if as_json:
        print_json(started)
    else:
        _print_replay(started, view)
    if started["status"] in TERMINAL and started["status"] != "completed":
        raise typer.Exit(1)


def _mode(mode: ReplayMode | None, modifications: str | None, from_step: str | None) -> str:
    if modifications is not None and from_step is not None:
        raise typer.BadParameter("give --modifications or --from-step, not both",
                                 param_hint="--modifications / --from-step")
    if mode is None:
        mode = (ReplayMode.MODIFIED if modifications is not None
                else ReplayMode.STEP_FROM if from_step is not None else ReplayMode.EXACT)
    if mode == ReplayMode.STEP_FROM and not from_step:
        raise typer.BadParameter("--mode step_from needs the step to run live from",
                                 param_hint="--from-step")
    if modifications is not None and mode != ReplayMode.MODIFIED:
        raise typer.BadParameter(f"goes with --mode modified, not {mode.value}",
                                 param_hint="--modifications")
    if from_step is not None and mode != ReplayMode.STEP_FROM:
        raise typer.BadParameter(f"goes with --mode step_from, not {mode.value}",
                                 param_hint="--from-step")
    return mode.value


def _replay_here(store: str, execution_id: str, mode: str,
                 modifications: dict[str, Any] | None, from_step: str | None,
                 imports: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    setup_logging()
    registry = registry_for(import_all(imports))

    async def work(engine: Engine) -> tuple[dict[str, Any], dict[str, Any]]:
        original = await engine.get(execution_id)
        row = await engine.store.get(execution_id)
        try:
            handle = await engine.replay(execution_id, mode, modifications=modifications,
                                         from_step=from_step)
        except (WorkflowNotFoundError, WorkflowVersionError) as exc:
            raise CliError(f"workflow {original.workflow!r} is not loaded: pass --import MODULE "
                           "so this process can run the replay") from exc
        except ValueError as exc:
            raise CliError(f"cannot replay execution {execution_id}: {exc}") from None
        await audited(engine, "execution.replay", f"execution:{execution_id}",
                      {"mode": mode, "from_step": from_step, "new_execution": handle.id,
                       "modified": bool(modifications)}, row.tenant_id if row else None)
        try:
            await handle.result()
        except (ExecutionFailedError, ExecutionCancelledError):
            pass  # reported from its view
        ex = await engine.get(handle.id)
        return ({"id": ex.id, "execution_id": ex.id, "workflow": ex.workflow,
                 "status": str(ex.status), "created": True, "replay_of": execution_id,
                 "mode": mode}, execution_view(ex))

    return run_async(store, work, registry=registry)


def _print_replay(started: dict[str, Any], view: dict[str, Any] | None) -> None:
    out = console()
    out.print(Text(f"replay ({started['mode']}) of execution {started['replay_of']}: "
                   f"execution {started['id']}"))
    if view is None:
        out.print(Text("status: ", style="dim").append_text(status_text(started["status"])))
        out.print(Text(f"follow it: treadle executions timeline {started['id']} (or replay "
                       "with --wait)", style="dim"))
        return
    out.print()
    print_execution_view(out, view, details=False)
    if view["status"] == "completed":
        out.print()
        sys.stdout.flush()
        out.print(Text(dumps(view["output"])), soft_wrap=True)
    elif view.get("error"):
        err = view["error"]
        console(stderr=True).print(Text(
            f"error: {err.get('type', 'Error')}: {err.get('message', '')}", style="red"))
