"""`treadle dlq …` and `treadle breakpoints …` as a subprocess: on a SQLite store, and with
`--server` against a real `treadle serve` with an API key (the same JSON as the local commands
on the server's store).

The workflows live in `opsflows.py`, written next to the store: `webhook` keeps its failures
in a dead-letter queue (its step fails until a `routes.ok` file exists: the "fix" before a
replay), `checkout` prices an order, then charges it.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

from acceptance.conftest import Cli

if TYPE_CHECKING:
    import subprocess

T = TypeVar("T")
KEY = "k3y-For-The-Dlq-Tests-51ab"

MODULE = '''
from pathlib import Path

import treadle


@treadle.step
async def deliver(event: dict) -> dict:
    if not Path("routes.ok").exists():
        raise ConnectionError(f"no route to {event['to']}")
    return {"delivered": event["to"]}


@treadle.workflow(name="webhook", dead_letter=True)
async def webhook(ctx: treadle.Context, event: dict) -> dict:
    return await deliver(event)


@treadle.workflow(name="brief", dead_letter=treadle.DeadLetter(retention=0.2))
async def brief(ctx: treadle.Context, event: dict) -> dict:
    return await deliver(event)


@treadle.step
async def price(order: dict) -> dict:
    return {"total": order["qty"] * 25}


@treadle.step
async def charge(total: int) -> dict:
    return {"charged": total}


@treadle.workflow(name="checkout")
async def checkout(ctx: treadle.Context, order: dict) -> dict:
    quote = await price(order)
    return await charge(quote["total"])
'''
CONDITION = "steps.price.total > 100"


def poll(check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def failed(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    out = cli(*args)
    assert out.returncode == 1, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Cli]:
    (tmp_path / "opsflows.py").write_text(MODULE)
    runner = Cli(tmp_path, f"sqlite:///{tmp_path}/ops.db")
    yield runner
    runner.close()


# -- dead letters on a store ------------------------------------------------------------------


def test_local_dead_letters(local: Cli) -> None:
    ids = []
    for n in (1, 2, 3):
        out = failed(local, "run", "opsflows:webhook", "--input",
                     json.dumps({"to": f"host-{n}"}), "--json")
        ids.append(json.loads(out.stdout)["id"])

    page = local.json("dlq", "list", "webhook")
    assert (page["pipeline"], page["depth"], page["alerting"]) == ("webhook", 3, False)
    assert [m["id"] for m in page["messages"]] == ids[::-1]
    first = page["messages"][-1]
    assert first["workflow"] == "webhook" and first["failed_step"] == "deliver"
    assert first["input"] == first["trigger_data"] == [{"to": "host-1"}]
    assert first["error"]["message"] == "no route to host-1" and first["replayable"]
    assert local.json("dlq", "show", "webhook", ids[0]) == first

    one = local.json("dlq", "list", "webhook", "--limit", "2")
    assert [m["id"] for m in one["messages"]] == ids[:0:-1] and one["next_cursor"]
    rest = local.json("dlq", "list", "webhook", "--limit", "2", "--cursor", one["next_cursor"])
    assert [m["id"] for m in rest["messages"]] == ids[:1] and rest["next_cursor"] is None
    table = local.ok("dlq", "list", "webhook")
    assert table.splitlines()[0] == "webhook: 3 dead letters"
    assert table.splitlines()[2].split() == ["id", "failed", "at", "failed", "step", "error",
                                             "input"]
    assert all(i in table for i in ids) and "ConnectionError: no route to host-2" in table

    # a replay runs here: without the workflow's module it cannot, and the letter stays
    out = failed(local, "dlq", "replay", "webhook", ids[2])
    assert "workflow 'webhook' is not loaded: pass --import MODULE" in out.stderr
    # still broken: the replay fails, and lands as a new letter in place of the first
    out = failed(local, "dlq", "replay", "webhook", ids[2], "--import", "opsflows")
    again = out.stdout.split("execution ")[1].split()[0]
    assert out.stdout.startswith(f"replay of dead letter {ids[2]}: execution {again}")
    assert "failed" in out.stdout and "error: ConnectionError: no route to host-3" in out.stderr

    assert local.json("dlq", "discard", "webhook", ids[1]) == {
        "id": ids[1], "pipeline": "webhook", "discarded": True}
    gone = failed(local, "dlq", "replay", "webhook", ids[1], "-i", "opsflows")
    assert gone.stderr == f"error: no dead letter '{ids[1]}' of webhook\n"

    (local.cwd / "routes.ok").touch()  # the fix
    result = local.json("dlq", "replay-all", "webhook", "--import", "opsflows")
    assert result["pipeline"] == "webhook" and result["count"] == 2
    assert [(r["replay_of"], r["status"]) for r in result["replayed"]] == [
        (ids[0], "completed"), (again, "completed")]  # oldest first
    replayed = local.json("executions", "show", result["replayed"][0]["id"])
    assert replayed["metadata"]["dlq_of"] == ids[0]
    assert replayed["output"] == {"delivered": "host-1"}
    assert local.ok("dlq", "list", "webhook") == "webhook: 0 dead letters\n"


def test_local_prune_drops_letters_past_their_retention(local: Cli) -> None:
    failed(local, "run", "opsflows:brief", "--input", '{"to": "x"}')
    # 0.2 s of retention: listings hide the letter once it has expired, prune deletes it
    poll(lambda: local.json("dlq", "list", "brief")["depth"] == 0, "the letter to expire")
    assert local.ok("dlq", "prune") == "pruned 1 dead letter past their retention\n"


# -- breakpoints on a store -----------------------------------------------------------------------


def test_local_breakpoints(local: Cli) -> None:
    bp = local.json("breakpoints", "set", "checkout", "charge", "--condition", CONDITION,
                    "--ttl", "30m", "--import", "opsflows")
    assert (bp["pipeline"], bp["workflow"], bp["step"], bp["condition"], bp["action"]) == (
        "checkout", "checkout", "charge", CONDITION, "pause")

    # a `treadle run` holds the execution while it waits: it carries on when told to
    proc = local.spawn("run", "opsflows:checkout", "--input", '{"qty": 10}', "--json",
                       "--poll-interval", "0.1")
    ex = local.wait_for(lambda e: e["status"] == "suspended", workflow="checkout")["id"]
    paused = local.json("breakpoints", "inspect", ex)
    assert paused == {"execution_id": ex, "paused": True, "step": "charge", "position": 1,
                      "input": [250], "breakpoint_id": bp["id"], "condition": CONDITION,
                      "steps": {"price": {"total": 250}}}
    table = local.ok("breakpoints", "inspect", ex)
    assert f"execution {ex} paused before step 'charge' (position 1)" in table
    assert "input:      [250]" in table and 'price  {"total":250}' in table
    assert [b["id"] for b in local.json("breakpoints", "list", "checkout")["breakpoints"]] == [
        bp["id"]]  # `checkout` names the code workflow here: it has a breakpoint and has run

    decided = local.json("breakpoints", "resume", ex, "--input", "[200]")
    assert decided == {"execution_id": ex, "action": "resume", "step": "charge",
                       "position": 1, "held": True}
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["output"] == {"charged": 200}
    out = failed(local, "breakpoints", "resume", ex)
    assert f"execution {ex} is not paused at a breakpoint" in out.stderr

    # nobody holds it: the decision waits in its inbox until a process resumes it
    proc = local.spawn("run", "opsflows:checkout", "--input", '{"qty": 8}')
    left = local.wait_for(lambda e: e["status"] == "suspended" and e["id"] != ex,
                          workflow="checkout")["id"]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    skipped = local.ok("breakpoints", "skip", left, "--output", '{"charged": 0}')
    assert f"skipped step 'charge' (position 1) of execution {left}" in skipped
    assert "no process runs this execution now: the decision waits in its inbox" in skipped
    resumed = local.json("executions", "resume", left, "--import", "opsflows")["items"]
    assert [(e["status"], e["output"]) for e in resumed] == [("completed", {"charged": 0})]

    removed = local.ok("breakpoints", "remove", "checkout", bp["id"])
    assert removed.startswith(f"removed breakpoint {bp['id']} from checkout")
    assert local.ok("breakpoints", "list", "checkout") == "no breakpoints on checkout\n"
    out = failed(local, "breakpoints", "remove", "checkout", bp["id"])
    assert f"no breakpoint '{bp['id']}' on checkout" in out.stderr


def test_local_breakpoint_errors(local: Cli) -> None:
    out = failed(local, "breakpoints", "abort", "nope")
    assert out.stderr == "error: no execution 'nope'\n"
    bad = local("breakpoints", "set", "checkout", "charge", "--condition", "steps.price >")
    assert bad.returncode == 2 and "--condition" in bad.stderr
    bad = local("breakpoints", "set", "checkout", "charge", "--ttl", "soon")
    assert bad.returncode == 2 and "--ttl" in bad.stderr
    # unknown here (not loaded, never run): the name is taken for a YAML pipeline's, and said so
    guessed = local("breakpoints", "set", "checkout", "charge", "--json")
    assert guessed.returncode == 0 and json.loads(guessed.stdout)["workflow"] == (
        "pipeline:checkout")
    assert "note: no workflow 'checkout' is loaded or known to this store" in guessed.stderr


def _audit_log(store_url: str) -> list[dict[str, Any]]:
    """The store's audit entries, newest first (as `GET /api/v1/audit` reads them)."""
    import asyncio

    from treadle.stores import RecordQuery, open_store

    async def read() -> list[dict[str, Any]]:
        store = open_store(store_url)
        await store.open()
        try:
            page = await store.list_records(RecordQuery("audit", limit=1000))
            return [dict(r.data) for r in page.items]
        finally:
            await store.close()

    return asyncio.run(read())


