"""httpserver.modular and chimux.router: modular's server and Chi router, configured from the
top-level `httpserver:` / `chimux:` sections with modular's keys and defaults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipekit import running_app
from treadle.apps import AppRuntime
from treadle.config.validate import validate_report
from treadle.modules import BuildContext
from treadle.modules.registry import GO_ONLY_TYPES, default_registry
from treadle.modules.web import HTTPRequest

APP = """
modules:
  - {name: server, type: httpserver.modular}
  - {name: router, type: chimux.router}
  - {name: hello, type: http.handler}
workflows:
  http:
    routes:
      - {method: GET, path: /hello, handler: hello}
httpserver:
  host: 127.0.0.1
  port: 8095
  write_timeout: 5s
chimux:
  allowed_origins: ["https://app.example"]
  allow_credentials: true
"""


def build(name: str, config: dict[str, object], **sections: object) -> object:
    spec = default_registry.get(name)
    return spec.factory("m", config, BuildContext(sections=sections))


def test_they_are_supported_now() -> None:
    assert {"httpserver.modular", "chimux.router"}.isdisjoint(GO_ONLY_TYPES)


def test_the_server_takes_modulars_keys_and_defaults() -> None:
    server = build("httpserver.modular", {})
    assert (server.host, server.port) == ("0.0.0.0", 8080)  # type: ignore[attr-defined]
    assert server.write_timeout == 15  # type: ignore[attr-defined]
    server = build("httpserver.modular", {"port": 9001},
                   httpserver={"host": "::1", "port": 8090, "write_timeout": "2s"})
    assert (server.host, server.port) == ("::1", 9001)  # type: ignore[attr-defined]
    assert server.write_timeout == 2  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="tls is not supported"):
        build("httpserver.modular", {}, httpserver={"tls": {"enabled": True}})
    with pytest.raises(ValueError, match="port"):
        build("httpserver.modular", {}, httpserver={"port": "8090"})


def test_the_router_refuses_basepath() -> None:
    with pytest.raises(ValueError, match="basepath is not supported"):
        build("chimux.router", {}, chimux={"basepath": "/api"})


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[AppRuntime]:
    async with running_app(tmp_path, APP) as runtime:
        yield runtime


async def test_a_modular_app_serves_with_chimux_cors(app: AppRuntime) -> None:
    assert app.address == ("127.0.0.1", 8095)
    assert app.response_timeout == 5
    hello = await app.handle(HTTPRequest("GET", "/hello", "/hello",
                                         headers={"origin": "https://app.example"}))
    assert hello.status == 200
    assert hello.get_header("Access-Control-Allow-Origin") == "https://app.example"
    assert hello.get_header("Access-Control-Allow-Credentials") == "true"
    assert hello.get_header("Access-Control-Max-Age") == "300"
    other = await app.handle(HTTPRequest("GET", "/hello", "/hello",
                                         headers={"origin": "https://evil.example"}))
    assert other.status == 200 and other.get_header("Access-Control-Allow-Origin") is None
    preflight = await app.handle(HTTPRequest("OPTIONS", "/anything", "/anything",
                                             headers={"origin": "https://app.example"}))
    assert preflight.status == 204  # before routing, as modular's corsMiddleware


def test_unknown_section_keys_and_unread_sections_are_warnings(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(APP.replace("  port: 8095\n", "  port: 8095\n  address: ':9000'\n"))
    report = validate_report(path)
    assert report.errors == []
    [warning] = report.warnings
    assert (warning.key, warning.line) == ("httpserver.address", 13)
    assert "unknown key 'address' for httpserver.modular" in warning.message
    path.write_text(APP.replace("type: chimux.router", "type: http.router"))
    report = validate_report(path)
    assert report.errors == []
    assert [(w.key, "no chimux.router module reads it" in w.message)
            for w in report.warnings] == [("chimux", True)]
