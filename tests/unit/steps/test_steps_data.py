"""step.set, step.log, step.validate, step.transform, step.conditional, step.jq."""

from __future__ import annotations

import logging

import pytest

import treadle
from pipekit import LoadApp
from treadle.errors import ConfigError


async def run(load_app: LoadApp, engine: treadle.Engine, steps: str,
              data: dict[str, object] | None = None) -> dict[str, object]:  # fmt: skip
    app = load_app("pipelines:\n  p:\n    steps:\n" + steps)
    _, out = await app.run_pipeline(engine, "p", data or {})
    assert isinstance(out, dict)
    return out


async def fails(load_app: LoadApp, engine: treadle.Engine, steps: str,
                data: dict[str, object] | None = None) -> str:  # fmt: skip
    app = load_app("pipelines:\n  p:\n    steps:\n" + steps)
    with pytest.raises(treadle.ExecutionFailedError) as info:
        await app.run_pipeline(engine, "p", data or {})
    return str(info.value.error["message"])


async def test_set_keeps_native_types(load_app: LoadApp, engine: treadle.Engine) -> None:
    out = await run(load_app, engine, """
      - name: s
        type: step.set
        config:
          values:
            n: "{{ .n }}"
            items: "{{ .items }}"
            text: "n={{ .n }}"
            nested: {deep: ["{{ upper .name }}"]}
    """, {"n": 3, "items": [1, 2], "name": "ann"})
    assert out["n"] == 3 and out["items"] == [1, 2] and out["text"] == "n=3"
    assert out["nested"] == {"deep": ["ANN"]}


async def test_log_writes_rendered_message(load_app: LoadApp, engine: treadle.Engine,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="treadle.pipeline")
    out = await run(load_app, engine, """
      - name: say
        type: step.log
        config: {level: warn, message: "hello {{ .who }}"}
    """, {"who": "bob"})
    assert out == {"who": "bob"}
    record = next(r for r in caplog.records if r.name == "treadle.pipeline")
    assert record.getMessage() == "hello bob" and record.levelno == logging.WARNING
    assert record.step == "say"  # type: ignore[attr-defined]


async def test_validate_required_fields(load_app: LoadApp, engine: treadle.Engine) -> None:
    steps = """
      - name: check
        type: step.validate
        config: {required_fields: [a, b]}
    """
    assert await run(load_app, engine, steps, {"a": 1, "b": None}) == {"a": 1, "b": None}
    message = await fails(load_app, engine, steps, {"a": 1})
    assert message.endswith("missing required fields: b")


async def test_validate_json_schema_with_source(load_app: LoadApp,
                                                engine: treadle.Engine) -> None:
    steps = """
      - name: check
        type: step.validate
        config:
          strategy: json_schema
          source: trigger.body
          schema:
            type: object
            required: [id, items]
            properties:
              id: {type: string, format: email}
              items:
                type: array
                items:
                  type: object
                  required: [qty]
                  properties: {qty: {type: integer, minimum: 1}}
    """
    ok = {"body": {"id": "a@b.co", "items": [{"qty": 1}]}}
    assert (await run(load_app, engine, steps, ok))["body"] == ok["body"]
    message = await fails(load_app, engine, steps,
                          {"body": {"id": "nope", "items": [{"qty": 0}, {}]}})
    assert "id: 'nope' is not a 'email'" in message
    assert "items/0/qty: 0 is less than the minimum of 1" in message
    assert "items/1: 'qty' is a required property" in message


def test_validate_config_is_checked(load_app: LoadApp) -> None:
    with pytest.raises(ConfigError) as info:
        load_app("""
        pipelines:
          p:
            steps:
              - {name: a, type: step.validate, config: {strategy: json_schema}}
              - {name: b, type: step.validate, config: {strategy: json_schema, schema: {type: 5}}}
              - {name: c, type: step.validate, config: {}}
        """)
    text = str(info.value)
    assert "needs a 'schema' mapping" in text and "invalid JSON Schema" in text
    assert "needs a non-empty 'required_fields'" in text


