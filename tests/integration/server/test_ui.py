"""The web UI: served by the control plane at `/ui/`, static, safe, and calling only routes
the OpenAPI document has."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

import treadle
from treadle.server import create_app

from .conftest import Server, start_server

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
