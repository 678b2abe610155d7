"""Handler modules of the Go project's `workflows:` sections: http.handler, api.query,
api.command, messaging.handler, data.transformer and state.connector.

In GoCodeAlone/workflow, `workflows: http: routes:` entries name an HTTP handler module
(`handler: users-api`), `workflows: messaging: subscriptions:` a message handler module and
`workflows: scheduler: jobs:` a job. These modules are what such configs name; the sections
themselves are read by `treadle.triggers.handlers`. Two interfaces, duck-typed:

* an HTTP handler has `async handle_http(request) -> HTTPResponse`;
* a message handler has `async handle_message(message: bytes)` (also a scheduled job).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from typing import Any, ClassVar

from treadle.modules.base import BuildContext, Module, ModuleSet
from treadle.modules.registry import register
from treadle.modules.web import HTTPRequest, HTTPResponse

logger = logging.getLogger("treadle.handlers")

_DESCRIPTION = {"type": "string", "description": "Free text (accepted for compatibility)."}


def go_json(value: Any) -> bytes:
    """What Go's `json.NewEncoder(w).Encode(value)` writes: compact JSON, `<`, `>` and `&`
    escaped, and a trailing newline."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (text + "\n").encode()


# -- http.handler ----------------------------------------------------------------------------


class SimpleHTTPHandler(Module):
    """Answers every request with `{"handler", "message", "status"}` (Go's SimpleHTTPHandler)."""

    type = "http.handler"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.content_type = str(config.get("contentType") or "application/json")
        self.handled = 0

    async def handle_http(self, request: HTTPRequest) -> HTTPResponse:
        self.handled += 1
        body = go_json({"handler": self.name, "message": "Default handler response",
                        "status": "success"})  # fmt: skip
        return HTTPResponse(200, [("Content-Type", self.content_type)], body)


@register(
    "http.handler",
    category="http",
    provides=("http.handler",),
    doc="""
A placeholder HTTP handler, as the Go project's `http.handler`: the routes of a
`workflows: http:` section that name it (`handler: <name>`) answer `200` with
`{"handler":"<name>","message":"Default handler response","status":"success"}` and the
configured `contentType`. Use a pipeline (an `http` trigger, or a route's inline `pipeline:`)
for a real endpoint.
""",
    schema={
        "type": "object",
        "properties": {
            "contentType": {"type": "string", "default": "application/json",
                            "description": "Content-Type of the answer."},
            "method": {"type": "string", "description": "Accepted for compatibility (the "
                       "route comes from `workflows: http: routes:`)."},
            "path": {"type": "string", "description": "Accepted for compatibility."},
            "description": _DESCRIPTION,
        },
    },
    example="""
- name: health
  type: http.handler
  config: {contentType: application/json}
""",
)
def _http_handler(name: str, config: dict[str, Any], ctx: BuildContext) -> SimpleHTTPHandler:
    return SimpleHTTPHandler(name, config)


# -- api.query / api.command -----------------------------------------------------------------


class CQRSHandler(Module):
    """Go's QueryHandler / CommandHandler without registered functions: the routes that name
    it run their inline pipelines (see `treadle.triggers.http`); any other request goes to the
    `delegate` module, else `404 {"error": "unknown query: <last path segment>"}`."""

    kind: ClassVar[str] = ""

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.delegate_name = str(config.get("delegate") or "")
        self.delegate: Any = None

    async def init(self, modules: ModuleSet) -> None:
        if self.delegate_name:
            found = modules.get(self.delegate_name)
            if not callable(getattr(found, "handle_http", None)):
                raise ValueError(f"{self.type} {self.name!r}: delegate {self.delegate_name!r} "
                                 "is not a module that answers HTTP requests")  # fmt: skip
            self.delegate = found

    async def handle_http(self, request: HTTPRequest) -> HTTPResponse:
        if self.delegate is not None:
            response: HTTPResponse = await self.delegate.handle_http(request)
            return response
        last = request.path.rstrip("/").rsplit("/", 1)[-1]
        return HTTPResponse(404, [("Content-Type", "application/json")],
                            go_json({"error": f"unknown {self.kind}: {last}"}))  # fmt: skip


class QueryHandler(CQRSHandler):
    type = "api.query"
    kind = "query"


class CommandHandler(CQRSHandler):
    type = "api.command"
    kind = "command"


def _cqrs_doc(kind: str, verb: str) -> str:
    return f"""
The Go project's `api.{kind}` handler ({verb}). Routes of a `workflows: http:` section that
name it (`handler: <name>`) and carry an inline `pipeline: {{steps: [...]}}` run that
pipeline; as in Go, a pipeline that sets no response (no `step.json_response`) answers `200`
with its output as JSON, and a failure `500 {{"error": "..."}}`. Other requests go to the
`delegate` module (one that answers HTTP requests, e.g. an `api.handler`), else answer
`404 {{"error": "unknown {kind}: <last path segment>"}}`.
"""


_CQRS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "delegate": {"type": "string", "description": "Module answering requests that have "
                     "no route pipeline."},
        "description": _DESCRIPTION,
    },
}


@register("api.query", category="http", provides=("http.handler",),
          doc=_cqrs_doc("query", "reads, usually `GET`"), schema=_CQRS_SCHEMA,
          example="""
- name: queries
  type: api.query
""")  # fmt: skip
def _query(name: str, config: dict[str, Any], ctx: BuildContext) -> CQRSHandler:
    return QueryHandler(name, config)


