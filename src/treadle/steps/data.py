"""Data steps: step.set, step.log, step.validate, step.transform, step.conditional, step.jq."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from treadle.errors import require
from treadle.steps._context import PipelineContext
from treadle.steps.errors import StepFailedError, ValidationFailedError
from treadle.steps.registry import Checker, register

logger = logging.getLogger("treadle.pipeline")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR}  # fmt: skip


# -- step.set -------------------------------------------------------------------------------


@register(
    "step.set",
    pure=True,
    doc="""
Sets values in the pipeline context. Every value is rendered as a template; a value that is
exactly one `{{ }}` action keeps its native type. The values are the step's output, so they are
merged into the context and readable at `steps.<name>`.
""",
    schema={
        "type": "object",
        "required": ["values"],
        "properties": {
            "values": {"type": "object", "minProperties": 1,
                       "description": "Keys to set; values may contain templates."},
        },
        "additionalProperties": False,
    },
    outputs={"(each key of values)": "the rendered value"},
    example="""
- name: defaults
  type: step.set
  config:
    values:
      status: pending
      order_id: "{{ .steps.parse.body.id }}"
""",
)
async def set_values(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    values = config["values"]
    return dict(values) if isinstance(values, dict) else {}


# -- step.log -------------------------------------------------------------------------------


@register(
    "step.log",
    pure=True,
    doc="Logs a rendered message at a level, on the `treadle.pipeline` logger.",
    schema={
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "minLength": 1,
                        "description": "Message to log (templates allowed)."},
            "level": {"enum": ["debug", "info", "warn", "error"], "default": "info",
                      "description": "Log level."},
        },
        "additionalProperties": False,
    },
    outputs={},
    example="""
- name: trace
  type: step.log
  config:
    level: info
    message: "order {{ .order_id }} accepted"
""",
)
async def log_message(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    level = _LEVELS.get(str(config.get("level") or "info"), logging.INFO)
    logger.log(level, "%s", config["message"],
               extra={"pipeline": ctx.pipeline, "step": ctx.step})  # fmt: skip
    return {}


# -- step.validate --------------------------------------------------------------------------


def _check_validate(config: dict[str, Any], checker: Checker) -> None:
    strategy = config.get("strategy") or "required_fields"
    if strategy == "json_schema":
        if not isinstance(config.get("schema"), dict):
            checker.fail("the json_schema strategy needs a 'schema' mapping", "schema")
        jsonschema = require("jsonschema", "config")
        try:
            jsonschema.validators.validator_for(config["schema"]).check_schema(config["schema"])
        except jsonschema.SchemaError as exc:
            checker.fail(f"invalid JSON Schema: {exc.message}", "schema")
    elif strategy == "required_fields":
        if not config.get("required_fields"):
            checker.fail("the required_fields strategy needs a non-empty 'required_fields' list",
                         "required_fields")  # fmt: skip
    else:
        checker.fail(f"unknown strategy {strategy!r} (expected json_schema or required_fields)",
                     "strategy")  # fmt: skip


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    jsonschema = require("jsonschema", "config")
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


_BY_IDENTITY: dict[int, tuple[dict[str, Any], Any]] = {}


def _validator_of(schema: dict[str, Any]) -> Any:
    """The validator of `schema`. A step's raw `schema` is the same object on every run, so
    it is found by identity (kept alive with it) before falling back to its JSON text."""
    found = _BY_IDENTITY.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    validator = _validator(json.dumps(schema, sort_keys=True))
    if len(_BY_IDENTITY) >= 256:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(schema)] = (schema, validator)
    return validator


def _validate_source(config: dict[str, Any], ctx: PipelineContext) -> Any:
    source = config.get("source")
    if not source:
        return ctx.current
    data = ctx.lookup(str(source), default=None)
    if data is None:
        raise ValidationFailedError(f"validate step {ctx.step!r}: source {source!r} resolved "
                                    "to nothing")  # fmt: skip
    return data


@register(
    "step.validate",
    pure=True,
    doc="""
Validates the pipeline context (or the value at `source`) and fails the step when it does not
pass. Strategy `required_fields` checks that each listed key exists; strategy `json_schema`
validates against a full JSON Schema (any draft, formats checked) and reports every violation
with its path.
""",
    schema={
        "type": "object",
        "properties": {
            "strategy": {"enum": ["required_fields", "json_schema"],
                         "default": "required_fields", "description": "How to validate."},
            "required_fields": {"type": "array", "items": {"type": "string"},
                                "description": "Keys that must exist (required_fields)."},
            "schema": {"type": "object", "description": "JSON Schema (json_schema)."},
            "source": {"type": "string",
                       "description": "Dotted path of the value to validate "
                                      "(`steps.parse.body`); default: the whole context."},
        },
        "additionalProperties": False,
    },
    raw_keys=("schema",),
    check=_check_validate,
    outputs={},
    example="""
