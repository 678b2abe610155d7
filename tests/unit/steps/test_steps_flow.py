"""step.foreach, step.parallel, step.retry_with_backoff, step.sleep, step.wait_signal,
step.workflow_call."""

from __future__ import annotations

import asyncio

import pytest

import treadle
from durable import until
from pipekit import CALLS, GATES, LoadApp, test_steps
from treadle.errors import ConfigError


async def test_foreach_sequential_with_sub_steps(load_app: LoadApp,
                                                 engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: each
            type: step.foreach
            config:
              collection: "{{ .orders }}"
              item_var: order
              steps:
                - name: price
                  type: step.set
                  config: {values: {price: "{{ mul .order.qty 2 }}"}}
                - name: label
                  type: step.set
                  config: {values: {label: "#{{ .index }}: {{ .steps.price.price }}",
                                    pos: "{{ .foreach.index }}"}}
    """)
    eid, out = await app.run_pipeline(engine, "p", {"orders": [{"qty": 1}, {"qty": 5}]})
    assert out["results"] == [{"price": 2, "label": "#0: 2", "pos": 0},
                              {"price": 10, "label": "#1: 10", "pos": 1}]
    assert out["count"] == 2 and "order" not in out
    ex = await engine.get(eid)
    assert [(s.name, s.step_type) for s in ex.steps] == [
        ("each[0]", "step.foreach"), ("each[1]", "step.foreach"), ("each", "step.foreach")]
    assert ex.steps[1].input == [{"index": 1, "order": {"qty": 5}}]


async def test_foreach_concurrency_is_bounded(load_app: LoadApp,
                                              engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: each
            type: step.foreach
            config:
              collection: items
              concurrency: 2
              step: {type: test.gate, config: {gate: "{{ .item }}"}}
    """, step_types=test_steps())
    GATES.update({k: asyncio.Event() for k in "abcd"})
    task = asyncio.ensure_future(app.run_pipeline(engine, "p", {"items": list("abcd")}))

    async def started(count: int) -> list[str]:
        """The items started once `count` have, after giving one more every chance to."""
        await until(lambda: len(CALLS) >= count)
        for _ in range(100):  # a bound was broken if another starts in these 0.5 s
            await asyncio.sleep(0.005)
        return sorted(c["gate"] for _, c in CALLS)

    assert await started(2) == ["a", "b"]
    GATES["b"].set()
    assert await started(3) == ["a", "b", "c"]
    for gate in GATES.values():
        gate.set()
    _, out = await task
    assert out["count"] == 4


async def test_foreach_errors_fail_fast_or_collect(load_app: LoadApp,
                                                   engine: treadle.Engine) -> None:
    text = """
    pipelines:
      p:
        steps:
          - name: each
            type: step.foreach
            config:
              collection: items
              concurrency: 3
              error_strategy: {strategy}
              step:
                type: step.validate
                config: {{required_fields: [ok], source: item}}
    """
    data = {"items": [{"ok": 1}, {"no": 1}, {"ok": 2}]}
    app = load_app(text.format(strategy="collect_errors"))
    _, out = await app.run_pipeline(engine, "p", data)
    assert out["error_count"] == 1 and out["results"][0] == {}
    assert out["results"][1]["_index"] == 1 and "missing required" in out["results"][1]["_error"]
    app = load_app(text.format(strategy="fail_fast"), name="b.yaml")
    with pytest.raises(treadle.ExecutionFailedError, match="missing required fields: ok"):
        await app.run_pipeline(engine, "p", data)