def test_local_decisions_are_audited(local: Cli) -> None:
    """Decisions taken on the store leave the same audit entries as the server's routes, with
    the operating-system user as the actor."""
    bp = local.json("breakpoints", "set", "checkout", "charge", "--import", "opsflows")
    proc = local.spawn("run", "opsflows:checkout", "--input", '{"qty": 1}', "--json",
                       "--poll-interval", "0.1")
    paused = local.wait_for(lambda e: e["status"] == "suspended", workflow="checkout")["id"]
    local.json("breakpoints", "skip", paused, "--output", '{"charged": 0}')
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    local.ok("breakpoints", "remove", "checkout", bp["id"])
    replayed = local.json("executions", "replay", paused, "--import", "opsflows")["id"]
    letter = json.loads(failed(local, "run", "opsflows:webhook", "--input", '{"to": "x"}',
                               "--json").stdout)["id"]
    local.ok("dlq", "discard", "webhook", letter)

    log = _audit_log(local.store)
    assert [(e["action"], e["target"]) for e in log][::-1] == [
        ("breakpoint.set", f"breakpoint:{bp['id']}"),
        ("breakpoint.skip", f"execution:{paused}"),
        ("breakpoint.remove", f"breakpoint:{bp['id']}"),
        ("execution.replay", f"execution:{paused}"),
        ("dlq.discard", f"execution:{letter}")]
    assert log[1]["details"]["new_execution"] == replayed
    assert {e["actor"]["kind"] for e in log} == {"cli"}
    assert all("@" in e["actor"]["id"] for e in log)