- name: check-order
  type: step.validate
  config:
    strategy: json_schema
    source: steps.parse.body
    schema:
      type: object
      required: [id, qty]
      properties:
        qty: {type: integer, minimum: 1}
""",
)
async def validate(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    data = _validate_source(config, ctx)
    if (config.get("strategy") or "required_fields") == "json_schema":
        validator = _validator_of(config["schema"])
        if validator.is_valid(data):
            return {}
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            problems = "; ".join(
                f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in errors[:10]
            )
            raise ValidationFailedError(f"validate step {ctx.step!r}: {problems}")
        return {}
    if not isinstance(data, Mapping):
        raise ValidationFailedError(f"validate step {ctx.step!r}: expected a mapping to check "
                                    f"required fields in, got {type(data).__name__}")  # fmt: skip
    missing = [f for f in config.get("required_fields") or [] if f not in data]
    if missing:
        raise ValidationFailedError(
            f"validate step {ctx.step!r}: missing required fields: {', '.join(missing)}"
        )
    return {}


# -- step.transform -------------------------------------------------------------------------


def _extract(data: Any, path: str) -> Any:
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                raise StepFailedError(f"key {part!r} not found in path {path!r}")
            current = current[part]
        elif isinstance(current, list):
            if not part.isdigit() or int(part) >= len(current):
                raise StepFailedError(f"index {part!r} out of range in path {path!r}")
            current = current[int(part)]
        else:
            raise StepFailedError(f"cannot navigate into {type(current).__name__} at {part!r}")
    return current


def apply_operations(ops: list[dict[str, Any]], data: Any) -> Any:
    """`data` after the step.transform operations `ops`, in order (a data.transformer's
    named transformation)."""
    for op in ops:
        data = _apply_op(op, data)
    return data


def _apply_op(op: Mapping[str, Any], data: Any) -> Any:
    kind = op.get("type")
    cfg = op.get("config") or {}
    if kind == "extract":
        return _extract(data, str(cfg.get("path") or ""))
    if kind in ("map", "filter") and not isinstance(data, Mapping):
        raise StepFailedError(f"{kind} needs a mapping, got {type(data).__name__}")
    if kind == "map":
        result = dict(data)
        for old, new in (cfg.get("mappings") or {}).items():
            if isinstance(new, str) and old in result:
                result[new] = result.pop(old)
        return result
    if kind == "filter":
        keep = {f for f in cfg.get("fields") or [] if isinstance(f, str)}
        return {k: v for k, v in data.items() if k in keep}
    if kind == "convert":
        source, target = cfg.get("from"), cfg.get("to")
        if (source, target) == ("json", "json"):
            return json.loads(json.dumps(data))
        if (source, target) == ("json", "string"):
            return json.dumps(data, separators=(",", ":"))
        if (source, target) == ("string", "json"):
            if not isinstance(data, str):
                raise StepFailedError("string->json conversion needs a string")
            return json.loads(data)
        raise StepFailedError(f"unsupported conversion: {source} -> {target}")
    raise StepFailedError(f"unknown operation type: {kind}")


_OPS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"enum": ["extract", "map", "filter", "convert"]},
            "config": {"type": "object"},
        },
    },
    "description": "Operations applied in order: extract {path}, map {mappings: {old: new}}, "
                   "filter {fields: [...]}, convert {from, to} (json/string).",
}


def _check_transform(config: dict[str, Any], checker: Checker) -> None:
    if not config.get("transformer") and not config.get("operations"):
        checker.fail("must specify a 'transformer' module or inline 'operations'")


@register(
    "step.transform",
    pure=True,
    doc="""
Transforms the pipeline context with a sequence of operations (`extract` a dotted path, `map`
renames keys, `filter` keeps keys, `convert` between JSON and text), or with a named pipeline of
a `data.transformer` module. The result is the step's `data` output.
""",
    schema={
        "type": "object",
        "properties": {
            "operations": _OPS_SCHEMA,
            "transformer": {"type": "string",
                            "description": "Name of a data.transformer module."},
            "pipeline": {"type": "string",
                         "description": "Named transformation of that module."},
        },
        "additionalProperties": False,
    },
    check=_check_transform,
    outputs={"data": "the transformed value"},
    example="""
- name: shape
  type: step.transform
  config:
    operations:
      - type: extract
        config: {path: body.customer}
      - type: filter
        config: {fields: [id, email]}
