"""`treadle test`: saga compensation steps in assertions; HTTP served as `treadle serve`
serves it (modules' own routes such as a state machine's `http_prefix` binding, bodyless
204/304 responses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle.apptest import render_report, run_test_file
from treadle.apptest.model import TriggerDef
from treadle.apptest.runner import Harness, in_memory_state
from treadle.config import load_config_text

FIXTURES = Path(__file__).parent / "fixtures"


def test_compensation_steps_are_visible_and_ordered(http_mode: str) -> None:
    report = run_test_file(FIXTURES / "saga_test.yaml")
    results = {c.name: c.passed for c in report.cases}
    assert results == {"books-without-compensation": True, "undoes-in-reverse-order": True,
                       "over-http": True, "compensation-steps-mocked-by-name": True,
                       "wrong-expectations": False}, render_report(report)
    failures = report.case("wrong-expectations").failures
    assert [(f.label, f.path, f.expected, f.actual) for f in failures] == [
        ("[0]", "compensated", ["cancel-flight", "cancel-hotel"],
         ["cancel-hotel", "cancel-flight", "log-rollback", "notify-agent"]),
        ("[1]", "steps.cancel-flight", False, True)]
    assert failures[0].message == (
        "compensated: want ['cancel-flight', 'cancel-hotel'], got ['cancel-hotel', "
        "'cancel-flight', 'log-rollback', 'notify-agent']")


def test_compensated_must_be_a_list_of_names(tmp_path: Path) -> None:
    path = tmp_path / "bad_test.yaml"
    path.write_text("yaml: 'pipelines: {p: {steps: []}}'\n"
                    "tests:\n  t:\n    trigger: {name: p}\n"
                    "    assertions: [{compensated: cancel-flight}]\n")
    report = run_test_file(path)
    assert report.error == "tests.t.assertions[0].compensated must be a list of step names"


def test_state_machine_http_binding_is_served(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the app's relative sqlite store would land here
    report = run_test_file(FIXTURES / "sm_binding_test.yaml")
    assert report.ok, render_report(report)
    assert [c.name for c in report.cases] == ["binding-next-to-config-routes",
                                              "instances-do-not-leak-between-tests"]
    assert list(tmp_path.iterdir()) == []  # instances lived in memory


def test_in_memory_state_only_rewrites_state_machine_stores() -> None:
    config = load_config_text("""
modules:
  - {name: sm, type: statemachine.engine, config: {store: "sqlite:///x.db", http_prefix: /sm}}
  - {name: cache, type: cache.memory, config: {store: keep}}
""", filename="app.yaml")
    rewritten = in_memory_state(config)
    assert [m.config for m in rewritten.modules] == [
        {"store": "memory://", "http_prefix": "/sm"}, {"store": "keep"}]
    assert config.modules[0].config["store"] == "sqlite:///x.db"  # the original is untouched


async def test_a_204_has_no_body_in_tests_either() -> None:
    pytest.importorskip("treadle.apps")
    config = load_config_text("""
pipelines:
  gone:
    trigger: {type: http, config: {path: "/things/{id}", method: DELETE}}
    steps:
      - name: respond
        type: step.json_response
        config: {status: 204, headers: {X-Gone: "1"}, body: {deleted: true}}
""", filename="app.yaml")
    harness = Harness(config)
    harness.build({})
    await harness.start()
    try:
        result = await harness.fire(TriggerDef(type="http.delete", path="/things/t-1"))
    finally:
        await harness.close()
    assert (result.status, result.body) == (204, b"")
    assert {k.lower() for k in result.headers} == {"x-gone", "x-treadle-execution-id"}
    assert result.steps["respond"]["status"] == 204  # the step's own output is unchanged
