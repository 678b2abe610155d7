"""validate_config / config_schema on real YAML fixtures: every error with file, line, key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from treadle.config import load_config
from treadle.config.schema import config_schema
from treadle.config.validate import check_config, validate_config, validate_report
from treadle.errors import ConfigError
from treadle.modules import default_registry as module_types
from treadle.steps.registry import default_registry as step_types

FIXTURES = Path(__file__).parent / "fixtures"


def _where(errors: list[ConfigError]) -> dict[str, tuple[int | None, str]]:
    return {e.key or "": (e.line, e.message) for e in errors}


def test_a_valid_application_has_no_errors_nor_warnings() -> None:
    report = validate_report(FIXTURES / "valid_app.yaml", env={})
    assert report.errors == [] and report.ok
    assert report.warnings == []


def test_every_error_at_once_with_file_line_and_key() -> None:
    errors = validate_config(FIXTURES / "broken_app.yaml", env={})
    found = _where(errors)
    expected_lines = {
        "modules[0].type": 3,
        "modules[1].dependsOn": 6,
        "modules[2].name": 7,
        "modules[4].config.cacheMaxAge": 15,
        "modules[5].config.driver": 18,
        "modules[6].type": 20,
        "triggers.http.routes[0].workflow": 25,
        "triggers.http.routes[1].path": 26,
        "triggers.http.routes[2].middlewares[0]": 28,
        "triggers.event.subscriptions[0].topic": 31,
        "triggers.schedule.jobs[0].cron": 34,
        "triggers.schedule.jobs[1].cron": 35,
        "triggers.bogus.type": 37,
        "pipelines.get-item.trigger.config.path": 42,
        "pipelines.get-item.steps[0].config.database": 46,
        "pipelines.get-item.steps[1].config.cache": 49,
        "pipelines.get-item.steps[2].config.routes.false": 52,
        "pipelines.get-item.steps[3].type": 54,
        "pipelines.get-item.steps[4].config.workflow": 58,
        "pipelines.get-item.steps[5].config.step.config.broker": 63,
    }
    assert {k: v[0] for k, v in found.items()} == expected_lines
    assert all(e.file is not None and e.file.endswith("broken_app.yaml") for e in errors)
    lines = [e.line or 0 for e in errors]
    assert lines == sorted(lines)


def test_messages_name_the_problem_and_the_known_choices() -> None:
    found = _where(validate_config(FIXTURES / "broken_app.yaml", env={}))
    unknown = found["modules[0].type"][1]
    assert "unknown module type 'http.sever' (did you mean 'http.server'?)" in unknown
    assert "known module types: api.command, api.handler, api.query, auth.jwt, cache.modular" \
        in unknown
    assert "not supported by Treadle" in found["modules[6].type"][1]
    assert found["modules[2].name"][1] == "dependsOn cycle: a -> b -> a"
    assert "dependsOn unknown module 'nowhere'" in found["modules[1].dependsOn"][1]
    assert "did you mean 'get-item'?" in found["triggers.http.routes[0].workflow"][1]
    assert "conflicts with GET /items/{id}" in found["triggers.http.routes[1].path"][1]
    assert "module 'db' is not a cache (cache modules: a, b)" in \
        found["pipelines.get-item.steps[1].config.cache"][1]
    assert "routes to unknown step 'nowhere'" in \
        found["pipelines.get-item.steps[2].config.routes.false"][1]
    assert "unknown step type 'step.sett'" in found["pipelines.get-item.steps[3].type"][1]
    assert "known trigger types: http, event" in found["triggers.bogus.type"][1]
    assert "Mars/Olympus" in found["triggers.schedule.jobs[1].cron"][1]


def test_imports_are_merged_and_errors_point_into_the_imported_file() -> None:
    errors = validate_config(FIXTURES / "imports" / "main.yaml", env={"DB_DRIVER": "oracle"})
    found = {(Path(e.file or "").name, e.line, e.key) for e in errors}
    assert found == {("parts.yaml", 4, "modules[1].config.walMode"),
                     ("parts.yaml", 7, "modules[2].config.driver")}


def test_env_variables_are_expanded_before_checking() -> None:
    ok = validate_config(FIXTURES / "imports" / "main.yaml", env={"DB_DRIVER": "sqlite3"})
    assert [e.key for e in ok] == ["modules[1].config.walMode"]
    report = validate_report(FIXTURES / "imports" / "main.yaml", env={})
    assert any("DB_DRIVER is not set" in w.message for w in report.warnings)
    strict = validate_config(FIXTURES / "imports" / "main.yaml", env={}, strict_env=True)
    assert any("DB_DRIVER is not set" in e.message for e in strict)


def test_the_seeds_configuration_format_example() -> None:
    report = validate_report(FIXTURES / "seed_config_format.yaml", env={"JWT_SECRET": "s"})
    assert [(e.line, e.key) for e in report.errors] == [(53, "triggers[0].config.workflow")]
    assert "workflow 'order-workflow' is not defined" in report.errors[0].message
    # the router's `routes:` is ignored, as in the Go engine
    assert [(w.line, w.key) for w in report.warnings] == [(31, "modules[4].config.routes")]


def test_the_seed_reference_examples_report_unsupported_types() -> None:
    path = Path(__file__).parents[1] / "config" / "fixtures" / "seed_app.yaml"
    errors = validate_config(path, env={"JWT_SECRET": "s"})
    unsupported = {e.key for e in errors if "not supported by Treadle" in e.message}
    assert unsupported == {f"modules[{i}].type" for i in range(5, 10)}
    unknown_steps = {e.key for e in errors if "unknown step type" in e.message}
    assert unknown_steps == {f"pipelines.support-ticket.steps[{i}].type" for i in range(1, 5)}


def test_syntax_errors_come_back_as_the_loader_reports_them(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("modules:\n  - name: x\n    type: [unclosed\n")
    errors = validate_config(bad)
    assert len(errors) == 1 and errors[0].line is not None and "invalid YAML" in errors[0].message


def test_a_producer_that_is_an_http_handler_is_a_warning(tmp_path: Path) -> None:
    # the Go engine only logs `producers:`; Treadle forwards from message handlers
    app = tmp_path / "app.yaml"
    app.write_text("""
