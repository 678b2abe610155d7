"""Event triggers over the in-memory broker and schedule triggers driven by tick()."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from treadle.apps import AppRuntime
from treadle.triggers.schedule import idempotency_key

Build = Callable[..., AppRuntime]

EVENTS = """
modules:
  - {name: events, type: messaging.broker}
triggers:
  event:
    subscriptions:
      - topic: orders
        event: created
        workflow: "pipeline:on-created"
        params: {source: broker}
      - topic: orders
        filter: {order.region: [eu, uk]}
        workflow: "pipeline:on-eu"
pipelines:
  place:
    steps:
      - name: announce
        type: step.publish
        config:
          broker: events
          topic: orders
          payload: {type: "{{ .kind }}", order: {id: "{{ .id }}", region: "{{ .region }}"}}
  on-created:
    steps:
      - {name: seen, type: step.set, config: {values: {order_id: "{{ .order.id }}"}}}
  on-eu:
    steps:
      - {name: seen, type: step.set, config: {values: {region: "{{ .order.region }}"}}}
"""


async def test_a_published_event_starts_the_subscribed_pipelines(build: Build) -> None:
    runtime = build(EVENTS)
    await runtime.start()
    await runtime.run_pipeline("place", {"kind": "created", "id": "o1", "region": "eu"})
    await runtime.run_pipeline("place", {"kind": "updated", "id": "o2", "region": "us"})
    await runtime.modules["events"].drain()
    created, eu = (s for _, s in runtime.subscriptions)
    assert (created.started, created.skipped) == (1, 1)
    assert (eu.started, eu.skipped) == (1, 1)
    out = await created.handles[0].result()
    assert out["order_id"] == "o1" and out["source"] == "broker"
    assert out["originalMessage"] == \
        '{"type":"created","order":{"id":"o1","region":"eu"}}'
    assert (await eu.handles[0].result())["region"] == "eu"
    execution = await runtime.engine.get(created.handles[0].id)
    assert execution.workflow == "pipeline:on-created"
    assert [s.name for s in execution.steps] == ["seen"]


async def test_the_go_eventbus_bridge_type_runs_as_the_in_memory_broker(build: Build) -> None:
    runtime = build(EVENTS.replace("type: messaging.broker", "type: messaging.broker.eventbus"))
    await runtime.start()
    await runtime.run_pipeline("place", {"kind": "created", "id": "o3", "region": "uk"})
    await runtime.modules["events"].drain()
    created, eu = (s for _, s in runtime.subscriptions)
    assert (await created.handles[0].result())["order_id"] == "o3"
    assert (await eu.handles[0].result())["region"] == "uk"


async def test_messages_that_are_not_json_objects_are_ignored(build: Build) -> None:
    runtime = build(EVENTS)
    await runtime.start()
    broker = runtime.modules["events"]
    await broker.publish("orders", b"not json")
    await broker.publish("orders", [1, 2])
    await broker.drain()
    assert all(s.started == 0 and s.skipped == 2 for _, s in runtime.subscriptions)


SCHEDULED = """
modules:
  - {name: cron, type: scheduler.modular}
pipelines:
  report:
    trigger: {type: schedule, config: {cron: "*/15 * * * *"}}
    steps:
      - {name: stamp, type: step.set, config: {values: {at: "{{ .trigger_time }}"}}}
"""


async def test_a_schedule_firing_starts_the_pipeline_once_per_slot(build: Build,
                                                                  tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/runs.db"
    slot = datetime(2026, 3, 1, 12, 15, tzinfo=UTC)
    runtime = build(SCHEDULED, store=store)
    runtime.modules["cron"].now = lambda: slot - timedelta(minutes=5)
    await runtime.start()
    scheduler, job = runtime.jobs[0]
    assert scheduler.jobs[0].next_fire == slot
    await scheduler.tick(slot)
    assert (await job.handles[0].result())["at"] == "2026-03-01T12:15:00Z"
    first = job.handles[0]
    assert job.spec.job_id == "pipeline:report"
    assert idempotency_key(job.spec, slot) == \
        "schedule:pipeline:report:pipeline:report:2026-03-01T12:15:00Z"
    # a restarted process (same store) firing the same slot finds the same execution
    await runtime.stop()
    again = build(SCHEDULED, store=store)
    again.modules["cron"].now = lambda: slot - timedelta(minutes=1)
    await again.start()
    scheduler2, job2 = again.jobs[0]
    await scheduler2.tick(slot)
    assert job2.handles[0].id == first.id and job2.handles[0].created is False
    executions = await again.engine.list(workflow="pipeline:report")
    assert len(executions.items) == 1


async def test_an_app_with_schedules_and_no_scheduler_gets_one(build: Build) -> None:
    runtime = build("""
    triggers:
      nightly:
        type: schedule
        config: {cron: "0 3 * * *", workflow: "pipeline:p", timezone: America/New_York,
                 params: {mode: full}}
    pipelines:
      p: {steps: [{name: s, type: step.set, config: {values: {m: "{{ .mode }}"}}}]}
    """)
    await runtime.start()
    scheduler, job = runtime.jobs[0]
    assert scheduler.name == "_scheduler" and job.spec.timezone == "America/New_York"
    fire = scheduler.jobs[0].next_fire
    assert fire is not None and fire.astimezone().utcoffset() is not None
    await scheduler.tick(fire)
    assert (await job.handles[0].result())["m"] == "full"
