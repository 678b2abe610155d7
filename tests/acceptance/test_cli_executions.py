"""`treadle executions …` as a subprocess against SQLite: list, show, events, signal, cancel,
resume and prune, including a workflow waiting in another `treadle run` process."""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from acceptance.conftest import Cli

Populated = tuple["Cli", list[str]]


# -- list ---------------------------------------------------------------------------------------


def test_list_json_is_newest_first(populated: Populated) -> None:
    cli, ids = populated
    page = cli.json("executions", "list")
    assert [item["id"] for item in page["items"]] == ids[::-1]
    assert page["next_cursor"] is None
    first = page["items"][-1]
    assert first["workflow"] == "greet" and first["version"] == "1"
    assert first["status"] == "completed" and first["duration_ms"] > 0
    assert first["created_at"].endswith("Z")


def test_list_filters(populated: Populated) -> None:
    cli, ids = populated
    by_workflow = cli.json("executions", "list", "--workflow", "greet")["items"]
    assert [i["id"] for i in by_workflow] == ids[2::-1]
    failed = cli.json("executions", "list", "--status", "failed")["items"]
    assert [(i["id"], i["workflow"], i["error"]) for i in failed] == [
        (ids[3], "pay", "card declined")
    ]
    assert cli.json("executions", "list", "-w", "greet", "-s", "failed")["items"] == []
    assert len(cli.json("executions", "list", "--since", "1h")["items"]) == 5
    assert cli.json("executions", "list", "--since", "2999-01-01T00:00:00Z")["items"] == []
    assert len(cli.json("executions", "list", "--until", "2999-01-01")["items"]) == 5


def test_list_pages_with_a_cursor(populated: Populated) -> None:
    cli, ids = populated
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        args = ["executions", "list", "--limit", "2"] + (["--cursor", cursor] if cursor else [])
        page = cli.json(*args)
        seen += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 3


def test_list_table(populated: Populated) -> None:
    cli, ids = populated
    out = cli.ok("executions", "list", "--limit", "2")
    header = out.splitlines()[0].split()
    assert header == ["id", "workflow", "version", "status", "created", "duration", "error"]
    assert ids[4] in out and ids[3] in out and ids[0] not in out
    assert "card declined" in out
    assert "more: --cursor " in out
    cursor = out.split("more: --cursor ")[1].split()[0]
    assert ids[2] in cli.ok("executions", "list", "--limit", "2", "--cursor", cursor)


def test_list_bad_filters_are_usage_errors(populated: Populated) -> None:
    cli, _ = populated
    for args, option in ((["--since", "yesterday"], "--since"), (["--status", "done"], "--status"),
                         (["--limit", "0"], "--limit")):
        out = cli("executions", "list", *args)
        assert out.returncode == 2 and option in out.stderr, out.stderr


def test_list_empty_store(cli: Cli) -> None:
    assert "no executions" in cli.ok("executions", "list")


# -- show, events -------------------------------------------------------------------------------


def test_show_table(populated: Populated) -> None:
    cli, ids = populated
    out = cli.ok("executions", "show", ids[0])
    assert out.splitlines()[0].split()[:5] == ["execution", ids[0], "greet", "v1", "completed"]
    assert 'input:' in out and '{"name":"ann"}' in out
    assert "pos  name" in out and "make_greeting" in out and "HELLO ANN" in out


def test_show_unknown_execution_exits_1(cli: Cli) -> None:
    out = cli("executions", "show", "no-such-id")
    assert out.returncode == 1
    assert out.stderr.strip() == "error: ExecutionNotFoundError: no execution no-such-id"


def test_events(populated: Populated) -> None:
    cli, ids = populated
    journal = cli.json("executions", "events", ids[0])
    assert [e["seq"] for e in journal] == list(range(1, len(journal) + 1))
    types = [e["type"] for e in journal]
    assert types[0] == "execution.started" and types[-1] == "execution.completed"
    assert "step.completed" in types
    assert journal[0]["data"]["args"] == [{"name": "ann"}]
    assert journal[0]["time"].endswith("Z")

    table = cli.ok("executions", "events", ids[3])
    assert table.splitlines()[0].split() == ["seq", "time", "type", "data"]
    assert "execution.failed" in table and "Traceback" not in table
    assert cli("executions", "events", "nope").returncode == 1


# -- a workflow waiting for a signal in another process -----------------------------------------


def _start_approval(cli: Cli, request_id: int) -> tuple[Any, str]:
    proc = cli.spawn("run", "cliflows:approval", "--input", json.dumps({"id": request_id}),
                     "--poll-interval", "0.1")
    item = cli.wait_for(lambda i: i["status"] == "suspended", workflow="approval")
    return proc, item["id"]