modules:
  - {name: broker, type: messaging.broker}
  - {name: api, type: http.handler}
  - {name: sink, type: messaging.handler}
workflows:
  messaging:
    subscriptions: [{topic: a, handler: sink}]
    producers:
      - {name: api, forwardTo: [a]}
      - {name: nobody, forwardTo: [a]}
""")
    report = validate_report(app)
    assert [(e.key, "not a module" in e.message) for e in report.errors] == [
        ("workflows.messaging.producers[1].name", True)]
    [warning] = [w for w in report.warnings if w.key == "workflows.messaging.producers[0].name"]
    assert "forwardTo is ignored" in warning.message


def test_unknown_keys_are_warnings_with_suggestions(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text("""
modules:
  - name: limit
    type: http.middleware.ratelimit
    config: {requestsPerMinut: 5}
pipelines:
  p:
    steps:
      - name: s
        type: step.set
        config: {values: {a: 1}, valus: {}}
""")
    report = validate_report(app)
    assert report.errors == []
    messages = {(w.key, w.message) for w in report.warnings}
    assert ("modules[0].config.requestsPerMinut",
            "unknown key 'requestsPerMinut' (did you mean 'requestsPerMinute'?) (ignored)") \
        in messages
    assert any(k == "pipelines.p.steps[0].config.valus" for k, _ in messages)


def test_non_pipeline_targets_may_name_state_machine_definitions(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text("""
workflows:
  statemachine:
    definitions:
      - name: order-lifecycle
triggers:
  http:
    routes:
      - {path: /orders, method: POST, workflow: order-lifecycle, action: create}
      - {path: /other, method: POST, workflow: p, action: create}
pipelines:
  p: {steps: [{name: s, type: step.log, config: {message: hi}}]}
""")
    errors = validate_config(app)
    assert [(e.key, e.message) for e in errors] == [(
        "triggers.http.routes[1].workflow",
        "workflow 'p' is not defined (did you mean \"pipeline:p\"?): triggers start pipelines "
        "(workflow: \"pipeline:<name>\")")]


# -- the schema -----------------------------------------------------------------------------


def test_config_schema_is_a_valid_2020_12_schema_covering_both_registries() -> None:
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(json.dumps(schema)) == schema
    defs = schema["$defs"]
    assert {f"module.{t}" for t in module_types.types()} <= set(defs)
    assert {f"step.config.{t}" for t in step_types.types()} <= set(defs)
    assert defs["module"]["properties"]["type"]["enum"] == module_types.types()
    dispatch = defs["module"]["allOf"]
    assert {"if": {"properties": {"type": {"const": "storage.sqlite"}}, "required": ["type"]},
            "then": {"properties": {"config": {"$ref": "#/$defs/module.storage.sqlite"}}}} \
        in dispatch


def test_the_schema_accepts_the_valid_fixture_and_locates_type_specific_errors() -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    app = load_config(FIXTURES / "valid_app.yaml", env={})
    assert list(validator.iter_errors(app.raw)) == []
    raw = json.loads(json.dumps(app.raw))
    raw["modules"][0]["config"]["address"] = 8080
    raw["pipelines"]["create-order"]["steps"][0]["config"]["parse_body"] = "yes"
    paths = {tuple(e.absolute_path) for e in validator.iter_errors(raw)}
    assert paths == {("modules", 0, "config", "address"),
                     ("pipelines", "create-order", "steps", 0, "config", "parse_body")}


def test_check_config_works_on_a_loaded_config(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "valid_app.yaml", tmp_path / "app.yaml")
    report = check_config(load_config(tmp_path / "app.yaml", env={}))
    assert report.ok


@pytest.mark.parametrize("name", ["valid_app.yaml", "broken_app.yaml"])
def test_validation_is_stable(name: str) -> None:
    first = [str(e) for e in validate_config(FIXTURES / name, env={})]
    assert first == [str(e) for e in validate_config(FIXTURES / name, env={})]
