"""http.simple_proxy, reverseproxy and http.proxy against real backends on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import treadle
from pipekit import running_app
from treadle.apps import AppRuntime, asgi_app, build_app
from treadle.config.validate import validate_report
from treadle.errors import ConfigError
from treadle.modules import BuildContext
from treadle.modules.proxy import chi_pattern
from treadle.modules.registry import GO_ONLY_TYPES, default_registry
from treadle.modules.web import HTTPRequest, HTTPResponse


class Backend:
    """A raw ASGI app echoing what it received as JSON, with a few special paths."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = asyncio.Event()
        self.url = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        status, headers = 200, [(b"content-type", b"application/json"),
                                (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"),
                                (b"keep-alive", b"timeout=5"), (b"x-backend", self.name.encode())]
        if path.endswith("/slow"):
            await self.release.wait()
        if "/status/" in path:
            status = int(path.rsplit("/", 1)[1])
            out = b"teapot"
            headers = [(b"content-type", b"text/plain")]
        elif path.endswith("/gzip"):
            out = gzip.compress(b"zipped " * 10)
            headers = [(b"content-type", b"text/plain"), (b"content-encoding", b"gzip")]
        elif path.endswith("/big"):
            out = b"x" * 5000
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"5000")]
        else:
            out = json.dumps({
                "backend": self.name, "method": scope["method"],
                "raw_path": scope["raw_path"].decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": [[k.decode("latin-1"), v.decode("latin-1")]
                            for k, v in scope["headers"]],
                "body": body.decode()}).encode()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, port: int = 0, lifespan: str = "off") -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, interface="asgi3",
                            timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:  # a condition, polled until uvicorn is listening
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, Backend]]:
    found = {name: Backend(name) for name in ("users", "orders", "web")}
    async with contextlib.AsyncExitStack() as stack:
        for backend in found.values():
            backend.url = await stack.enter_async_context(serve_asgi(backend))
        yield found
        for backend in found.values():
            backend.release.set()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def app_from(tmp_path: Path, text: str) -> AsyncIterator[AppRuntime]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    report = validate_report(path)
    assert report.errors == [], [str(e) for e in report.errors]
    async with running_app(tmp_path, text, "gateway.yaml") as runtime:
        yield runtime


def req(method: str, target: str, body: bytes = b"", **headers: str) -> HTTPRequest:
    path, _, query = target.partition("?")
    return HTTPRequest(method, path, path, query_string=query, body=body,
                       headers={k.replace("_", "-").lower(): v for k, v in headers.items()},
                       client="10.0.0.9")  # fmt: skip


def echo(response: HTTPResponse) -> dict[str, Any]:
    assert response.status == 200, response.body
    data: dict[str, Any] = json.loads(response.body)
    data["headers"] = {k: v for k, v in data["headers"]}
    return data


def simple_app(b: dict[str, Backend], extra: str = "") -> str:
    return f"""
modules:
  - name: server
    type: http.server
  - name: router
    type: http.router
  - name: proxy
    type: http.simple_proxy
    config:
      targets:
        /api: "{b['web'].url}"
        /api/users: "{b['users'].url}"
        /api/orders: "{b['orders'].url}/v2"
        /down: "http://127.0.0.1:{closed_port()}"
{extra}
workflows:
  http:
    router: router
    server: server
    routes:
      - {{method: GET, path: "/api/{{rest...}}", handler: proxy}}
      - {{method: POST, path: "/api/{{rest...}}", handler: proxy}}
      - {{method: GET, path: "/down/{{rest...}}", handler: proxy}}
      - {{method: GET, path: "/other", handler: proxy}}
"""


# -- http.simple_proxy ----------------------------------------------------------------------


async def test_simple_proxy_routes_by_the_longest_prefix(tmp_path: Path,
                                                         backends: dict[str, Backend]) -> None:
    async with app_from(tmp_path, simple_app(backends)) as app:
        assert echo(await app.handle(req("GET", "/api/users/7")))["backend"] == "users"
        assert echo(await app.handle(req("GET", "/api/ordersx")))["backend"] == "orders"
        got = echo(await app.handle(req("GET", "/api/products?q=1")))
        assert (got["backend"], got["raw_path"], got["query"]) == ("web", "/api/products", "q=1")
        # the backend URL's path comes first (Go's NewSingleHostReverseProxy)
        assert echo(await app.handle(req("GET", "/api/orders/1")))["raw_path"] == "/v2/api/orders/1"
        missing = await app.handle(req("GET", "/other"))
        assert (missing.status, missing.body) == (502, b"no backend configured for path\n")


