"""Diff and dashboard metrics on real executions, and the pure functions behind them."""

from __future__ import annotations

import httpx
import pytest

from treadle.journal import Execution, ExecutionStatus, ExecutionSummary, StepRecord, StepStatus
from treadle.server import schemas
from treadle.server.dashboard import dashboard_metrics, parse_period, percentile
from treadle.server.diff import diff_executions, same, value_diff

from .conftest import finished, start


def test_diff_of_two_real_executions(client: httpx.Client) -> None:
    left = start(client, "order", {"id": 1, "sku": "SKU-001"})
    right = start(client, "order", {"id": 1, "sku": "SKU-999"})
    finished(client, left)
    finished(client, right)
    response = client.get("/api/v1/executions/diff", params={"left": left, "right": right})
    assert response.status_code == 200
    body = response.json()
    schemas.DiffOut.model_validate(body)
    assert body["left"] == left and body["right"] == right
    summary = body["summary"]
    assert summary["left_status"] == summary["right_status"] == "completed"
    assert summary["steps_identical"] == 0 and summary["steps_different"] == 3
    assert summary["input_identical"] is False and summary["output_identical"] is False
    assert body["input_diff"] == {"sku": {"left": "SKU-001", "right": "SKU-999"}}
    steps = {d["step"]: d for d in body["step_diffs"]}
    assert [d["step"] for d in body["step_diffs"]] == ["validate", "check_inventory", "charge"]
    assert steps["validate"]["status"] == "input_different"
    assert steps["validate"]["input_diff"] == {"sku": {"left": "SKU-001", "right": "SKU-999"}}
    inventory = steps["check_inventory"]
    assert inventory["status"] == "output_different"
    assert inventory["diff"] == {
        "available": {"left": True, "right": False},
        "warehouse": {"left": "us-east-1", "right": None},
        "reason": {"left": None, "right": "out_of_stock"},
    }
    assert steps["charge"]["status"] == "right_skipped"
    assert steps["charge"]["right_output"] is None
    assert steps["charge"]["left_output"] == {"charge_id": "ch_1", "status": "succeeded"}


def test_diff_of_an_execution_with_itself_is_identical(client: httpx.Client) -> None:
    ex_id = start(client, "order", {"id": 3})
    finished(client, ex_id)
    body = client.get("/api/v1/executions/diff", params={"left": ex_id, "right": ex_id}).json()
    assert body["summary"]["steps_different"] == 0
    assert {d["status"] for d in body["step_diffs"]} == {"identical"}


def test_diff_shows_a_step_that_failed_on_one_side(client: httpx.Client) -> None:
    left = start(client, "order", {"id": 4})
    right = start(client, "order", {"id": 4, "card": "declined"})
    finished(client, left)
    finished(client, right)
    body = client.get("/api/v1/executions/diff", params={"left": left, "right": right}).json()
    assert body["summary"]["right_status"] == "failed"
    charge = body["step_diffs"][-1]
    assert charge["status"] == "status_different"
    assert (charge["left_status"], charge["right_status"]) == ("completed", "failed")
    assert charge["right_error"]["message"] == "card declined"


def test_dashboard_metrics_of_real_executions(client: httpx.Client) -> None:
    ids = [start(client, "order", {"id": i}) for i in range(3)]
    ids.append(start(client, "order", {"id": 9, "card": "declined"}))
    ids.append(start(client, "greet", "someone else"))
    for ex_id in ids:
        finished(client, ex_id)
    response = client.get("/api/v1/dashboard/metrics",
                          params={"pipeline": "order", "period": "1h"})
    assert response.status_code == 200, response.text
    body = response.json()
    schemas.DashboardOut.model_validate(body)
    assert body["pipeline"] == "order" and body["period"] == "1h"
    summary = body["summary"]
    assert summary["total_executions"] == 4
    assert summary["success_rate"] == 75.0 and summary["error_count"] == 1
    assert 0 <= summary["p50_duration_ms"] <= summary["p95_duration_ms"] <= (
        summary["p99_duration_ms"])
    steps = {s["step"]: s for s in body["by_step"]}
    assert set(steps) == {"validate", "check_inventory", "charge"}
    assert steps["charge"]["error_rate"] == 25.0 and steps["validate"]["error_rate"] == 0.0
    assert steps["validate"]["count"] == 4
    assert sum(h["executions"] for h in body["by_hour"]) == 4
    assert sum(h["errors"] for h in body["by_hour"]) == 1
    assert all(h["hour"].endswith(":00Z") for h in body["by_hour"])

    everything = client.get("/api/v1/dashboard/metrics").json()
    assert everything["pipeline"] is None and everything["summary"]["total_executions"] == 5


