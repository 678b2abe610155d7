"""Pipelines run as journaled executions: context, outputs, guards, jumps, journal."""

from __future__ import annotations

from typing import Any

import pytest

import treadle
from pipekit import CALLS, LoadApp, test_steps
from treadle.errors import ConfigError

BASIC = """
pipelines:
  orders:
    steps:
      - name: parse
        type: step.set
        config:
          values:
            order_id: "{{ .id }}"
            who: "{{ .trigger.customer }}"
      - name: price
        type: step.set
        config:
          values:
            total: "{{ mul .qty 3 }}"
            label: "order {{ .steps.parse.order_id }} for {{ .who }}"
      - name: override
        type: step.set
        config:
          values:
            who: "someone else"
"""


async def test_steps_merge_into_context_and_output(load_app: LoadApp,
                                                    engine: treadle.Engine) -> None:
    app = load_app(BASIC)
    eid, out = await app.run_pipeline(engine, "orders", {"id": 7, "qty": 2, "customer": "ann"})
    assert out == {"id": 7, "qty": 2, "customer": "ann", "order_id": 7, "who": "someone else",
                   "total": 6, "label": "order 7 for ann"}
    ex = await engine.get(eid)
    assert ex.workflow == "pipeline:orders"
    assert [(s.name, s.step_type, str(s.status)) for s in ex.steps] == [
        ("parse", "step.set", "completed"), ("price", "step.set", "completed"),
        ("override", "step.set", "completed")]
    assert ex.steps[1].input == [{"values": {"total": 6, "label": "order 7 for ann"}}]
    assert ex.steps[1].output == {"total": 6, "label": "order 7 for ann"}


async def test_engine_start_by_registered_name(load_app: LoadApp,
                                               engine: treadle.Engine) -> None:
    load_app(BASIC)
    handle = await engine.start("pipeline:orders", {"id": 1, "qty": 1, "customer": "bo"})
    out = await handle.result()
    assert out["total"] == 3


async def test_guards_skip_steps_and_are_journaled(load_app: LoadApp,
                                                   engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: always
            type: step.set
            config: {values: {a: 1}}
          - name: big-only
            type: step.set
            if: "{{ gt .n 10 }}"
            config: {values: {big: true}}
          - name: unless-small
            type: step.set
            skip_if: "${ n < 5 }"
            config: {values: {not_small: true}}
          - name: both
            type: step.set
            skip_if: "false"
            if: "false"
            config: {values: {both: true}}
    """)
    eid, out = await app.run_pipeline(engine, "p", {"n": 3})
    assert out == {"n": 3, "a": 1, "both": True}
    events = await engine.events(eid)
    skipped = [e.data for e in events if e.type == "step.skipped"]
    assert [(d["step_name"], d["reason"]) for d in skipped] == [
        ("big-only", "if"), ("unless-small", "skip_if")]
    ex = await engine.get(eid)
    assert [(s.name, str(s.status)) for s in ex.steps] == [
        ("always", "completed"), ("big-only", "skipped"), ("unless-small", "skipped"),
        ("both", "completed")]
    _, out = await app.run_pipeline(engine, "p", {"n": 20})
    assert out["big"] is True and out["not_small"] is True


async def test_conditional_jumps_and_journals_route(load_app: LoadApp,
                                                    engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      admin:
        steps:
          - name: get-company
            type: step.set
            config: {values: {found: "{{ .exists }}"}}
          - name: check-found
            type: step.conditional
            config:
              field: steps.get-company.found
              routes:
                "false": not-found
          - name: respond
            type: step.json_response
            config:
              status: 200
              body: {id: "{{ .id }}"}
          - name: not-found
            type: step.json_response
            config:
              status: 404
              body: {error: Company not found}
    """)
    eid, out = await app.run_pipeline(engine, "admin", {"id": 1, "exists": False})
    assert out["response_status"] == 404 and out["body"] == {"error": "Company not found"}
    routed = [e.data for e in await engine.events(eid) if e.type == "conditional.routed"]
    assert [(d["step_name"], d["route"]) for d in routed] == [("check-found", "not-found")]
    with pytest.raises(treadle.ExecutionFailedError, match="not found in routes"):
        await app.run_pipeline(engine, "admin", {"id": 1, "exists": True})


async def test_json_response_stops_the_pipeline(load_app: LoadApp,
                                                engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: respond
            type: step.json_response
            config: {status: 201, body_from: trigger}
          - name: never
            type: step.set
            config: {values: {ran: true}}
    """)
    eid, out = await app.run_pipeline(engine, "p", {"x": 1})
    assert out["response_status"] == 201 and out["body"] == {"x": 1} and "ran" not in out
    assert [s.name for s in (await engine.get(eid)).steps] == ["respond"]


async def test_pipeline_output_key_wins(load_app: LoadApp, engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        outputs:
          total: {type: number}
        steps:
          - name: out
            type: step.set
            config: {values: {_pipeline_output: {total: "{{ .n }}"}}}
    """)
    _, out = await app.run_pipeline(engine, "p", {"n": 4})
    assert out == {"total": 4}