async def test_transform_operations(load_app: LoadApp, engine: treadle.Engine) -> None:
    out = await run(load_app, engine, """
      - name: shape
        type: step.transform
        config:
          operations:
            - {type: extract, config: {path: body.customer}}
            - {type: map, config: {mappings: {mail: email}}}
            - {type: filter, config: {fields: [id, email]}}
      - name: text
        type: step.transform
        config:
          operations:
            - {type: extract, config: {path: data}}
            - {type: convert, config: {from: json, to: string}}
    """, {"body": {"customer": {"id": 1, "mail": "a@b", "pw": "x"}}})
    assert out["data"] == '{"id":1,"email":"a@b"}'
    message = await fails(load_app, engine, """
      - name: shape
        type: step.transform
        config:
          operations: [{type: extract, config: {path: body.nope}}]
    """, {"body": {}})
    assert "operation 0 (extract) failed: key 'nope' not found" in message


async def test_transform_module(load_app: LoadApp, engine: treadle.Engine) -> None:
    class Upper:
        def transform(self, pipeline: str, data: dict[str, object]) -> dict[str, object]:
            return {k.upper(): v for k, v in data.items()} | {"pipeline": pipeline}

    app = load_app("""
    pipelines:
      p:
        steps:
          - name: t
            type: step.transform
            config: {transformer: up, pipeline: shout}
    """, modules={"up": Upper()})
    _, out = await app.run_pipeline(engine, "p", {"a": 1})
    assert out["data"] == {"A": 1, "pipeline": "shout"}


@pytest.mark.parametrize(("value", "target"), [(True, "yes"), (False, "no"), (None, "other")])
async def test_conditional_field_text_and_default(load_app: LoadApp, engine: treadle.Engine,
                                                  value: object, target: str) -> None:
    out = await run(load_app, engine, """
      - name: src
        type: step.set
        config: {values: {flag: "{{ .v }}"}}
      - name: pick
        type: step.conditional
        config:
          field: steps.src.flag
          routes: {"true": "yes", "false": "no"}
          default: other
      - {name: "yes", type: step.set, config: {values: {went: "yes"}}}
      - {name: "no", type: step.set, config: {values: {went: "no"}}}
      - {name: other, type: step.set, config: {values: {went: other}}}
    """, {"v": value})
    assert out["next_step"] == target and out["went"] == "other"  # later steps run in order
    assert out["matched_value"] == {True: "true", False: "false", None: "<no value>"}[value]


async def test_conditional_hyphenated_and_template_fields(load_app: LoadApp,
                                                          engine: treadle.Engine) -> None:
    out = await run(load_app, engine, """
      - name: get-thing
        type: step.set
        config: {values: {kind: b}}
      - name: by-path
        type: step.conditional
        config: {field: steps.get-thing.kind, routes: {b: by-template}}
      - {name: skipped, type: step.set, config: {values: {skipped: true}}}
      - name: by-template
        type: step.conditional
        config: {field: "{{ upper .kind }}", routes: {B: end}}
      - {name: end, type: step.set, config: {values: {end: true}}}
    """)
    assert out["end"] is True and "skipped" not in out


async def test_jq_result_and_promotion(load_app: LoadApp, engine: treadle.Engine) -> None:
    out = await run(load_app, engine, """
      - name: active
        type: step.jq
        config:
          input_from: users
          expression: "[.[] | select(.active) | {id}]"
      - name: summary
        type: step.jq
        config: {expression: "{count: (.result | length), first: .result[0].id}"}
      - name: many
        type: step.jq
        config: {expression: ".users[].id"}
      - name: none
        type: step.jq
        config: {expression: "empty"}
    """, {"users": [{"id": 1, "active": True}, {"id": 2, "active": False}]})
    assert out["count"] == 1 and out["first"] == 1
    assert out["result"] is None  # the last step yielded nothing


async def test_jq_runtime_error_and_missing_input(load_app: LoadApp,
                                                  engine: treadle.Engine) -> None:
    message = await fails(load_app, engine, """
      - name: bad
        type: step.jq
        config: {expression: 'error("custom failure")'}
    """)
    assert "expression error: custom failure" in message
    message = await fails(load_app, engine, """
      - name: bad
        type: step.jq
        config: {expression: ., input_from: steps.nope.items}
    """)
    assert "path 'steps.nope.items'" in message


def test_jq_programs_are_compiled_once() -> None:
    from treadle.steps.data import compile_jq

    assert compile_jq(".a | . + 1") is compile_jq(".a | . + 1")
