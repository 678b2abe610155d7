"""The module registry: every module type's config schema, documentation and factory.

```python
from treadle.modules.registry import default_registry

spec = default_registry.get("storage.sqlite")   # ModuleType: schema, doc, factory, provides
schemas = default_registry.all_schemas()        # {"http.server": {...JSON Schema...}, ...}
```

A factory is `factory(name, config, ctx) -> Module` (see `treadle.modules.base`). `provides`
names what the module offers to steps and other modules — `database` (`connection()`),
`cache` (`get`/`set`), `broker` (`publish`/`subscribe`), `service` (`handle(action, data)`),
`http.server`, `http.router`, `http.middleware`, `auth`, `scheduler`, `storage`,
`http.routes` (serves its own routes) — so the validator can check that a step's `database:`
names a database.

Other packages add types with `treadle.modules.register(...)`; a package listed in
`PROVIDERS` is imported when the registry is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from treadle.errors import ConfigError

if TYPE_CHECKING:
    from treadle.modules.base import BuildContext, Module

Factory = Callable[[str, dict[str, Any], "BuildContext"], "Module"]
"""`factory(name, config, ctx) -> Module`."""

FAMILIES = ("http", "middleware", "auth", "storage", "messaging", "nats_broker", "infra",
            "redis_cache", "handlers", "rest", "proxy", "modular_http")
"""Modules of `treadle.modules` that register the built-in types, in documentation order."""

PROVIDERS: list[str] = ["treadle.statemachine.provider"]
"""Other importable modules that register module types (e.g. the state machine package)."""

GO_ONLY_TYPES = frozenset({
    "httpclient.modular", "auth.modular", "auth.user-store",
    "messaging.kafka", "database.modular",
    "persistence.store", "processing.step", "license.validator", "platform.provider",
    "platform.resource", "platform.context", "log.collector", "observability.otel",
    "eventlogger.modular", "storage.s3", "storage.gcs", "notification.slack",
    "openapi.consumer", "openapi.generator", "secrets.vault", "secrets.aws",
    "jsonschema.modular", "eventbus.modular", "dynamic.component",
    "workflow.registry",
})  # fmt: skip
"""Module types of GoCodeAlone/workflow that Treadle does not implement (yet): configs using
them are reported as unsupported rather than as typos."""


@dataclass(frozen=True, slots=True)
class ModuleType:
    """One registered module type."""

    type: str
    schema: dict[str, Any]
    doc: str
    factory: Factory
    category: str = "other"
    provides: frozenset[str] = frozenset()
    example: str = ""
    aliases: tuple[tuple[str, str], ...] = ()
    """`(written key, canonical key)` pairs accepted for compatibility (e.g. the seed's
    `token_expiry` for `tokenExpiry`)."""
    section: str = ""
    """The top-level section the type reads its config from (modular's `httpserver:`), if
    any: the validator checks its keys against `schema` as it does a module's `config`."""


class ModuleRegistry:
    """Module types by name. `default_registry` holds the built-in ones."""

    def __init__(self, *, parent: ModuleRegistry | None = None,
                 load_builtins: bool = False) -> None:  # fmt: skip
        self._types: dict[str, ModuleType] = {}
        self._parent = parent
        self._loaded = not load_builtins

    def register(
        self,
        type: str,
        *,
        schema: dict[str, Any],
        doc: str,
        category: str = "other",
        provides: tuple[str, ...] = (),
        example: str = "",
        aliases: tuple[tuple[str, str], ...] = (),
        section: str = "",
    ) -> Callable[[Factory], Factory]:
        """Decorator: register `factory` as the constructor of module type `type`."""

        def decorate(factory: Factory) -> Factory:
            self.add(ModuleType(type, schema, doc.strip(), factory, category,
                                frozenset(provides), example.strip(), aliases,
                                section))  # fmt: skip
            return factory

        return decorate

    def add(self, spec: ModuleType) -> None:
        if spec.type in self._types:
            raise ValueError(f"module type {spec.type!r} is already registered")
        self._types[spec.type] = spec

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for family in FAMILIES:
                importlib.import_module(f"treadle.modules.{family}")
            for provider in PROVIDERS:
                importlib.import_module(provider)

    def _all(self) -> dict[str, ModuleType]:
        self._load()
        if self._parent is None:
            return self._types
        return {**self._parent._all(), **self._types}

    def find(self, type: str) -> ModuleType | None:
        self._load()
        spec = self._types.get(type)
        if spec is None and self._parent is not None:
            return self._parent.find(type)
        return spec

    def get(self, type: str) -> ModuleType:
        """The module type `type`; ConfigError listing the known types if there is none."""
        spec = self.find(type)
        if spec is None:
            raise ConfigError(unknown_type_message(type, self.types()))
        return spec

    def types(self) -> list[str]:
        return sorted(self._all())

    def all_schemas(self) -> dict[str, dict[str, Any]]:
        """`{type: JSON Schema of its config}`."""
        types = self._all()
        return {name: types[name].schema for name in sorted(types)}

    def __iter__(self) -> Iterator[ModuleType]:
        types = self._all()
        return iter([types[name] for name in sorted(types)])

    def __contains__(self, type: object) -> bool:
        return isinstance(type, str) and self.find(type) is not None


def unknown_type_message(type: str, known: list[str]) -> str:
    """`unknown module type 'x' (did you mean 'y'?); known module types: ...`."""
    from treadle.config.model import suggest

    listed = ", ".join(known)
    if type in GO_ONLY_TYPES:
        return (f"module type {type!r} of GoCodeAlone/workflow is not supported by Treadle; "
                f"supported module types: {listed}")  # fmt: skip
    return f"unknown module type {type!r}{suggest(type, known)}; known module types: {listed}"


default_registry = ModuleRegistry(load_builtins=True)
"""The built-in module types (loaded on first use)."""

register = default_registry.register


def all_schemas() -> dict[str, dict[str, Any]]:
    """`{type: config schema}` of the built-in module types."""
    return default_registry.all_schemas()


__all__ = [
    "FAMILIES",
    "GO_ONLY_TYPES",
    "PROVIDERS",
    "Factory",
    "ModuleRegistry",
    "ModuleType",
    "all_schemas",
    "default_registry",
    "register",
    "unknown_type_message",
]