def test_signal_wakes_a_workflow_waiting_in_another_process(cli: Cli) -> None:
    proc, execution_id = _start_approval(cli, 1)
    shown = cli.json("executions", "show", execution_id)
    assert [(s["name"], s["kind"], s["status"]) for s in shown["steps"]] == [
        ("reserve", "step", "completed"), ("decision", "signal", "waiting")]
    assert shown["owner"]

    sent = cli.json("executions", "signal", execution_id, "decision",
                    "--payload", '{"approved": true, "by": "ann"}')
    assert sent == {"id": execution_id, "signal": "decision",
                    "payload": {"approved": True, "by": "ann"}, "sent": True}
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout[stdout.index("\n{") :]) == {
        "booking": "booking-1", "approved": True, "by": "ann"}
    view = cli.json("executions", "show", execution_id)
    assert view["status"] == "completed"
    assert view["steps"][1]["output"] == {"approved": True, "by": "ann"}


def test_signal_errors(populated: Populated) -> None:
    cli, ids = populated
    out = cli("executions", "signal", ids[0], "decision")
    assert out.returncode == 1 and "is completed; it takes no signals" in out.stderr
    out = cli("executions", "signal", ids[0], "decision", "--payload", "{oops")
    assert out.returncode == 2 and "--payload" in out.stderr


def test_cancel_an_execution_another_process_runs(cli: Cli) -> None:
    proc, running = _start_approval(cli, 4)
    requested = cli("executions", "cancel", running, "--reason", "from another shell")
    assert requested.returncode == 0, requested.stderr
    assert "cancel requested" in requested.stdout
    _, stderr = proc.communicate(timeout=30)  # the process running it carries it out
    assert proc.returncode == 1 and "cancelled" in stderr
    view = cli.json("executions", "show", running)
    assert view["status"] == "cancelled"
    assert view["error"]["message"] == "from another shell"
    assert {s["name"]: s for s in view["steps"]}["reserve"]["compensated"]


def test_cancel_resume_and_interrupt(cli: Cli) -> None:
    proc, running = _start_approval(cli, 2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert f"execution {running} stays in the store" in stderr
    assert "treadle executions resume --import cliflows" in stderr
    assert cli.json("executions", "show", running)["status"] == "suspended"

    missing = cli("executions", "cancel", running)
    assert missing.returncode == 1 and "--import MODULE" in missing.stderr

    view = cli.json("executions", "cancel", running, "--import", "cliflows",
                    "--reason", "changed my mind")
    assert view["status"] == "cancelled"
    assert view["error"]["message"] == "changed my mind"
    kinds = {s["name"]: s for s in view["steps"]}
    assert kinds["reserve"]["compensated"] and kinds["release"]["kind"] == "compensation"
    assert "already ended" in cli.ok("executions", "cancel", running)


def test_resume_after_interrupt(cli: Cli) -> None:
    proc, execution_id = _start_approval(cli, 3)
    # Ctrl-C, unless this process (hence the child) ignores SIGINT, as background jobs do.
    stop = signal.SIGTERM if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else signal.SIGINT
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + stop, stderr
    assert f"interrupted ({stop.name})" in stderr

    not_loaded = cli("executions", "resume", "--timeout", "5")
    assert not_loaded.returncode == 0
    assert "nothing to resume here" in not_loaded.stdout
    assert "no workflow named 'approval'" in not_loaded.stderr

    waiting = cli.json("executions", "resume", "--import", "cliflows", "--timeout", "0.5",
                       "--poll-interval", "0.1")
    assert [(i["id"], i["status"]) for i in waiting["items"]] == [(execution_id, "suspended")]

    cli.ok("executions", "signal", execution_id, "decision",
           "--payload", '{"approved": false, "by": "bob"}')
    out = cli.ok("executions", "resume", "--import", "cliflows", env={"TREADLE_IMPORT": ""})
    assert execution_id in out and "completed" in out
    assert cli.json("executions", "show", execution_id)["output"] == {
        "booking": "booking-3", "approved": False, "by": "bob"}
    assert "nothing to resume here" in cli.ok("executions", "resume", "-i", "cliflows")


# -- prune --------------------------------------------------------------------------------------


def test_prune(cli: Cli) -> None:
    for value in ("1", "2"):
        cli.ok("run", "cliflows:echo", "--input", value)
    kept = cli.json("executions", "prune", "--older-than", "1h")
    assert kept["pruned"] == 0 and kept["finished_before"].endswith("Z")
    assert "pruned 2 executions" in cli.ok("executions", "prune", "--older-than", "0s")
    assert cli.json("executions", "list")["items"] == []


@pytest.mark.parametrize("args", [[], ["--older-than", "soon"]])
def test_prune_needs_an_age(cli: Cli, args: list[str]) -> None:
    out = cli("executions", "prune", *args)
    assert out.returncode == 2 and "--older-than" in out.stderr