# -- the pure functions ---------------------------------------------------------------------------


def _ex(ident: str, *steps: StepRecord, status: str = "completed", args: object = None
        ) -> Execution:
    return Execution(id=ident, workflow="wf", status=ExecutionStatus(status), args=[args],
                     created_at=0.0, finished_at=1.0, steps=list(steps))


def _step(pos: int, name: str, output: object = None, status: str = "completed",
          kind: str = "step", inp: object = None) -> StepRecord:
    return StepRecord(pos=pos, name=name, kind=kind, status=StepStatus(status), output=output,
                      input=inp, started_at=0.0, finished_at=0.5)


def test_json_equality_keeps_booleans_apart() -> None:
    assert same({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not same(True, 1) and not same([0], [False]) and not same({"a": 1}, {"b": 1})
    assert value_diff(1, 1) == {}
    assert value_diff([1], [2]) == {"$": {"left": [1], "right": [2]}}
    assert value_diff({"a": 1, "b": 2}, {"a": 1, "c": 3}) == {
        "b": {"left": 2, "right": None}, "c": {"left": None, "right": 3}}


def test_repeated_steps_are_matched_by_occurrence() -> None:
    left = _ex("l", _step(0, "s", 1), _step(1, "s", 2))
    right = _ex("r", _step(0, "s", 1), _step(1, "s", 3), _step(2, "s", 4))
    diffs = diff_executions(left, right)["step_diffs"]
    assert [(d["step"], d.get("occurrence"), d["status"]) for d in diffs] == [
        ("s", None, "identical"), ("s", 2, "output_different"), ("s", 3, "left_skipped")]


def test_right_only_steps_keep_their_place() -> None:
    left = _ex("l", _step(0, "a"), _step(1, "c"))
    right = _ex("r", _step(0, "a"), _step(1, "b"), _step(2, "c"))
    assert [d["step"] for d in diff_executions(left, right)["step_diffs"]] == ["a", "b", "c"]


def test_skips_and_routing_explain_missing_steps() -> None:
    routed = _step(1, "route", {"route": "reject"}, kind="note")
    left = _ex("l", _step(0, "a"), _step(1, "route", {"route": "ok"}, kind="note"), _step(2, "b"))
    right = _ex("r", _step(0, "a"), routed)
    missing = diff_executions(left, right)["step_diffs"][-1]
    assert missing["status"] == "right_skipped"
    assert missing["reason"] == "Step skipped due to conditional routing from route"

    skipped = _step(1, "b", {"reason": "amount below limit"}, status="skipped", kind="note")
    diffs = diff_executions(_ex("l", _step(1, "b", 5)), _ex("r", skipped))["step_diffs"]
    assert diffs[0]["status"] == "right_skipped" and diffs[0]["reason"] == "amount below limit"

    failed = _ex("r", _step(0, "a", status="failed"), status="failed")
    diffs = diff_executions(_ex("l", _step(0, "a"), _step(1, "b")), failed)["step_diffs"]
    assert diffs[1]["reason"] == "the right execution failed before reaching this step"


def test_recorded_values_are_not_compared() -> None:
    left = _ex("l", _step(0, "treadle.now", 1.0, kind="value"), _step(1, "a", 1))
    right = _ex("r", _step(0, "treadle.now", 2.0, kind="value"), _step(1, "a", 1))
    body = diff_executions(left, right)
    assert body["summary"]["steps_different"] == 0 and len(body["step_diffs"]) == 1


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400),
                                               ("7d", 604800), ("2w", 1209600)])
def test_periods(text: str, seconds: float) -> None:
    assert parse_period(text) == seconds


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([], 50) is None and percentile([7.0], 99) == 7.0


def test_dashboard_with_no_executions() -> None:
    body = dashboard_metrics([], [], pipeline="p", period="2h", start=7200.0, now=14400.0)
    assert body["summary"]["total_executions"] == 0
    assert body["summary"]["success_rate"] is None
    assert [h["hour"] for h in body["by_hour"]] == [
        "1970-01-01T02:00Z", "1970-01-01T03:00Z", "1970-01-01T04:00Z"]
    row = ExecutionSummary("a", "p", ExecutionStatus.CANCELLED, 7300.0, 7400.0,
                           finished_at=7400.0)
    body = dashboard_metrics([row], [], pipeline="p", period="2h", start=7200.0, now=14400.0)
    assert body["summary"]["success_rate"] is None  # cancelled is neither success nor error
    assert body["summary"]["p50_duration_ms"] == 100000.0