async def test_simple_proxy_forwards_method_body_and_headers(tmp_path: Path,
                                                             backends: dict[str, Backend]) -> None:
    async with app_from(tmp_path, simple_app(backends)) as app:
        got = echo(await app.handle(req(
            "POST", "/api/users?x=%2F&y=2", b'{"n":1}', content_type="application/json",
            authorization="Bearer t", host="gw.example", connection="keep-alive, x-private",
            x_private="no", keep_alive="timeout=1", x_forwarded_for="1.2.3.4")))
        assert (got["method"], got["body"], got["query"]) == ("POST", '{"n":1}', "x=%2F&y=2")
        sent = got["headers"]
        assert sent["authorization"] == "Bearer t"
        assert sent["content-type"] == "application/json"
        assert sent["host"] == "gw.example"  # Go keeps the client's Host
        assert sent["x-forwarded-for"] == "1.2.3.4, 10.0.0.9"
        assert (sent["x-forwarded-host"], sent["x-forwarded-proto"]) == ("gw.example", "http")
        assert "x-private" not in sent and "keep-alive" not in sent  # hop-by-hop
        assert "user-agent" not in sent and "accept-encoding" not in sent  # none added


async def test_simple_proxy_returns_status_headers_and_body(tmp_path: Path,
                                                            backends: dict[str, Backend]) -> None:
    async with app_from(tmp_path, simple_app(backends)) as app:
        teapot = await app.handle(req("GET", "/api/status/418"))
        assert (teapot.status, teapot.body) == (418, b"teapot")
        assert teapot.get_header("content-type") == "text/plain"
        ok = await app.handle(req("GET", "/api/users"))
        assert [v for k, v in ok.headers if k.lower() == "set-cookie"] == ["a=1", "b=2"]
        assert ok.get_header("x-backend") == "users"
        assert ok.get_header("keep-alive") is None  # hop-by-hop
        zipped = await app.handle(req("GET", "/api/gzip", accept_encoding="gzip"))
        assert zipped.get_header("content-encoding") == "gzip"
        assert gzip.decompress(zipped.body) == b"zipped " * 10  # passed on as sent


async def test_simple_proxy_answers_502_json_when_the_backend_is_down(
        tmp_path: Path, backends: dict[str, Backend]) -> None:
    async with app_from(tmp_path, simple_app(backends)) as app:
        down = await app.handle(req("GET", "/down/x"))
        assert down.status == 502
        assert down.get_header("content-type") == "application/json"
        body = json.loads(down.body)
        assert body["error"] == "backend unavailable" and body["path"] == "/down/x"
        assert body["backend"].startswith("127.0.0.1:")


async def test_simple_proxy_times_out_with_504_and_limits_the_response(
        tmp_path: Path, backends: dict[str, Backend]) -> None:
    extra = "      timeout: 200ms\n      maxResponseBytes: 1000\n      stripPrefix: true\n"
    text = simple_app(backends).replace("    config:\n      targets:",
                                        "    config:\n" + extra + "      targets:")
    async with app_from(tmp_path, text) as app:
        slow = await app.handle(req("GET", "/api/users/slow"))
        assert slow.status == 504
        assert json.loads(slow.body)["error"] == "backend timeout"
        big = await app.handle(req("GET", "/api/big"))
        assert big.status == 502
        assert json.loads(big.body)["error"] == "backend response too large"
        # stripPrefix: the matched prefix is not sent; the backend URL's path still is
        assert echo(await app.handle(req("GET", "/api/users/7")))["raw_path"] == "/7"
        assert echo(await app.handle(req("GET", "/api/users")))["raw_path"] == "/"
        assert echo(await app.handle(req("GET", "/api/orders/1")))["raw_path"] == "/v2/1"


# -- reverseproxy / http.proxy --------------------------------------------------------------


def gateway_app(b: dict[str, Backend], type_: str = "reverseproxy", extra: str = "") -> str:
    return f"""
modules:
  - name: server
    type: http.server
  - name: router
    type: http.router
    dependsOn: [server]
  - name: gateway
    type: {type_}
reverseproxy:
  backend_services:
    users: "{b['users'].url}"
    orders: "{b['orders'].url}"
    web: "{b['web'].url}"
    down: "http://127.0.0.1:{closed_port()}"
  routes:
    "/api/users/*": users
    "/api/users/admin/*": web
    "/api/orders/{{id}}": orders
    "/down/*": down
    "/slow": users
  default_backend: web
  request_timeout: 200ms
  backend_configs:
    orders:
      path_rewriting:
        strip_base_path: /api
        base_path_rewrite: /internal
      header_rewriting:
        hostname_handling: use_backend
        set_headers: {{X-Service: orders}}
        remove_headers: [Authorization]
{extra}"""


