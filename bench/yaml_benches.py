"""YAML-application step benchmarks: the real step implementations, in-process, no journal.

- `yaml_jq`: `step.jq` on two representative payloads — one order (~300 bytes of JSON, the
  per-request case: reshape it into a summary) and a partner's batch of 20 orders with 3 items
  each (~6 KB: filter the paid orders, compute each one's total, sort). Reported as
  transforms per second (target 10,000/s) and µs per transform, next to the floor of the `jq`
  package itself (a pre-compiled program on the same input) and what one uncached compilation
  of the expression costs (what the per-expression cache saves).
- `yaml_validate`: `step.validate` with `strategy: json_schema` on one event (an
  `order.created` of ~600 bytes: nested customer, 3 items, enums, patterns, formats) — the
  per-event cost of JSON-Schema validation (target < 1 ms) — for a valid event and for an
  invalid one (3 violations, each reported with its path), next to the floor of a
  pre-built `jsonschema` validator.

Each figure is the median over repetitions of a batch (`Plan.reps`); one call is the step's
`impl(config, ctx)` as the pipeline interpreter awaits it, with a fresh `PipelineContext`.

- `yaml_step` (per store): the pipeline interpreter's cost per step, journal included — a
  pipeline of 11 `step.set` steps against one of 1 (each sets one key from a template), run
  start → result, in CPU time of the thread; (11 - 1) / 10 is the cost of a step (target:
  under 50 µs plus the journal write; data steps are pure, so on a durable store they add no
  write of their own).

    .venv/bin/python bench/run.py --only yaml_jq,yaml_validate
    .venv/bin/python bench/yaml_benches.py          # both, the table only
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from common import Result, Summary, Target, format_table, result
from workloads import Plan, StoreSpec, fresh_url

JQ_TARGET = Target(10_000.0, ">=")
VALIDATE_TARGET = Target(1000.0)  # µs per event

JQ_EVENT_EXPRESSION = (
    "{id, customer, paid: (.status == \"paid\"), total: ([.items[] | .qty * .price] | add)}"
)
JQ_EXPRESSION = (
    "[.orders[] | select(.status == \"paid\")"
    " | {id, customer, total: ([.items[] | .qty * .price] | add)}]"
    " | sort_by(-.total)"
)


def order_batch(n: int = 20) -> dict[str, Any]:
    """A partner's export: `n` orders of 3 items, every third one refunded."""
    orders = [
        {
            "id": f"A{i:04d}", "customer": f"customer-{i % 7}",
            "status": "refunded" if i % 3 == 0 else "paid",
            "created_at": f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
            "items": [{"sku": f"SKU-{(i + k) % 11}", "qty": 1 + (i + k) % 4,
                       "price": round(2.5 + (i * 7 + k * 3) % 40, 2)} for k in range(3)],
            "shipping": {"country": "GB", "postcode": f"N{i % 9} 1AA"},
        }
        for i in range(n)
    ]
    return {"batch": {"batchRef": "B-17", "exportedAt": "2024-05-01T10:00:00Z"},
            "orders": orders}


ORDER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["event_id", "type", "order"],
    "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "type": {"const": "order.created"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "order": {
            "type": "object",
            "required": ["id", "customer", "items", "currency"],
            "properties": {
                "id": {"type": "string", "pattern": "^o-[0-9]+$"},
                "customer": {
                    "type": "object",
                    "required": ["id", "email"],
                    "properties": {"id": {"type": "string", "minLength": 1},
                                   "email": {"type": "string", "format": "email"},
                                   "tier": {"enum": ["basic", "gold", "platinum"]}},
                },
                "items": {
                    "type": "array", "minItems": 1, "maxItems": 100,
                    "items": {
                        "type": "object",
                        "required": ["sku", "qty", "price"],
                        "properties": {"sku": {"type": "string", "pattern": "^[A-Z]+-[0-9]+$"},
                                       "qty": {"type": "integer", "minimum": 1},
                                       "price": {"type": "number", "exclusiveMinimum": 0}},
                        "additionalProperties": False,
                    },
                },
                "currency": {"enum": ["EUR", "GBP", "USD"]},
                "notes": {"type": "string", "maxLength": 500},
            },
        },
    },
}

ORDER_EVENT: dict[str, Any] = {
    "event_id": "9f1c2d7e-4b8a-4c3e-9d2f-1a2b3c4d5e6f",
    "type": "order.created",
    "occurred_at": "2024-05-01T10:00:00Z",
    "order": {
        "id": "o-1042",
        "customer": {"id": "c-7", "email": "ann@example.com", "tier": "gold"},
        "items": [{"sku": "BOOK-1", "qty": 2, "price": 12.5},
                  {"sku": "LAMP-2", "qty": 1, "price": 40},
                  {"sku": "PEN-9", "qty": 10, "price": 1.2}],
        "currency": "GBP",
        "notes": "leave at the door",
    },
}


