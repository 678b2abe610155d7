"""Flow steps, built from durable calls: step.foreach, step.parallel, step.retry_with_backoff,
step.sleep, step.wait_signal, step.workflow_call.

They run inside the workflow (`kind="flow"`): their waits are durable timers, signal waits and
child executions, and their sub-steps are journaled steps of their own (a foreach item, a
parallel branch), so a resumed pipeline does not redo finished items. Their own outcome is then
journaled as the configured step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.engine.current import current_step
from treadle.journal.retry import RetryPolicy
from treadle.steps._context import PipelineContext
from treadle.steps._durations import parse_duration
from treadle.steps._runtime import StepInput, bounded_gather, task_function
from treadle.steps.errors import StepFailedError
from treadle.steps.registry import (
    Checker,
    StepConfigError,
    StepImpl,
    StepRegistry,
    StepType,
    default_registry,
    register,
    schema_problems,
)

_STEP_DEF: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                   "config": {"type": "object"}},
}


def _types(pc: PipelineContext) -> StepRegistry:
    return pc.runtime.step_types if pc.runtime is not None else default_registry


def _check_substep(raw: Any, key: str, checker: Checker) -> None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        checker.fail("a sub-step must be a mapping with a type", key)
        return
    spec = checker.registry.find(raw["type"])
    if spec is None:
        known = ", ".join(checker.registry.types())
        checker.fail(f"unknown step type {raw['type']!r}; known step types: {known}",
                     f"{key}.type")  # fmt: skip
        return
    if spec.kind != "task":
        checker.fail(f"{spec.type} cannot run as a sub-step", f"{key}.type")
    config = raw.get("config") or {}
    for path, message in schema_problems(spec, config):
        checker.fail(f"{spec.type}: {message}", ".".join([key, "config", *map(str, path)]))
    if spec.check is not None:
        try:
            spec.check(config, Checker(checker.registry))
        except StepConfigError as exc:
            checker.fail(f"{spec.type}: {exc.message}",
                         f"{key}.config.{exc.key}" if exc.key else f"{key}.config")


class _Sub:
    __slots__ = ("config", "name", "spec")

    def __init__(self, name: str, spec: StepType, config: dict[str, Any]) -> None:
        self.name, self.spec, self.config = name, spec, config


def _subs(pc: PipelineContext, raws: list[Any], default_names: list[str]) -> list[_Sub]:
    types = _types(pc)
    out = []
    for raw, default in zip(raws, default_names, strict=True):
        name = str(raw.get("name") or default)
        out.append(_Sub(name, types.substep(name, str(raw["type"])),
                        dict(raw.get("config") or {})))
    return out


def _render(sub: _Sub, pc: PipelineContext) -> dict[str, Any]:
    from treadle.config.templates import render_value

    data = pc.data()
    raw = sub.spec.raw_keys
    return {k: v if k in raw else render_value(v, data, strict=pc.strict)
            for k, v in sub.config.items()}  # fmt: skip


def _sequence(subs: list[_Sub]) -> StepImpl:
    """An implementation running `subs` in order against one context (a foreach item)."""

    async def impl(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for sub in subs:
            pc.step = sub.name
            output = await sub.spec.impl(_render(sub, pc), pc)
            pc.merge(sub.name, output)
            result.update(output)
            if sub.spec.stops is not None and sub.spec.stops(output):
                break
        return result

    return impl


# -- step.foreach ---------------------------------------------------------------------------


def _collection(config: dict[str, Any], pc: PipelineContext) -> list[Any]:
    value = config["collection"]
    if isinstance(value, str):
        value = pc.lookup(value, default=None)
        if value is None:
            raise StepFailedError(f"foreach step {pc.step!r}: collection "
                                  f"{config['collection']!r} not found in context")  # fmt: skip
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [{"key": k, "value": v} for k, v in value.items()]
    if not isinstance(value, list):
        raise StepFailedError(f"foreach step {pc.step!r}: expected a list, "
                              f"got {type(value).__name__}")  # fmt: skip
    return value


def _check_foreach(config: dict[str, Any], checker: Checker) -> None:
    if "step" in config and "steps" in config:
        checker.fail("'step' and 'steps' are mutually exclusive")
    if isinstance(config.get("step"), Mapping):
        _check_substep(config["step"], "step", checker)
    for i, raw in enumerate(config.get("steps") or []):
        _check_substep(raw, f"steps.{i}", checker)


@register(
    "step.foreach",
    kind="flow",
    doc="""
