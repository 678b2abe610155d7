"""Finding workflows from the command line: `module:workflow`, `path/to/file.py:workflow`.

The current directory goes on `sys.path` first, as with `python -m`, so a project's own modules
import without installing them. The workflow is an attribute of the module (a `@workflow`
object, dotted paths allowed) or the name it was registered under.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from treadle.cli.errors import CliError
from treadle.engine import Registry, WorkflowDef, default_registry
from treadle.errors import WorkflowNotFoundError


def ensure_cwd_on_path() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def import_target(name: str) -> ModuleType:
    """Import a module by dotted name, or a `.py` file by path."""
    ensure_cwd_on_path()
    if name.endswith(".py") or os.sep in name or "/" in name:
        return _import_file(Path(name))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise CliError(
                f"cannot import module {name!r}: no module named {exc.name!r} "
                f"(looked in the current directory {os.getcwd()} and sys.path)"
            ) from None
        raise CliError(f"cannot import module {name!r}") from exc
    except Exception as exc:
        raise CliError(f"cannot import module {name!r}") from exc


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise CliError(f"cannot import {str(path)!r}: no such file")
    name = path.stem
    loaded = sys.modules.get(name)
    where = getattr(loaded, "__file__", None)
    if loaded is not None and where and Path(where).resolve() == path.resolve():
        return loaded
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {str(path)!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise CliError(f"cannot import {str(path)!r}") from exc
    return module


def workflows_in(module: ModuleType) -> list[WorkflowDef]:
    return [v for v in vars(module).values() if isinstance(v, WorkflowDef)]


def registry_for(modules: Iterable[ModuleType]) -> Registry:
    """Every registered workflow, plus the `@workflow` objects the modules hold.

    (A workflow declared with its own `registry=` is found that way too.)
    """
    registry = Registry()
    for wf in default_registry:
        registry.add(wf)
    for module in modules:
        for wf in workflows_in(module):
            registry.add(wf)
    return registry


def import_all(names: Iterable[str]) -> list[ModuleType]:
    return [import_target(name) for name in names]


def load_workflow(spec: str) -> tuple[WorkflowDef, Registry]:
    """`module:workflow` → the workflow, and a registry holding it and its module's others."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise CliError(
            f"expected MODULE:WORKFLOW (e.g. myapp.flows:process_order), got {spec!r}"
        )
    module = import_target(module_name)
    registry = registry_for([module])
    target: object = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            break
    if isinstance(target, WorkflowDef):
        return target, registry
    if target is not None:
        raise CliError(f"{spec!r} is a {type(target).__name__}, not a @treadle.workflow")
    try:
        return registry.get(attr), registry
    except WorkflowNotFoundError:
        here = sorted({f"{name} ({wf.name})" if name != wf.name else name
                       for name, wf in vars(module).items() if isinstance(wf, WorkflowDef)})
        raise CliError(
            f"module {module_name!r} has no workflow {attr!r}; "
            f"it defines: {', '.join(here) or 'none'}; registered: "
            f"{', '.join(registry.names()) or 'none'}"
        ) from None
