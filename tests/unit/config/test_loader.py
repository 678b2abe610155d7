"""Loading YAML applications: format, positions, imports, application files and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import treadle.config
from treadle.config import (
    AppConfig,
    ConfigWarning,
    Position,
    SourceMap,
    build_app_config,
    format_key,
    load_config,
    load_config_text,
)
from treadle.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures"
ERRORS = FIXTURES / "errors"


def line_of(file: Path, needle: str, nth: int = 1) -> int:
    """1-based number of the `nth` line of `file` containing `needle`."""
    seen = 0
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"{needle!r} not {nth} times in {file}")


def load_errors(file: Path) -> list[ConfigError]:
    with pytest.raises(ConfigError) as caught:
        load_config(file, env={})
    error = caught.value
    assert error.file == str(file)
    assert error.message == f"configuration has {len(error.errors)} error" + (
        "s" if len(error.errors) != 1 else ""
    )
    for item in error.errors:  # every error is also in the rendered message
        assert str(item) in str(error)
    return error.errors


def triples(errors: list[ConfigError]) -> set[tuple[str | None, int | None, str | None]]:
    return {(Path(e.file).name if e.file else None, e.line, e.key) for e in errors}


def one(errors: list[ConfigError], key: str) -> ConfigError:
    found = [e for e in errors if e.key == key]
    assert len(found) == 1, f"{key}: {[str(e) for e in errors]}"
    return found[0]


# -- the format ----------------------------------------------------------------------------


def test_the_seed_documentation_config_loads() -> None:
    file = FIXTURES / "seed_app.yaml"
    app = load_config(file, env={"JWT_SECRET": "s3cret"})
    assert app.file == str(file)
    assert app.files == (str(file),)
    assert app.name == "Example Workflow"
    assert app.description == "A workflow with HTTP server, JWT auth, and health monitoring"
    assert [m.name for m in app.modules] == [
        "http-server", "jwt-auth", "health", "metrics", "api-router", "license",
        "cloud-provider", "orders-db", "platform-ctx", "tracing",
    ]  # fmt: skip
    assert app.module("orders-db") is not None
    assert app.module("orders-db").config["capabilities"] == {  # type: ignore[union-attr]
        "engine": "postgresql", "storage": "10Gi"
    }  # fmt: skip
    assert app.module("jwt-auth").config["secret"] == "s3cret"  # type: ignore[union-attr]
    assert app.module("license").config["license_key"] == ""  # type: ignore[union-attr]
    # the seed writes workflows and triggers as lists of {name, type, config}
    workflow = app.workflows["main-workflow"]
    assert (workflow.type, workflow.path) == ("http", ("workflows", 0))
    assert workflow.config["endpoints"][0]["response"]["body"] == '{"status": "ok"}'
    trigger = app.triggers["http-trigger"]
    assert (trigger.type, trigger.config["action"]) == ("http", "create-order")
    steps = app.pipelines["support-ticket"].steps
    assert [s.type for s in steps] == [
        "step.jq", "step.ai_complete", "step.ai_classify", "step.ai_extract", "step.docker_run"
    ]  # fmt: skip
    assert steps[4].config["command"] == ["go", "test", "./..."]
    assert steps[3].config["schema"]["properties"]["order_items"]["items"] == {"type": "string"}
    assert app.warnings == ()


def test_a_config_in_the_go_projects_style_loads_typed() -> None:
    app = load_config(FIXTURES / "go_app.yaml")
    assert (app.name, app.version) == ("webhook-pipeline-demo", "1.0")
    assert app.description == "Demonstrates the composable pipeline architecture.\n"
    router, broker = app.modules[1], app.modules[2]
    assert router.depends_on == ("webhook-server",)
    assert broker.branches == {"ok": "webhook-router"}
    assert broker.environments == {"staging": {"config": {"replicas": 1}}, "local": None}
    # Go map form: the key is the workflow type and the value its config
    assert app.workflows["messaging"].type == "messaging"
    assert app.workflows["messaging"].config["broker"] == "event-broker"
    # triggers keyed by type (Go examples) or by name with {type, config} (Go tests)
    assert app.triggers["schedule"].type == "schedule"
    assert app.triggers["schedule"].config["jobs"][0]["cron"] == "0 * * * *"
    assert app.triggers["nightly"].type == "schedule"
    assert app.triggers["nightly"].config == {"cron": "0 0 * * *"}

    pipeline = app.pipelines["stripe-payment"]
    assert pipeline.trigger is not None
    assert (pipeline.trigger.type, pipeline.trigger.config["path"]) == ("http", "/webhooks/stripe")
    assert (pipeline.on_error, pipeline.timeout, pipeline.strict_templates) == ("stop", "30s", True)
    assert pipeline.outputs == {"status": {"type": "string"}}
    assert pipeline.saga == {"enabled": True, "compensation_order": "reverse"}
    assert pipeline.dead_letter == {"enabled": True, "retention": "7d"}
    assert pipeline.retry is None and pipeline.idempotency is None
    assert pipeline.extra == {"owner": "payments-team"}
    assert pipeline.raw["owner"] == "payments-team"
    assert [s.name for s in pipeline.compensation] == ["notify-failure"]

    validate, extract, charge, log = pipeline.steps
    assert validate.error_status == 400
    assert extract.skip_if == '{{ eq .type "ping" }}'
    assert charge.if_ == "{{ .data.amount }}"
    assert (charge.timeout, charge.on_error) == ("5s", "compensate")
    assert charge.retry == {"max_attempts": 3, "backoff": "exponential"}
    assert charge.compensate is not None
    assert charge.compensate.name == "charge.compensate"
    assert charge.compensate.config == {"url": "https://api.stripe.com/v1/refunds"}
    assert log.extra == {"description": "not a Go step key: kept in extra"}
    assert pipeline.step("charge") is charge and pipeline.step("nope") is None


def test_unknown_step_and_pipeline_keys_are_kept_and_warned_about() -> None:
    file = FIXTURES / "go_app.yaml"
    app = load_config(file)
    assert {(w.key, w.line) for w in app.warnings} == {
        ("pipelines.stripe-payment.steps[3].description", line_of(file, "description: \"not")),
        ("pipelines.stripe-payment.owner", line_of(file, "owner:")),
    }
    assert all(isinstance(w, ConfigWarning) and w.file == str(file) for w in app.warnings)


def test_module_key_typos_get_a_suggestion() -> None:
    text = "modules:\n  - name: a\n    type: t\n    depends_on: [b]\n"
    [warning] = load_config_text(text, filename="app.yaml").warnings
    assert (warning.file, warning.line, warning.key) == ("app.yaml", 4, "modules[0].depends_on")
    assert "did you mean 'dependsOn'?" in warning.message


def test_modular_framework_sections_and_app_are_ignored_with_a_warning() -> None:
    # older Go examples configure modular's modules in top-level sections; Go's
    # WorkflowConfig has no such fields and Treadle reads modules[].config only
    # (httpserver:, chimux: and reverseproxy: are read by the module types of those names)
    text = ("app: {name: demo, version: '1.0'}\nmodules: []\n"
            "database: {dsn: x.db}\nscheduler:\n  jobs: []\nhttpserver: {port: 8090}\n")
    app = load_config_text(text, filename="app.yaml")
    assert {(w.key, w.line) for w in app.warnings} == {("database", 3), ("scheduler", 4)}
    assert all("is ignored" in w.message and "modules[].config" in w.message
               for w in app.warnings)
    assert "database" not in app.sections and "app" in app.sections
    assert app.sections["httpserver"] == {"port": 8090}
    with pytest.raises(ConfigError, match="unknown top-level key 'databse'"):
        load_config_text("databse: {}\n")


def test_other_top_level_sections_are_kept_untyped() -> None:
    text = (
        "platform: {region: eu}\nrequires: {capabilities: [http]}\nsidecars: []\n"
        "x-anchors: {a: 1}\nsecretStores: {vault: {provider: vault}}\n"
    )
    app = load_config_text(text)
    assert app.sections == {
        "platform": {"region": "eu"}, "requires": {"capabilities": ["http"]}, "sidecars": [],
        "x-anchors": {"a": 1}, "secretStores": {"vault": {"provider": "vault"}},
    }  # fmt: skip
    assert set(treadle.config.TOP_LEVEL_KEYS) >= {
        "imports", "modules", "workflows", "triggers", "pipelines", "platform", "requires",
        "plugins", "sidecars", "infrastructure", "engine", "ci", "environments", "secrets",
        "infra", "secretStores", "services", "mesh", "networking", "security",
    }  # fmt: skip


def test_empty_sections_and_files_are_empty() -> None:
    assert load_config(FIXTURES / "empty.yaml").modules == ()
    app = load_config_text("modules:\npipelines:\n  p:\nworkflows:\n")
    assert app.modules == () and app.workflows == {}
    assert app.pipelines["p"].steps == ()


def test_scalars_are_read_as_go_yaml_v3_reads_them() -> None:
    config = load_config(FIXTURES / "yaml12.yaml").modules[0].config
    assert config["yes_word"] == "yes" and config["on_word"] == "on"  # YAML 1.2: strings
    assert config["no_word"] == "NO" and config["true_word"] is True
    assert config["null_word"] is None and config["empty"] is None
    assert (config["hex"], config["octal"], config["octal_new"]) == (31, 493, 15)
    assert (config["binary"], config["underscored"]) == (5, 1000)
    assert config["float_exp"] == 1000.0 and config["float_dot"] == 1.5
    assert config["inf"] == float("-inf")
    assert config["date"] == "2024-01-02"  # no timestamps: dates stay strings (JSON-safe)
    assert config["sexagesimal"] == "1:30"
    assert config["quoted_int"] == "123" and config["tagged"] == "123"
    assert config["on"] == "key named on"  # a key `on:` is the string "on", not True


def test_scalar_names_read_as_text() -> None:
    module = load_config(FIXTURES / "yaml12.yaml").modules[1]
    assert (module.name, module.type) == ("123", "true")


def test_anchors_aliases_and_merge_keys() -> None:
    file = FIXTURES / "anchors.yaml"
    app = load_config(file)
    assert app.modules[0].config == {"timeout": "5s", "retries": 3}  # explicit key wins
    assert app.modules[1].config == {"timeout": "30s", "retries": 3}
    assert [(s.name, s.type) for s in app.pipelines["p"].steps] == [
        ("log", "step.log"), ("log-again", "step.log")
    ]  # fmt: skip
    # merged-in keys point at the anchor; an alias's children at the alias
    assert app.position(("modules", 0, "config", "retries")) == Position(str(file), 3, 3)
    assert app.position(("modules", 1, "config", "timeout")) == Position(
        str(file), line_of(file, "config: *defaults"), 5
    )


# -- positions -----------------------------------------------------------------------------


def test_every_node_has_its_file_and_line() -> None:
    file = FIXTURES / "go_app.yaml"
    app = load_config(file)
    step_path = ("pipelines", "stripe-payment", "steps", 2)
    assert app.position((*step_path, "type")) == Position(
        str(file), line_of(file, "type: step.http_call"), 9
    )
    # a sequence item starts at its first key (after the `- `)
    assert app.position(step_path) == Position(str(file), line_of(file, "- name: charge"), 9)
    assert app.position(("modules", 1, "dependsOn", 0)).line == line_of(  # type: ignore[union-attr]
        file, "- webhook-server"
    )
    assert app.position(("triggers", "nightly")).line == line_of(file, "nightly:")  # type: ignore[union-attr]
    assert app.position(()) is not None
    # typed objects know their path
    charge = app.pipelines["stripe-payment"].steps[2]
    assert charge.path == step_path
    assert app.source_map[(*charge.path, "compensate", "type")].line == line_of(
        file, "type: step.http_call", nth=2
    )


def test_positions_fall_back_to_the_nearest_ancestor() -> None:
    file = FIXTURES / "go_app.yaml"
    app = load_config(file)
    deep = ("pipelines", "stripe-payment", "steps", 0, "config", "no", "such", "key")
    assert app.position(deep) == app.position(deep[:5])
    assert ("no", "such") not in app.source_map


def test_error_at_builds_a_located_config_error() -> None:
    file = FIXTURES / "go_app.yaml"
    app = load_config(file)
    error = app.error_at(("pipelines", "stripe-payment", "steps", 2, "type"), "unknown step type")
    line = line_of(file, "type: step.http_call")
    assert (error.file, error.line) == (str(file), line)
    assert error.key == "pipelines.stripe-payment.steps[2].type"
    key = "pipelines.stripe-payment.steps[2].type"
    assert str(error) == f"{file}:{line} [{key}]: unknown step type"


def test_format_key() -> None:
    assert format_key(("pipelines", "create-order", "steps", 2, "type")) == (
        "pipelines.create-order.steps[2].type"
    )
    assert format_key(("modules", 0, "config", "a.b", "c d")) == 'modules[0].config["a.b"]["c d"]'
    assert format_key(()) == ""


def test_source_map_is_a_read_only_mapping() -> None:
    smap = SourceMap({("a",): Position("f.yaml", 2)})
    assert dict(smap) == {("a",): Position("f.yaml", 2)}
    assert smap.locate(("a", "b", 3)) == Position("f.yaml", 2)
    assert smap.locate(("z",)) is None
    assert str(Position("f.yaml", 2)) == "f.yaml:2"


# -- errors: every one names file, line and key -------------------------------------------


def test_yaml_syntax_error_has_the_line_pyyaml_reports() -> None:
    file = ERRORS / "syntax.yaml"
    [error] = load_errors(file)
    assert (error.file, error.line) == (str(file), line_of(file, "config: [1, 2"))
    assert error.message.startswith("invalid YAML: ")
    assert "started at line 2" in error.message


def test_syntax_error_in_text_names_the_given_filename() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("a: [1\nb: 2\n", filename="inline.yaml")
    [error] = caught.value.errors
    assert (error.file, error.line) == ("inline.yaml", 2)


def test_top_level_must_be_a_mapping() -> None:
    [error] = load_errors(ERRORS / "not_mapping.yaml")
    assert (error.line, error.key) == (1, None)
    assert error.message == "the top level must be a mapping of keys, not a list"


def test_one_document_per_file() -> None:
    [error] = load_errors(ERRORS / "multi_doc.yaml")
    assert error.line == 2 and "one YAML document" in error.message


def test_unknown_top_level_keys_suggest_the_closest() -> None:
    errors = load_errors(ERRORS / "unknown_keys.yaml")
    assert triples(errors) == {
        ("unknown_keys.yaml", 2, "pipeline"),
        ("unknown_keys.yaml", 4, "trigers"),
        ("unknown_keys.yaml", 5, "totally_unrelated"),
    }  # x-anchors is allowed
    assert one(errors, "pipeline").message == (
        "unknown top-level key 'pipeline' (did you mean 'pipelines'?)"
    )
    assert "did you mean 'triggers'?" in one(errors, "trigers").message
    assert "did you mean" not in one(errors, "totally_unrelated").message


def test_wrong_container_types() -> None:
    errors = load_errors(ERRORS / "wrong_types.yaml")
    assert triples(errors) == {
        ("wrong_types.yaml", 1, "imports"),
        ("wrong_types.yaml", 2, "modules"),
        ("wrong_types.yaml", 5, "pipelines"),
        ("wrong_types.yaml", 7, "workflows"),
        ("wrong_types.yaml", 8, "name"),
    }  # `platform:` with nothing under it is just empty
    assert one(errors, "modules").message == "modules must be a list, not a mapping"
    assert one(errors, "pipelines").message == "pipelines must be a mapping, not a list"
    assert one(errors, "imports").message == "imports must be a list, not a string"


def test_module_errors_are_all_reported_at_once() -> None:
    file = ERRORS / "modules.yaml"
    errors = load_errors(file)
    expected = {
        ("modules[1].name", "- type: http.router", "module has no 'name'"),
        ("modules[2].type", "- name: no-type", "module has no 'type'"),
        ("modules[3]", "- just a string", "a module must be a mapping with name and type, not "
         "a string"),
        ("modules[4].name", "- name: ok", "duplicate module name 'ok' (first defined at line 2)"),
        ("modules[5].config", "config: [1, 2]", "module 'config' must be a mapping, not a list"),
        ("modules[5].dependsOn", "dependsOn: ok", "module 'dependsOn' must be a list, not a "
         "string"),
        ("modules[6].dependsOn[1]", "dependsOn: [ok, {x: 1}]", "dependsOn entries must be "
         "module names, not a mapping"),
        ("modules[7].name", "- name: [list]", "module 'name' must be a string, not a list"),
    }  # fmt: skip
    nth = {"modules[4].name": 2}
    assert {(e.key, e.line, e.message) for e in errors} == {
        (key, line_of(file, needle, nth.get(key, 1)), message) for key, needle, message in expected
    }
    assert all(e.file == str(file) for e in errors)


def test_duplicate_keys_are_errors() -> None:
    file = ERRORS / "duplicate_keys.yaml"
    errors = load_errors(file)
    assert {(e.key, e.line, e.message) for e in errors} == {
        ("modules[0].config.port", line_of(file, "port: 2"),
         "duplicate key 'port' (first defined at line 5)"),
        ("pipelines.p", line_of(file, "p:", 2), "duplicate key 'p' (first defined at line 8)"),
    }  # fmt: skip


def test_pipeline_step_workflow_and_trigger_errors() -> None:
    file = ERRORS / "pipelines.yaml"
    errors = load_errors(file)
    bad = "pipelines.bad-steps"
    expected = {
        ("pipelines.no-steps-list.steps", "steps: {name: a}",
         "pipeline 'steps' must be a list, not a mapping"),
        (f"{bad}.steps[0].name", "- type: step.log", "step has no 'name'"),
        (f"{bad}.steps[1].type", "- name: no-type", "step has no 'type'"),
        (f"{bad}.steps[2]", '- "a string"',
         "a step must be a mapping with name and type, not a string"),
        (f"{bad}.steps[3].error_status", 'error_status: "400"',
         "error_status must be an HTTP status code, not '400'"),
        (f"{bad}.steps[4].config", 'config: "x"', "step 'config' must be a mapping, not a string"),
        (f"{bad}.trigger.type", "trigger:", "trigger has no 'type'"),
        (f"{bad}.strict_templates", "strict_templates: maybe",
         "pipeline 'strict_templates' must be true or false, not 'maybe'"),
        (f"{bad}.timeout", "timeout: [1]", "pipeline 'timeout' must be a string, not a list"),
        ("pipelines.not-a-mapping", "not-a-mapping:",
         "a pipeline must be a mapping with steps, not a list"),
        ("workflows.http", "http: [1]", "a workflow must be a mapping, not a list"),
        ("triggers[0].type", "- name: t", "trigger has no 'type'"),
        ("triggers[1]", "- 3", "a trigger must be a mapping with name and type, not a number"),
    }  # fmt: skip
    assert {(e.key, e.line, e.message) for e in errors} == {
        (key, line_of(file, needle), message) for key, needle, message in expected
    }


def test_duplicate_step_names_are_a_warning() -> None:
    text = "pipelines:\n  p:\n    steps:\n      - {name: a, type: t}\n      - {name: a, type: t}\n"
    [warning] = load_config_text(text, filename="p.yaml").warnings
    assert (warning.line, warning.key) == (5, "pipelines.p.steps[1].name")
    assert "duplicate step name 'a'" in warning.message


def test_recursive_alias_is_an_error() -> None:
    [error] = load_errors(FIXTURES / "recursive.yaml")
    assert error.key == "modules[0].config.self" and "recursive YAML alias" in error.message


def test_unsupported_tags_are_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("platform: !!set {a}\nname: !Ref x\n", filename="t.yaml")
    assert {(e.line, e.key, e.message) for e in caught.value.errors} == {
        (1, "platform", "unsupported YAML tag tag:yaml.org,2002:set"),
        (2, "name", "unsupported YAML tag !Ref"),
    }


def test_missing_main_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    [error] = caught.value.errors
    assert (error.file, error.line, error.message) == (str(missing), None, "file not found")


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.errors[0].message.startswith("cannot read file")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"modules: []\nname: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(latin)
    [error] = caught.value.errors
    assert (error.line, error.message) == (2, "file is not valid UTF-8")
    control = tmp_path / "control.yaml"
    control.write_text("modules: []\nname: a\x00b\n")
    with pytest.raises(ConfigError) as caught:
        load_config(control)
    assert caught.value.errors[0].line == 2


def test_errors_from_several_files_come_in_load_order() -> None:
    errors = load_errors(ERRORS / "broken_import.yaml")
    assert [(Path(e.file or "").name, e.line, e.key) for e in errors] == [
        ("broken_import.yaml", 3, "modulez"),
        ("bad_part.yaml", 2, "modules[0].type"),
        ("bad_part.yaml", 3, "pipelines"),
    ]
    assert errors[1].file == str(ERRORS / "parts" / "bad_part.yaml")


# -- imports -------------------------------------------------------------------------------


def test_imports_resolve_relative_to_the_importing_file_depth_first() -> None:
    main = FIXTURES / "imports" / "main.yaml"
    app = load_config(main)
    # main's modules first, then each import's (its own imports after it); names dedupe
    assert [m.name for m in app.modules] == ["server", "db", "cache", "logger"]
    assert app.module("server").config == {"address": ":8080"}  # type: ignore[union-attr]
    assert set(app.pipelines) == {"shared-pipeline", "get-items", "health"}
    assert app.files == tuple(
        str(FIXTURES / "imports" / name)
        for name in ("main.yaml", "modules.yaml", "routes/routes.yaml", "shared/common.yaml")
    )
    assert "imports" not in app.raw  # cleared after processing, as in Go


def test_the_importing_file_wins_whole_entries() -> None:
    app = load_config(FIXTURES / "imports" / "main.yaml")
    assert [s.name for s in app.pipelines["shared-pipeline"].steps] == ["main-step"]
    assert app.triggers["http"].config == {"routes": []}  # main's, not merged with the import's
    assert app.triggers["get-items-trigger"].config == {"path": "/items", "method": "GET"}
    assert app.sections["platform"] == {"main": {"version": "1.0"}, "logging": {"level": "info"}}


def test_secrets_merge_field_by_field() -> None:
    secrets = load_config(FIXTURES / "imports" / "main.yaml").sections["secrets"]
    assert secrets["defaultStore"] == "main-store"  # set in main: kept
    assert secrets["provider"] == "import-provider"  # unset in main: imported
    assert secrets["generate"] == [
        {"key": "MAIN_KEY", "type": "random_hex"},
        {"key": "IMPORTED_KEY", "type": "random_hex"},
    ]


def test_imported_positions_point_into_the_imported_files() -> None:
    folder = FIXTURES / "imports"
    app = load_config(folder / "main.yaml")
    db = app.module("db")
    assert db is not None and db.path == ("modules", 1)
    modules_file = folder / "modules.yaml"
    assert app.position(("modules", 1, "config", "path")) == Position(
        str(modules_file), line_of(modules_file, "path: ./data/app.db"), 7
    )
    cache_pos = app.position(("modules", 2))  # cache was modules.yaml's third entry
    assert cache_pos is not None and cache_pos.line == line_of(modules_file, "- name: cache")
    common = folder / "shared" / "common.yaml"
    step = app.pipelines["health"].steps[0]
    assert app.error_at((*step.path, "type"), "x").file == str(common)
    assert app.position((*step.path, "type")).line == line_of(common, "type: step.json_")  # type: ignore[union-attr]


def test_keys_imports_do_not_contribute_are_ignored_with_a_warning() -> None:
    app = load_config(FIXTURES / "imports" / "main.yaml")
    assert "requires" not in app.sections
    [warning] = app.warnings
    common = FIXTURES / "imports" / "shared" / "common.yaml"
    assert (warning.file, warning.line, warning.key) == (str(common), 17, "requires")
    assert "'requires' is ignored here" in warning.message


def test_diamond_imports_load_the_shared_file_once_per_path_without_duplicates() -> None:
    app = load_config(FIXTURES / "diamond" / "main.yaml")
    assert [m.name for m in app.modules] == ["main-gateway", "service-b", "shared-db", "service-c"]
    assert app.warnings == ()


def test_import_cycles_are_errors_at_the_import_that_closes_them() -> None:
    a, b = FIXTURES / "cycle" / "a.yaml", FIXTURES / "cycle" / "b.yaml"
    [error] = load_errors(a)
    assert (error.file, error.line, error.key) == (str(b), 2, "imports[0]")
    assert error.message == f"circular import: {a} -> {b} -> {a}"
    own = FIXTURES / "cycle" / "self.yaml"
    [error] = load_errors(own)
    assert (error.file, error.line, error.key) == (str(own), 3, "imports[0]")
    assert error.message == f"circular import: {own} -> {own}"


def test_missing_and_malformed_imports() -> None:
    file = ERRORS / "missing_import.yaml"
    errors = load_errors(file)
    assert {(e.file, e.line, e.key, e.message) for e in errors} == {
        (str(file), 3, "imports[1]", f"file not found: {ERRORS / 'nonexistent.yaml'}"),
        (str(file), 4, "imports[2]", "an import must be a file path, not a number"),
    }


def test_text_imports_resolve_against_the_filename(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mods.yaml").write_text("modules:\n  - {name: b, type: t}\n")
    text = "imports: [sub/mods.yaml]\nmodules:\n  - {name: a, type: t}\n"
    app = load_config_text(text, filename=str(tmp_path / "app.yaml"))
    assert [m.name for m in app.modules] == ["a", "b"]
    assert app.position(("modules", 1)) == Position(str(tmp_path / "sub" / "mods.yaml"), 2, 5)


def test_text_imports_without_a_path_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mods.yaml").write_text("modules:\n  - {name: b, type: t}\n")
    monkeypatch.chdir(tmp_path)
    app = load_config_text("imports: [mods.yaml]\n")
    assert [m.name for m in app.modules] == ["b"]
    assert app.files == ("<string>", "mods.yaml")


def test_an_application_file_cannot_be_imported(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text("application: {workflows: [{file: x.yaml}]}\n")
    with pytest.raises(ConfigError) as caught:
        load_config_text("imports: [app.yaml]\n", filename=str(tmp_path / "main.yaml"))
    [error] = caught.value.errors
    assert (error.file, error.line, error.key) == (str(tmp_path / "app.yaml"), 1, "application")


# -- application files ---------------------------------------------------------------------


def test_an_application_combines_its_workflow_files() -> None:
    folder = FIXTURES / "application"
    app = load_config(folder / "app.yaml", env={"PORT": "9000"})
    assert app.name == "chat-platform"
    assert [m.name for m in app.modules] == ["server", "broker"]
    assert app.module("server").config == {"address": ":9000"}  # type: ignore[union-attr]
    assert set(app.pipelines) == {"main-loop", "queue-assignment"}
    http = app.workflows["http"].config
    assert http["server"] == "server"  # first file wins for plain keys
    assert [r["path"] for r in http["routes"]] == ["/a", "/b"]  # route lists concatenate
    assert app.workflows["messaging"].config == {"broker": "broker"}
    route_b = app.position(("workflows", "http", "routes", 1))
    assert route_b == Position(str(folder / "queue.yaml"), line_of(folder / "queue.yaml",
                                                                   "- path: /b"), 9)  # fmt: skip
    assert app.position(("modules", 1)).file == str(folder / "queue.yaml")  # type: ignore[union-attr]
    [warning] = app.warnings  # `engine` in a workflow file is dropped, as in Go
    assert (warning.key, Path(warning.file or "").name) == ("engine", "queue.yaml")


def test_application_name_conflicts_and_bad_references() -> None:
    folder = FIXTURES / "application"
    errors = load_errors(folder / "conflict.yaml")
    clash, main_loop = folder / "clash.yaml", folder / "main-loop.yaml"
    assert {(e.file, e.line, e.key, e.message) for e in errors} == {
        (str(folder / "conflict.yaml"), 6, "application.workflows[2].file",
         f"file not found: {folder / 'missing.yaml'}"),
        (str(folder / "conflict.yaml"), 7, "application.workflows[3]",
         "a workflow reference needs a 'file' path"),
        (str(clash), 2, "modules[0]",
         f"module 'server' is defined in both {main_loop} and {clash}"),
        (str(clash), 5, "pipelines.main-loop",
         f"pipeline 'main-loop' is defined in both {main_loop} and {clash}"),
    }  # fmt: skip


def test_application_needs_workflow_files_and_nothing_beside() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("application: {name: x}\nmodules: []\n", filename="app.yaml")
    assert {(e.line, e.key) for e in caught.value.errors} == {
        (1, "application.workflows"), (2, "modules")
    }  # fmt: skip


# -- building from a mapping ---------------------------------------------------------------


def test_build_app_config_from_a_plain_mapping() -> None:
    app = build_app_config({"modules": [{"name": "a", "type": "t", "extra_key": 1}]})
    assert isinstance(app, AppConfig) and app.file == "<mapping>"
    assert app.modules[0].extra == {"extra_key": 1}
    assert [w.key for w in app.warnings] == ["modules[0].extra_key"]
    with pytest.raises(ConfigError) as caught:
        build_app_config({"modules": [{"type": "t"}]}, file="api")
    [error] = caught.value.errors
    assert (error.file, error.line, error.key) == ("api", None, "modules[0].name")


def test_public_names() -> None:
    assert sorted(treadle.config.__all__) == sorted([
        "AppConfig", "ConfigWarning", "KeyPath", "ModuleConfig", "PipelineConfig",
        "PipelineTriggerConfig", "Position", "SourceMap", "StepConfig", "TOP_LEVEL_KEYS",
        "TriggerConfig", "WorkflowConfig", "build_app_config", "expand_env", "format_key",
        "load_config", "load_config_text",
    ])  # fmt: skip


def test_the_pure_python_parser_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    for name in ("go_app.yaml", "anchors.yaml", "yaml12.yaml", "seed_app.yaml"):
        fast = load_config(FIXTURES / name, env={})
        monkeypatch.setattr(yaml, "__with_libyaml__", False)
        slow = load_config(FIXTURES / name, env={})
        monkeypatch.undo()
        assert slow.raw == fast.raw
        assert dict(slow.source_map) == dict(fast.source_map)
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    with pytest.raises(ConfigError) as caught:
        load_config(ERRORS / "syntax.yaml")
    assert caught.value.errors[0].line == line_of(ERRORS / "syntax.yaml", "config: [1, 2")


def test_a_file_reached_twice_reports_its_errors_once() -> None:
    errors = load_errors(FIXTURES / "diamond_broken" / "main.yaml")
    assert triples(errors) == {("shared.yaml", 2, "modulse")}


def test_list_form_sections_are_not_merged_from_imports() -> None:
    folder = FIXTURES / "imports"
    app = load_config(folder / "list_form.yaml")
    assert set(app.triggers) == {"http"}
    [warning] = app.warnings
    assert (warning.file, warning.line, warning.key) == (
        str(folder / "list_triggers.yaml"), 1, "triggers"
    )
    assert "cannot be merged on import" in warning.message


def test_aliases_are_shared_not_copied() -> None:
    app = load_config(FIXTURES / "alias_bomb.yaml", env={"HOME": "/h"})
    config = app.modules[0].config
    assert config["l8"][9][9][9][9][9][9][9][9][9] == "/h"
    assert config["l8"][0] is config["l8"][1]  # one object, however often it is reached