Runs sub-steps for each item of a collection. `collection` is a dotted path (`steps.fetch.rows`)
or a template giving a list (a mapping iterates as `{key, value}` items). Each item sees the
context plus `item_var` (default `item`), `index_key` (default `index`) and `foreach`. Each item
is one journaled step (`<name>[<index>]`), so a resumed pipeline keeps finished items. With
`concurrency` N > 0 up to N items run at once; `error_strategy: collect_errors` records failed
items as `{_error, _index}` instead of failing the step.
""",
    schema={
        "type": "object",
        "required": ["collection"],
        "properties": {
            "collection": {"description": "Dotted path or template giving the list."},
            "item_var": {"type": "string", "default": "item"},
            "item_key": {"type": "string", "description": "Older name of item_var."},
            "index_key": {"type": "string", "default": "index"},
            "step": {**_STEP_DEF, "description": "One sub-step per item."},
            "steps": {"type": "array", "items": _STEP_DEF,
                      "description": "Sub-steps run in order per item."},
            "concurrency": {"type": "integer", "minimum": 0, "default": 0,
                            "description": "Items at once; 0 runs them one by one."},
            "error_strategy": {"enum": ["fail_fast", "collect_errors"],
                               "default": "fail_fast"},
        },
        "additionalProperties": False,
    },
    raw_keys=("step", "steps"),
    check=_check_foreach,
    outputs={"results": "each item's merged sub-step outputs", "count": "number of items",
             "error_count": "failed items (collect_errors)"},
    example="""
- name: notify-all
  type: step.foreach
  config:
    collection: steps.fetch.rows
    item_var: user
    concurrency: 4
    step:
      type: step.http_call
      config: {url: "https://hooks.example/{{ .user.id }}", method: POST}
""",
)
async def foreach(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
    items = _collection(config, pc)
    if "step" in config:
        subs = _subs(pc, [config["step"]], ["step"])
    else:
        raws = list(config.get("steps") or [])
        subs = _subs(pc, raws, [f"sub-{i}" for i in range(len(raws))])
    if not items:
        return {"results": [], "count": 0}
    item_var = str(config.get("item_var") or config.get("item_key") or "item")
    index_key = str(config.get("index_key") or "index")
    collect = config.get("error_strategy") == "collect_errors"
    impl = _sequence(subs)
    item_type = subs[0].spec.type if len(subs) == 1 else "step.foreach"
    calls = []
    for i, item in enumerate(items):
        extra: dict[str, Any] = {item_var: item, index_key: i}
        if "foreach" not in (item_var, index_key) and "foreach" not in pc.current:
            extra["foreach"] = {"index": i, item_var: item}
        name = f"{pc.step}[{i}]"
        sf = task_function(name, item_type)
        calls.append(sf(StepInput({index_key: i, item_var: item}, pc.child(name, extra), impl)))
    results = await bounded_gather(pc, calls, concurrency=int(config.get("concurrency") or 1),
                                   return_exceptions=collect)  # fmt: skip
    if not collect:
        return {"results": results, "count": len(results)}
    collected: list[Any] = []
    errors = 0
    for i, result in enumerate(results):
        if isinstance(result, BaseException):
            errors += 1
            collected.append({"_error": str(result), "_index": i})
        else:
            collected.append(result)
    output: dict[str, Any] = {"results": collected, "count": len(collected)}
    if errors:
        output["error_count"] = errors
    return output


# -- step.parallel --------------------------------------------------------------------------


def _check_parallel(config: dict[str, Any], checker: Checker) -> None:
    seen: set[str] = set()
    for i, raw in enumerate(config.get("steps") or []):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if not isinstance(name, str) or not name:
            checker.fail("each branch needs a 'name'", f"steps.{i}")
        elif name in seen:
            checker.fail(f"duplicate branch name {name!r}", f"steps.{i}.name")
        else:
            seen.add(name)
        _check_substep(raw, f"steps.{i}", checker)


@register(
    "step.parallel",
    kind="flow",
    doc="""
Runs named sub-steps at the same time, each on its own copy of the context and as its own
journaled step (`<name>.<branch>`). `fail_fast` (default) fails on the first failed branch;
`collect_errors` keeps going and fails only if every branch failed.
""",
    schema={
        "type": "object",
        "required": ["steps"],
        "properties": {
            "steps": {"type": "array", "minItems": 1,
                      "items": {**_STEP_DEF, "required": ["name", "type"]},
                      "description": "Branches, each with a unique name."},
            "error_strategy": {"enum": ["fail_fast", "collect_errors"],
                               "default": "fail_fast"},
        },
        "additionalProperties": False,
    },
    raw_keys=("steps",),
    check=_check_parallel,
    outputs={"results": "branch → output", "errors": "branch → error",
             "completed": "successful branches", "failed": "failed branches"},
    example="""
