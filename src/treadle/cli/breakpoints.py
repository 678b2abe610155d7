"""`treadle breakpoints …`: pause executions before a step, look at them, decide.

`set`, `list` and `remove` manage the breakpoints of a pipeline (or code workflow); `inspect`
shows where an execution waits, with the step's input and the outputs before it; `resume`,
`skip` and `abort` decide. Every command works on a store (`--store`) or on a control plane
(`--server`), with the API's JSON shapes under `--json` either way (the local views below are
the server's, built from the same engine calls).

A decision on a store goes through `engine.breakpoints`: it lands in the execution's inbox, and
the process holding the execution (a `treadle run`, a worker, a server) carries on within its
signal poll interval. When no process holds it, the decision waits in the inbox until a worker
or server resumes the execution; this command never runs workflow code itself.
"""

from __future__ import annotations

import getpass
import time
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from treadle.cli.errors import CliError
from treadle.cli.loading import import_all, registry_for
from treadle.cli.options import (
    DEFAULT_STORE,
    ApiKeyOption,
    IdArgument,
    ImportOption,
    JsonOption,
    PipelineArgument,
    ServerOption,
    StoreOption,
    read_json,
)
from treadle.cli.output import compact, console, print_json, print_table
from treadle.cli.remote import Remote
from treadle.cli.session import audited, run_async
from treadle.cli.times import iso
from treadle.engine import Engine, Registry
from treadle.engine.breakpoints import Breakpoint, check_condition, pipeline_workflow
from treadle.errors import TreadleError
from treadle.journal import project
from treadle.stores.base import ListQuery

breakpoints = typer.Typer(
    name="breakpoints", no_args_is_help=True,
    help="Pause executions before a step and decide for them: set, list, remove, inspect, "
    "resume, skip, abort.",
)

PIPELINES = "/api/v1/pipelines"
EXECUTIONS = "/api/v1/executions"


def register(app: typer.Typer) -> None:
    app.add_typer(breakpoints)


# -- shared with `treadle dlq` ----------------------------------------------------------------


async def _known(engine: Engine, names: tuple[str, ...]) -> set[str]:
    """Those of `names` the store knows: with executions, or with breakpoints set on them."""
    found = {name for name in names
             if (await engine.store.list(ListQuery(workflow=name, limit=1))).items}
    if len(found) < len(names):
        found.update(bp.workflow for bp in await engine.breakpoints.list()
                     if bp.workflow in names)
    return found


async def local_workflow(engine: Engine, pipeline: str) -> tuple[str, bool]:
    """The workflow PIPELINE names on this store, and whether it is known here.

    The server's mapping (`pipeline_workflow`) over the names this process knows: the
    workflows loaded (`--import`), and those the store knows (they have executions or
    breakpoints), so that a code workflow is found by its name without loading it.
    """
    names = set(engine.registry.names())
    candidates = (pipeline,) if pipeline.startswith("pipeline:") else (
        pipeline, f"pipeline:{pipeline}")
    if not names.intersection(candidates):
        names |= await _known(engine, candidates)
    workflow = pipeline_workflow(pipeline, names)
    return workflow, workflow in names


