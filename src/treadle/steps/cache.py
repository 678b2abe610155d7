"""Cache steps: step.cache_get and step.cache_set, on a named cache module.

The module provides `get(key)` (the value, or None on a miss) and `set(key, value, ttl)`
(`ttl` in seconds, or None for the module's default); either may be async.
"""

from __future__ import annotations

import inspect
from typing import Any

from treadle.steps._context import PipelineContext
from treadle.steps._durations import parse_duration
from treadle.steps.errors import StepFailedError
from treadle.steps.registry import Checker, register


async def _call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@register(
    "step.cache_get",
    doc="""
Reads `key` (templates rendered) from a cache module into the output key `output` (default
`value`), with `cache_hit`. A miss gives `""` and `cache_hit: false`, or fails the step when
`miss_ok: false`.
""",
    schema={
        "type": "object",
        "required": ["cache", "key"],
        "properties": {
            "cache": {"type": "string", "minLength": 1, "description": "Cache module name."},
            "key": {"type": "string", "minLength": 1, "description": "Key (templates)."},
            "output": {"type": "string", "default": "value", "description": "Output key."},
            "miss_ok": {"type": "boolean", "default": True,
                        "description": "Whether a miss is fine."},
        },
        "additionalProperties": False,
    },
    outputs={"(output)": "the cached value", "cache_hit": "whether the key was found"},
    example="""
- name: cached-user
  type: step.cache_get
  config: {cache: cache, key: "user:{{ .user_id }}", output: user}
""",
)
async def cache_get(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    cache = ctx.module(str(config["cache"]), "cache")
    key = str(config["key"])
    output = str(config.get("output") or "value")
    value = await _call(cache.get(key))
    if value is None:
        if config.get("miss_ok", True) is False:
            raise StepFailedError(f"cache_get step {ctx.step!r}: cache miss for key {key!r}")
        return {output: "", "cache_hit": False}
    return {output: value, "cache_hit": True}


def _check_set(config: dict[str, Any], checker: Checker) -> None:
    if "ttl" in config:
        try:
            parse_duration(config["ttl"], "ttl")
        except ValueError as exc:
            checker.fail(str(exc), "ttl")


@register(
    "step.cache_set",
    doc="Writes `value` (templates rendered) under `key` in a cache module, with an optional "
        "`ttl`.",
    schema={
        "type": "object",
        "required": ["cache", "key", "value"],
        "properties": {
            "cache": {"type": "string", "minLength": 1, "description": "Cache module name."},
            "key": {"type": "string", "minLength": 1, "description": "Key (templates)."},
            "value": {"description": "Value to store (templates)."},
            "ttl": {"type": ["string", "number"], "description": "Time to live (`5m`)."},
        },
        "additionalProperties": False,
    },
    check=_check_set,
    outputs={"cached": "true"},
    example="""
- name: remember
  type: step.cache_set
  config: {cache: cache, key: "user:{{ .user_id }}", value: "{{ json .user }}", ttl: 5m}
""",
)
async def cache_set(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    cache = ctx.module(str(config["cache"]), "cache")
    ttl = parse_duration(config["ttl"], "ttl") if config.get("ttl") is not None else None
    await _call(cache.set(str(config["key"]), config["value"], ttl))
    return {"cached": True}
