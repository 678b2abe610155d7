"""Error strategies, retries, timeouts, sagas, error_status and idempotency."""

from __future__ import annotations

import pytest

import treadle
from pipekit import CALLS, LoadApp, kinds, test_steps
from treadle.testing import FakeClock


def _names() -> list[str]:
    return [name for name, _ in CALLS]


STRATEGIES = """
pipelines:
  p:
    on_error: {pipeline}
    steps:
      - name: first
        type: test.record
        config: {{output: {{a: 1}}}}
      - name: broken
        type: test.fail
        {step}
        config: {{message: nope}}
      - name: last
        type: test.record
        config: {{output: {{b: 2}}}}
"""


@pytest.mark.parametrize(("pipeline", "step"), [("skip", ""), ("stop", "on_error: skip")])
async def test_skip_merges_error_and_continues(load_app: LoadApp, engine: treadle.Engine,
                                               pipeline: str, step: str) -> None:
    app = load_app(STRATEGIES.format(pipeline=pipeline, step=step), step_types=test_steps())
    eid, out = await app.run_pipeline(engine, "p", {})
    assert out == {"a": 1, "_error": "nope", "_skipped": True, "b": 2}
    assert _names() == ["first", "broken", "last"]
    journal = kinds(await engine.events(eid))
    assert ("step.failed", "broken", None) in journal
    assert ("step.skipped", "broken", None) in journal


@pytest.mark.parametrize(("pipeline", "step"), [("continue", ""),
                                                ("stop", "on_error: continue")])
async def test_continue_records_error_at_step_only(load_app: LoadApp, engine: treadle.Engine,
                                                   pipeline: str, step: str) -> None:
    app = load_app(STRATEGIES.format(pipeline=pipeline, step=step).replace(
        "output: {b: 2}", 'output: {b: "{{ .steps.broken._error }}"}'), step_types=test_steps())
    _, out = await app.run_pipeline(engine, "p", {})
    assert out == {"a": 1, "b": "nope"}


@pytest.mark.parametrize(("pipeline", "step"), [("stop", ""), ("skip", "on_error: stop")])
async def test_stop_fails_the_execution(load_app: LoadApp, engine: treadle.Engine,
                                        pipeline: str, step: str) -> None:
    app = load_app(STRATEGIES.format(pipeline=pipeline, step=step), step_types=test_steps())
    with pytest.raises(treadle.ExecutionFailedError) as info:
        await app.run_pipeline(engine, "p", {})
    error = info.value.error
    assert error["type"] == "treadle.pipelines.errors.PipelineStepError"
    assert error["message"] == "step 'broken' failed: nope"
    assert _names() == ["first", "broken"]
    ex = await engine.get(info.value.execution_id)
    assert str(ex.status) == "failed" and ex.steps[-1].error["message"] == "nope"


