"""Rendering: JSON views of executions, steps and events, and rich tables for people.

Every timestamp is ISO 8601 UTC (`2024-05-01T12:00:00.123Z`), in tables and in `--json` output
alike; durations are milliseconds in JSON (`duration_ms`, to the microsecond) and human units
in tables.

Tables are drawn from the JSON views, never from the objects behind them, so `--json` and the
table always agree, and a view that came from a server (`--server`) prints like a local one.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from treadle.cli.errors import recorded_chain
from treadle.cli.times import human_duration, iso
from treadle.journal import Event, Execution, ExecutionStatus, ExecutionSummary, Page, StepRecord

_STATUS_STYLE = {
    "completed": "green", "failed": "red", "cancelled": "magenta", "running": "cyan",
    "suspended": "yellow", "pending": "dim", "waiting": "yellow", "skipped": "dim",
    "identical": "green", "output_different": "yellow", "input_different": "yellow",
    "status_different": "red", "left_skipped": "dim", "right_skipped": "dim",
}
TERMINAL = frozenset(str(s) for s in ExecutionStatus if s.is_terminal)


def console(*, stderr: bool = False) -> Console:
    """A console; when piped (no terminal, no COLUMNS), wide enough not to fold ids."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def dumps(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


def print_json(value: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else."""
    sys.stdout.write(dumps(value) + "\n")
    sys.stdout.flush()


def print_table(out: Console, table: Table) -> None:
    """Print a table; when piped, without the padding at the end of its lines."""
    if out.is_terminal:
        out.print(table)
        return
    with out.capture() as captured:
        out.print(table)
    lines = captured.get().splitlines()
    out.file.write("".join(line.rstrip() + "\n" for line in lines))


def compact(value: Any, limit: int = 120) -> str:
    """One-line JSON, cut at `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_text(status: str) -> Text:
    return Text(str(status), style=_STATUS_STYLE.get(str(status), ""))


def ms(value: float | None) -> float | None:
    """Milliseconds to the microsecond, as the server gives them."""
    return None if value is None else round(value, 3)


def error_line(error: dict[str, Any] | None) -> str:
    """`Type: message` of a journaled error (empty without one)."""
    if not error:
        return ""
    return f"{error.get('type', '')}: {error.get('message', '')}"


# -- JSON views -------------------------------------------------------------------------------


def step_view(step: StepRecord) -> dict[str, Any]:
    return {
        "pos": step.pos, "name": step.name, "kind": step.kind, "status": str(step.status),
        "attempts": step.attempts, "input": step.input, "output": step.output,
        "error": step.error, "started_at": iso(step.started_at),
        "finished_at": iso(step.finished_at), "duration_ms": ms(step.duration_ms),
        "mocked": step.mocked, "compensated": step.compensated,
        "compensates": step.compensates, "child_id": step.child_id,
    }


def execution_view(ex: Execution, row: ExecutionSummary | None = None) -> dict[str, Any]:
    """Everything known about an execution (the journal's projection plus its index row)."""
    view: dict[str, Any] = {
        "id": ex.id, "workflow": ex.workflow, "version": ex.version, "status": str(ex.status),
        "input": ex.input, "args": ex.args, "output": ex.output, "error": ex.error,
        "created_at": iso(ex.created_at), "finished_at": iso(ex.finished_at),
        "duration_ms": ms(ex.duration_ms), "idempotency_key": ex.idempotency_key,
        "parent_id": ex.parent_id, "metadata": ex.metadata, "last_seq": ex.last_seq,
        "steps": [step_view(s) for s in ex.steps],
    }
    if row is not None and not ex.status.is_terminal:
        view.update(owner=row.owner, lease_until=iso(row.lease_until), wake_at=iso(row.wake_at),
                    queue=row.queue, tenant_id=row.tenant_id)
    return view


def summary_view(row: ExecutionSummary) -> dict[str, Any]:
    return {
        "id": row.id, "workflow": row.workflow, "version": row.version,
        "status": str(row.status), "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at), "finished_at": iso(row.finished_at),
        "duration_ms": summary_duration(row), "error": row.error,
        "idempotency_key": row.idempotency_key, "parent_id": row.parent_id,
        "tenant_id": row.tenant_id, "owner": row.owner,
    }


def page_view(page: Page[ExecutionSummary]) -> dict[str, Any]:
    return {"items": [summary_view(r) for r in page.items], "next_cursor": page.next_cursor}


def event_view(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "time": iso(event.created_at), "type": str(event.type),
            "data": event.data}


def summary_duration(row: ExecutionSummary) -> float | None:
    if row.finished_at is None:
        return None
    return ms((row.finished_at - row.created_at) * 1000.0)


# -- tables (of the views above) --------------------------------------------------------------


def summaries_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("id", "workflow", "version", "status", "created", "duration", "error"):
        table.add_column(name, no_wrap=name in ("id", "created"), overflow="fold")
    for row in rows:
        table.add_row(row["id"], row["workflow"], row.get("version") or "",
                      status_text(row["status"]), row.get("created_at") or "",
                      human_duration(row.get("duration_ms")),
                      Text(row.get("error") or "", style="red"))
    return table


def steps_table(steps: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("pos", "name", "kind", "status", "attempts", "duration", "mocked"):
        table.add_column(name, justify="right" if name in ("pos", "attempts", "duration")
                         else "left", overflow="fold")
    with_errors = any(s.get("error") for s in steps)
    if with_errors:
        table.add_column("error", overflow="fold")
    for s in steps:
        status = status_text(s["status"])
        if s.get("compensated"):
            status.append(" (compensated)", style="magenta")
        cells: list[str | Text] = [str(s["pos"]), s["name"], s["kind"], status,
                                   str(s["attempts"]), human_duration(s.get("duration_ms")),
                                   "yes" if s.get("mocked") else ""]
        if with_errors:
            cells.append(Text(error_line(s.get("error")), style="red"))
        table.add_row(*cells)
    return table


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("seq", justify="right")
    table.add_column("time", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("data", overflow="fold")
    for ev in events:
        data: dict[str, Any] = dict(ev["data"])
        error = data.get("error")
        if isinstance(error, dict):
            data["error"] = {k: v for k, v in error.items() if k != "traceback"}
        table.add_row(str(ev["seq"]), ev["time"], str(ev["type"]), Text(compact(data)))
    return table


# -- whole views ------------------------------------------------------------------------------


def print_execution(out: Console, ex: Execution, row: ExecutionSummary | None = None, *,
                    details: bool = True) -> None:
    """The header (id, workflow, status, timing), input/output/error, then the steps."""
    print_execution_view(out, execution_view(ex, row), details=details)


def print_execution_view(out: Console, view: dict[str, Any], *, details: bool = True) -> None:
    """`print_execution` of an execution's JSON view (`execution_view`)."""
    head = Text()
    head.append("execution ", style="bold").append(view["id"], style="bold")
    head.append(f"  {view['workflow']}")
    if view.get("version"):
        head.append(f" v{view['version']}", style="dim")
    head.append("  ").append_text(status_text(view["status"]))
    if view.get("duration_ms") is not None:
        head.append(f"  in {human_duration(view['duration_ms'])}")
    out.print(head)
    fields: list[tuple[str, str]] = [("created", view.get("created_at") or "")]
    if view.get("finished_at"):
        fields.append(("finished", view["finished_at"]))
    if view.get("idempotency_key"):
        fields.append(("idempotency key", view["idempotency_key"]))
    if view.get("parent_id"):
        fields.append(("parent", view["parent_id"]))
    if view.get("owner"):
        fields.append(("owner", f"{view['owner']} (lease until {view.get('lease_until')})"))
    if view.get("wake_at"):
        fields.append(("wakes at", view["wake_at"]))
    if details:
        fields.append(("input", compact(view.get("input"), 2000)))
    for label, value in fields:
        out.print(Text(f"{label + ':':<17}", style="dim").append(value))
    if view.get("steps"):
        out.print()
        print_table(out, steps_table(view["steps"]))
    error = view.get("error")
    if error and details:
        out.print()
        out.print(Text("error:", style="bold red"))
        for i, line in enumerate(recorded_chain(error)):
            out.print(Text(("  caused by: " if i else "  ") + line, style="red"))
        if error.get("traceback"):
            out.print()
            out.print(Text(str(error["traceback"]).rstrip(), style="dim"))
    if view["status"] == "completed" and details:
        out.print()
        out.print(Text("output:", style="bold"))
        out.print(Text(dumps(view.get("output"))), soft_wrap=True)


def print_timeline(out: Console, timeline: dict[str, Any]) -> None:
    """A timeline (`GET …/timeline`'s document): the execution, then one row per step."""
    head = Text()
    head.append("execution ", style="bold").append(timeline["execution_id"], style="bold")
    head.append(f"  {timeline['pipeline']}  ").append_text(status_text(timeline["status"]))
    if timeline.get("duration_ms") is not None:
        head.append(f"  in {human_duration(timeline['duration_ms'])}")
    out.print(head)
    trigger = dict(timeline.get("trigger") or {})
    kind = trigger.pop("type", "manual")
    fields = [("started", timeline.get("started_at") or ""),
              ("completed", timeline.get("completed_at") or ""),
              ("trigger", f"{kind} {compact(trigger)}" if trigger else str(kind))]
    if timeline.get("tenant"):
        fields.append(("tenant", str(timeline["tenant"])))
    if timeline.get("parent_id"):
        fields.append(("parent", str(timeline["parent_id"])))
    for label, value in fields:
        if value:
            out.print(Text(f"{label + ':':<11}", style="dim").append(value))
    steps = timeline.get("steps") or []
    if steps:
        out.print()
        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in ("pos", "step", "type", "status", "started", "duration", "attempts",
                     "output / error"):
            table.add_column(name, justify="right" if name in ("pos", "duration", "attempts")
                             else "left", no_wrap=name == "started", overflow="fold")
        for step in steps:
            status = status_text(step["status"])
            if step.get("mocked"):
                status.append(" (mocked)", style="dim")
            if step.get("compensated"):
                status.append(" (compensated)", style="magenta")
            detail = (Text(error_line(step["error"]), style="red") if step.get("error")
                      else Text(compact(step.get("output"), 80)))
            table.add_row(str(step.get("pos", "")), step["name"], str(step.get("type", "")),
                          status, step.get("started_at") or "",
                          human_duration(step.get("duration_ms")), str(step.get("attempts", "")),
                          detail)
        print_table(out, table)
    if timeline.get("error"):
        out.print()
        out.print(Text(f"error: {error_line(timeline['error'])}", style="red"))


def _diff_cells(step: dict[str, Any]) -> tuple[str, str]:
    """What to show of each side of a step's diff: the part that differs."""
    status = step["status"]
    if status == "identical":
        return "", ""
    if status == "output_different":
        diff = step.get("diff") or {}
        keys = list(diff)
        if keys == ["$"]:
            return compact(step.get("left_output"), 60), compact(step.get("right_output"), 60)
        return (", ".join(f"{k}={compact(diff[k]['left'], 40)}" for k in keys),
                ", ".join(f"{k}={compact(diff[k]['right'], 40)}" for k in keys))
    if status == "input_different":
        return ("input " + compact(step.get("left_input"), 54),
                "input " + compact(step.get("right_input"), 54))
    if status == "status_different":
        sides = []
        for side in ("left", "right"):
            error = step.get(f"{side}_error")
            sides.append(f"{step.get(f'{side}_status')} " + (
                f"({error_line(error)})" if error else compact(step.get(f"{side}_output"), 50)))
        return sides[0], sides[1]
    left = "—" if status == "left_skipped" else compact(step.get("left_output"), 60)
    right = "—" if status == "right_skipped" else compact(step.get("right_output"), 60)
    return left, right


def print_diff(out: Console, diff: dict[str, Any]) -> None:
    """A diff of two executions (`GET …/diff`'s document): both sides, then step by step."""
    summary = diff["summary"]
    for side in ("left", "right"):
        line = Text(f"{side + ':':<7}", style="bold").append(diff[side], style="bold")
        line.append(f"  {summary[f'{side}_pipeline']}  ")
        line.append_text(status_text(summary[f"{side}_status"]))
        if summary.get(f"{side}_duration_ms") is not None:
            line.append(f"  in {human_duration(summary[f'{side}_duration_ms'])}")
        out.print(line)
    input_diff = diff.get("input_diff") or {}
    same_input = "identical" if summary["input_identical"] else "different: " + ", ".join(
        f"{k} {compact(v['left'], 40)} → {compact(v['right'], 40)}" for k, v in input_diff.items())
    out.print(Text(f"{'input:':<8}", style="dim").append(same_input))
    out.print(Text(f"{'output:':<8}", style="dim").append(
        "identical" if summary["output_identical"] else "different"))
    out.print(Text(f"{'steps:':<8}", style="dim").append(
        f"{summary['steps_identical']} identical, {summary['steps_different']} different"))
    steps = diff.get("step_diffs") or []
    if not steps:
        return
    out.print()
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("step", "status", "left", "right", "note"):
        table.add_column(name, overflow="fold")
    for step in steps:
        name = step["step"] + (f" #{step['occurrence']}" if step.get("occurrence") else "")
        left, right = _diff_cells(step)
        table.add_row(name, status_text(step["status"]), left, right,
                      Text(str(step.get("reason") or ""), style="dim"))
    print_table(out, table)
