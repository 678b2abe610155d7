"""`asgi_app`: serve an `AppRuntime`'s routes as an ASGI application.

```python
app = asgi_app(runtime)                                   # the config's routes only
app = asgi_app(runtime, fallback=control_plane)           # + any ASGI app behind them
app.add_route("GET", "/version", handler)                 # extra routes (before start)
```

Requests whose path matches a config route are served by the runtime; all others go to
`fallback` (404 without one). So a route the config defines wins over one of the fallback
at the same path (the config's own `/healthz` over the control plane's). The lifespan
starts the runtime (modules, triggers) and then the fallback's lifespan; shutdown runs in
reverse, and with `close_engine` the engine is closed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from treadle.apps.runtime import UNMATCHED, AppRuntime, bodyless, without_body
from treadle.modules.web import Handler, HTTPRequest, HTTPResponse, text_response

logger = logging.getLogger("treadle.apps")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 10 * 1024 * 1024


class TreadleASGI:
    """The ASGI application of a runtime (see the module docs)."""

    def __init__(self, runtime: AppRuntime, fallback: ASGIApp | None = None, *,
                 close_engine: bool = True, recover: bool = True,
                 max_body_size: int = DEFAULT_MAX_BODY) -> None:  # fmt: skip
        self.runtime = runtime
        self.fallback = fallback
        self.close_engine = close_engine
        self.recover = recover
        self.max_body_size = max_body_size
        self._fallback_lifespan: _LifespanBridge | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve an extra route (a config route at the same method and path wins)."""
        router = self.runtime.routers[0] if self.runtime.routers else None
        if router is None:
            from treadle.apps.runtime import IMPLICIT_ROUTER
            from treadle.modules.http import HTTPRouter

            router = HTTPRouter(IMPLICIT_ROUTER, {})
            self.runtime.routers.append(router)
        router.add_route(method, path, handler, owner="extra")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            raw_path = _raw_path(scope)
            if self.runtime.matches(raw_path) or (self.fallback is None):
                await self._serve(scope, receive, send, raw_path)
            else:
                await self.fallback(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        elif self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    # -- http ------------------------------------------------------------------------------

    async def _serve(self, scope: Scope, receive: Receive, send: Send, raw_path: str) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_size:
                await _send(send, text_response("Request Entity Too Large", 413), False)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        client = scope.get("client")
        request = HTTPRequest(
            method=scope["method"], path=scope["path"], raw_path=raw_path,
            query_string=scope.get("query_string", b"").decode("latin-1"), headers=headers,
            body=b"".join(chunks), client=client[0] if client else "",
            scheme=scope.get("scheme", "http"),
        )
        try:
            response = await self.runtime.handle(request)
        except Exception:
            logger.exception("%s %s failed", request.method, request.path)
            response = text_response("Internal Server Error", 500)
        if request.state.get(UNMATCHED) and self.fallback is not None:
            await self.fallback(scope, _replay(b"".join(chunks), receive), send)
            return
        await _send(send, response, scope["method"] == "HEAD")

    # -- lifespan --------------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start(recover=self.recover)
                    if self.fallback is not None:
                        self._fallback_lifespan = _LifespanBridge(self.fallback, scope)
                        await self._fallback_lifespan.startup()
                except BaseException as exc:
                    logger.exception("application failed to start")
                    with contextlib.suppress(Exception):
                        await self.runtime.stop()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.runtime.stop()
                    if self._fallback_lifespan is not None:
                        await self._fallback_lifespan.shutdown()
                    if self.close_engine:
                        await self.runtime.engine.close()
                except Exception as exc:
                    logger.exception("application failed to stop cleanly")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if isinstance(raw, bytes | bytearray) and raw:
        return bytes(raw).decode("latin-1").split("?", 1)[0]
    return urllib.parse.quote(scope["path"])


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Send, response: HTTPResponse, head: bool) -> None:
    """Send `response`: its Content-Length is the body's (for HEAD, the body it would have:
    the one a handler declares when it has no body, as a proxied HEAD does), and a
    1xx/204/304 goes without body, Content-Length or Content-Type (`without_body`)."""
    response = without_body(response)
    declared = response.get_header("content-length") if head and not response.body else None
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
               if k.lower() != "content-length"]  # fmt: skip
    if not bodyless(response.status):
        length = declared.strip() if declared and declared.strip().isdigit() else None
        headers.append((b"content-length", (length or str(len(response.body))).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


class _LifespanBridge:
    """Runs another ASGI app's lifespan protocol from inside ours."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = {**scope}
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.supported = True

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self.inbox.get, self.outbox.put)
        except Exception:
            self.supported = False  # an app without lifespan support may raise
            await self.outbox.put({"type": "lifespan.unsupported"})

    async def _expect(self, sent: str) -> None:
        await self.inbox.put({"type": sent})
        reply = await self.outbox.get()
        if reply["type"].endswith(".failed"):
            raise RuntimeError(f"mounted application: {reply.get('message', sent + ' failed')}")

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self._expect("lifespan.startup")

    async def shutdown(self) -> None:
        if self.supported and self.task is not None and not self.task.done():
            await self._expect("lifespan.shutdown")
        if self.task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.task, 5)


def asgi_app(runtime: AppRuntime, fallback: ASGIApp | None = None, *,
             close_engine: bool = True, recover: bool = True,
             max_body_size: int = DEFAULT_MAX_BODY) -> TreadleASGI:  # fmt: skip
    """The ASGI application serving `runtime` (see the module docs)."""
    return TreadleASGI(runtime, fallback, close_engine=close_engine, recover=recover,
                       max_body_size=max_body_size)  # fmt: skip


__all__ = ["TreadleASGI", "asgi_app"]