async def test_error_status_is_carried_on_the_failure(load_app: LoadApp,
                                                      engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: check
            type: step.validate
            error_status: 422
            config: {strategy: required_fields, required_fields: [email]}
    """)
    with pytest.raises(treadle.ExecutionFailedError) as info:
        await app.run_pipeline(engine, "p", {"name": "x"})
    assert info.value.error["args"] == [
        "step 'check' failed: validate step 'check': missing required fields: email",
        "check", 422, "ValidationFailedError"]


SAGA = """
pipelines:
  book:
    on_error: {strategy}
    compensation:
      - name: notify-ops
        type: test.record
        config: {{what: ops}}
      - name: cleanup
        type: test.record
        config: {{what: cleanup}}
    steps:
      - name: flight
        type: test.record
        config: {{output: {{booking_id: F1}}}}
        compensate:
          type: test.record
          config: {{cancel: "{{{{ .steps.flight.output.booking_id }}}}"}}
      - name: hotel
        type: test.record
        config: {{output: {{reservation: H1}}}}
        compensate:
          name: cancel-hotel
          type: test.record
          config: {{cancel: "{{{{ .steps.hotel.reservation }}}}"}}
      - name: car
        type: test.fail
        config: {{message: no cars}}
"""


async def test_compensate_runs_saga_in_reverse_and_journals_it(load_app: LoadApp,
                                                               engine: treadle.Engine) -> None:
    app = load_app(SAGA.format(strategy="compensate"), step_types=test_steps())
    with pytest.raises(treadle.ExecutionFailedError) as info:
        await app.run_pipeline(engine, "book", {})
    assert "(compensation executed)" in info.value.error["message"]
    assert CALLS[3:] == [("cancel-hotel", {"cancel": "H1"}),
                         ("flight.compensate", {"cancel": "F1"}),
                         ("cleanup", {"what": "cleanup"}), ("notify-ops", {"what": "ops"})]
    events = await engine.events(info.value.execution_id)
    types = [e.type for e in events]
    assert types.index("saga.compensating") < types.index("saga.compensated")
    saga = next(e.data for e in events if e.type == "saga.compensating")
    assert saga["steps"] == ["cancel-hotel", "flight.compensate", "cleanup", "notify-ops"]
    compensated = [e.data for e in events if e.type == "step.compensated"]
    assert [d["step_name"] for d in compensated] == ["cancel-hotel", "flight.compensate"]
    ex = await engine.get(info.value.execution_id)
    by_name = {s.name: s for s in ex.steps}
    assert by_name["flight"].compensated and by_name["hotel"].compensated
    assert by_name["cancel-hotel"].compensates == by_name["hotel"].pos


async def test_stop_does_not_compensate(load_app: LoadApp, engine: treadle.Engine) -> None:
    app = load_app(SAGA.format(strategy="stop"), step_types=test_steps())
    with pytest.raises(treadle.ExecutionFailedError):
        await app.run_pipeline(engine, "book", {})
    assert _names() == ["flight", "hotel", "car"]


async def test_saga_enabled_defaults_to_compensate(load_app: LoadApp,
                                                   engine: treadle.Engine) -> None:
    text = SAGA.format(strategy="compensate").replace(
        "    on_error: compensate\n", "    saga: {enabled: true, compensation_order: reverse}\n")
    app = load_app(text, step_types=test_steps())
    with pytest.raises(treadle.ExecutionFailedError, match="compensation executed"):
        await app.run_pipeline(engine, "book", {})
    assert "cancel-hotel" in _names()


async def test_failing_compensation_is_reported(load_app: LoadApp,
                                                engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: a
            type: test.record
            on_error: compensate
            config: {}
            compensate: {type: test.fail, config: {message: undo failed}}
          - name: b
            type: test.fail
            on_error: compensate
            config: {}
    """, step_types=test_steps())
    with pytest.raises(treadle.ExecutionFailedError) as info:
        await app.run_pipeline(engine, "p", {})
    assert "compensation also failed: a.compensate" in info.value.error["message"]
    done = next(e.data for e in await engine.events(info.value.execution_id)
                if e.type == "saga.compensated")
    assert done["failed"] == ["a.compensate"]


async def test_step_retry_policy_is_journaled(load_app: LoadApp,
                                              engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: flaky
            type: test.flaky
            retry: {max_attempts: 3, backoff: exponential, initial_delay: 1s, max_delay: 5s}
            config: {fail_times: 2}
    """, step_types=test_steps())
    eid, out = await app.run_pipeline(engine, "p", {})
    assert out == {"ok": True} and len(CALLS) == 3
    retries = [e.data for e in await engine.events(eid) if e.type == "retry.attempted"]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert all(0.5 <= r["delay"] <= 2 for r in retries)
    assert (await engine.get(eid)).steps[0].attempts == 3


async def test_retry_exhausted_then_strategy(load_app: LoadApp, engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        retry: {max_attempts: 2, initial_delay: 10ms}
        steps:
          - name: flaky
            type: test.flaky
            on_error: continue
            config: {fail_times: 5}
          - name: after
            type: step.set
            config: {values: {done: true}}
    """, step_types=test_steps())
    _, out = await app.run_pipeline(engine, "p", {})
    assert out == {"done": True} and len(CALLS) == 2