def operator() -> str | None:
    """Who decides, as journaled (`by`): the user running the command."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return None


def _pipeline_path(pipeline: str, *rest: str) -> str:
    return "/".join([PIPELINES, Remote.quote(pipeline), "breakpoints", *rest])


def _execution_path(execution_id: str, *rest: str) -> str:
    return "/".join([EXECUTIONS, Remote.quote(execution_id), "breakpoint", *rest])


def breakpoint_view(bp: Breakpoint, pipeline: str) -> dict[str, Any]:
    """A breakpoint as the API shows it (`POST|GET /api/v1/pipelines/{p}/breakpoints`)."""
    return {"id": bp.id, "pipeline": pipeline, "workflow": bp.workflow, "step": bp.step,
            "condition": bp.condition, "action": "pause", "created_at": iso(bp.created_at),
            "expires_at": iso(bp.expires_at), "created_by": bp.created_by,
            "notify": list(bp.notify)}


# -- set, list, remove --------------------------------------------------------------------------


def _ttl(text: str) -> float:
    from treadle.steps._durations import parse_duration

    try:
        seconds = parse_duration(text, "ttl")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ttl") from None
    if seconds <= 0:
        raise typer.BadParameter("must be greater than zero", param_hint="--ttl")
    return seconds


@breakpoints.command("set")
def set_(
    pipeline: PipelineArgument,
    step: Annotated[str, typer.Argument(metavar="STEP", show_default=False,
                                        help="Pause before this step runs.")],
    condition: Annotated[str | None, typer.Option(
        "--condition", "-c", envvar="TREADLE_BREAKPOINT_CONDITION", metavar="EXPR",
        help="Pause only when EXPR holds, over input, steps.<name> (earlier outputs), "
        "workflow and execution_id, e.g. 'steps.price.total > 100'.")] = None,
    ttl: Annotated[str, typer.Option(
        "--ttl", envvar="TREADLE_BREAKPOINT_TTL", metavar="DURATION",
        help="Expire after DURATION: 30m, 1h, 1h30m, 2d.")] = "1h",
    imports: ImportOption = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a breakpoint: executions of PIPELINE pause before STEP (when --condition holds).

    Locally, PIPELINE is a code workflow when one of that name is loaded (`--import MODULE`)
    or known to the store (it has executions or breakpoints), else the YAML pipeline
    `pipeline:PIPELINE`; the output names the workflow.
    """
    seconds = _ttl(ttl)
    if condition is not None:
        try:
            check_condition(condition)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--condition") from None
    known = True
    if server:
        with Remote(server, api_key) as api:
            _, view = api.post(_pipeline_path(pipeline),
                               {"step": step, "condition": condition, "ttl": ttl})
    else:
        async def work(engine: Engine) -> tuple[dict[str, Any], bool]:
            workflow, found = await local_workflow(engine, pipeline)
            try:
                bp = await engine.breakpoints.set(workflow, step, condition=condition,
                                                  ttl=seconds, created_by=operator())
            except ValueError as exc:
                raise CliError(str(exc)) from None
            await audited(engine, "breakpoint.set", f"breakpoint:{bp.id}",
                          {"workflow": bp.workflow, "step": bp.step,
                           "condition": bp.condition, "ttl": ttl}, bp.tenant_id)
            return breakpoint_view(bp, pipeline), found

        view, known = run_async(store, work, registry=registry_for(import_all(imports or [])))
    if not known and not pipeline.startswith("pipeline:"):
        console(stderr=True).print(Text(
            f"note: no workflow {pipeline!r} is loaded or known to this store, so the "
            f"breakpoint is on the YAML pipeline's workflow {view['workflow']!r}; for a code "
            "workflow, pass --import MODULE", style="yellow"))
    if as_json:
        print_json(view)
        return
    line = Text(f"breakpoint {view['id']} set: {view['workflow']} pauses before step "
                f"{view['step']!r}")
    if view.get("condition"):
        line.append(f" when {view['condition']}")
    line.append(f", until {view.get('expires_at') or 'removed'}")
    console().print(line)


@breakpoints.command("list")
def list_(pipeline: PipelineArgument, store: StoreOption = DEFAULT_STORE,
          server: ServerOption = None, api_key: ApiKeyOption = None,
          as_json: JsonOption = False) -> None:
    """List the breakpoints of PIPELINE that have not expired, newest first."""
    if server:
        with Remote(server, api_key) as api:
            found: dict[str, Any] = api.get(_pipeline_path(pipeline))
    else:
        async def work(engine: Engine) -> dict[str, Any]:
            workflow, _ = await local_workflow(engine, pipeline)
            return {"breakpoints": [breakpoint_view(bp, pipeline) for bp in
                                    await engine.breakpoints.list(workflow=workflow)]}

        found = run_async(store, work)
    if as_json:
        print_json(found)
        return
    out = console()
    if not found["breakpoints"]:
        out.print(f"no breakpoints on {pipeline}")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("id", "step", "condition", "expires", "created by"):
        table.add_column(name, no_wrap=name in ("id", "expires"), overflow="fold")
    for bp in found["breakpoints"]:
        table.add_row(bp["id"], bp["step"], bp.get("condition") or "",
                      bp.get("expires_at") or "", bp.get("created_by") or "")
    print_table(out, table)


