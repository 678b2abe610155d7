"""`api.handler`: the Go project's in-memory REST resource, optionally bound to a state
machine (Go's RESTAPIHandler, `module/api_handlers.go`).

Routed to by `workflows: http: routes:` entries (`handler: <name>`), it serves one resource:

* `GET` without `{id}`: every resource, in creation order; `GET /{id}`: one, or 404;
* `POST`: creates `{id, data, state, lastUpdate}` from the JSON body (`id` from the path, else
  the body's `id`, else the next number), `state` the body's or `new`; 201;
* `PUT /{id}`: replaces the data (as Go does, the state is dropped); `DELETE /{id}`: 204;
* `PUT /api/<resource>/{id}/transition` `{transition, data?, workflowType?}`: fires the
  transition on the state machine instance `<instanceIDPrefix><id>` (created on first use
  with the resource data), answers `{success, id, instanceId, transition, state, lastUpdate,
  resource}`; a refused transition is 400 with `success: false` and the error.

Creations, updates and deletions are published as `{eventType: "<resource>.created", ...}` on
the topic `<resource>-events` when the application has a broker named `message-broker` (the
Go lookup) or `publishEvents` is set (then the first broker). Resources live in memory, as in
Go: they are lost on restart (state machine instances are persisted by their engine).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from treadle.modules.base import BuildContext, Module, ModuleSet
from treadle.modules.handlers import go_json
from treadle.modules.messaging import BROKER_TYPES
from treadle.modules.registry import register
from treadle.modules.web import HTTPRequest, HTTPResponse

logger = logging.getLogger("treadle.handlers")


def _now() -> str:
    """Go's `time.Now().Format(time.RFC3339)`: local time, seconds, numeric offset or Z."""
    text = datetime.now().astimezone().isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def _answer(status: int, body: Any) -> HTTPResponse:
    return HTTPResponse(status, [("Content-Type", "application/json")], go_json(body))