# -- on a server ---------------------------------------------------------------------------------


class Served:
    """`treadle serve --import opsflows --api-key KEY` on the store of `cli` (`what` replaces
    `--import opsflows`, e.g. with a YAML application's path)."""

    def __init__(self, cli: Cli, *options: str,
                 what: tuple[str, ...] = ("--import", "opsflows")) -> None:
        self.cli = cli
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = cli.spawn("serve", *what, "--port", str(port), "--api-key", KEY, *options)
        self.api = httpx.Client(base_url=self.url, timeout=10.0,
                                headers={"Authorization": f"Bearer {KEY}"})
        poll(self._healthy, "the server to answer /healthz")

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, self.proc.communicate()
        try:
            return self.api.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def start(self, workflow: str, value: Any) -> str:
        response = self.api.post("/api/v1/executions", json={"workflow": workflow,
                                                             "input": value})
        assert response.status_code == 201, response.text
        execution_id: str = response.json()["id"]
        return execution_id

    def reaches(self, execution_id: str, *statuses: str,
                timeout: float = 20.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            view: dict[str, Any] = self.api.get(f"/api/v1/executions/{execution_id}").json()
            return view if view["status"] in statuses else None

        return poll(check, f"execution {execution_id} to be {' or '.join(statuses)}", timeout)

    def paused(self, execution_id: str) -> None:
        poll(lambda: self.api.get(f"/api/v1/executions/{execution_id}/breakpoint").json()[
            "paused"], f"execution {execution_id} to pause")

    def remote(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli(*args, env={"TREADLE_SERVER": self.url, "TREADLE_API_KEY": KEY})

    def ok(self, *args: str) -> str:
        out = self.remote(*args)
        assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def stop(self) -> str:
        """SIGTERM (unless it is gone already); its stderr, which never holds the key."""
        self.api.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        assert KEY not in err
        return err


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("ops")
    (folder / "opsflows.py").write_text(MODULE)
    cli = Cli(folder, f"sqlite:///{folder}/ops.db")
    srv = Served(cli)
    try:
        yield srv
    finally:
        srv.stop()
        cli.close()


def test_remote_dead_letters(served: Served) -> None:
    ids = [served.start("webhook", {"to": f"far-{n}"}) for n in (1, 2)]
    for execution_id in ids:
        served.reaches(execution_id, "failed")

    page = served.json("dlq", "list", "webhook")
    assert page == served.cli.json("dlq", "list", "webhook", "--import", "opsflows")
    assert page["depth"] == 2 and [m["id"] for m in page["messages"]] == ids[::-1]
    assert page["messages"][1]["trigger_data"] == [{"to": "far-1"}]
    letter = served.json("dlq", "show", "webhook", ids[0])
    assert letter == served.cli.json("dlq", "show", "webhook", ids[0]) == page["messages"][1]
    table = served.ok("dlq", "show", "webhook", ids[0])
    assert table.startswith(f"dead letter {ids[0]}  webhook\n")
    assert "error:       ConnectionError: no route to far-1" in table

    out = served.remote("dlq", "replay", "webhook", ids[0], "--wait", "--json")
    assert out.returncode == 1  # still broken: failed again
    again = json.loads(out.stdout)
    assert again["replay_of"] == ids[0] and again["status"] == "failed"

    assert served.json("dlq", "discard", "webhook", ids[1])["discarded"] is True
    gone = served.remote("dlq", "show", "webhook", ids[1])
    assert gone.returncode == 1
    assert f"no dead letter '{ids[1]}' [404" in gone.stderr

    (served.cli.cwd / "routes.ok").touch()
    try:
        result = served.json("dlq", "replay-all", "webhook", "--wait")
    finally:
        (served.cli.cwd / "routes.ok").unlink()
    assert [(r["replay_of"], r["status"]) for r in result["replayed"]] == [
        (again["id"], "completed")]
    assert served.ok("dlq", "list", "webhook") == "webhook: 0 dead letters\n"


def test_remote_breakpoints(served: Served) -> None:
    bp = served.json("breakpoints", "set", "checkout", "charge", "--condition", CONDITION,
                     "--ttl", "30m")
    assert (bp["workflow"], bp["step"], bp["condition"]) == ("checkout", "charge", CONDITION)
    listed = served.json("breakpoints", "list", "checkout")["breakpoints"]
    assert [(b["id"], b["pipeline"], b["expires_at"]) for b in listed] == [
        (bp["id"], "checkout", bp["expires_at"])]

    big = served.start("checkout", {"qty": 10})
    served.paused(big)
    paused = served.json("breakpoints", "inspect", big)
    assert paused == served.cli.json("breakpoints", "inspect", big)
    assert (paused["step"], paused["input"], paused["steps"]) == (
        "charge", [250], {"price": {"total": 250}})
    resumed = served.ok("breakpoints", "resume", big, "--input", "[200]")
    assert resumed == (f"resumed execution {big} at step 'charge' (position 1) "
                       "with input [200]\n")
    assert served.reaches(big, "completed")["output"] == {"charged": 200}
    late = served.remote("breakpoints", "resume", big)
    assert late.returncode == 1
    assert f"execution {big} is not paused at a breakpoint [409 not_paused]" in late.stderr

    # decided on the server's store: the server, which holds the execution, carries on
    skipped = served.start("checkout", {"qty": 6})
    served.paused(skipped)
    assert served.cli.json("breakpoints", "skip", skipped, "--output", '{"charged": 1}') == {
        "execution_id": skipped, "action": "skip", "step": "charge", "position": 1,
        "held": True}
    assert served.reaches(skipped, "completed")["output"] == {"charged": 1}

    aborted = served.start("checkout", {"qty": 5})
    served.paused(aborted)
    assert served.json("breakpoints", "abort", aborted, "--reason", "too big") == {
        "execution_id": aborted, "action": "abort", "step": "charge", "position": 1}
    assert served.reaches(aborted, "cancelled")["error"]["message"] == "too big"

    served.ok("breakpoints", "remove", "checkout", bp["id"])
    assert served.cli.json("breakpoints", "list", "checkout") == {"breakpoints": []}
    missing = served.remote("breakpoints", "inspect", "nope")
    assert missing.returncode == 1
    assert missing.stderr == "error: no execution 'nope' [404 execution_not_found]\n"


def test_a_paused_execution_survives_a_killed_server(local: Cli) -> None:
    """A server holding an execution paused at a breakpoint is SIGKILLed; a new `treadle
    serve` process on the same store shows it paused, takes the operator's decision over HTTP
    and finishes it (the steps before the breakpoint are not run again)."""
    # restarted within the lease: the new server takes the execution over once it expires
    first = Served(local, "--lease", "4")
    try:
        bp = first.api.post("/api/v1/pipelines/checkout/breakpoints", json={"step": "charge"})
        assert bp.status_code == 201, bp.text
        execution = first.start("checkout", {"qty": 2})
        first.paused(execution)
    finally:
        first.proc.kill()  # SIGKILL: no shutdown, the lease is left to expire
        first.proc.communicate(timeout=30)
        first.api.close()
    second = Served(local, "--lease", "4")
    try:
        second.paused(execution)
        hit = second.api.get(f"/api/v1/executions/{execution}/breakpoint").json()
        assert (hit["step"], hit["input"], hit["steps"]) == ("charge", [50],
                                                             {"price": {"total": 50}})
        decided = second.api.post(f"/api/v1/executions/{execution}/breakpoint/resume",
                                  json={"input": [40]})
        assert decided.status_code == 202, decided.text
        assert second.reaches(execution, "completed")["output"] == {"charged": 40}
        events = second.api.get(f"/api/v1/executions/{execution}/events",
                                params={"limit": 1000}).json()["items"]
        kinds = [(e["type"], e["data"].get("step_name")) for e in events]
        assert kinds.count(("step.started", "price")) == 1  # recorded, not run again
        assert [k for k, _ in kinds].count("breakpoint.hit") == 1
        audit = second.api.get("/api/v1/audit", params={"action": "breakpoint.resume"}).json()
        assert [e["target"] for e in audit["items"]] == [f"execution:{execution}"]
    finally:
        second.stop()