@breakpoints.command("remove")
def remove(
    pipeline: PipelineArgument,
    breakpoint_id: Annotated[str, typer.Argument(metavar="ID", show_default=False,
                                                 help="The breakpoint's id.")],
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a breakpoint. Executions already paused at it stay paused: decide them."""
    if server:
        with Remote(server, api_key) as api:
            api.request("DELETE", _pipeline_path(pipeline, Remote.quote(breakpoint_id)))
    else:
        async def work(engine: Engine) -> None:
            workflow, _ = await local_workflow(engine, pipeline)
            bp = await engine.breakpoints.get(breakpoint_id)
            if bp is None or bp.workflow != workflow:
                raise CliError(f"no breakpoint {breakpoint_id!r} on {pipeline}")
            await engine.breakpoints.remove(breakpoint_id)
            await audited(engine, "breakpoint.remove", f"breakpoint:{breakpoint_id}",
                          {"workflow": bp.workflow, "step": bp.step}, bp.tenant_id)

        run_async(store, work)
    if as_json:
        print_json({"id": breakpoint_id, "pipeline": pipeline, "removed": True})
    else:
        console().print(f"removed breakpoint {breakpoint_id} from {pipeline} (executions "
                        "paused at it stay paused until decided)")


# -- inspect and decide -------------------------------------------------------------------------


async def _local_paused(engine: Engine, execution_id: str) -> dict[str, Any]:
    """`GET /api/v1/executions/{id}/breakpoint`, from the store."""
    if await engine.store.get(execution_id) is None:
        raise CliError(f"no execution {execution_id!r}")
    events = await engine.store.events(execution_id)
    hit = await engine.breakpoints.paused(execution_id)
    if hit is None:
        return {"execution_id": execution_id, "paused": False, "steps": {}}
    before = {rec.name: rec.output for rec in project(execution_id, events).steps
              if rec.pos < hit["pos"] and rec.kind == "step"}
    return {"execution_id": execution_id, "paused": True, "step": hit["step_name"],
            "position": hit["pos"], "input": hit.get("input"),
            "breakpoint_id": hit.get("breakpoint_id"), "condition": hit.get("condition"),
            "steps": before}


@breakpoints.command("inspect")
def inspect(execution_id: IdArgument, store: StoreOption = DEFAULT_STORE,
            server: ServerOption = None, api_key: ApiKeyOption = None,
            as_json: JsonOption = False) -> None:
    """Where an execution is paused: the step, its input, and the outputs of the steps
    before it."""
    if server:
        with Remote(server, api_key) as api:
            paused: dict[str, Any] = api.get(_execution_path(execution_id))
    else:
        paused = run_async(store, lambda engine: _local_paused(engine, execution_id))
    if as_json:
        print_json(paused)
        return
    out = console()
    if not paused["paused"]:
        out.print(f"execution {execution_id} is not paused at a breakpoint")
        return
    out.print(Text(f"execution {execution_id} paused before step {paused['step']!r} "
                   f"(position {paused['position']})", style="bold"))
    fields = [("breakpoint", paused.get("breakpoint_id") or ""),
              ("condition", paused.get("condition") or ""),
              ("input", compact(paused.get("input"), 2000))]
    for label, value in fields:
        if value:
            out.print(Text(f"{label + ':':<12}", style="dim").append(value))
    if paused["steps"]:
        out.print()
        out.print(Text("earlier outputs:", style="bold"))
        width = max(len(name) for name in paused["steps"])
        for name, output in paused["steps"].items():
            out.print(Text(f"  {name:<{width}}  ").append(compact(output, 2000)))
    out.print()
    out.print(Text(f"decide: treadle breakpoints resume|skip|abort {execution_id}", style="dim"))


def _decide(store: str, server: str | None, api_key: str | None, execution_id: str,
            decision: dict[str, Any]) -> dict[str, Any]:
    """Send the decision; the API's answer (`execution_id, action, step, position`), with
    `held` (whether a live process holds the execution) when decided on the store."""
    action = decision["action"]
    if server:
        body = {k: v for k, v in decision.items() if k != "action"}
        with Remote(server, api_key) as api:
            _, answer = api.post(_execution_path(execution_id, action), body)
        result: dict[str, Any] = answer
        return result

    async def work(engine: Engine) -> dict[str, Any]:
        row = await engine.store.get(execution_id)
        if row is None:
            raise CliError(f"no execution {execution_id!r}")
        held = row.owner is not None and (row.lease_until or 0) > time.time()
        try:  # nobody holds it: the engine cannot resume it here (no workflows are loaded)
            # and hands the lease straight back, for a worker or server to take it up
            hit = await engine.breakpoints.decide(execution_id, decision, by=operator())
        except TreadleError as exc:  # ended, or not paused
            raise CliError(str(exc)) from None
        await audited(engine, f"breakpoint.{action}", f"execution:{execution_id}",
                      {"step": hit["step_name"], "position": hit["pos"],
                       "breakpoint_id": hit.get("breakpoint_id"),
                       "modified_input": "input" in decision}, row.tenant_id)
        return {"execution_id": execution_id, "action": action, "step": hit["step_name"],
                "position": hit["pos"], "held": held}

    return run_async(store, work, registry=Registry())  # no workflow code runs here


def _report(answer: dict[str, Any], detail: str, as_json: bool) -> None:
    if as_json:
        print_json(answer)
        return
    out = console()
    where = f"step {answer['step']!r} (position {answer['position']})"
    execution_id = answer["execution_id"]
    lines = {"resume": f"resumed execution {execution_id} at {where}",
             "skip": f"skipped {where} of execution {execution_id}",
             "abort": f"aborted execution {execution_id} at {where}: it is being cancelled"}
    out.print(lines[answer["action"]] + detail)
    if answer.get("held") is False:
        out.print(Text(
            "no process runs this execution now: the decision waits in its inbox until a "
            "worker or server resumes it (or `treadle executions resume "
            f"{execution_id} --import MODULE`)", style="yellow"))


@breakpoints.command("resume")
def resume(
    execution_id: IdArgument,
    input: Annotated[str | None, typer.Option(
        "--input", envvar="TREADLE_BREAKPOINT_INPUT", metavar="JSON",
        help="Run the step with this input instead of its own: a JSON list of arguments "
        "([200]) or {\"args\": [...], \"kwargs\": {...}}; @file.json reads a file.")] = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let the paused step run (with --input in place of its arguments when given)."""
    decision: dict[str, Any] = {"action": "resume"}
    value = None if input is None else read_json(input, "--input")
    if value is not None:
        decision["input"] = value
    answer = _decide(store, server, api_key, execution_id, decision)
    _report(answer, "" if value is None else f" with input {compact(value, 200)}", as_json)


@breakpoints.command("skip")
def skip(
    execution_id: IdArgument,
    output: Annotated[str | None, typer.Option(
        "--output", envvar="TREADLE_BREAKPOINT_OUTPUT", metavar="JSON",
        help="What the skipped step returns (default null); @file.json reads a file.")] = None,
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Do not run the paused step: it returns --output and the execution goes on."""
    value = None if output is None else read_json(output, "--output")
    answer = _decide(store, server, api_key, execution_id,
                     {"action": "skip", "output": value})
    _report(answer, f"; it returns {compact(value, 200)}", as_json)


@breakpoints.command("abort")
def abort(
    execution_id: IdArgument,
    reason: Annotated[str, typer.Option(
        "--reason", "-r", envvar="TREADLE_BREAKPOINT_REASON", metavar="TEXT",
        help="Why; recorded in the journal as the cancellation's reason.",
    )] = "aborted at a breakpoint",
    store: StoreOption = DEFAULT_STORE,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel the paused execution: its completed saga steps are compensated."""
    answer = _decide(store, server, api_key, execution_id,
                     {"action": "abort", "reason": reason})
    _report(answer, "", as_json)