def bad_event() -> dict[str, Any]:
    """ORDER_EVENT with three violations (a pattern, a minimum, an enum)."""
    event = copy.deepcopy(ORDER_EVENT)
    event["order"]["id"] = "1042"
    event["order"]["items"][1]["qty"] = 0
    event["order"]["currency"] = "JPY"
    return event


def _step(step_type: str) -> Callable[..., Awaitable[Any]]:
    from treadle.steps import default_registry

    return default_registry.get(step_type).impl


def _context(trigger: dict[str, Any]) -> Any:
    from treadle.steps import PipelineContext

    return PipelineContext(trigger=trigger, pipeline="bench", step="bench-step")


def _per_call_us(call: Callable[[], Any], batch: int, reps: int) -> list[float]:
    """µs per call of `call`, one sample per batch (after a warm-up batch)."""
    for _ in range(batch):
        call()
    gc.collect()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            call()
        samples.append((time.perf_counter_ns() - t0) / 1000 / batch)
    return samples


def _async_per_call_us(make: Callable[[], Awaitable[Any]], batch: int, reps: int) -> list[float]:
    async def main() -> list[float]:
        for _ in range(batch):
            await make()
        gc.collect()
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            for _ in range(batch):
                await make()
            samples.append((time.perf_counter_ns() - t0) / 1000 / batch)
        return samples

    return asyncio.run(main())