@register("api.command", category="http", provides=("http.handler",),
          doc=_cqrs_doc("command", "writes, usually `POST`/`PUT`/`DELETE`"),
          schema=_CQRS_SCHEMA, example="""
- name: commands
  type: api.command
  config: {delegate: orders-api}
""")  # fmt: skip
def _command(name: str, config: dict[str, Any], ctx: BuildContext) -> CQRSHandler:
    return CommandHandler(name, config)


# -- messaging.handler -----------------------------------------------------------------------


class SimpleMessageHandler(Module):
    """Logs each message it gets and forwards it to its target topics (Go's
    SimpleMessageHandler); keeps the latest 100 for inspection."""

    type = "messaging.handler"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.received: deque[bytes] = deque(maxlen=100)
        self.count = 0
        self.forward_to: list[str] = []
        self.broker: Any = None

    def forward(self, broker: Any, topics: list[str]) -> None:
        """Publish every message this handler gets to `topics` on `broker` too."""
        self.broker = broker
        self.forward_to = [t for t in topics if t not in self.forward_to] + self.forward_to

    async def handle_message(self, message: bytes) -> None:
        self.count += 1
        self.received.append(message)
        logger.info("message received by %s: %s", self.name,
                    message[:200].decode(errors="replace"))  # fmt: skip
        for topic in self.forward_to:
            await self.broker.publish(topic, message)


@register(
    "messaging.handler",
    category="messaging",
    provides=("message.handler",),
    doc="""
A message handler, as the Go project's `messaging.handler`: subscribed to topics by a
`workflows: messaging: subscriptions:` entry (`{topic, handler: <name>}`), or run by a
`workflows: scheduler: jobs:` entry, it logs each message and publishes it to the topics a
`producers:` entry gives it (`{name: <name>, forwardTo: [topic, ...]}`). A state machine hook
naming it receives the transition as a message. To run logic on messages, use an `event`
trigger that starts a pipeline.
""",
    schema={
        "type": "object",
        "properties": {
            "topic": {"type": "string", "description": "Accepted for compatibility (the "
                      "subscription comes from `workflows: messaging:`)."},
            "description": _DESCRIPTION,
        },
    },
    example="""
- name: audit-log
  type: messaging.handler
""",
)
def _message_handler(name: str, config: dict[str, Any],
                     ctx: BuildContext) -> SimpleMessageHandler:  # fmt: skip
    return SimpleMessageHandler(name, config)


# -- data.transformer ------------------------------------------------------------------------


class DataTransformer(Module):
    """Named sequences of step.transform operations, for `step.transform` `transformer:`."""

    type = "data.transformer"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        pipelines = config.get("pipelines") or {}
        if not isinstance(pipelines, dict):
            raise ValueError("pipelines must map names to lists of operations")
        self.pipelines: dict[str, list[dict[str, Any]]] = {}
        for key, ops in pipelines.items():
            if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
                raise ValueError(f"pipeline {key!r} must be a list of operations")
            self.pipelines[str(key)] = ops

    def transform(self, pipeline: str, data: Any) -> Any:
        from treadle.steps.data import apply_operations

        ops = self.pipelines.get(pipeline)
        if ops is None:
            known = ", ".join(sorted(self.pipelines)) or "none"
            raise KeyError(f"data.transformer {self.name!r} has no pipeline {pipeline!r} "
                           f"(pipelines: {known})")  # fmt: skip
        return apply_operations(ops, data)


@register(
    "data.transformer",
    category="integration",
    provides=("transformer",),
    doc="""
Named transformations for `step.transform` (`transformer: <module>`, `pipeline: <name>`):
each is a list of the same operations `step.transform` takes inline (`extract`, `map`,
`filter`, `convert`). The Go project registers them in code; a Go config that declares the
module without `pipelines` loads unchanged.
""",
    schema={
        "type": "object",
        "properties": {
            "pipelines": {"type": "object",
                          "additionalProperties": {"type": "array", "items": {"type": "object"}},
                          "description": "Transformation name → list of operations."},
            "description": _DESCRIPTION,
        },
    },
    example="""
- name: shaper
  type: data.transformer
  config:
    pipelines:
      customer:
        - {type: extract, config: {path: body.customer}}
        - {type: filter, config: {fields: [id, email]}}
""",
)
def _transformer(name: str, config: dict[str, Any], ctx: BuildContext) -> DataTransformer:
    return DataTransformer(name, config)


# -- state.connector -------------------------------------------------------------------------


class StateConnector(Module):
    """Go's StateMachineStateConnector: nothing to do in Treadle (see the doc)."""

    type = "state.connector"

    async def init(self, modules: ModuleSet) -> None:
        if not modules.of_type("statemachine.engine"):
            logger.warning("state.connector %r: the application has no statemachine.engine",
                           self.name)  # fmt: skip


@register(
    "state.connector",
    category="infrastructure",
    doc="""
Accepted for Go configs: there it copies state machine transitions into a `state.tracker`.
In Treadle the statemachine.engine already records every instance's state, and a
`state.tracker` reads it, so this module does nothing.
""",
    schema={"type": "object", "properties": {"description": _DESCRIPTION}},
    example="""
- name: connector
  type: state.connector
  dependsOn: [tracker]
""",
)
def _connector(name: str, config: dict[str, Any], ctx: BuildContext) -> StateConnector:
    return StateConnector(name, config)


__all__ = ["CQRSHandler", "CommandHandler", "DataTransformer", "QueryHandler",
           "SimpleHTTPHandler", "SimpleMessageHandler", "StateConnector",
           "go_json"]  # fmt: skip