@pytest.mark.parametrize("type_", ["reverseproxy", "http.proxy"])
async def test_reverseproxy_routes_rewrites_and_falls_back_to_the_default(
        tmp_path: Path, backends: dict[str, Backend], type_: str) -> None:
    assert type_ not in GO_ONLY_TYPES
    async with app_from(tmp_path, gateway_app(backends, type_)) as app:
        users = echo(await app.handle(req("DELETE", "/api/users/1?x=1", host="gw")))
        assert (users["backend"], users["method"], users["raw_path"], users["query"]) == (
            "users", "DELETE", "/api/users/1", "x=1")
        assert users["headers"]["host"] == "gw"  # preserve_original
        assert echo(await app.handle(req("GET", "/api/users/admin/x")))["backend"] == "web"
        orders = echo(await app.handle(req("PUT", "/api/orders/9", b"{}", host="gw",
                                           authorization="Bearer t")))
        assert (orders["backend"], orders["raw_path"], orders["body"]) == (
            "orders", "/internal/orders/9", "{}")
        assert orders["headers"]["host"] == backends["orders"].url.removeprefix("http://")
        assert orders["headers"]["x-service"] == "orders"
        assert "authorization" not in orders["headers"]
        assert echo(await app.handle(req("GET", "/anything/else")))["backend"] == "web"
        assert echo(await app.handle(req("GET", "/api/orders/9/more")))["backend"] == "web"


async def test_reverseproxy_errors_are_modulars_plain_text(tmp_path: Path,
                                                           backends: dict[str, Backend]) -> None:
    async with app_from(tmp_path, gateway_app(backends)) as app:
        down = await app.handle(req("GET", "/down/x"))
        assert (down.status, down.body) == (502, b"Backend service unavailable\n")
        slow = await app.handle(req("GET", "/slow"))
        assert (slow.status, slow.body) == (504, b"Gateway timeout\n")


async def test_reverseproxy_served_for_real_adds_the_forwarded_headers(
        tmp_path: Path, backends: dict[str, Backend]) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway_app(backends))
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    async with serve_asgi(asgi_app(build_app(path, engine)), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            got = (await client.post("/api/users/1", content=b"hello",
                                     headers={"X-Request-ID": "r1"})).json()
    sent = {k: v for k, v in got["headers"]}
    assert got["body"] == "hello" and sent["x-request-id"] == "r1"
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert sent["x-forwarded-host"] == url.removeprefix("http://")
    assert sent["x-forwarded-proto"] == "http"
    async with serve_asgi(asgi_app(build_app(path, engine)), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            head = await client.head("/api/users/big")  # no body: the backend's length
            get = await client.get("/api/users/big")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "5000" == get.headers["content-length"]


@pytest.mark.parametrize(("extra", "message"), [
    ("  circuit_breaker: {enabled: true}\n", "not supported by Treadle: circuit_breaker"),
    ("  composite_routes:\n    /x: {pattern: /x, backends: [users, web], strategy: merge}\n",
     "only a single backend"),
])
def test_reverseproxy_refuses_what_it_does_not_support(
        tmp_path: Path, extra: str, message: str) -> None:
    text = f"""
modules:
  - {{name: gateway, type: reverseproxy}}
reverseproxy:
  backend_services: {{users: "http://127.0.0.1:1", web: "http://127.0.0.1:2"}}
  routes: {{"/api/*": users}}
{extra}"""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    with pytest.raises(ConfigError) as info:
        build_app(path, engine)
    assert message in str(info.value.errors[0] if info.value.errors else info.value)


def test_reverseproxy_reports_unknown_backends_and_bad_patterns(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""
modules:
  - {name: gateway, type: reverseproxy}
reverseproxy:
  backend_services: {users: "users-service:8080"}
  routes: {"/api/*": nobody}
""")
    found = " ".join(str(e) for e in validate_report(path).errors)
    assert "must be an http:// or https:// URL" in found
    with pytest.raises(ValueError, match="only supported at the end"):
        chi_pattern("/a/*/b")
    with pytest.raises(ValueError, match="regular-expression"):
        chi_pattern("/a/{id:[0-9]+}")


def test_the_modules_own_config_is_merged_over_the_section(tmp_path: Path) -> None:
    spec = default_registry.get("http.proxy")
    section = {"backend_services": {"a": "http://127.0.0.1:1", "b": "http://127.0.0.1:2"},
               "routes": {"/a/*": "a"}, "default_backend": "a"}
    proxy = spec.factory("gw", {"default_backend": "b"},
                         BuildContext(base_dir=tmp_path, sections={"reverseproxy": section}))
    assert proxy.routes == {"/a/": "a", "/": "b"}
    alone = spec.factory("gw", section, BuildContext(base_dir=tmp_path))
    assert alone.routes == {"/a/": "a", "/": "a"}
    with pytest.raises(ValueError, match="printable ASCII"):
        spec.factory("gw", {**section, "backend_configs": {
            "a": {"header_rewriting": {"set_headers": {"X-Bad": "line\nbreak"}}}}},
            BuildContext(base_dir=tmp_path))
