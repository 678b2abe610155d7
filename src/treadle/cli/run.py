"""`treadle run MODULE:WORKFLOW`: run one execution to its end and show how it went."""

from __future__ import annotations

import sys
import uuid
from typing import Annotated, Any

import typer
from rich.text import Text

from treadle.cli.errors import recorded_chain
from treadle.cli.loading import load_workflow
from treadle.cli.options import DEFAULT_STORE, JsonOption, StoreOption, read_json
from treadle.cli.output import console, dumps, execution_view, print_execution, print_json
from treadle.cli.session import Interrupted, run_async, setup_logging
from treadle.engine import Engine
from treadle.errors import (
    ExecutionCancelledError,
    ExecutionFailedError,
    TreadleError,
    WorkflowNotFoundError,
    WorkflowVersionError,
)
from treadle.journal import Execution, ExecutionStatus, ExecutionSummary


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    workflow: Annotated[str, typer.Argument(
        metavar="MODULE:WORKFLOW | APP.yaml",
        help="The workflow: a @treadle.workflow attribute of MODULE, or a registered name. "
        "MODULE is importable from the current directory, or a path/to/file.py. Or a YAML "
        "application, with --pipeline.",
        show_default=False,
    )],
    pipeline: Annotated[str | None, typer.Option(
        "--pipeline", "-p", envvar="TREADLE_PIPELINE", metavar="NAME",
        help="With APP.yaml: the pipeline to run (its --input is the trigger data).",
    )] = None,
    input_: Annotated[str | None, typer.Option(
        "--input", envvar="TREADLE_INPUT", metavar="JSON",
        help="The workflow's single argument, as JSON (object, array or scalar); "
        "@file.json reads a file, @- standard input.",
    )] = None,
    args: Annotated[str | None, typer.Option(
        "--args", envvar="TREADLE_ARGS", metavar="JSON_ARRAY",
        help="Several arguments, as a JSON array: --args '[1, 2]' calls workflow(ctx, 1, 2).",
    )] = None,
    store: StoreOption = DEFAULT_STORE,
    idempotency_key: Annotated[str | None, typer.Option(
        "--idempotency-key", envvar="TREADLE_IDEMPOTENCY_KEY", metavar="KEY",
        help="Run at most once per KEY: a second run with it waits for (or shows) the first.",
    )] = None,
    poll_interval: Annotated[float, typer.Option(
        "--poll-interval", envvar="TREADLE_POLL_INTERVAL", min=0.05, metavar="SECONDS",
        help="While the workflow waits, how often to renew its lease and look for signals "
        "sent by other processes.",
    )] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """Run a workflow to completion; print its result, status and step timings.

    Exits 1 when the execution fails or is cancelled. Interrupted (Ctrl-C), the execution
    stays in the store, resumable with `treadle executions resume --import MODULE`.
    """
    arguments = _arguments(input_, args)
    setup_logging()
    if workflow.endswith((".yaml", ".yml")):
        _run_pipeline(workflow, pipeline, arguments, store, as_json)
        return
    if pipeline is not None:
        raise typer.BadParameter("--pipeline goes with an APP.yaml", param_hint="--pipeline")
    wf, registry = load_workflow(workflow)
    wanted = str(uuid.uuid4())
    started: list[str] = []

    async def work(engine: Engine) -> tuple[Execution, ExecutionSummary | None]:
        handle = await engine.start(wf, *arguments, idempotency_key=idempotency_key,
                                    execution_id=wanted)
        started.append(handle.id)
        if handle.id != wanted:
            await _attach(engine, handle.id, idempotency_key)
        try:
            await handle.result()
        except (ExecutionFailedError, ExecutionCancelledError):
            pass
        return await engine.get(handle.id), await engine.store.get(handle.id)

    try:
        ex, row = run_async(store, work, registry=registry, heartbeat_interval=poll_interval)
    except Interrupted as stop:
        if started:
            module = workflow.rpartition(":")[0]
            console(stderr=True).print(Text(
                f"interrupted ({stop}): execution {started[0]} stays in the store; resume it "
                f"with `treadle executions resume --import {module}`", style="yellow"))
        raise typer.Exit(stop.exit_code) from None
    _report(ex, row, as_json)


def _run_pipeline(path: str, pipeline: str | None, arguments: list[Any], store: str,
                  as_json: bool) -> None:
    """Run one pipeline of a YAML application once (its modules started, not its triggers'
    servers) and report it like a workflow."""
    from treadle.apps import build_app

    if pipeline is None:
        raise typer.BadParameter("name the pipeline to run from the application",
                                 param_hint="--pipeline")
    if len(arguments) > 1 or (arguments and not isinstance(arguments[0], dict)):
        raise typer.BadParameter("a pipeline takes one JSON object (its trigger data)",
                                 param_hint="--input")
    trigger = arguments[0] if arguments else {}

    async def work(engine: Engine) -> tuple[Execution, ExecutionSummary | None]:
        runtime = build_app(path, engine)
        async with runtime:
            handle = await runtime.application.start_pipeline(engine, pipeline, trigger)
            try:
                await handle.result()
            except (ExecutionFailedError, ExecutionCancelledError):
                pass
        return await engine.get(handle.id), await engine.store.get(handle.id)

    ex, row = run_async(store, work)
    _report(ex, row, as_json)


def _arguments(input_: str | None, args: str | None) -> list[Any]:
    if input_ is not None and args is not None:
        raise typer.BadParameter("give --input (one argument) or --args (several), not both",
                                 param_hint="--input / --args")
    if args is not None:
        value = read_json(args, "--args")
        if not isinstance(value, list):
            raise typer.BadParameter("must be a JSON array of the workflow's arguments, "
                                     "e.g. --args '[1, 2]'", param_hint="--args")
        return value
    return [] if input_ is None else [read_json(input_, "--input")]


async def _attach(engine: Engine, execution_id: str, key: str | None) -> None:
    """The key named an existing execution: run it here if nobody does, else wait for it."""
    console(stderr=True).print(Text(
        f"execution {execution_id} already exists for idempotency key {key!r}", style="yellow"))
    try:
        await engine.resume(execution_id)
    except (WorkflowNotFoundError, WorkflowVersionError):
        raise
    except TreadleError as exc:  # leased by a live process: wait for it to finish there
        console(stderr=True).print(Text(f"{exc}; waiting for it", style="yellow"))


def _report(ex: Execution, row: ExecutionSummary | None, as_json: bool) -> None:
    if as_json:
        print_json(execution_view(ex, row))
    else:
        out = console()
        print_execution(out, ex, row, details=False)
        if ex.status == ExecutionStatus.COMPLETED:
            out.print()
            sys.stdout.flush()
            out.print(Text(dumps(ex.output)), soft_wrap=True)
    if ex.status == ExecutionStatus.COMPLETED:
        return
    if not as_json:
        err = console(stderr=True)
        lines = recorded_chain(ex.error) or [str(ex.status)]
        if ex.status == ExecutionStatus.CANCELLED:
            err.print(Text(f"cancelled: {(ex.error or {}).get('message', '')}", style="red"))
        else:
            err.print(Text(f"error: {lines[0]}", style="red"))
            for line in lines[1:]:
                err.print(Text(f"  caused by: {line}", style="red"))
        err.print(Text(f"details: treadle executions show {ex.id}", style="dim"))
    raise typer.Exit(1)

