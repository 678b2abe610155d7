"""The web UI: served by the control plane at `/ui/`, static, safe, and calling only routes
the OpenAPI document has."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

import treadle
from treadle.server import create_app

from .conftest import Server, finished, start, start_server, wait_for
from .workflows import REGISTRY

KEY = "ui-test-key-0123456789"
SCRIPT = resources.files("treadle.server").joinpath("ui", "app.js").read_text()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("ui")
    server = start_server(treadle.Engine(f"sqlite:///{folder}/ui.db"), api_keys=[KEY])
    try:
        yield server
    finally:
        server.stop()


def test_the_page_and_its_assets_need_no_credentials(secured: Server) -> None:
    with secured.client() as client:
        assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
        page = client.get("/ui/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script src="/ui/app.js" defer></script>' in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        script = client.get("/ui/app.js")
        assert script.status_code == 200 and script.text == SCRIPT
        assert script.headers["content-type"].startswith("text/javascript")
        assert client.get("/ui/app.css").headers["content-type"].startswith("text/css")
        assert client.get("/ui/../app.py").status_code == 404
        assert client.get("/ui/secrets.json").status_code == 404
        assert client.get("/api/v1/executions").status_code == 401  # the data is not open


def test_the_ui_is_not_part_of_the_api_document() -> None:
    paths = create_app(treadle.Engine()).openapi()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]


def test_the_script_calls_only_documented_routes() -> None:
    paths = list(create_app(treadle.Engine()).openapi()["paths"])
    literals = set(re.findall(r'"(/[a-z][a-z/_-]*)"', SCRIPT))
    api = {lit for lit in literals if not lit.startswith(("/api/v1", "/ui"))}
    assert {"/executions", "/timeline", "/breakpoint/resume", "/dlq/pipelines/",
            "/dashboard/metrics", "/auth/me", "/executions/diff", "/replay-all"} <= api
    for literal in api:
        assert any(literal.rstrip("/") in path for path in paths), literal


def test_the_script_never_writes_html() -> None:
    """API values go in as text: no innerHTML and friends, no eval."""
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in SCRIPT, sink


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_script_parses() -> None:
    path = resources.files("treadle.server").joinpath("ui", "app.js")
    with resources.as_file(path) as file:
        checked = subprocess.run(["node", "--check", str(file)], capture_output=True, text=True,
                                 timeout=30)
    assert checked.returncode == 0, checked.stderr


# -- the script against a real server (node, with a minimal DOM: ui_harness.js) --------------

HARNESS = Path(__file__).with_name("ui_harness.js")


def page(server: Server, hash_: str, expect: str, button: str | None = None) -> str:
    """The view's text once it shows `expect` (after clicking `button`, if given)."""
    path = resources.files("treadle.server").joinpath("ui", "app.js")
    with resources.as_file(path) as script:
        done = subprocess.run(["node", str(HARNESS), str(script), server.url, KEY, hash_, expect,
                               *([button] if button else [])],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    shown = json.loads(done.stdout)
    assert shown["toast"] == "", shown["toast"]  # no error was reported
    text: str = shown["text"]
    return text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("ui-app")
    server = start_server(treadle.Engine(f"sqlite:///{folder}/ui.db", registry=REGISTRY),
                          api_keys=[KEY])
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_pages_show_and_act_on_real_executions(served: Server) -> None:
    with served.client(Authorization=f"Bearer {KEY}") as client:
        ann = start(client, "greet", "ann")
        finished(client, ann)
        listing = page(served, "#/executions", ann)
        assert "greet" in listing and "completed" in listing
        timeline = page(served, f"#/execution/{ann}", "hello")
        assert "completed" in timeline and '"greeting": "hello ann"' in timeline

        bp = client.post("/api/v1/pipelines/greet/breakpoints", json={"step": "hello"})
        assert bp.status_code == 201
        bob = start(client, "greet", "bob")
        wait_for(lambda: client.get(f"/api/v1/executions/{bob}/breakpoint").json()["paused"],
                 10, "bob to pause")
        paused = page(served, f"#/execution/{bob}", "Paused before step hello", "Resume")
        assert '"bob"' in paused  # the step's input, shown for editing
        assert finished(client, bob)["output"] == {"greeting": "hello bob"}
        client.delete(f"/api/v1/pipelines/greet/breakpoints/{bp.json()['id']}")

        compared = page(served, f"#/diff?left={ann}&right={bob}", "output_different")
        assert "hello bob" in compared
        board = page(served, "#/dashboard?pipeline=greet", "executions ·")
        assert "2 executions" in board
        audit = client.get("/api/v1/audit", params={"action": "breakpoint.resume"}).json()
        assert [e["target"] for e in audit["items"]] == [f"execution:{bob}"]
