"""Two YAML applications joined by messaging.nats: a served HTTP route publishes with
step.publish; another application, with its own engine and NATS connection (as another
process would have), runs the pipeline its event trigger subscribes to that subject."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import treadle
from stores.storekit import require_service
from treadle.apps import build_app

pytestmark = pytest.mark.services

Serve = Callable[..., Any]

NATS_URL = os.environ.get("TREADLE_TEST_NATS", "nats://127.0.0.1:4222")

PUBLISHER = """
modules:
  - name: events
    type: messaging.nats
    config: {{url: "{url}"}}
pipelines:
  place-order:
    trigger: {{type: http, config: {{path: /orders, method: POST}}}}
    steps:
      - name: publish
        type: step.publish
        config:
          broker: events
          topic: "{prefix}.{{{{ .body.region }}}}"
          payload: {{type: "{{{{ .body.kind }}}}", order_id: "{{{{ .body.id }}}}"}}
      - name: respond
        type: step.json_response
        config: {{status: 202, body: {{accepted: "{{{{ .body.id }}}}"}}}}
"""

SUBSCRIBER = """
modules:
  - name: events
    type: messaging.nats
    config: {{url: "{url}"}}
triggers:
  event:
    subscriptions:
      - {{topic: "{prefix}.*", event: order.placed, workflow: "pipeline:ship"}}
pipelines:
  ship:
    steps:
      - name: record
        type: step.set
        config: {{values: {{shipped: "{{{{ .order_id }}}}", raw: "{{{{ .originalMessage }}}}"}}}}
"""


async def test_a_route_publishes_and_another_app_runs_the_subscribed_pipeline(
        serve_app: Serve, app_dir: Path, tmp_path: Path) -> None:
    require_service("NATS", "127.0.0.1", 4222)
    prefix = f"treadle.orders.{uuid.uuid4().hex[:12]}"
    (app_dir / "nats_pub.yaml").write_text(textwrap.dedent(
        PUBLISHER.format(url=NATS_URL, prefix=prefix)))
    sub_yaml = tmp_path / "nats_sub.yaml"
    sub_yaml.write_text(textwrap.dedent(SUBSCRIBER.format(url=NATS_URL, prefix=prefix)))
    engine = treadle.Engine(f"sqlite:///{tmp_path}/subscriber.db", registry=treadle.Registry())
    subscriber = build_app(sub_yaml, engine)
    await subscriber.start()
    try:
        async with serve_app("nats_pub.yaml") as s:
            orders = [("o-1", "order.placed", "eu"), ("o-2", "order.cancelled", "eu"),
                      ("o-3", "order.placed", "us")]  # fmt: skip
            for order_id, kind, region in orders:
                accepted = await s.client.post("/orders", json={"id": order_id, "kind": kind,
                                                                 "region": region})
                assert accepted.status_code == 202, accepted.text
            assert s.runtime.subscriptions == []  # nothing in the publishing app listens
            await s.runtime.modules["events"].flush()
        broker = subscriber.modules["events"]
        await broker.drain()  # the server forwards in order: everything flushed has arrived
        assert broker.received == 3
        _, trigger = subscriber.subscriptions[0]
        assert (trigger.started, trigger.skipped) == (2, 1)
        outputs = [await handle.result() for handle in trigger.handles]
        assert [o["shipped"] for o in outputs] == ["o-1", "o-3"]
        assert outputs[0]["raw"] == '{"type":"order.placed","order_id":"o-1"}'
        execution = await engine.get(trigger.handles[0].id)
        assert execution.workflow == "pipeline:ship"
        assert [step.name for step in execution.steps] == ["record"]
    finally:
        await subscriber.stop()
        await engine.close()
