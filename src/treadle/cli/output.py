"""Rendering: JSON views of executions, steps and events, and rich tables for people.

Every timestamp is ISO 8601 UTC (`2024-05-01T12:00:00.123Z`), in tables and in `--json` output
alike; durations are milliseconds in JSON (`duration_ms`) and human units in tables.
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
from treadle.journal import Event, Execution, ExecutionSummary, Page, StepRecord

_STATUS_STYLE = {
    "completed": "green", "failed": "red", "cancelled": "magenta", "running": "cyan",
    "suspended": "yellow", "pending": "dim", "waiting": "yellow", "skipped": "dim",
}


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


# -- JSON views -------------------------------------------------------------------------------


def step_view(step: StepRecord) -> dict[str, Any]:
    return {
        "pos": step.pos, "name": step.name, "kind": step.kind, "status": str(step.status),
        "attempts": step.attempts, "input": step.input, "output": step.output,
        "error": step.error, "started_at": iso(step.started_at),
        "finished_at": iso(step.finished_at), "duration_ms": step.duration_ms,
        "mocked": step.mocked, "compensated": step.compensated,
        "compensates": step.compensates, "child_id": step.child_id,
    }


def execution_view(ex: Execution, row: ExecutionSummary | None = None) -> dict[str, Any]:
    """Everything known about an execution (the journal's projection plus its index row)."""
    view: dict[str, Any] = {
        "id": ex.id, "workflow": ex.workflow, "version": ex.version, "status": str(ex.status),
        "input": ex.input, "args": ex.args, "output": ex.output, "error": ex.error,
        "created_at": iso(ex.created_at), "finished_at": iso(ex.finished_at),
        "duration_ms": ex.duration_ms, "idempotency_key": ex.idempotency_key,
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
    return (row.finished_at - row.created_at) * 1000.0


# -- tables -----------------------------------------------------------------------------------


def summaries_table(rows: list[ExecutionSummary]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("id", "workflow", "version", "status", "created", "duration", "error"):
        table.add_column(name, no_wrap=name in ("id", "created"), overflow="fold")
    for row in rows:
        table.add_row(row.id, row.workflow, row.version or "", status_text(row.status),
                      iso(row.created_at), human_duration(summary_duration(row)),
                      Text(row.error or "", style="red"))
    return table


def steps_table(steps: list[StepRecord]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("pos", "name", "kind", "status", "attempts", "duration", "mocked"):
        table.add_column(name, justify="right" if name in ("pos", "attempts", "duration")
                         else "left", overflow="fold")
    with_errors = any(s.error for s in steps)
    if with_errors:
        table.add_column("error", overflow="fold")
    for s in steps:
        status = status_text(s.status)
        if s.compensated:
            status.append(" (compensated)", style="magenta")
        cells: list[str | Text] = [str(s.pos), s.name, s.kind, status, str(s.attempts),
                                   human_duration(s.duration_ms), "yes" if s.mocked else ""]
        if with_errors:
            err = s.error or {}
            cells.append(Text(f"{err.get('type', '')}: {err.get('message', '')}"
                              if err else "", style="red"))
        table.add_row(*cells)
    return table


def events_table(events: list[Event]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("seq", justify="right")
    table.add_column("time", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("data", overflow="fold")
    for ev in events:
        data: dict[str, Any] = dict(ev.data)
        error = data.get("error")
        if isinstance(error, dict):
            data["error"] = {k: v for k, v in error.items() if k != "traceback"}
        table.add_row(str(ev.seq), iso(ev.created_at), str(ev.type), Text(compact(data)))
    return table


# -- whole views ------------------------------------------------------------------------------


def print_execution(out: Console, ex: Execution, row: ExecutionSummary | None = None, *,
                    details: bool = True) -> None:
    """The header (id, workflow, status, timing), input/output/error, then the steps."""
    head = Text()
    head.append("execution ", style="bold").append(ex.id, style="bold")
    head.append(f"  {ex.workflow}")
    if ex.version:
        head.append(f" v{ex.version}", style="dim")
    head.append("  ").append_text(status_text(ex.status))
    if ex.duration_ms is not None:
        head.append(f"  in {human_duration(ex.duration_ms)}")
    out.print(head)
    fields: list[tuple[str, str]] = [("created", iso(ex.created_at) or "")]
    if ex.finished_at is not None:
        fields.append(("finished", iso(ex.finished_at) or ""))
    if ex.idempotency_key:
        fields.append(("idempotency key", ex.idempotency_key))
    if ex.parent_id:
        fields.append(("parent", ex.parent_id))
    if row is not None and not ex.status.is_terminal:
        if row.owner:
            fields.append(("owner", f"{row.owner} (lease until {iso(row.lease_until)})"))
        if row.wake_at:
            fields.append(("wakes at", iso(row.wake_at) or ""))
    if details:
        fields.append(("input", compact(ex.input, 2000)))
    for label, value in fields:
        out.print(Text(f"{label + ':':<17}", style="dim").append(value))
    if ex.steps:
        out.print()
        print_table(out, steps_table(ex.steps))
    if ex.error and details:
        out.print()
        out.print(Text("error:", style="bold red"))
        for i, line in enumerate(recorded_chain(ex.error)):
            out.print(Text(("  caused by: " if i else "  ") + line, style="red"))
        if ex.error.get("traceback"):
            out.print()
            out.print(Text(str(ex.error["traceback"]).rstrip(), style="dim"))
    if ex.status == "completed" and details:
        out.print()
        out.print(Text("output:", style="bold"))
        out.print(Text(dumps(ex.output)), soft_wrap=True)
