"""Modules and their lifecycle: build from config, then init, start and stop in `dependsOn`
order.

```python
modules = build_modules(app_config)            # ConfigError listing every problem
await modules.start()                          # init all, then start all, dependencies first
modules["orders-db"].connection()
await modules.stop()                           # reverse order; every module gets its stop
```

A module is any object; subclassing `Module` gives the no-op lifecycle and the `name`,
`type` and `config` attributes. Lifecycle methods may be sync or async.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from treadle.errors import ConfigError

if TYPE_CHECKING:
    from treadle.config.model import AppConfig, ModuleConfig
    from treadle.modules.registry import ModuleRegistry

logger = logging.getLogger("treadle.modules")


@dataclass(slots=True)
class BuildContext:
    """What factories may use besides their config."""

    base_dir: Path = field(default_factory=Path.cwd)
    """The folder of the config file: relative paths in module configs resolve against it."""
    app_name: str = "treadle"
    sections: Mapping[str, Any] = field(default_factory=dict)
    """The application's other top-level sections (`AppConfig.sections`), for module types
    that the Go project configures there (the `reverseproxy:` section)."""

    def path(self, value: str) -> Path:
        """`value` as a path, relative ones resolved against `base_dir`."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p


class Module:
    """Base class of module implementations: a name, its config and a no-op lifecycle."""

    type: ClassVar[str] = ""

    def __init__(self, name: str, config: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.config: dict[str, Any] = dict(config or {})
        self.started = False

    async def init(self, modules: ModuleSet) -> None:
        """Resolve other modules (all are built, none started yet)."""

    async def start(self) -> None:
        """Acquire resources (open files and connections, start loops)."""

    async def stop(self) -> None:
        """Release them. Called once for every module whose start succeeded."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.type})>"


async def _call(obj: Any, method: str, *args: Any) -> None:
    fn = getattr(obj, method, None)
    if fn is None:
        return
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


def dependency_order(configs: Sequence[ModuleConfig]) -> tuple[list[str], list[tuple[int, str]]]:
    """Module names ordered so that each comes after what it `dependsOn` (config order
    otherwise), and the problems found: `(module index, message)` for unknown dependencies
    and cycles (each cycle reported once, at its first module)."""
    index = {m.name: i for i, m in enumerate(configs)}
    problems: list[tuple[int, str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    order: list[str] = []
    stack: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        cfg = configs[index[name]]
        for dep in cfg.depends_on:
            if dep not in index:
                continue  # reported below
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep):], dep]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    problems.append((index[dep], "dependsOn cycle: " + " -> ".join(cycle)))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2
        order.append(name)

    for i, cfg in enumerate(configs):
        for dep in cfg.depends_on:
            if dep not in index:
                problems.append((i, f"module {cfg.name!r} dependsOn unknown module {dep!r}"))
    for cfg in configs:
        if cfg.name not in state:
            visit(cfg.name)
    return order, problems


class ModuleSet(Mapping[str, Any]):
    """The modules of an application by name, with their lifecycle in dependency order."""

    def __init__(self, modules: Mapping[str, Any], order: Sequence[str],
                 types: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self._modules = dict(modules)
        self.order: tuple[str, ...] = tuple(order)
        self.types: dict[str, str] = dict(types or {})
        self._started: list[str] = []
        self._initialised = False

    def __getitem__(self, name: str) -> Any:
        return self._modules[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def of_type(self, *types: str) -> list[Any]:
        """The modules whose config type is one of `types`, in dependency order."""
        return [self._modules[n] for n in self.order if self.types.get(n) in types]

    def add(self, name: str, module: Any, type: str = "") -> None:
        """Add a module built outside the config (before `start`)."""
        self._modules[name] = module
        self.types[name] = type
        self.order = (*self.order, name)

    async def init(self) -> None:
        if self._initialised:
            return
        self._initialised = True
        for name in self.order:
            await _call(self._modules[name], "init", self)

    async def start(self) -> None:
        """Init every module, then start them in dependency order. If one fails, the ones
        already started are stopped (newest first) and the error is raised."""
        await self.init()
        for name in self.order:
            if name in self._started:
                continue
            module = self._modules[name]
            try:
                await _call(module, "start")
            except BaseException:
                await self.stop()
                raise
            if isinstance(module, Module):
                module.started = True
            self._started.append(name)

    async def stop(self) -> None:
        """Stop the started modules, newest first; an error in one does not skip the rest."""
        first: BaseException | None = None
        while self._started:
            name = self._started.pop()
            module = self._modules[name]
            try:
                await _call(module, "stop")
            except Exception as exc:
                logger.exception("module %r failed to stop", name)
                first = first or exc
            if isinstance(module, Module):
                module.started = False
        if first is not None:
            raise first


def normalise_config(spec_aliases: Sequence[tuple[str, str]],
                     config: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The config with alias keys renamed to their canonical names (canonical ones win)."""
    out = dict(config)
    for alias, canonical in spec_aliases:
        if alias in out:
            value = out.pop(alias)
            out.setdefault(canonical, value)
    return out


def build_modules(
    app: AppConfig,
    registry: ModuleRegistry | None = None,
    *,
    ctx: BuildContext | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ModuleSet:
    """Build every module of `app`; one ConfigError lists every unknown type, cycle and
    factory failure (each at its file:line [key]).

    `extra` adds modules built elsewhere (by name), e.g. test doubles; a configured module
    of the same name is replaced by it.
    """
    from treadle.modules.registry import default_registry, unknown_type_message

    registry = registry or default_registry
    ctx = ctx or BuildContext(base_dir=Path(app.file).resolve().parent,
                              app_name=app.name or "treadle", sections=app.sections)  # fmt: skip
    extra = dict(extra or {})
    errors: list[ConfigError] = []
    order, problems = dependency_order(app.modules)
    for index, message in problems:
        key = "dependsOn" if "unknown" in message else "name"
        errors.append(app.error_at(("modules", index, key), message))
    built: dict[str, Any] = {}
    types: dict[str, str] = {}
    for cfg in app.modules:
        types[cfg.name] = cfg.type
        if cfg.name in extra:
            built[cfg.name] = extra.pop(cfg.name)
            continue
        spec = registry.find(cfg.type)
        if spec is None:
            errors.append(app.error_at((*cfg.path, "type"),
                                       unknown_type_message(cfg.type, registry.types())))
            continue
        try:
            module = spec.factory(cfg.name, normalise_config(spec.aliases, cfg.config), ctx)
        except (ValueError, TypeError, KeyError, OSError, ConfigError) as exc:
            message = exc.message if isinstance(exc, ConfigError) else str(exc)
            errors.append(app.error_at((*cfg.path, "config"),
                                       f"module {cfg.name!r} ({cfg.type}): {message}"))
            continue
        built[cfg.name] = module
    if errors:
        count = len(errors)
        raise ConfigError(f"configuration has {count} error{'s' if count != 1 else ''}",
                          file=app.file, errors=errors)  # fmt: skip
    for name, module in extra.items():
        built[name] = module
        order.append(name)
    return ModuleSet(built, [n for n in order if n in built], types)


__all__ = ["BuildContext", "Module", "ModuleSet", "build_modules", "dependency_order",
           "normalise_config"]  # fmt: skip
