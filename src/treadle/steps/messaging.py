"""Messaging steps: step.publish, to a named broker module (`publish(topic, message)`)."""

from __future__ import annotations

import inspect
from typing import Any

from treadle.steps._context import PipelineContext
from treadle.steps.registry import register


@register(
    "step.publish",
    doc="""
Publishes a message to `topic` (templates rendered) on the broker module `broker`:
`await broker.publish(topic, payload)`. The payload is `payload` with its templates rendered,
or the whole pipeline context when there is none. Without `broker` nothing is sent and the
output says `published: false`.
""",
    schema={
        "type": "object",
        "required": ["topic"],
        "properties": {
            "topic": {"type": "string", "minLength": 1, "description": "Topic (templates)."},
            "broker": {"type": "string", "description": "Broker module name."},
            "payload": {"type": "object", "description": "Message (templates rendered)."},
        },
        "additionalProperties": False,
    },
    outputs={"published": "whether the message was handed to the broker", "topic": "the topic"},
    example="""
- name: announce
  type: step.publish
  config:
    broker: events
    topic: order.created
    payload: {order_id: "{{ .order_id }}"}
""",
)
async def publish(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    topic = str(config["topic"])
    payload = config.get("payload")
    message = dict(ctx.current) if payload is None else payload
    if not config.get("broker"):
        return {"published": False, "reason": "no broker configured", "topic": topic}
    broker = ctx.module(str(config["broker"]), "broker")
    result = broker.publish(topic, message)
    if inspect.isawaitable(result):
        await result
    return {"published": True, "topic": topic}