- name: enrich
  type: step.parallel
  config:
    steps:
      - {name: profile, type: step.http_call, config: {url: "https://a.example/p"}}
      - {name: orders, type: step.http_call, config: {url: "https://b.example/o"}}
""",
)
async def parallel(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
    raws = list(config["steps"])
    subs = _subs(pc, raws, [str(r.get("name")) for r in raws])
    collect = config.get("error_strategy") == "collect_errors"
    calls = []
    for sub in subs:
        name = f"{pc.step}.{sub.name}"
        sf = task_function(name, sub.spec.type)
        calls.append(sf(StepInput({}, pc.child(name), _sequence([sub]))))
    try:
        results = await bounded_gather(pc, calls, concurrency=0, return_exceptions=collect)
    except Exception as exc:
        raise StepFailedError(f"parallel step {pc.step!r}: a branch failed: {exc}") from exc
    output: dict[str, Any] = {"results": {}, "errors": {}}
    for sub, result in zip(subs, results, strict=True):
        if isinstance(result, BaseException):
            output["errors"][sub.name] = str(result)
        else:
            output["results"][sub.name] = result
    output["completed"], output["failed"] = len(output["results"]), len(output["errors"])
    if output["failed"] == len(subs):
        raise StepFailedError(f"parallel step {pc.step!r}: all {len(subs)} branches failed")
    return output


# -- step.retry_with_backoff ----------------------------------------------------------------


def _check_retry(config: dict[str, Any], checker: Checker) -> None:
    for key in ("initial_delay", "max_delay"):
        if key in config:
            try:
                parse_duration(config[key], key)
            except ValueError as exc:
                checker.fail(str(exc), key)
    _check_substep(config.get("step"), "step", checker)


def _with_attempts(impl: StepImpl) -> StepImpl:
    async def run(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
        output = dict(await impl(config, pc))
        step = current_step()
        output["attempts"] = step.attempt if step else 1
        return output

    return run


@register(
    "step.retry_with_backoff",
    kind="flow",
    doc="""
Runs a nested step, retrying it on failure up to `max_retries` more times with exponential
back-off (`initial_delay` * `multiplier` ** n, at most `max_delay`). Each retry is journaled as
`retry.attempted`; the output is the nested step's output plus `attempts`.
""",
    schema={
        "type": "object",
        "required": ["max_retries", "step"],
        "properties": {
            "max_retries": {"type": "integer", "minimum": 0},
            "initial_delay": {"type": ["string", "number"], "default": "100ms"},
            "max_delay": {"type": ["string", "number"], "default": "30s"},
            "multiplier": {"type": "number", "minimum": 1, "default": 2.0},
            "step": {**_STEP_DEF, "description": "The step to retry."},
        },
        "additionalProperties": False,
    },
    raw_keys=("step",),
    check=_check_retry,
    outputs={"attempts": "attempts made", "(nested)": "the nested step's output"},
    example="""
- name: flaky
  type: step.retry_with_backoff
  config:
    max_retries: 3
    initial_delay: 200ms
    step:
      type: step.http_call
      config: {url: "https://flaky.example/"}
""",
)
async def retry_with_backoff(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
    (sub,) = _subs(pc, [config["step"]], ["step"])
    policy = RetryPolicy(
        retries=int(config["max_retries"]), backoff="exponential",
        initial_delay=parse_duration(config.get("initial_delay", "100ms"), "initial_delay"),
        max_delay=parse_duration(config.get("max_delay", "30s"), "max_delay"),
        multiplier=float(config.get("multiplier", 2.0)), jitter=False,
    )
    name = f"{pc.step}.{sub.name}"
    sf = task_function(name, sub.spec.type, policy=policy)
    out: dict[str, Any] = await sf(StepInput({}, pc.child(name), _with_attempts(_sequence([sub]))))
    return out


# -- waits ----------------------------------------------------------------------------------


def _check_duration(key: str, required: bool) -> Any:
    def check(config: dict[str, Any], checker: Checker) -> None:
        value = config.get(key)
        if value is None:
            if required:
                checker.fail(f"'{key}' is required", key)
            return
        if isinstance(value, str) and ("{{" in value or "${" in value):
            return
        try:
            parse_duration(value, key)
        except ValueError as exc:
            checker.fail(str(exc), key)

    return check


@register(
    "step.sleep",
    kind="flow",
    doc="""
Waits `duration` (a Go duration such as `30s` or `24h`, templates allowed) on a durable timer:
the execution is suspended meanwhile and resumes at its original deadline after a restart.
""",
    schema={
        "type": "object",
        "required": ["duration"],
        "properties": {"duration": {"type": ["string", "number"],
                                    "description": "How long to wait."}},
        "additionalProperties": False,
    },
    check=_check_duration("duration", True),
    outputs={"slept": "seconds waited"},
    example="""
