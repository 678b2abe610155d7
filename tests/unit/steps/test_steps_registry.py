"""The step registry, its schemas and the generated reference in docs/steps.md."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from treadle.errors import ConfigError
from treadle.steps import PipelineContext, StepRegistry, _durations, all_schemas, default_registry
from treadle.steps.reference import MARKER, regenerate, render_reference

ROOT = Path(__file__).parents[3]
BRIEF = ["step.set", "step.log", "step.validate", "step.transform", "step.conditional",
         "step.jq", "step.request_parse", "step.json_response", "step.foreach", "step.parallel",
         "step.retry_with_backoff", "step.sleep", "step.wait_signal", "step.workflow_call",
         "step.delegate", "step.webhook_verify", "step.http_call", "step.db_query",
         "step.db_exec", "step.cache_get", "step.cache_set", "step.publish",
         "step.statemachine_transition", "step.statemachine_get",
         "step.statemachine_create"]  # fmt: skip


def test_every_step_type_is_registered_with_a_valid_schema() -> None:
    schemas = all_schemas()
    assert sorted(schemas) == sorted(BRIEF)
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        spec = default_registry.get(name)
        assert spec.doc and spec.example, name
        assert schema["type"] == "object"


@pytest.mark.parametrize("name", BRIEF)
def test_examples_are_valid_configs(name: str) -> None:
    import yaml

    from treadle.steps.registry import Checker, schema_problems

    spec = default_registry.get(name)
    (step,) = yaml.safe_load(spec.example)
    assert step["type"] == name
    assert schema_problems(spec, step.get("config") or {}) == []
    if spec.check is not None:
        spec.check(step.get("config") or {}, Checker(default_registry))


def test_unknown_type_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        default_registry.get("step.nope")
    assert "unknown step type 'step.nope'; known step types: step.cache_get" in str(info.value)


def test_child_registry_extends_its_parent() -> None:
    types = StepRegistry(parent=default_registry)

    @types.register("x.hello", schema={"type": "object"}, doc="Says hello.")
    async def hello(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
        return {}

    assert "x.hello" in types and "x.hello" not in default_registry
    assert types.get("step.set") is default_registry.get("step.set")
    assert "x.hello" in types.all_schemas() and "step.set" in types.all_schemas()
    with pytest.raises(ValueError, match="already registered"):
        types.register("x.hello", schema={}, doc="")(hello)


def test_docs_steps_md_is_current() -> None:
    path = ROOT / "docs" / "steps.md"
    text = path.read_text()
    assert MARKER in text
    assert regenerate(text) == text, "run: python -m treadle.steps.reference"
    for name in BRIEF:
        assert f"### `{name}`" in render_reference()


def test_reference_cli_check(tmp_path: Path) -> None:
    stale = tmp_path / "steps.md"
    stale.write_text("# Head\n\n" + MARKER + "\nold\n")
    cmd = [sys.executable, "-m", "treadle.steps.reference"]
    assert subprocess.run([*cmd, str(stale), "--check"], capture_output=True).returncode == 1
    assert subprocess.run([*cmd, str(stale)]).returncode == 0
    assert stale.read_text().startswith("# Head\n\n" + MARKER)
    assert subprocess.run([*cmd, str(stale), "--check"]).returncode == 0


def test_durations() -> None:
    assert doctest.testmod(_durations).failed == 0
    parse = _durations.parse_duration
    assert parse("2h45m") == 9900 and parse("1.5s") == 1.5 and parse("7d") == 604800
    assert parse("0") == 0 and parse(0.5) == 0.5
    for bad in ("", "5", "1x", "s", "-1s", True, None, "1s2"):
        with pytest.raises(ValueError):
            parse(bad)