class RESTAPIHandler(Module):
    """See the module docs."""

    type = "api.handler"

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.resource_name = str(config.get("resourceName") or name)
        self.workflow_type = str(config.get("workflowType") or "")
        self.engine_name = str(config.get("workflowEngine") or "")
        self.id_prefix = str(config.get("instanceIDPrefix") or "")
        self.id_field = str(config.get("instanceIDField") or "id")
        self.publish_events = bool(config.get("publishEvents"))
        self.resources: dict[str, dict[str, Any]] = {}
        self.engine: Any = None
        self.broker: Any = None

    def seed(self, items: list[Any]) -> None:
        """Load `[{id, data, state}]` (Go's seed file format); items without an id are skipped."""
        for item in items:
            if isinstance(item, dict) and item.get("id"):
                data = item.get("data")
                self.resources[str(item["id"])] = self._resource(
                    str(item["id"]), dict(data) if isinstance(data, dict) else {},
                                                                 str(item.get("state") or ""))

    async def init(self, modules: ModuleSet) -> None:
        from treadle.statemachine.steps import resolve_engine

        candidates = [modules[self.engine_name]] if self.engine_name in modules else \
            [modules[n] for n in modules.order]  # fmt: skip
        for module in candidates:
            try:
                self.engine = resolve_engine(module)
                break
            except TypeError:
                continue
        if self.engine is not None and not self.workflow_type and self.engine.definitions:
            self.workflow_type = next(iter(self.engine.definitions))
        broker = modules.get("message-broker")
        if broker is None and self.publish_events:
            broker = next(iter(modules.of_type(*BROKER_TYPES)), None)
        self.broker = broker if callable(getattr(broker, "publish", None)) else None

    @staticmethod
    def _resource(rid: str, data: dict[str, Any], state: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {"id": rid, "data": data}
        if state:
            out["state"], out["lastUpdate"] = state, _now()
        return out

    async def _publish(self, event: str, **fields: Any) -> None:
        if self.broker is not None:
            try:
                await self.broker.publish(f"{self.resource_name}-events",
                                          {"eventType": f"{self.resource_name}.{event}", **fields})
            except Exception:
                logger.exception("api.handler %r: publishing %s failed", self.name, event)

    async def handle_http(self, request: HTTPRequest) -> HTTPResponse:
        segments = request.path.strip("/").split("/")
        rid = request.path_params.get("id", "")
        transition = len(segments) >= 4 and segments[0] == "api" and \
            segments[1] == self.resource_name and segments[3] == "transition"  # fmt: skip
        method = request.method
        if transition and method == "PUT":
            return await self._transition(rid, request)
        if method in ("GET", "HEAD"):
            if not rid:
                return _answer(200, list(self.resources.values()))
            found = self.resources.get(rid)
            return _answer(200, found) if found else _answer(404, {"error": "Resource not found"})
        if method == "POST":
            return await self._create(rid, request)
        if method == "PUT" and rid:
            return await self._update(rid, request)
        if method == "DELETE" and rid:
            if self.resources.pop(rid, None) is None:
                return _answer(404, {"error": "Resource not found"})
            await self._publish("deleted", resourceId=rid)
            return HTTPResponse(204)
        return _answer(405, {"error": "Method not allowed or invalid path"})

    @staticmethod
    def _body(request: HTTPRequest) -> dict[str, Any] | None:
        try:
            data = json.loads(request.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def _create(self, rid: str, request: HTTPRequest) -> HTTPResponse:
        data = self._body(request)
        if data is None:
            return _answer(400, {"error": "Invalid request body"})
        if not rid:
            given = data.get("id")
            rid = given if isinstance(given, str) and given else str(len(self.resources) + 1)
        given_state = data.get("state")
        state = given_state if isinstance(given_state, str) and given_state else "new"
        resource = self.resources[rid] = self._resource(rid, data, state)
        await self._publish("created", resource=resource)
        return _answer(201, resource)

    async def _update(self, rid: str, request: HTTPRequest) -> HTTPResponse:
        data = self._body(request)
        if data is None:
            return _answer(400, {"error": "Invalid request body"})
        if rid not in self.resources:
            return _answer(404, {"error": "Resource not found"})
        resource = self.resources[rid] = self._resource(rid, data)
        await self._publish("updated", resource=resource)
        return _answer(200, resource)

    async def _transition(self, rid: str, request: HTTPRequest) -> HTTPResponse:
        from treadle.statemachine.errors import StateMachineError

        body = self._body(request)
        if body is None:
            return _answer(400, {"error": "Invalid transition request format"})
        name = body.get("transition")
        if not isinstance(name, str) or not name:
            return _answer(400, {"error": "Transition name is required"})
        resource = self.resources.get(rid)
        if resource is None:
            return _answer(404, {"error": "Resource not found"})
        data = dict(resource["data"])
        if isinstance(body.get("data"), dict):
            data.update(body["data"])
        workflow_type = str(body.get("workflowType") or self.workflow_type
                            or data.get("workflowType") or "")  # fmt: skip
        own_id = data.get(self.id_field) if self.id_field != "id" else None
        instance_id = self.id_prefix + (own_id if isinstance(own_id, str) and own_id else rid)
        data.update(id=rid, instanceId=instance_id, workflowType=workflow_type)
        result: dict[str, Any] = {"id": rid, "instanceId": instance_id, "transition": name}
        if self.engine is None:
            return _answer(500, {"error": "Workflow engine not found"})
        try:
            if await self.engine.find(instance_id) is None:
                await self.engine.create_instance(workflow_type, instance_id, data)
            outcome = await self.engine.transition(instance_id, name, data)
        except StateMachineError as exc:
            return _answer(400, {"success": False, "error": str(exc), **result})
        state, stamp = outcome.instance.current_state, _now()
        resource.update(state=state, lastUpdate=stamp)
        resource["data"].update(state=state, lastUpdate=stamp, workflowType=workflow_type,
                                instanceId=instance_id)  # fmt: skip
        return _answer(200, {"success": True, **result, "state": state, "lastUpdate": stamp,
                             "resource": resource})  # fmt: skip


@register(
    "api.handler",
    category="http",
    provides=("http.handler",),
    doc="""
An in-memory REST resource, as the Go project's `api.handler`, served by the
`workflows: http:` routes that name it: `GET` lists or gets one (`{id}` in the route),
`POST` creates (201), `PUT /{id}` replaces, `DELETE /{id}` removes (204), and
`PUT /api/<resourceName>/{id}/transition` with `{"transition": "...", "data": {...}}` fires a
transition of the state machine instance `<instanceIDPrefix><id>` (created on first use) of
`workflowType` on the `workflowEngine` module (default: the first definition of the first
statemachine.engine), and stores the resulting state on the resource. Creations, updates and
deletions are published to `<resourceName>-events` when a broker named `message-broker`
exists (or `publishEvents` is set). Resources are kept in memory, as in Go; `seedFile` (a
JSON list of `{id, data, state}`) loads initial ones. For a persistent resource, write
pipelines with `step.db_query` / `step.db_exec`.
""",
    schema={
        "type": "object",
        "properties": {
            "resourceName": {"type": "string", "description": "Resource name (default: the "
                             "module name); the transition path is /api/<resourceName>/{id}/"
                             "transition."},
            "workflowType": {"type": "string", "description": "State machine definition."},
            "workflowEngine": {"type": "string", "description": "statemachine.engine module."},
            "instanceIDPrefix": {"type": "string", "description": "Prefix of instance ids."},
            "instanceIDField": {"type": "string", "default": "id",
                                "description": "Data field giving the instance id."},
            "publishEvents": {"type": "boolean", "default": False,
                              "description": "Publish to the first broker."},
            "seedFile": {"type": "string", "description": "JSON file of initial resources "
                         "(relative to the config file)."},
            "description": {"type": "string", "description": "Free text."},
        },
    },
    example="""
- name: orders-api
  type: api.handler
  config: {resourceName: orders, workflowType: order-lifecycle, instanceIDPrefix: "order-"}
""",
)
def _api_handler(name: str, config: dict[str, Any], ctx: BuildContext) -> RESTAPIHandler:
    handler = RESTAPIHandler(name, config)
    seed = config.get("seedFile")
    if seed:
        path = ctx.path(str(seed))
        try:
            items = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"seedFile {str(seed)!r}: {exc}") from exc
        if not isinstance(items, list):
            raise ValueError(f"seedFile {str(seed)!r} must hold a JSON list")
        handler.seed(items)
    return handler


__all__ = ["RESTAPIHandler"]
