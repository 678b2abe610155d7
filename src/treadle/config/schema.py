"""`config_schema()`: one JSON Schema (draft 2020-12) for a whole application file, generated
from the module and step registries — for editors (`treadle validate --schema`) and for the
validator.

Modules and steps are discriminated on `type` with `if`/`then`: a module whose `type` is
`storage.sqlite` has its `config` checked against that type's schema, and so on. Module and
step configs, pipelines, steps and modules are closed (`additionalProperties: false`) so
editors flag typos; the validator reports unknown keys as warnings, as the Go engine ignores
them.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.modules.registry import ModuleRegistry
    from treadle.steps.registry import StepRegistry

SCHEMA_ID = "urn:treadle:application-config"
_DURATION: dict[str, Any] = {"type": ["string", "number"],
                             "description": "A Go duration (`30s`, `1m30s`) or seconds."}
_NAMES: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


def _closed(schema: dict[str, Any], extra_props: dict[str, Any] | None = None) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out.setdefault("type", "object")
    if extra_props:
        out["properties"] = {**out.get("properties", {}), **extra_props}
    out.setdefault("additionalProperties", False)
    return out


def _dispatch(types: dict[str, dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [
        {"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
         "then": {"properties": {"config": {"$ref": f"#/$defs/{prefix}{name}"}}}}
        for name in types
    ]


def _trigger_defs() -> dict[str, Any]:
    target = {
        "workflow": {"type": "string", "description": "`pipeline:<name>`."},
        "action": {"type": "string"},
        "params": {"type": "object", "description": "Static data added to the trigger data."},
    }
    route = {"type": "object", "properties": {
        "path": {"type": "string", "description": "Route pattern (`{id}`, `{rest...}`)."},
        "route": {"type": "string", "description": "Alias of path (seed documentation)."},
        "method": {"type": "string", "default": "GET"},
        "middlewares": {**_NAMES, "description": "http.middleware modules, in order."},
        "router": {"type": "string", "description": "http.router module."},
        "timeout": {**_DURATION, "description": "Longest wait for the response."},
        **target}}
    subscription = {"type": "object", "properties": {
        "topic": {"type": "string"},
        "event": {"type": "string", "description": "Only messages whose type is this."},
        "filter": {"type": "object", "description": "{dotted.path: value} that must match."},
        "broker": {"type": "string", "description": "messaging.broker module."},
        **target}}
    job = {"type": "object", "properties": {
        "cron": {"type": "string", "description": "Cron expression or `@every 30s`."},
        "timezone": {"type": "string", "description": "IANA zone (default UTC)."},
        "scheduler": {"type": "string", "description": "scheduler.modular module."},
        **target}}
    return {
        "trigger.http": {"anyOf": [
            {"type": "object", "required": ["routes"],
             "properties": {"routes": {"type": "array", "items": route}}}, route]},
        "trigger.event": {"anyOf": [
            {"type": "object", "required": ["subscriptions"],
             "properties": {"subscriptions": {"type": "array", "items": subscription}}},
            subscription]},
        "trigger.schedule": {"anyOf": [
            {"type": "object", "required": ["jobs"],
             "properties": {"jobs": {"type": "array", "items": job}}}, job]},
    }


def config_schema(
    *,
    module_types: ModuleRegistry | None = None,
    step_types: StepRegistry | None = None,
) -> dict[str, Any]:
    """The JSON Schema of an application file (see the module docs)."""
    from treadle.config.loader import TOP_LEVEL_KEYS
    from treadle.modules.registry import default_registry as default_modules
    from treadle.pipelines._plan import STRATEGIES
    from treadle.steps.registry import default_registry as default_steps
    from treadle.triggers.spec import TRIGGER_TYPES

    modules = module_types or default_modules
    steps = step_types or default_steps
    defs: dict[str, Any] = {}
    module_schemas: dict[str, dict[str, Any]] = {}
    for spec in modules:
        aliases = {alias: {"description": f"Alias of `{canonical}`."}
                   for alias, canonical in spec.aliases}  # fmt: skip
        module_schemas[spec.type] = _closed(spec.schema, aliases)
        defs[f"module.{spec.type}"] = {**module_schemas[spec.type],
                                       "description": spec.doc.split("\n\n")[0]}
    step_schemas = {spec.type: spec.schema for spec in steps}
    for name, schema in step_schemas.items():
        defs[f"step.config.{name}"] = _closed(schema)
    defs["module"] = {
        "type": "object",
        "required": ["name", "type"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "type": {"type": "string", "enum": sorted(module_schemas)},
            "config": {"type": "object"},
            "dependsOn": _NAMES,
            "branches": {"type": "object", "additionalProperties": {"type": "string"}},
            "environments": {"type": "object",
                             "additionalProperties": {"type": ["object", "null"]}},
        },
        "additionalProperties": False,
        "allOf": _dispatch(module_schemas, "module."),
    }
    retry = {"type": "object", "properties": {
        "max_attempts": {"type": "integer", "minimum": 1},
        "backoff": {"enum": ["exponential", "linear", "constant", "fixed"]},
        "initial_delay": _DURATION, "max_delay": _DURATION,
        "multiplier": {"type": "number", "minimum": 1}, "jitter": {"type": "boolean"}},
        "additionalProperties": False}  # fmt: skip
    step_props: dict[str, Any] = {
        "name": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": sorted(step_schemas)},
        "config": {"type": "object"},
        "if": {"type": "string", "description": "Run only when this template is truthy."},
        "skip_if": {"type": "string", "description": "Skip when this template is truthy."},
        "on_error": {"enum": list(STRATEGIES)},
        "timeout": _DURATION,
        "error_status": {"type": "integer", "minimum": 100, "maximum": 599},
        "retry": retry,
        "compensate": {"$ref": "#/$defs/compensate"},
    }
    defs["step"] = {"type": "object", "required": ["name", "type"], "properties": step_props,
                    "additionalProperties": False,
                    "allOf": _dispatch(step_schemas, "step.config.")}  # fmt: skip
    defs["compensate"] = {"type": "object", "required": ["type"],
                          "properties": {k: step_props[k] for k in ("name", "type", "config")},
                          "additionalProperties": False,
                          "allOf": _dispatch(step_schemas, "step.config.")}  # fmt: skip
    defs.update(_trigger_defs())
    inline_trigger = {
        "type": "object", "required": ["type"],
        "properties": {"type": {"enum": list(TRIGGER_TYPES)}, "config": {"type": "object"}},
        "allOf": [{"if": {"properties": {"type": {"const": t}}, "required": ["type"]},
                   "then": {"properties": {"config": {"$ref": f"#/$defs/trigger.{t}"}}}}
                  for t in ("http", "event", "schedule")],
    }  # fmt: skip
    defs["pipeline"] = {
        "type": ["object", "null"],
        "properties": {
            "trigger": inline_trigger,
            "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
            "on_error": {"enum": list(STRATEGIES)},
            "timeout": _DURATION,
            "compensation": {"type": "array", "items": {"$ref": "#/$defs/step"}},
            "outputs": {"type": "object"},
            "strict_templates": {"type": "boolean"},
            "retry": retry,
            "saga": {"type": "object", "properties": {
                "enabled": {"type": "boolean"}, "timeout": _DURATION,
                "compensation_order": {"type": "string"}}},
            "idempotency": {"type": "object", "required": ["key_template"], "properties": {
                "key_template": {"type": "string"}, "ttl": _DURATION}},
            "dead_letter": {"type": "object", "additionalProperties": False, "properties": {
                "enabled": {"type": "boolean"}, "retention": _DURATION,
                "alert_threshold": {"type": "integer", "minimum": 1},
                "replayable": {"type": "boolean"}}},
        },
        "additionalProperties": False,
    }  # fmt: skip
    named_trigger = {
        "type": "object",
        "allOf": [{"if": {"properties": {"type": {"const": t}}, "required": ["type"]},
                   "then": {"properties": {"config": {"$ref": f"#/$defs/trigger.{t}"}}}}
                  for t in ("http", "event", "schedule")],
    }  # fmt: skip
    trigger_map = {"type": "object", "properties": {
        t: {"$ref": f"#/$defs/trigger.{t}"} for t in ("http", "event", "schedule")},
        "additionalProperties": named_trigger}  # fmt: skip
    containers = {"list": {"type": ["array", "null"]}, "mapping": {"type": ["object", "null"]},
                  "scalar": {"type": ["string", "number", "boolean", "null"]}}  # fmt: skip
    props: dict[str, Any] = {key: dict(containers[kind]) for key, kind in TOP_LEVEL_KEYS.items()}
    props.update(
        imports={"type": ["array", "null"], "items": {"type": "string"}},
        modules={"type": ["array", "null"], "items": {"$ref": "#/$defs/module"}},
        pipelines={"type": ["object", "null"],
                   "additionalProperties": {"$ref": "#/$defs/pipeline"}},
        triggers={"anyOf": [{"type": "null"}, trigger_map,
                            {"type": "array", "items": {"type": "object", "required": [
                                "name", "type"], "allOf": named_trigger["allOf"]}}]},
        reverseproxy={"anyOf": [{"type": "null"}, {"$ref": "#/$defs/module.reverseproxy"}],
                      "description": "The reverseproxy / http.proxy modules' config (modular)."},
        workflows={"type": ["object", "array", "null"],
                   "description": "Workflow sections by type (http, messaging, statemachine...)."},
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Treadle application (GoCodeAlone/workflow format)",
        "type": "object",
        "properties": props,
        "patternProperties": {"^x-": {}},
        "additionalProperties": False,
        "$defs": defs,
    }


__all__ = ["SCHEMA_ID", "config_schema"]