- name: cool-off
  type: step.sleep
  config: {duration: 15m}
""",
)
async def sleep(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
    seconds = parse_duration(config["duration"], "duration")
    assert pc.durable is not None
    await pc.durable._run.sleep(seconds, name=pc.step)
    return {"slept": seconds}


@register(
    "step.wait_signal",
    kind="flow",
    doc="""
Suspends the pipeline until the signal `signal` arrives (`engine.signal(id, name, payload)`,
or the API), durably. With `timeout`, the step fails with SignalTimeoutError when it does not
come in time (use `on_error` to carry on). The payload is at `payload`, and merged into the
output when it is a mapping.
""",
    schema={
        "type": "object",
        "required": ["signal"],
        "properties": {
            "signal": {"type": "string", "minLength": 1, "description": "Signal name."},
            "timeout": {"type": ["string", "number"], "description": "How long to wait."},
        },
        "additionalProperties": False,
    },
    check=_check_duration("timeout", False),
    outputs={"signal": "its name", "payload": "its payload", "(payload keys)": "merged"},
    example="""
- name: approval
  type: step.wait_signal
  config: {signal: approve, timeout: 72h}
""",
)
async def wait_signal(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
    timeout = config.get("timeout")
    seconds = None if timeout is None else parse_duration(timeout, "timeout")
    assert pc.durable is not None
    name = str(config["signal"])
    payload = await pc.durable.wait_for_signal(name, timeout=seconds)
    output: dict[str, Any] = {}
    if isinstance(payload, Mapping):
        output.update(payload)
    output.update(signal=name, payload=payload)
    return output


# -- step.workflow_call ---------------------------------------------------------------------


async def _dispatch(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
    assert pc.durable is not None and pc.runtime is not None
    run = pc.durable._run
    handle = await run.engine.start(pc.runtime.workflow(str(config["workflow"])),
                                    config["input"], idempotency_key=config["key"],
                                    metadata={"parent_id": run.id})  # fmt: skip
    return {"workflow": config["workflow"], "mode": "async", "dispatched": True,
            "execution_id": handle.id}


@register(
    "step.workflow_call",
    kind="flow",
    doc="""
Runs another pipeline of the application as a child execution. `mode: sync` (default) waits
for it (durably) and outputs its result under `result`, or the keys of `output_mapping`
(parent key → dotted path in the child's output); a failed child fails the step. `mode: async`
starts it exactly once and carries on. `input` (templates rendered) is the child's trigger
data; default: the whole context.
""",
    schema={
        "type": "object",
        "required": ["workflow"],
        "properties": {
            "workflow": {"type": "string", "minLength": 1, "description": "Pipeline name."},
            "mode": {"enum": ["sync", "async"], "default": "sync"},
            "input": {"type": "object", "description": "Child trigger data (templates)."},
            "output_mapping": {"type": "object", "additionalProperties": {"type": "string"}},
            "timeout": {"type": ["string", "number"],
                        "description": "Accepted for compatibility; the child pipeline's own "
                                       "timeout applies."},
        },
        "additionalProperties": False,
    },
    outputs={"result": "the child's output (no output_mapping)",
             "(mapped keys)": "from output_mapping"},
    example="""
- name: ship
  type: step.workflow_call
  config:
    workflow: shipping
    input: {order_id: "{{ .order_id }}"}
    output_mapping: {tracking: tracking_number}
""",
)
async def workflow_call(config: dict[str, Any], pc: PipelineContext) -> dict[str, Any]:
    if pc.runtime is None or pc.durable is None:
        raise StepFailedError(f"workflow_call step {pc.step!r} needs a running application")
    name = str(config["workflow"])
    wf = pc.runtime.workflow(name)
    data = config.get("input")
    trigger = dict(pc.current) if data is None else dict(data)
    if config.get("mode") == "async":
        key = f"{pc.durable.execution_id}:{pc.step}"
        sf = task_function(f"{pc.step}.dispatch", "step.workflow_call")
        out: dict[str, Any] = await sf(StepInput({"workflow": name, "input": trigger,
                                                  "key": key}, pc, _dispatch))  # fmt: skip
        return out
    result = await pc.durable.run_child(wf, trigger)
    mapping = config.get("output_mapping")
    if not mapping:
        return {"result": result}
    return {key: _walk(result, str(path)) for key, path in mapping.items()}


def _walk(value: Any, path: str) -> Any:
    """The value at a dotted path inside a child's output (None when absent)."""
    if isinstance(value, Mapping) and path in value:
        return value[path]
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


__all__ = ["foreach", "parallel", "retry_with_backoff", "sleep", "wait_signal",
           "workflow_call"]  # fmt: skip