async def test_strict_templates_name_the_missing_path(load_app: LoadApp,
                                                      engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      lax:
        steps:
          - name: s
            type: step.set
            config: {values: {v: "{{ .steps.nope.id }}", t: "x{{ .nothing }}"}}
      strict:
        strict_templates: true
        steps:
          - name: s
            type: step.set
            config: {values: {v: "{{ .steps.nope.id }}"}}
    """)
    _, out = await app.run_pipeline(engine, "lax", {})
    assert out == {"v": None, "t": "x<no value>"}
    with pytest.raises(treadle.ExecutionFailedError) as info:
        await app.run_pipeline(engine, "strict", {})
    assert "missing key steps.nope" in str(info.value)
    ex = await engine.get(info.value.execution_id)
    assert ex.steps[0].error is not None and ex.steps[0].error["type"].endswith("TemplateError")


async def test_meta_and_trigger_namespaces(load_app: LoadApp, engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: s
            type: step.set
            config:
              values:
                pipeline: "{{ .meta.pipeline }}"
                route: "{{ .meta.source }}"
                orig: "{{ .trigger.v }}"
          - name: t
            type: step.set
            config: {values: {v: 2}}
          - name: u
            type: step.set
            config: {values: {now_v: "{{ .v }}", trig_v: "{{ .trigger.v }}"}}
    """)
    _, out = await app.run_pipeline(engine, "p", {"v": 1}, meta={"source": "test"})
    assert out["pipeline"] == "p" and out["route"] == "test" and out["orig"] == 1
    assert out["now_v"] == 2 and out["trig_v"] == 1


def test_config_errors_are_located_and_collected(load_app: LoadApp) -> None:
    with pytest.raises(ConfigError) as info:
        load_app("""
        pipelines:
          p:
            on_error: explode
            timeout: soon
            steps:
              - name: a
                type: step.nope
              - name: b
                type: step.set
                config: {}
              - name: c
                type: step.conditional
                config:
                  field: x
                  routes: {"1": missing-step}
              - name: d
                type: step.jq
                config: {expression: ".a |||"}
              - name: e
                type: step.set
                retry: {max_attempts: 0}
                config: {values: {a: 1}}
        """)
    messages = [str(e) for e in info.value.errors]
    assert len(messages) == 7, messages
    text = "\n".join(messages)
    assert "app.yaml:4 [pipelines.p.on_error]" in text
    assert "[pipelines.p.timeout]" in text
    assert "unknown step type 'step.nope'; known step types: " in text and "step.set" in text
    assert "[pipelines.p.steps[1].config]" in text and "'values' is a required property" in text
    assert "[pipelines.p.steps[2].config.routes.1]" in text and "missing-step" in text
    assert "[pipelines.p.steps[3].config.expression]" in text and "invalid jq" in text
    assert "[pipelines.p.steps[4].retry]" in text


async def test_custom_step_types_and_modules(load_app: LoadApp,
                                             engine: treadle.Engine) -> None:
    types = test_steps()
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: r
            type: test.record
            config: {n: "{{ .n }}", output: {seen: "{{ .n }}"}}
    """, step_types=types)
    _, out = await app.run_pipeline(engine, "p", {"n": 5})
    assert out["seen"] == 5 and CALLS == [("r", {"n": 5, "output": {"seen": 5}})]


async def test_non_mapping_input_fails_clearly(load_app: LoadApp,
                                               engine: treadle.Engine) -> None:
    load_app(BASIC)
    handle = await engine.start("pipeline:orders", [1, 2])
    with pytest.raises(treadle.ExecutionFailedError, match="needs a mapping as input"):
        await handle.result()


async def test_engine_mocks_replace_steps_by_name(load_app: LoadApp,
                                                  registry: treadle.Registry,
                                                  store_url: str) -> None:
    app = load_app(BASIC)
    engine = treadle.Engine(store_url, registry=registry, mocks={"price": {"total": -1}})
    eid, out = await app.run_pipeline(engine, "orders", {"id": 1, "qty": 1, "customer": "x"})
    assert out["total"] == -1 and "label" not in out
    steps = (await engine.get(eid)).steps
    assert [s.mocked for s in steps] == [False, True, False]


def test_load_from_config_and_lookup_errors(tmp_path: Any, registry: treadle.Registry) -> None:
    from treadle.config import load_config_text
    from treadle.pipelines import load_application, workflow_name

    app = load_application(load_config_text(BASIC, filename=str(tmp_path / "x.yaml")),
                           registry=registry)
    assert app.pipeline("pipeline:orders") is app.pipeline("orders")
    assert workflow_name("orders") in registry.names()
    with pytest.raises(KeyError, match=r"no pipeline named 'nope' \(pipelines: orders\)"):
        app.pipeline("nope")
