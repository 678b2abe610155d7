"""Modules of YAML applications: a registry of types (config schema, docs, factory) and
their lifecycle in `dependsOn` order.

```python
from treadle.config import load_config
from treadle.modules import build_modules

modules = build_modules(load_config("app.yaml"))   # ConfigError lists every problem
await modules.start()                              # dependencies first
modules["orders-db"].connection()
await modules.stop()                               # reverse order
```

See docs/modules.md for every type and its config keys.
"""

from treadle.modules.base import BuildContext, Module, ModuleSet, build_modules, dependency_order
from treadle.modules.registry import (
    ModuleRegistry,
    ModuleType,
    all_schemas,
    default_registry,
    register,
)

__all__ = [
    "BuildContext",
    "Module",
    "ModuleRegistry",
    "ModuleSet",
    "ModuleType",
    "all_schemas",
    "build_modules",
    "default_registry",
    "dependency_order",
    "register",
]