def _jq_rows(label: str, expression: str, payload: dict[str, Any], expected: int,
             plan: Plan, batch: int) -> tuple[list[float], list[float]]:
    """µs per transform of the step.jq impl and of the bare jq package on `payload`."""
    import jq

    impl = _step("step.jq")
    config = {"expression": expression, "input_from": "body"}
    trigger = {"body": payload}
    batch, reps = plan.reps(batch, max(10, batch // 10)), plan.reps(20, 3)

    async def one() -> Any:
        return await impl(config, _context(trigger))

    out = asyncio.run(one())
    got = len(out["result"]) if isinstance(out["result"], list) else len(out["result"] or {})
    if got != expected:
        raise AssertionError(f"step.jq on the {label} gave {got} entries, expected {expected}")
    step_us = _async_per_call_us(one, batch, reps)
    program = jq.compile(expression)
    floor_us = _per_call_us(lambda: program.input_value(payload).all(), batch, reps)
    return step_us, floor_us


def bench_jq(plan: Plan) -> list[Result]:
    import jq

    from treadle.steps.data import compile_jq

    event = order_batch(1)["orders"][0]
    batch = order_batch(20)
    paid = sum(1 for o in batch["orders"] if o["status"] == "paid")
    event_us, event_floor = _jq_rows("event", JQ_EVENT_EXPRESSION, event, 4, plan, 1000)
    batch_us, batch_floor = _jq_rows("batch", JQ_EXPRESSION, batch, paid, plan, 100)
    reps = plan.reps(20, 3)
    compile_us = _per_call_us(lambda: jq.compile(JQ_EXPRESSION), plan.reps(40, 10), reps)
    cached_us = _per_call_us(lambda: compile_jq(JQ_EXPRESSION), 1000, reps)
    sizes = {name: len(json.dumps(v)) for name, v in (("event", event), ("batch", batch))}

    def rate(samples: list[float]) -> Summary:
        return Summary.of([1e6 / us for us in samples], higher_is_better=True)

    return [
        result("yaml_jq", "-", "event_transforms_per_s", "1/s", rate(event_us),
               target=JQ_TARGET, note=f"step.jq impl, one order ({sizes['event']:,} bytes "
               "of JSON) -> a summary object; in-process, no journal"),
        result("yaml_jq", "-", "event_us", "us", Summary.of(event_us),
               note="step.jq impl on one order"),
        result("yaml_jq", "-", "event_jq_floor_us", "us", Summary.of(event_floor),
               note="the jq package alone on one order: precompiled .input_value(v).all()"),
        result("yaml_jq", "-", "batch_transforms_per_s", "1/s", rate(batch_us),
               target=JQ_TARGET, note=f"step.jq impl, 20 orders x 3 items "
               f"({sizes['batch']:,} bytes): select, totals, sort_by"),
        result("yaml_jq", "-", "batch_us", "us", Summary.of(batch_us),
               note="step.jq impl on the batch"),
        result("yaml_jq", "-", "batch_jq_floor_us", "us", Summary.of(batch_floor),
               note="the jq package alone on the batch"),
        result("yaml_jq", "-", "compile_us", "us", Summary.of(compile_us),
               note="one uncached jq.compile of the batch expression (what the cache saves)"),
        result("yaml_jq", "-", "cached_compile_us", "us", Summary.of(cached_us),
               note="compile_jq on a cached expression"),
    ]


def bench_validate(plan: Plan) -> list[Result]:
    import jsonschema

    from treadle.steps.errors import ValidationFailedError

    impl = _step("step.validate")
    config = {"strategy": "json_schema", "source": "body", "schema": ORDER_SCHEMA}
    good, bad = {"body": ORDER_EVENT}, {"body": bad_event()}
    batch, reps = plan.reps(400, 100), plan.reps(20, 3)

    async def valid() -> Any:
        return await impl(config, _context(good))

    async def invalid() -> Any:
        try:
            await impl(config, _context(bad))
        except ValidationFailedError as exc:
            return exc
        raise AssertionError("the invalid event passed validation")

    asyncio.run(valid())
    message = str(asyncio.run(invalid()))
    if message.count(": ") < 3:
        raise AssertionError(f"expected 3 violations, got: {message}")
    valid_us = _async_per_call_us(valid, batch, reps)
    invalid_us = _async_per_call_us(invalid, plan.reps(200, 50), reps)
    cls = jsonschema.validators.validator_for(ORDER_SCHEMA)
    validator = cls(ORDER_SCHEMA, format_checker=cls.FORMAT_CHECKER)
    floor_us = _per_call_us(lambda: validator.is_valid(ORDER_EVENT), batch, reps)
    build_us = _per_call_us(lambda: cls(ORDER_SCHEMA, format_checker=cls.FORMAT_CHECKER)
                            .is_valid(ORDER_EVENT), plan.reps(200, 50), reps)
    size = len(json.dumps(ORDER_EVENT))
    return [
        result("yaml_validate", "-", "valid_event_us", "us", Summary.of(valid_us),
               target=VALIDATE_TARGET,
               note=f"step.validate json_schema, a valid {size}-byte order event"),
        result("yaml_validate", "-", "invalid_event_us", "us", Summary.of(invalid_us),
               target=VALIDATE_TARGET,
               note="the same event with 3 violations, collected and reported"),
        result("yaml_validate", "-", "jsonschema_floor_us", "us", Summary.of(floor_us),
               note="a pre-built jsonschema validator's is_valid on the valid event"),
        result("yaml_validate", "-", "uncached_us", "us", Summary.of(build_us),
               note="a validator built for every event (jsonschema builds lazily, so the "
                    "cache saves little; the schema itself is checked once, at load)"),
    ]


STEP_TARGET = Target(50.0)  # µs per step: the issue's interpreter overhead


def _steps_app(n: int) -> str:
    steps = "".join(f"      - {{name: s{i}, type: step.set, config: {{values: "
                    f"{{k{i}: \"{{{{ .id }}}}-{i}\"}}}}}}\n" for i in range(n))
    return f"name: steps\npipelines:\n  p{n}:\n    steps:\n{steps}"


def bench_yaml_step(store: StoreSpec, plan: Plan) -> list[Result]:
    """Per-step cost of the pipeline interpreter on `store` (11 steps against 1)."""
    import treadle
    from treadle.config.loader import load_config_text
    from treadle.pipelines import load_application

    async def main(url: str) -> tuple[list[float], list[float]]:
        engine = treadle.Engine(url, registry=treadle.Registry())
        apps = {n: load_application(load_config_text(_steps_app(n)), registry=engine.registry)
                for n in (1, 11)}
        samples: dict[int, list[float]] = {1: [], 11: []}
        batch = plan.reps(100, 20)
        try:
            for rep in range(plan.reps(30, 5) + 2):
                for n, app in apps.items():
                    t0 = time.thread_time_ns()  # CPU: what other processes' load moves least
                    for i in range(batch):
                        await app.run_pipeline(engine, f"p{n}", {"id": i})
                    if rep >= 2:  # warm-up
                        samples[n].append((time.thread_time_ns() - t0) / batch / 1000)
        finally:
            await engine.close()
        return samples[1], samples[11]

    with fresh_url(store) as url:
        one, eleven = asyncio.run(main(url))
    per_step = [(b - a) / 10 for a, b in zip(one, eleven, strict=True)]
    return [
        result("yaml_step", store.label, "per_step_us", "us", Summary.of(per_step),
               target=STEP_TARGET,
               note="(pipeline of 11 step.set - pipeline of 1) / 10, start -> result, CPU"),
        result("yaml_step", store.label, "pipeline_1_us", "us", Summary.of(one),
               note="a 1-step pipeline, start -> result, CPU (the execution's fixed cost)"),
    ]


if __name__ == "__main__":
    rows = bench_jq(Plan(quick=False)) + bench_validate(Plan(quick=False))
    print(format_table(rows))
