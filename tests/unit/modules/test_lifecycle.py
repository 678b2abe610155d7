"""Module registry and lifecycle: dependsOn order, cycles, failures, extension."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from treadle.config import load_config_text
from treadle.errors import ConfigError
from treadle.modules import BuildContext, Module, ModuleRegistry, build_modules, default_registry

EVENTS: list[str] = []


class Recorder(Module):
    type = "test.recorder"

    async def init(self, modules: Any) -> None:
        EVENTS.append(f"init {self.name}")

    async def start(self) -> None:
        if self.config.get("fail"):
            raise RuntimeError(f"{self.name} cannot start")
        EVENTS.append(f"start {self.name}")

    def stop(self) -> None:  # sync lifecycle methods work too
        EVENTS.append(f"stop {self.name}")


def registry() -> ModuleRegistry:
    reg = ModuleRegistry(parent=default_registry)

    @reg.register("test.recorder", schema={"type": "object"}, doc="Records its lifecycle.")
    def _factory(name: str, config: dict[str, Any], ctx: BuildContext) -> Recorder:
        return Recorder(name, config)

    return reg


def _app(text: str, tmp_path: Path) -> Any:
    return load_config_text(textwrap.dedent(text), filename=str(tmp_path / "app.yaml"))


@pytest.fixture(autouse=True)
def _clear() -> None:
    EVENTS.clear()


async def test_modules_start_in_dependency_order_and_stop_in_reverse(tmp_path: Path) -> None:
    app = _app("""
    modules:
      - {name: api, type: test.recorder, dependsOn: [db, cache]}
      - {name: db, type: test.recorder, dependsOn: [disk]}
      - {name: cache, type: test.recorder}
      - {name: disk, type: test.recorder}
    """, tmp_path)
    modules = build_modules(app, registry())
    assert modules.order == ("disk", "db", "cache", "api")
    await modules.start()
    await modules.stop()
    assert EVENTS == ["init disk", "init db", "init cache", "init api",
                      "start disk", "start db", "start cache", "start api",
                      "stop api", "stop cache", "stop db", "stop disk"]


async def test_a_failed_start_stops_what_started(tmp_path: Path) -> None:
    app = _app("""
    modules:
      - {name: a, type: test.recorder}
      - {name: b, type: test.recorder, config: {fail: true}, dependsOn: [a]}
      - {name: c, type: test.recorder, dependsOn: [b]}
    """, tmp_path)
    modules = build_modules(app, registry())
    with pytest.raises(RuntimeError, match="b cannot start"):
        await modules.start()
    assert [e for e in EVENTS if not e.startswith("init")] == ["start a", "stop a"]


def test_cycles_and_unknown_dependencies_are_errors_with_lines(tmp_path: Path) -> None:
    app = _app("""
    modules:
      - name: a
        type: test.recorder
        dependsOn: [b]
      - name: b
        type: test.recorder
        dependsOn: [c]
      - name: c
        type: test.recorder
        dependsOn: [a, ghost]
    """, tmp_path)
    with pytest.raises(ConfigError) as info:
        build_modules(app, registry())
    found = {(e.line, e.key, e.message) for e in info.value.errors}
    assert (3, "modules[0].name", "dependsOn cycle: a -> b -> c -> a") in found
    assert (11, "modules[2].dependsOn", "module 'c' dependsOn unknown module 'ghost'") in found


def test_unknown_types_list_the_known_ones(tmp_path: Path) -> None:
    app = _app("""
    modules:
      - {name: x, type: storage.sqlit}
    """, tmp_path)
    with pytest.raises(ConfigError) as info:
        build_modules(app)
    message = info.value.errors[0].message
    assert "unknown module type 'storage.sqlit' (did you mean 'storage.sqlite'?)" in message
    assert "known module types: api.command, api.handler, api.query, auth.jwt," in message
    with pytest.raises(ConfigError, match="known module types"):
        default_registry.get("nope")


def test_factory_errors_are_located(tmp_path: Path) -> None:
    app = _app("""
    modules:
      - name: db
        type: database.workflow
        config: {driver: mysql, dsn: x}
    """, tmp_path)
    with pytest.raises(ConfigError) as info:
        build_modules(app)
    assert info.value.errors[0].line == 5
    assert "driver 'mysql' is not supported" in info.value.errors[0].message


def test_extra_modules_replace_configured_ones(tmp_path: Path) -> None:
    app = _app("""
    modules:
      - {name: db, type: storage.sqlite}
    """, tmp_path)
    fake = object()
    modules = build_modules(app, extra={"db": fake, "other": 1})
    assert modules["db"] is fake and modules["other"] == 1
    assert modules.types["db"] == "storage.sqlite"


def test_every_builtin_type_has_a_schema_doc_and_example() -> None:
    import jsonschema
    import yaml

    for spec in default_registry:
        jsonschema.Draft202012Validator.check_schema(spec.schema)
        assert spec.doc and spec.example, spec.type
        example = yaml.safe_load(spec.example)
        assert example[0]["type"] == spec.type
        errors = list(jsonschema.Draft202012Validator(spec.schema).iter_errors(
            example[0].get("config") or {}))
        assert errors == [], spec.type
