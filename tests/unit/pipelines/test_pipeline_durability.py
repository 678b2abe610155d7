"""Crash and resume: a resumed pipeline replays its journal and re-runs nothing finished."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import treadle
from durable import WAIT, crash, engine_with_short_lease, recover_one, until
from pipekit import CALLS, GATES, LoadApp, test_steps
from treadle.stores import open_store
from treadle.testing import FakeClock


@pytest.fixture
def store(store_url: str) -> Any:
    return open_store(store_url)


async def wait_status(store: Any, execution_id: str, status: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT
    while loop.time() < end:
        row = await store.get(execution_id)
        if row is not None and row.status == status:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"execution never became {status}")


async def wait_journaled(store: Any, execution_id: str, step: str,
                         timeout: float = WAIT) -> None:
    """Until the store holds `step`'s completion."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not any(e.type == "step.completed" and e.data.get("step_name") == step
                  for e in await store.events(execution_id)):
        if loop.time() > end:
            raise AssertionError(f"{step} was never journaled as completed")
        await asyncio.sleep(0.002)


APPROVAL = """
pipelines:
  approve:
    steps:
      - name: intake
        type: test.record
        config: {output: {amount: "{{ .amount }}"}}
      - name: optional
        type: test.record
        if: "{{ gt .amount 100 }}"
        config: {}
      - name: broken
        type: test.fail
        on_error: skip
        config: {}
      - name: route
        type: step.conditional
        config: {field: amount, routes: {"5": wait}, default: wait}
      - name: never
        type: test.record
        config: {}
      - name: wait
        type: step.wait_signal
        config: {signal: approval}
      - name: after
        type: test.record
        config: {output: {by: "{{ .payload.by }}"}}
"""


async def test_resume_at_signal_wait_reruns_nothing(load_app: LoadApp,
                                                    registry: treadle.Registry,
                                                    store: Any) -> None:
    app = load_app(APPROVAL, step_types=test_steps())
    first = engine_with_short_lease(store, registry=registry)
    handle = await app.start_pipeline(first, "approve", {"amount": 5})
    await wait_status(store, handle.id, "suspended")
    await crash(first)
    assert [n for n, _ in CALLS] == ["intake", "broken"]
    await first.signal(handle.id, "approval", {"by": "ann"})

    second = treadle.Engine(store, registry=registry)
    resumed = await recover_one(second)
    out = await resumed.result()
    assert out["by"] == "ann" and out["_skipped"] is True and out["next_step"] == "wait"
    assert [n for n, _ in CALLS] == ["intake", "broken", "after"]
    events = await second.events(handle.id)
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    types = [e.type for e in events]
    assert types.count("step.skipped") == 2 and types.count("conditional.routed") == 1
    ex = await second.get(handle.id)
    assert [(s.name, str(s.status)) for s in ex.steps if s.kind != "signal"] == [
        ("intake", "completed"), ("optional", "skipped"), ("broken", "failed"),
        ("broken", "skipped"), ("route", "completed"), ("route", "completed"),
        ("wait", "completed"), ("after", "completed")]


FOREACH = """
pipelines:
  fan:
    steps:
      - name: each
        type: step.foreach
        config:
          collection: items
          concurrency: 2
          step:
            type: test.gate
            config: {gate: "{{ .item }}", output: {done: "{{ .item }}"}}
      - name: total
        type: step.set
        config: {values: {n: "{{ .count }}"}}
"""


async def test_resumed_foreach_keeps_finished_items(load_app: LoadApp,
                                                    registry: treadle.Registry,
                                                    store: Any) -> None:
    app = load_app(FOREACH, step_types=test_steps())
    GATES.update({k: asyncio.Event() for k in "abc"})
    first = engine_with_short_lease(store, registry=registry)
    handle = await app.start_pipeline(first, "fan", {"items": ["a", "b", "c"]})
    GATES["a"].set()
    await until(lambda: [n for n, c in CALLS if c["gate"] == "c"] != [])
    await wait_journaled(store, handle.id, "each[0]")  # item a's completion is committed
    await crash(first)
    calls_before = [c["gate"] for _, c in CALLS]
    assert sorted(calls_before) == ["a", "b", "c"]

    GATES["b"].set()
    GATES["c"].set()
    second = treadle.Engine(store, registry=registry)
    resumed = await recover_one(second)
    out = await resumed.result()
    assert out["results"] == [{"done": "a"}, {"done": "b"}, {"done": "c"}] and out["n"] == 3
    assert [c["gate"] for _, c in CALLS].count("a") == 1  # the finished item did not run again
    assert sorted(c["gate"] for _, c in CALLS[3:]) == ["b", "c"]  # a did not run again
    ex = await second.get(handle.id)
    assert [s.name for s in ex.steps] == ["each[0]", "each[1]", "each[2]", "each", "total"]
    assert ex.steps[0].step_type == "test.gate" and ex.steps[3].step_type == "step.foreach"


async def test_durable_sleep_resumes_at_its_deadline(load_app: LoadApp,
                                                     registry: treadle.Registry,
                                                     store: Any) -> None:
    app = load_app("""
    pipelines:
      nap:
        steps:
          - name: before
            type: test.record
            config: {}
          - name: cool-off
            type: step.sleep
            config: {duration: 1m}
          - name: after
            type: test.record
            config: {}
    """, step_types=test_steps())
    clock = FakeClock(auto_advance=False)
    first = engine_with_short_lease(store, registry=registry, clock=clock)
    handle = await app.start_pipeline(first, "nap", {})
    await until(lambda: clock.pending == 1)
    await crash(first)

    second = treadle.Engine(store, registry=registry, clock=clock)
    resumed = await recover_one(second)
    await until(lambda: clock.pending == 1)
    clock.advance(59)
    assert not (await second.get(handle.id)).status.is_terminal
    clock.advance(1)
    out = await resumed.result()
    assert out == {"slept": 60.0}
    assert [n for n, _ in CALLS] == ["before", "after"]
    timers = [e.data for e in await second.events(handle.id) if e.type == "timer.started"]
    assert [t["step_name"] for t in timers] == ["cool-off"]


async def test_code_change_under_running_pipeline_is_nondeterminism(
        load_app: LoadApp, registry: treadle.Registry, store: Any, tmp_path: Any) -> None:
    app = load_app(APPROVAL, step_types=test_steps())
    first = engine_with_short_lease(store, registry=registry)
    handle = await app.start_pipeline(first, "approve", {"amount": 5})
    await wait_status(store, handle.id, "suspended")
    await crash(first)
    changed = APPROVAL.replace("name: intake", "name: renamed-intake")
    load_app(changed, step_types=test_steps(), name="changed.yaml")  # same pipeline name
    second = treadle.Engine(store, registry=registry)
    resumed = await recover_one(second)
    with pytest.raises(treadle.ExecutionFailedError, match=r"NonDeterminismError|code changed"):
        await resumed.result()