async def test_foreach_empty_and_missing_collections(load_app: LoadApp,
                                                     engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: each
            type: step.foreach
            config: {collection: steps.list.items, step: {type: step.set, config: {values: {a: 1}}}}
    """)
    with pytest.raises(treadle.ExecutionFailedError, match="not found in context"):
        await app.run_pipeline(engine, "p", {})
    _, out = await app.run_pipeline(engine, "p", {"steps.list.items": []})
    assert out["results"] == [] and out["count"] == 0


def test_sub_steps_are_checked_at_load(load_app: LoadApp) -> None:
    with pytest.raises(ConfigError) as info:
        load_app("""
        pipelines:
          p:
            steps:
              - name: each
                type: step.foreach
                config: {collection: x, step: {type: step.sleep, config: {duration: 1s}}}
              - name: par
                type: step.parallel
                config:
                  steps:
                    - {name: a, type: step.set, config: {}}
                    - {name: a, type: step.nope}
        """)
    text = str(info.value)
    assert "[pipelines.p.steps[0].config.step.type]" in text and "cannot run as a sub-step" in text
    assert "[pipelines.p.steps[1].config.steps.0.config]" in text and "'values'" in text


async def test_parallel_branches(load_app: LoadApp, engine: treadle.Engine) -> None:
    text = """
    pipelines:
      p:
        steps:
          - name: enrich
            type: step.parallel
            config:
              error_strategy: {strategy}
              steps:
                - {{name: profile, type: step.set, config: {{values: {{p: "{{{{ .id }}}}"}}}}}}
                - {{name: broken, type: test.fail, config: {{message: down}}}}
                - {{name: orders, type: step.jq, config: {{expression: "{{n: 2}}"}}}}
    """
    app = load_app(text.format(strategy="collect_errors"), step_types=test_steps())
    eid, out = await app.run_pipeline(engine, "p", {"id": 7})
    assert out["results"] == {"profile": {"p": 7}, "orders": {"result": {"n": 2}, "n": 2}}
    assert out["errors"] == {"broken": "down"} and (out["completed"], out["failed"]) == (2, 1)
    names = [(s.name, s.step_type) for s in (await engine.get(eid)).steps]
    assert names == [("enrich.profile", "step.set"), ("enrich.broken", "test.fail"),
                     ("enrich.orders", "step.jq"), ("enrich", "step.parallel")]
    app = load_app(text.format(strategy="fail_fast"), step_types=test_steps(), name="b.yaml")
    with pytest.raises(treadle.ExecutionFailedError, match="a branch failed: down"):
        await app.run_pipeline(engine, "p", {"id": 7})


async def test_retry_with_backoff(load_app: LoadApp, engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: flaky
            type: step.retry_with_backoff
            config:
              max_retries: 3
              initial_delay: 1s
              multiplier: 3
              step: {type: test.flaky, config: {fail_times: 2}}
    """, step_types=test_steps())
    eid, out = await app.run_pipeline(engine, "p", {})
    assert out == {"ok": True, "attempts": 3}
    retries = [e.data["delay"] for e in await engine.events(eid) if e.type == "retry.attempted"]
    assert retries == [1.0, 3.0]


async def test_sleep_and_wait_signal(load_app: LoadApp, engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: nap
            type: step.sleep
            config: {duration: "{{ .wait }}"}
          - name: approval
            type: step.wait_signal
            config: {signal: "approve-{{ .id }}", timeout: 1h}
      timeout:
        steps:
          - name: approval
            type: step.wait_signal
            on_error: skip
            config: {signal: never, timeout: 1h}
    """)
    handle = await app.start_pipeline(engine, "p", {"wait": "2h", "id": 4})
    await engine.signal(handle.id, "approve-4", {"by": "ann"})
    out = await handle.result()
    assert out["slept"] == 7200.0 and out["by"] == "ann" and out["payload"] == {"by": "ann"}
    _, out = await app.run_pipeline(engine, "timeout", {})
    assert out["_skipped"] is True and "did not arrive within 3600" in out["_error"]


async def test_workflow_call_sync_and_async(load_app: LoadApp,
                                            engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      parent:
        steps:
          - name: ship
            type: step.workflow_call
            config:
              workflow: shipping
              input: {order_id: "{{ .id }}"}
              output_mapping: {tracking: tracking, carrier: meta.carrier}
          - name: all
            type: step.workflow_call
            config: {workflow: shipping}
          - name: later
            type: step.workflow_call
            config: {workflow: shipping, mode: async, input: {order_id: 0}}
      shipping:
        steps:
          - name: label
            type: step.set
            config: {values: {tracking: "T-{{ .order_id }}", meta: {carrier: ups}}}
      failing:
        steps:
          - name: call
            type: step.workflow_call
            config: {workflow: broken}
      broken:
        steps:
          - {name: x, type: step.validate, config: {required_fields: [nope]}}
    """)
    eid, out = await app.run_pipeline(engine, "parent", {"id": 5})
    assert out["tracking"] == "T-5" and out["carrier"] == "ups"
    assert out["result"]["id"] == 5 and out["result"]["tracking"] == "T-<no value>"
    assert out["dispatched"] is True and out["mode"] == "async"
    child = await engine.get(out["execution_id"])
    assert child.workflow == "pipeline:shipping"
    await engine.outcome(out["execution_id"])
    assert (await engine.get(out["execution_id"])).output["tracking"] == "T-0"
    children = (await engine.list(parent_id=eid)).items
    assert len(children) == 2
    with pytest.raises(treadle.ExecutionFailedError, match="missing required fields: nope"):
        await app.run_pipeline(engine, "failing", {})