async def test_step_timeout_fails_the_step(load_app: LoadApp, engine: treadle.Engine) -> None:
    app = load_app("""
    pipelines:
      p:
        steps:
          - name: slow
            type: test.slow
            timeout: 50ms
            on_error: skip
            config: {seconds: 10}
    """, step_types=test_steps())
    eid, out = await app.run_pipeline(engine, "p", {})
    assert out["_skipped"] is True and "timed out after 0.05s" in out["_error"]
    assert (await engine.get(eid)).steps[0].error["type"] == "treadle.errors.StepTimeoutError"


async def test_pipeline_timeout_is_durable(load_app: LoadApp, registry: treadle.Registry,
                                           store_url: str) -> None:
    app = load_app("""
    pipelines:
      p:
        timeout: 1h
        steps:
          - name: wait
            type: step.wait_signal
            config: {signal: go}
    """)
    clock = FakeClock(start=1000.0)
    engine = treadle.Engine(store_url, registry=registry, clock=clock)
    with pytest.raises(treadle.ExecutionFailedError, match="past its timeout of 3600"):
        await app.run_pipeline(engine, "p", {})
    assert clock.time() == 4600.0


IDEMPOTENT = """
pipelines:
  pay:
    idempotency:
      key_template: "pay_{{ .customer_id }}_{{ .order_id }}"
      ttl: 24h
    steps:
      - name: charge
        type: test.record
        config: {output: {charged: "{{ .order_id }}"}}
"""


async def test_idempotency_key_dedupes_within_ttl(load_app: LoadApp,
                                                  registry: treadle.Registry,
                                                  store_url: str) -> None:
    app = load_app(IDEMPOTENT, step_types=test_steps())
    clock = FakeClock(start=0.0, auto_advance=False)
    engine = treadle.Engine(store_url, registry=registry, clock=clock)
    first, out = await app.run_pipeline(engine, "pay", {"customer_id": "c", "order_id": 1})
    again, out2 = await app.run_pipeline(engine, "pay", {"customer_id": "c", "order_id": 1})
    other, _ = await app.run_pipeline(engine, "pay", {"customer_id": "c", "order_id": 2})
    assert first == again and out == out2 and other != first
    assert len(CALLS) == 2
    assert (await engine.store.get(first)).idempotency_key == "pay_c_1"  # type: ignore[union-attr]
    clock.advance(25 * 3600)
    later, _ = await app.run_pipeline(engine, "pay", {"customer_id": "c", "order_id": 1})
    assert later != first and len(CALLS) == 3
    assert (await engine.store.get(later)).idempotency_key == "pay_c_1~1"  # type: ignore[union-attr]
    same, _ = await app.run_pipeline(engine, "pay", {"customer_id": "c", "order_id": 1})
    assert same == later


DEAD_LETTER = """
pipelines:
  payments:
    dead_letter: {enabled: true, retention: 2h, replayable: true}
    steps:
      - name: charge
        type: test.fail
        config: {message: card declined}
"""


async def test_dead_letter_keeps_the_trigger_data_and_error(load_app: LoadApp,
                                                            engine: treadle.Engine) -> None:
    app = load_app(DEAD_LETTER, step_types=test_steps())
    with pytest.raises(treadle.ExecutionFailedError) as info:
        await app.run_pipeline(engine, "payments", {"order": 7})
    letters = (await engine.dlq.list("pipeline:payments")).items
    assert [x.id for x in letters] == [info.value.execution_id]
    letter = letters[0]
    assert letter.input[0] == {"order": 7}  # the trigger data
    assert letter.failed_step == "charge"
    assert letter.error["message"] == "step 'charge' failed: card declined"
    assert letter.expires_at == pytest.approx(letter.failed_at + 7200)


@pytest.mark.parametrize(("block", "message"), [
    ("{enabled: true, retention: soon}", "retention"),
    ("{enabled: true, retention: 0s}", "retention must be greater than zero"),
    ("{enabled: true, size: 3}", "unknown dead_letter key .size."),
])
def test_dead_letter_config_errors_name_the_key(load_app: LoadApp, block: str,
                                                message: str) -> None:
    text = DEAD_LETTER.replace("{enabled: true, retention: 2h, replayable: true}", block)
    with pytest.raises(treadle.TreadleError, match=message):
        load_app(text, step_types=test_steps())
