"""`${VAR}` expansion: the string rules, and where the loader applies them."""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle.config import load_config, load_config_text
from treadle.config.envexpand import expand_env, expand_env_report, expand_env_tree, lookup_env
from treadle.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures"
ENV = {"PORT": "9090", "REGION": "eu-west-1", "DB_PASSWORD": "pw", "DB_USER": "app"}


def line_of(file: Path, needle: str) -> int:
    """1-based number of the first line of `file` containing `needle`."""
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {file}")


# -- the string rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${PORT}", "9090"),
        (":${PORT}/x", ":9090/x"),
        ("${env:PORT}", "9090"),
        ("${PORT}${REGION}", "9090eu-west-1"),
        ("no references", "no references"),
        ("", ""),
    ],
)
def test_braced_references_expand(text: str, expected: str) -> None:
    assert expand_env(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${MISSING:-8080}", {}, "8080"),
        ("${EMPTY:-8080}", {"EMPTY": ""}, "8080"),  # `:-` also covers set-but-empty
        ("${PORT:-8080}", ENV, "9090"),
        ("${MISSING:-}", {}, ""),
        ("${MISSING:-a:b/c d}", {}, "a:b/c d"),  # the default is literal text
        ("${env:MISSING:-x}", {}, "x"),
    ],
)
def test_defaults(text: str, env: dict[str, str], expected: str) -> None:
    assert expand_env(text, env) == expected


def test_defaults_do_not_nest() -> None:
    # the reference ends at the first `}`: the default is the literal text "${PORT"
    assert expand_env("${MISSING:-${PORT}}", ENV) == "${PORT}"


def test_unset_variable_without_default_is_left_as_written_and_reported() -> None:
    assert expand_env_report("a=${A} b=${B}", {"A": "1"}) == ("a=1 b=${B}", ("B",))
    assert expand_env("${NOPE}", {}) == "${NOPE}"


def test_set_but_empty_variable_without_default_expands_to_empty() -> None:
    assert expand_env_report("[${E}]", {"E": ""}) == ("[]", ())


def test_dollar_dollar_escapes_a_reference() -> None:
    assert expand_env("$${PORT} ${PORT}", ENV) == "${PORT} 9090"
    assert expand_env("$${ anything at all }", {}) == "${ anything at all }"
    assert expand_env("pid $$ stays", {}) == "pid $$ stays"  # `$$` alone is not an escape


@pytest.mark.parametrize(
    "text",
    [
        "$PORT",  # the bare form is not expanded (Go's resolver only reads ${...})
        "${ expr }",  # spaces: an expression for another layer, not an env reference
        "${ .steps.fetch.id }",
        "${{ .total }}",  # `$` before a Go template
        "${vault:secret/data/app#password}",  # a secret-provider reference
        "${aws-sm:my-secret}",
        "${1ABC}",
        "${}",
        "${PORT",
    ],
)
def test_other_dollar_forms_are_left_untouched(text: str) -> None:
    assert expand_env_report(text, ENV) == (text, ())


def test_names_are_also_looked_up_the_way_go_spells_them() -> None:
    assert lookup_env("db.password", ENV) == "pw"  # upper case, dots as underscores
    assert lookup_env("port", ENV) == "9090"
    assert lookup_env("Exact", {"Exact": "e", "EXACT": "E"}) == "e"  # as written first
    assert lookup_env("nothing", ENV) is None
    assert expand_env("${db.password}", ENV) == "pw"


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREADLE_TEST_VAR", "from-os")
    assert expand_env("${TREADLE_TEST_VAR}") == "from-os"


def test_tree_expansion_returns_a_new_tree_and_the_paths_of_missing_names() -> None:
    tree = {"a": "${PORT}", "b": ["x", {"c": "${NOPE}"}], "n": 1, "${PORT}": "key"}
    out, missing = expand_env_tree(tree, ENV)
    assert out == {"a": "9090", "b": ["x", {"c": "${NOPE}"}], "n": 1, "${PORT}": "key"}
    assert missing == [(("b", 1, "c"), "NOPE")]
    assert tree["a"] == "${PORT}"  # the input is not modified


# -- where the loader expands --------------------------------------------------------------


def test_loader_expands_module_config_values() -> None:
    app = load_config(FIXTURES / "env.yaml", env=ENV)
    config = app.modules[0].config
    assert config["address"] == ":9090"
    assert config["port"] == "9090"  # values keep their YAML type: a string, as in Go
    assert config["dsn"] == "postgres://app:@localhost/app"
    assert config["explicit"] == "eu-west-1"
    assert config["dotted"] == "pw"
    assert config["escaped"] == "${NOT_EXPANDED}"
    assert config["shell"] == "echo $HOME ${ expr } ${vault:secret/data/app#key}"
    assert config["template"] == "total: ${{ .total }}"
    assert config["nested"] == ["9090", {"key": "fallback"}]
    assert config["number"] == 42
    assert config["${PORT}"] == "key is not expanded"  # keys are never expanded
    assert app.raw["modules"][0]["config"]["address"] == ":9090"  # raw shows the same


def test_loader_leaves_pipelines_alone_as_the_go_engine_does() -> None:
    app = load_config(FIXTURES / "env.yaml", env=ENV)
    assert app.pipelines["p"].steps[0].config == {"command": "echo ${PORT}"}


def test_unset_variable_is_a_warning_with_file_line_and_key() -> None:
    file = FIXTURES / "env.yaml"
    app = load_config(file, env=ENV)
    assert app.modules[0].config["secret"] == "${JWT_SECRET}"
    [warning] = app.warnings
    assert warning.file == str(file)
    assert warning.line == line_of(file, "secret:")
    assert warning.key == "modules[0].config.secret"
    assert "JWT_SECRET is not set" in warning.message
    assert str(warning).startswith(f"{file}:{warning.line} [modules[0].config.secret]: ")


def test_strict_env_makes_unset_variables_errors() -> None:
    file = FIXTURES / "env.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(file, env=ENV, strict_env=True)
    [error] = caught.value.errors
    assert (error.file, error.line, error.key) == (
        str(file), line_of(file, "secret:"), "modules[0].config.secret"
    )
    assert "JWT_SECRET is not set and has no default" in error.message


def test_default_environment_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREADLE_TEST_ADDR", ":7000")
    text = "modules:\n  - {name: s, type: t, config: {address: '${TREADLE_TEST_ADDR}'}}\n"
    assert load_config_text(text).modules[0].config["address"] == ":7000"


def test_seed_style_port_default() -> None:
    app = load_config(FIXTURES / "seed_app.yaml", env={})
    assert app.module("http-server") is not None
    assert app.modules[0].config["address"] == ":8080"
    app = load_config(FIXTURES / "seed_app.yaml", env={"PORT": "1234", "JWT_SECRET": "s3"})
    assert app.modules[0].config["address"] == ":1234"
    assert app.modules[1].config["secret"] == "s3"
    assert app.warnings == ()
