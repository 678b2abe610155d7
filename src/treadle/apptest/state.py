"""State stores of `treadle test` (Go wftest's `StateStore`): named key → value stores that a
test case seeds (`state: {seed: {store: {key: value}}, fixtures: [{file, target}]}`) and
that assertions check (`- state: {store: {key: expected}}`).

A store named like a module of the application that has `get(key)` / `set(key, value, ttl)`
(`cache.modular`, `cache.redis`) *is* that module, so pipelines read the seeded values and write the
asserted ones with `step.cache_get` / `step.cache_set`. Any other store is an in-memory map
of the test case, as in Go.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from treadle.apptest.assertions import same
from treadle.apptest.model import TestFileError
from treadle.apptest.report import Failure


class StateStores:
    """The named stores of one test case (see the module docs)."""

    def __init__(self, modules: Mapping[str, Any] | None = None) -> None:
        self.modules = modules or {}
        self.maps: dict[str, dict[str, Any]] = {}

    def _module(self, store: str) -> Any:
        module = self.modules.get(store)
        if callable(getattr(module, "get", None)) and callable(getattr(module, "set", None)):
            return module
        return None

    async def seed(self, store: str, values: Mapping[str, Any]) -> None:
        module = self._module(store)
        for key, value in values.items():
            if module is not None:
                result = module.set(str(key), value, 0)
                if inspect.isawaitable(result):
                    await result
            else:
                self.maps.setdefault(store, {})[str(key)] = value

    async def get(self, store: str, key: str) -> tuple[bool, Any]:
        module = self._module(store)
        if module is None:
            found = self.maps.get(store, {})
            return key in found, found.get(key)
        value = module.get(key)
        if inspect.isawaitable(value):
            value = await value
        return value is not None, value

    async def load(self, state: Mapping[str, Any], base: Path) -> None:
        """Apply a test case's `state:` (fixtures first, then the inline seed)."""
        fixtures = state.get("fixtures") or []
        if not isinstance(fixtures, list):
            raise TestFileError("state.fixtures must be a list of {file, target}")
        for item in fixtures:
            if not isinstance(item, Mapping) or not item.get("file") or not item.get("target"):
                raise TestFileError("a state fixture needs file and target")
            await self.seed(str(item["target"]), _read_fixture(base / str(item["file"])))
        seed = state.get("seed") or {}
        if not isinstance(seed, Mapping):
            raise TestFileError("state.seed must map store names to {key: value}")
        for store, values in seed.items():
            if not isinstance(values, Mapping):
                raise TestFileError(f"state.seed.{store} must map keys to values")
            await self.seed(str(store), values)

    async def check(self, label: str, expected: Mapping[str, Any]) -> list[Failure]:
        """The failures of a `state:` assertion (Go: `state[store][key]: ...`)."""
        out: list[Failure] = []
        for store, values in expected.items():
            if not isinstance(values, Mapping):
                out.append(Failure(label, f"state[{store}]", f"state[{store}]: expected a "
                                   "mapping of keys to values"))  # fmt: skip
                continue
            for key, want in values.items():
                path = f"state[{store}][{key}]"
                found, got = await self.get(str(store), str(key))
                if not found:
                    out.append(Failure(label, path, f"{path}: key not found", want, None))
                elif not same(want, got):
                    out.append(Failure(label, path, f"{path}: want {json.dumps(want)}, got "
                                       f"{json.dumps(got, default=str)}", want, got))
        return out


def _read_fixture(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TestFileError(f"state fixture {path}: {exc}") from exc
    import yaml

    try:
        data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") \
            else json.loads(text)  # fmt: skip
    except (ValueError, yaml.YAMLError) as exc:
        raise TestFileError(f"state fixture {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise TestFileError(f"state fixture {path} must hold a mapping")
    return data


__all__ = ["StateStores"]