""",
)
async def transform(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    data: Any = ctx.current
    ops = config.get("operations") or []
    if config.get("transformer"):
        module = ctx.module(str(config["transformer"]), "transformer")
        if config.get("pipeline"):
            return {"data": await _maybe_await(module.transform(config["pipeline"], data))}
    for i, op in enumerate(ops):
        try:
            data = _apply_op(op, data)
        except (StepFailedError, ValueError) as exc:
            raise StepFailedError(f"transform step {ctx.step!r}: operation {i} "
                                  f"({op.get('type')}) failed: {exc}") from exc  # fmt: skip
    return {"data": data}


async def _maybe_await(value: Any) -> Any:
    import inspect

    return await value if inspect.isawaitable(value) else value


# -- step.conditional -----------------------------------------------------------------------


def field_template(field: str) -> str:
    """Go's buildFieldTemplate: `{{.a.b}}`, or `{{index . "a" "b-c"}}` for hyphenated names."""
    segments = field.split(".")
    if not any("-" in s for s in segments):
        return "{{." + field + "}}"
    return "{{index . " + " ".join(json.dumps(s) for s in segments) + "}}"


def _check_conditional(config: dict[str, Any], checker: Checker) -> None:
    routes = config.get("routes") or {}
    targets = [(f"routes.{k}", v) for k, v in routes.items()]
    if config.get("default"):
        targets.append(("default", config["default"]))
    if checker.step_names:
        for key, target in targets:
            if target not in checker.step_names:
                checker.fail(f"routes to unknown step {target!r}", key)


def _route(output: dict[str, Any]) -> str | None:
    nxt = output.get("next_step")
    return nxt if isinstance(nxt, str) and nxt else None


@register(
    "step.conditional",
    pure=True,
    doc="""
Jumps to another step of the pipeline by the value of a field. `field` is a dotted path
(`steps.check.found`, hyphenated names work) or a template; its text is looked up in `routes`
(value → step name), falling back to `default`. With no match and no default the step fails.
The jump is journaled as `conditional.routed`.
""",
    schema={
        "type": "object",
        "required": ["field", "routes"],
        "properties": {
            "field": {"type": "string", "minLength": 1,
                      "description": "Dotted path or template giving the value to route on."},
            "routes": {"type": "object", "minProperties": 1,
                       "additionalProperties": {"type": "string"},
                       "description": "Value (as text) → name of the step to run next."},
            "default": {"type": "string", "description": "Step to run when no route matches."},
        },
        "additionalProperties": False,
    },
    raw_keys=("field",),
    route=_route,
    check=_check_conditional,
    outputs={"matched_value": "the field's value as text", "next_step": "the chosen step",
             "used_default": "true when no route matched"},
    example="""
- name: check-found
  type: step.conditional
  config:
    field: steps.get-company.found
    routes:
      "false": not-found
    default: respond
""",
)
async def conditional(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    field = str(config["field"])
    from treadle.config.templates import is_template

    template = field if is_template(field) else field_template(field)
    value = ctx.render_text(template)
    routes = config["routes"]
    if value in routes:
        return {"matched_value": value, "next_step": routes[value]}
    if config.get("default"):
        return {"matched_value": value, "next_step": config["default"], "used_default": True}
    raise StepFailedError(f"conditional step {ctx.step!r}: value {value!r} not found in routes "
                          "and no default configured")  # fmt: skip


# -- step.jq --------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def compile_jq(expression: str) -> Any:
    """A compiled jq program (cached by expression)."""
    jq = require("jq", "jq")
    return jq.compile(expression)


def _check_jq(config: dict[str, Any], checker: Checker) -> None:
    try:
        compile_jq(str(config.get("expression", "")))
    except ValueError as exc:
        checker.fail(f"invalid jq expression: {str(exc).strip()}", "expression")


@register(
    "step.jq",
    pure=True,
    doc="""
Applies a jq expression (the `jq` package; programs are compiled once and cached) to the
pipeline context, or to the value at the dotted path `input_from`. The result is at `result`
(a list when the program yields several values); a single object result also has its keys
promoted to the step's output.
""",
    schema={
        "type": "object",
        "required": ["expression"],
        "properties": {
            "expression": {"type": "string", "minLength": 1, "description": "The jq program."},
            "input_from": {"type": "string",
                           "description": "Dotted path of the input (`steps.fetch.items`); "
                                          "default: the whole context."},
        },
        "additionalProperties": False,
    },
    raw_keys=("expression", "input_from"),
    check=_check_jq,
    outputs={"result": "the jq result", "(keys of an object result)": "promoted"},
    example="""
- name: extract-active
  type: step.jq
  config:
    input_from: steps.fetch-users.users
    expression: "[.[] | select(.active == true) | {id, email}]"
""",
)
async def jq_step(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    program = compile_jq(str(config["expression"]))
    source = config.get("input_from")
    data = ctx.current if not source else ctx.lookup(str(source))
    try:
        results = program.input_value(data).all()
    except ValueError as exc:
        raise StepFailedError(f"jq step {ctx.step!r}: expression error: {exc}") from exc
    if not results:
        return {"result": None}
    if len(results) > 1:
        return {"result": results}
    result = results[0]
    output: dict[str, Any] = {"result": result}
    if isinstance(result, dict):
        output.update(result)
    return output


__all__ = ["compile_jq", "field_template"]
