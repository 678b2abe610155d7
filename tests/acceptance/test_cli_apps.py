"""`treadle validate`, `treadle run APP.yaml --pipeline`, `treadle test` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).parents[2]
VALIDATE = ROOT / "tests" / "unit" / "validate" / "fixtures"
APPTEST = ROOT / "tests" / "unit" / "apptest" / "fixtures"

GREET = """\
name: greet
pipelines:
  greet:
    steps:
      - name: check
        type: step.validate
        config: {strategy: required_fields, required_fields: [name]}
      - name: hello
        type: step.set
        config:
          values:
            message: "hello {{ .name }}"
"""


def test_validate_reports_every_error_with_file_line_and_key(cli) -> None:  # type: ignore[no-untyped-def]
    ok = cli("validate", str(VALIDATE / "valid_app.yaml"))
    assert ok.returncode == 0 and "ok" in ok.stdout, ok.stderr
    bad = cli("validate", str(VALIDATE / "broken_app.yaml"))
    assert bad.returncode == 1
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) >= 2  # all at once
    assert all("broken_app.yaml:" in line and "[" in line for line in errors)


def test_validate_schema_is_json(cli) -> None:  # type: ignore[no-untyped-def]
    schema = json.loads(cli.ok("validate", "--schema"))
    assert "modules" in json.dumps(schema) and "step.set" in json.dumps(schema)


def test_run_a_pipeline_of_an_app(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = tmp_path / "greet.yaml"
    app.write_text(GREET)
    view = cli.json("run", str(app), "--pipeline", "greet", "--input", '{"name": "ann"}')
    assert view["status"] == "completed"
    assert view["output"]["message"] == "hello ann"
    assert [s["name"] for s in view["steps"]] == ["check", "hello"]
    failed = cli("run", str(app), "--pipeline", "greet", "--input", "{}")
    assert failed.returncode == 1 and "name" in failed.stderr
    missing = cli("run", str(app), "--input", "{}")
    assert missing.returncode == 2 and "--pipeline" in missing.stderr


def test_config_tests(cli) -> None:  # type: ignore[no-untyped-def]
    passing = cli("test", str(APPTEST / "orders_test.yaml"))
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "PASS" in passing.stdout
    failing = cli("test", str(APPTEST / "failing_test.yaml"))
    assert failing.returncode == 1 and "FAIL" in failing.stdout
