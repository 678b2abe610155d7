"""`treadle executions … --server URL` against a real `treadle serve` subprocess with an API
key, compared with the same commands on the server's SQLite store; and the local `timeline`,
`diff` and `replay` on a SQLite store."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

from acceptance.conftest import Cli

if TYPE_CHECKING:
    import subprocess

T = TypeVar("T")
KEY = "k3y-For-The-Remote-Tests-9f2c"


def poll(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
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


class Served:
    """A `treadle serve` subprocess on the store of `cli`, and an API client to seed it."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] = cli.spawn(
            "serve", "--port", str(port), "--import", "cliflows", "--api-key", KEY)
        self.api = httpx.Client(base_url=self.url, timeout=10.0,
                                headers={"Authorization": f"Bearer {KEY}"})
        poll(self._healthy, "the server to answer /healthz")
        self.ids: dict[str, str] = {}

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

    def view(self, execution_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(f"/api/v1/executions/{execution_id}").json()
        return body

    def reaches(self, execution_id: str, *statuses: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            view = self.view(execution_id)
            return view if view["status"] in statuses else None

        return poll(check, f"execution {execution_id} to be {' or '.join(statuses)}")

    def remote(self, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
        """The CLI with TREADLE_SERVER and TREADLE_API_KEY set (the key left out if None)."""
        env = {"TREADLE_SERVER": self.url, **({"TREADLE_API_KEY": key} if key else {})}
        return self.cli(*args, env=env)

    def ok(self, *args: str) -> str:
        out = self.remote(*args)
        assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def stop(self) -> None:
        self.api.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        assert KEY not in err


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with two completed greets (ann, bob) and a failed pay, started by the API."""
    folder = tmp_path_factory.mktemp("served")
    cli = Cli(folder, f"sqlite:///{folder}/served.db")
    srv = Served(cli)
    try:
        for name, workflow, value in (("ann", "greet", {"name": "ann"}),
                                      ("bob", "greet", {"name": "bob"}),
                                      ("pay", "pay", {"amount": 5})):
            srv.ids[name] = srv.start(workflow, value)
            srv.reaches(srv.ids[name], "completed", "failed")
        yield srv
    finally:
        srv.stop()
        cli.close()


# -- reading: the same output as the local commands on the server's store ----------------------


def test_list_remote_is_the_local_list(served: Served) -> None:
    ids = served.ids
    remote = served.json("executions", "list", "--workflow", "greet", "--status", "completed")
    local = served.cli.json("executions", "list", "--workflow", "greet", "--status", "completed")
    assert all(item.pop("owner") is None for item in remote["items"])  # not in the API
    assert local["items"][0].pop("owner")  # the server's engine, which ran it
    local["items"][1].pop("owner")
    assert remote == local
    assert [i["id"] for i in remote["items"][-2:]] == [ids["bob"], ids["ann"]]
    failed = served.json("executions", "list", "--status", "failed", "--since", "1h")["items"]
    assert [(i["id"], i["workflow"], i["error"]) for i in failed] == [
        (ids["pay"], "pay", "card declined")]

    first = served.json("executions", "list", "--limit", "1", "--workflow", "greet",
                        "--until", "2999-01-01")
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = served.json("executions", "list", "--limit", "1", "--workflow", "greet",
                         "--cursor", first["next_cursor"])
    assert second["items"][0]["id"] != first["items"][0]["id"]

    table = served.ok("executions", "list", "--workflow", "pay")
    assert table.splitlines()[0].split() == [
        "id", "workflow", "version", "status", "created", "duration", "error"]
    assert ids["pay"] in table and "card declined" in table and ids["ann"] not in table


def test_show_and_events_remote_are_the_local_ones(served: Served) -> None:
    ann = served.ids["ann"]
    view = served.json("executions", "show", ann)
    assert view == served.cli.json("executions", "show", ann)
    assert view["output"] == {"greeting": "hello ann", "loud": "HELLO ANN"}
    assert view["metadata"]["trigger"]["type"] == "api"
    assert [(s["name"], s["status"]) for s in view["steps"]] == [
        ("make_greeting", "completed"), ("shout", "completed")]

    table = served.ok("executions", "show", ann)
    assert table.splitlines()[0].split()[:5] == ["execution", ann, "greet", "v1", "completed"]
    assert "make_greeting" in table and "HELLO ANN" in table

    journal = served.json("executions", "events", ann)
    assert journal == served.cli.json("executions", "events", ann)
    assert journal[0]["type"] == "execution.started"
    assert journal[-1]["type"] == "execution.completed"
    assert [e["seq"] for e in journal] == list(range(1, len(journal) + 1))
    assert "execution.completed" in served.ok("executions", "events", ann)


def test_timeline_remote_is_the_local_one(served: Served) -> None:
    ann, pay = served.ids["ann"], served.ids["pay"]
    timeline = served.json("executions", "timeline", ann)
    assert timeline == served.cli.json("executions", "timeline", ann)
    assert timeline["execution_id"] == ann and timeline["pipeline"] == "greet"
    assert timeline["trigger"]["type"] == "api"
    assert [(s["name"], s["status"], s["output"]) for s in timeline["steps"]] == [
        ("make_greeting", "completed", "hello ann"), ("shout", "completed", "HELLO ANN")]

    failed = served.json("executions", "timeline", pay)
    assert failed["status"] == "failed"
    assert [(s["name"], s["status"], s["error"]["type"]) for s in failed["steps"]] == [
        ("charge", "failed", "cliflows.PaymentDeclinedError")]

    table = served.ok("executions", "timeline", pay)
    assert table.splitlines()[0].split()[:4] == ["execution", pay, "pay", "failed"]
    assert "trigger:   api" in table
    assert "charge" in table and "cliflows.PaymentDeclinedError: card declined" in table


def test_diff_remote_is_the_local_one(served: Served) -> None:
    ann, bob = served.ids["ann"], served.ids["bob"]
    diff = served.json("executions", "diff", ann, bob)
    assert diff == served.cli.json("executions", "diff", ann, bob)
    assert diff["input_diff"] == {"name": {"left": "ann", "right": "bob"}}
    assert [(d["step"], d["status"], d["left_output"], d["right_output"])
            for d in diff["step_diffs"]] == [
        ("make_greeting", "output_different", "hello ann", "hello bob"),
        ("shout", "output_different", "HELLO ANN", "HELLO BOB")]
    assert diff["summary"]["steps_identical"] == 0

    table = served.ok("executions", "diff", ann, bob)
    assert 'input:  different: name "ann" → "bob"' in table
    assert "steps:  0 identical, 2 different" in table
    assert "output_different" in table and '"HELLO BOB"' in table

    missing = served.remote("executions", "diff", ann, "no-such-execution")
    assert missing.returncode == 1
    assert "no execution 'no-such-execution'" in missing.stderr


# -- writing ------------------------------------------------------------------------------------


def test_replay_remote(served: Served) -> None:
    ann = served.ids["ann"]
    started = served.json("executions", "replay", ann, "--modifications", '{"name": "zed"}',
                          "--wait")
    assert started["replay_of"] == ann and started["mode"] == "modified"
    assert started["status"] == "completed" and started["id"] != ann
    replayed = served.json("executions", "show", started["id"])
    assert replayed["metadata"]["replay_of"] == ann
    assert replayed["metadata"]["replay_mode"] == "modified"
    assert replayed["output"] == {"greeting": "hello zed", "loud": "HELLO ZED"}

    # step_from: make_greeting returns its recorded output, shout runs live: nothing differs
    quick = served.json("executions", "replay", ann, "--from-step", "shout")
    assert quick["mode"] == "step_from" and quick["replay_of"] == ann
    served.reaches(quick["id"], "completed")
    same = served.json("executions", "diff", ann, quick["id"])
    assert [(d["step"], d["status"]) for d in same["step_diffs"]] == [
        ("make_greeting", "identical"), ("shout", "identical")]

    table = served.ok("executions", "replay", ann, "--wait")
    assert f"replay (exact) of execution {ann}" in table and "HELLO ANN" in table

    bad = served.remote("executions", "replay", ann, "--from-step", "no-such-step")
    assert bad.returncode == 1 and "no step 'no-such-step'" in bad.stderr

    failing = served.remote("executions", "replay", served.ids["pay"], "--wait", "--json")
    assert failing.returncode == 1
    assert json.loads(failing.stdout)["status"] == "failed"


def test_signal_and_cancel_remote(served: Served) -> None:
    waiting = served.start("approval", {"id": 1})
    served.reaches(waiting, "suspended")
    sent = served.json("executions", "signal", waiting, "decision",
                       "--payload", '{"approved": true, "by": "ann"}')
    assert sent == {"id": waiting, "signal": "decision",
                    "payload": {"approved": True, "by": "ann"}, "sent": True}
    assert served.reaches(waiting, "completed")["output"] == {
        "booking": "booking-1", "approved": True, "by": "ann"}
    ended = served.remote("executions", "signal", waiting, "decision")
    assert ended.returncode == 1 and f"execution {waiting} is completed" in ended.stderr

    doomed = served.start("approval", {"id": 2})
    served.reaches(doomed, "suspended")
    view = served.json("executions", "cancel", doomed, "--reason", "from afar")
    assert view["cancel"] in ("cancelled", "requested")
    final = served.reaches(doomed, "cancelled")
    assert final["error"]["message"] == "from afar"
    assert {s["name"]: s for s in final["steps"]}["reserve"].get("compensated") is True
    again = served.ok("executions", "cancel", doomed)
    assert f"execution {doomed} had already ended: cancelled" in again


# -- failures -------------------------------------------------------------------------------------


def test_a_wrong_or_missing_key_exits_1_without_echoing_it(served: Served) -> None:
    wrong = "wrong-Key-7e1d5b"
    for out in (served.remote("executions", "list", key=wrong),
                served.cli("executions", "show", served.ids["ann"], "--server", served.url,
                           "--api-key", wrong)):
        assert out.returncode == 1 and out.stdout == ""
        assert "the API key is not valid" in out.stderr and "401" in out.stderr
        assert wrong not in out.stderr
    missing = served.remote("executions", "timeline", served.ids["ann"], key=None)
    assert missing.returncode == 1 and "--api-key or TREADLE_API_KEY" in missing.stderr

    helped = served.cli("executions", "replay", "--help", env={"TREADLE_API_KEY": wrong})
    assert helped.returncode == 0
    assert "TREADLE_API_KEY" in helped.stdout and wrong not in helped.stdout


def test_server_errors_print_their_message(served: Served) -> None:
    out = served.remote("executions", "show", "no-such-execution")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: no execution 'no-such-execution' [404 execution_not_found]")


def test_an_unreachable_server_exits_1_naming_it(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["executions", "list", "--server", url],
                 ["executions", "cancel", "some-id", "--server", url, "--api-key", KEY]):
        out = cli(*args)
        assert out.returncode == 1, out.stderr
        assert f"cannot connect to the server at {url}" in out.stderr
        assert KEY not in out.stderr
    bad = cli("executions", "list", "--server", "ftp://example.org")
    assert bad.returncode == 2 and "--server" in bad.stderr


# -- timeline, diff and replay on a local store ---------------------------------------------------


def test_local_timeline_diff_and_replay(cli: Cli) -> None:
    ann = cli.json("run", "cliflows:greet", "--input", '{"name": "ann"}')["id"]
    timeline = cli.json("executions", "timeline", ann)
    assert timeline["execution_id"] == ann and timeline["status"] == "completed"
    assert timeline["trigger"] == {"type": "manual"}
    assert [(s["name"], s["type"], s["status"], s["input"]) for s in timeline["steps"]] == [
        ("make_greeting", "step", "completed", "ann"),
        ("shout", "step", "completed", "hello ann")]
    assert "make_greeting" in cli.ok("executions", "timeline", ann)

    not_loaded = cli("executions", "replay", ann)
    assert not_loaded.returncode == 1 and "--import MODULE" in not_loaded.stderr

    started = cli.json("executions", "replay", ann, "--import", "cliflows",
                       "--mode", "modified", "--modifications", '{"name": "eve"}')
    assert started == {"id": started["id"], "execution_id": started["id"], "workflow": "greet",
                       "status": "completed", "created": True, "replay_of": ann,
                       "mode": "modified"}
    replayed = cli.json("executions", "show", started["id"])
    assert replayed["metadata"]["replay_of"] == ann
    assert replayed["output"]["loud"] == "HELLO EVE"

    diff = cli.json("executions", "diff", ann, started["id"])
    assert diff["left"] == ann and diff["right"] == started["id"]
    assert diff["summary"]["input_identical"] is False
    assert [d["status"] for d in diff["step_diffs"]] == ["output_different"] * 2
    table = cli.ok("executions", "diff", ann, started["id"])
    assert "HELLO EVE" in table and "output_different" in table

    again = cli.ok("executions", "replay", ann, "-i", "cliflows", "--from-step", "shout")
    new_id = again.split("execution ")[2].split()[0]
    assert cli.json("executions", "diff", ann, new_id)["summary"]["steps_identical"] == 2


def test_local_replay_of_a_failure_exits_1(cli: Cli) -> None:
    failed = cli("run", "cliflows:pay", "--input", '{"amount": 5}', "--json")
    original = json.loads(failed.stdout)["id"]
    out = cli("executions", "replay", original, "--import", "cliflows", "--json")
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert result["status"] == "failed" and result["replay_of"] == original
    timeline = cli.json("executions", "timeline", result["id"])
    assert [(s["name"], s["status"]) for s in timeline["steps"]] == [("charge", "failed")]


@pytest.mark.parametrize(("args", "option"), [
    (["--mode", "step_from"], "--from-step"),
    (["--modifications", "[1]"], "--modifications"),
    (["--modifications", "{}", "--from-step", "x"], "--modifications"),
    (["--mode", "exact", "--from-step", "shout"], "--from-step"),
])
def test_replay_usage_errors(cli: Cli, args: list[str], option: str) -> None:
    out = cli("executions", "replay", "some-id", *args)
    assert out.returncode == 2 and option in out.stderr, out.stderr


def test_local_unknown_execution(cli: Cli) -> None:
    for args in (["timeline", "nope"], ["diff", "nope", "nada"]):
        out = cli("executions", *args)
        assert out.returncode == 1
        assert "no execution nope" in out.stderr
