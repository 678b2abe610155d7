"""Load a YAML application (the format of `GoCodeAlone/workflow`) into an `AppConfig`.

```python
from treadle.config import load_config

app = load_config("app.yaml")                  # imports resolved, ${VAR} expanded
app.pipelines["create-order"].steps[2].type
app.position(("pipelines", "create-order", "steps", 2, "type"))   # app.yaml:41
```

Reading happens in three passes, each collecting every problem it finds; at the end one
`ConfigError` lists them all (`error.errors`), each naming file, line and key:

1. *parse* each file with PyYAML's safe composer (libyaml when present) and a YAML 1.2
   resolver that matches Go's yaml.v3 (`yes`/`on` stay strings, no timestamps, no
   sexagesimal numbers, duplicate keys are errors), recording the position of every node;
2. *merge* `imports:` the way the Go loader does (see `_merge_import`);
3. *build* the typed objects, expanding `${VAR}` in module configs (see `envexpand`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from treadle.config.envexpand import expand_env_tree
from treadle.config.model import (
    AppConfig,
    ConfigWarning,
    KeyPath,
    Position,
    SourceMap,
    build_app_config,
    format_key,
    kind_of,
    suggest,
)
from treadle.errors import ConfigError, MissingExtraError

try:
    import yaml
    from yaml.composer import Composer
    from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.resolver import BaseResolver
    from yaml.scanner import Scanner
except ImportError as exc:  # pragma: no cover - PyYAML is a core dependency of configs
    raise MissingExtraError("config", "yaml") from exc

__all__ = ["TOP_LEVEL_KEYS", "load_config", "load_config_text"]

# ---------------------------------------------------------------------------------------
# The format
# ---------------------------------------------------------------------------------------

TOP_LEVEL_KEYS: Mapping[str, str] = {
    # WorkflowConfig in GoCodeAlone/workflow config/config.go, with the container it holds.
    "imports": "list",
    "modules": "list",
    "workflows": "mapping",  # a list of {name, type, config} is accepted too (seed docs)
    "triggers": "mapping",  # likewise
    "pipelines": "mapping",
    "platform": "mapping",
    "requires": "mapping",
    "plugins": "mapping",
    "sidecars": "list",
    "infrastructure": "mapping",
    "engine": "mapping",
    "ci": "mapping",
    "environments": "mapping",
    "secrets": "mapping",
    "infra": "mapping",
    "secretStores": "mapping",
    "services": "mapping",
    "mesh": "mapping",
    "networking": "mapping",
    "security": "mapping",
    "variables": "mapping",
    # Descriptive keys the Go examples and the seed documentation put at the top.
    "name": "scalar",
    "version": "scalar",
    "description": "scalar",
    # ApplicationConfig: a file that lists workflow files instead of holding one.
    "application": "mapping",
}
"""Every key allowed at the top of a file (plus `x-*` keys, kept for YAML anchors)."""

# What an imported file contributes (Go's processImports); the rest of it is dropped.
_IMPORT_MERGED = frozenset(
    {"modules", "workflows", "triggers", "pipelines", "platform", "plugins", "sidecars",
     "secretStores", "environments", "secrets", "imports"}
)  # fmt: skip
_QUIET_DROPPED = frozenset({"name", "version", "description"})
# Workflow sections whose lists are concatenated across application files (Go's
# mergeWorkflowSection); for every other key the first file wins.
_APPENDED_LISTS = frozenset({"routes", "subscriptions", "producers", "definitions"})

# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    strict_env: bool = False,
) -> AppConfig:
    """Load the application in `path`, its imports (or its workflow files) included.

    `env` replaces `os.environ` for `${VAR}` expansion. A reference to an unset variable
    without a default is left as written and reported in `AppConfig.warnings`, as the Go
    engine leaves it; `strict_env=True` makes it an error instead.

    Raises `ConfigError` listing every problem found (`error.errors`).
    """
    display = os.fspath(path)
    session = _Session(os.environ if env is None else env, strict_env)
    doc = session.load_file(display, Path(display).resolve(), stack=())
    return session.finish(doc, display)


def load_config_text(
    text: str,
    *,
    filename: str = "<string>",
    env: Mapping[str, str] | None = None,
    strict_env: bool = False,
) -> AppConfig:
    """Load an application from `text`; `filename` names it in errors.

    Relative `imports:` resolve against the directory of `filename`, or the current
    directory when `filename` is not a path (such as the default `<string>`).
    """
    session = _Session(os.environ if env is None else env, strict_env)
    resolved = None if filename.startswith("<") else Path(filename).resolve()
    doc = session.load_text(text, filename, resolved, stack=())
    return session.finish(doc, filename)


# ---------------------------------------------------------------------------------------
# Parsing: YAML 1.2 scalars as Go's yaml.v3 reads them, and the position of every node
# ---------------------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_INT_RE = re.compile(
    r"[-+]?(?:0[bB][01_]+|0[oO][0-7_]+|0[xX][0-9a-fA-F_]+|0[0-7_]*|[1-9][0-9_]*)"
)
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9_]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


class _Resolver(BaseResolver):
    """Implicit types of yaml.v3 decoding into `any` (close to the YAML 1.2 core schema)."""


_Resolver.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Resolver.add_implicit_resolver(_INT, re.compile(f"^(?:{_INT_RE.pattern})$"), list("-+0123456789"))
_Resolver.add_implicit_resolver(
    _FLOAT, re.compile(f"^(?:{_FLOAT_RE.pattern})$"), list("-+.0123456789")
)
_Resolver.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])


class _PyComposer(Reader, Scanner, Parser, Composer, _Resolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


def _compose(text: str) -> Node | None:
    """The node tree of `text` (None when empty); safe: nothing is constructed here."""
    if yaml.__with_libyaml__:
        from yaml.cyaml import CParser

        class _CComposer(CParser, _Resolver):
            def __init__(self, stream: str) -> None:
                CParser.__init__(self, stream)
                _Resolver.__init__(self)

        c_loader = _CComposer(text)
        try:
            return c_loader.get_single_node()
        finally:
            c_loader.dispose()
    py_loader = _PyComposer(text)
    try:
        return py_loader.get_single_node()
    finally:
        py_loader.dispose()


def _parse_int(text: str) -> int:
    plain = text.replace("_", "")
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1] in "01234567_":
        return sign * int(digits, 8)  # yaml.v3 reads a leading 0 as octal, like Go
    return sign * int(digits, 0)


def _parse_float(text: str) -> float:
    plain = text.replace("_", "")
    lowered = plain.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(plain)


@dataclass
class _Doc:
    """One file's (or a merge's) data with the position of each of its nodes."""

    file: str
    data: dict[str, Any]
    positions: dict[KeyPath, Position]
    resolved: Path | None = None


class _Builder:
    """Turns a composed node tree into plain Python values, recording every position."""

    def __init__(self, file: str, errors: list[ConfigError]) -> None:
        self.file = file
        self.errors = errors
        self.positions: dict[KeyPath, Position] = {}
        self._done: dict[int, Any] = {}
        self._active: set[int] = set()

    def pos(self, node: Node) -> Position:
        mark = node.start_mark
        return Position(self.file, mark.line + 1, mark.column + 1)

    def error(self, node: Node, path: KeyPath, message: str) -> None:
        self.errors.append(
            ConfigError(message, file=self.file, line=self.pos(node).line,
                        key=format_key(path) or None)
        )  # fmt: skip

    def build(self, root: Node) -> Any:
        self.positions[()] = self.pos(root)
        return self.value(root, ())

    def value(self, node: Node, path: KeyPath) -> Any:
        ident = id(node)
        if ident in self._done:  # an alias: reuse, positions stay those of the first use
            return self._done[ident]
        if ident in self._active:
            self.error(node, path, "recursive YAML alias (a node that contains itself)")
            return None
        self._active.add(ident)
        try:
            if isinstance(node, ScalarNode):
                result = self.scalar(node, path)
            elif isinstance(node, SequenceNode):
                result = self.sequence(node, path)
            else:
                assert isinstance(node, MappingNode)
                result = self.mapping(node, path)
        finally:
            self._active.discard(ident)
        self._done[ident] = result
        return result

    def scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        tag, text = node.tag, node.value
        try:
            if tag in (_STR, _TIMESTAMP, _MERGE, "!"):
                return text
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return text in ("true", "True", "TRUE")
            if tag == _INT:
                return _parse_int(text)
            if tag == _FLOAT:
                return _parse_float(text)
        except ValueError:
            self.error(node, path, f"{text!r} is not a valid {tag.rsplit(':', 1)[-1]}")
            return text
        self.error(node, path, f"unsupported YAML tag {tag}")
        return text

    def sequence(self, node: SequenceNode, path: KeyPath) -> list[Any]:
        if node.tag != _SEQ:
            self.error(node, path, f"unsupported YAML tag {node.tag}")
        out: list[Any] = []
        for index, item in enumerate(node.value):
            self.positions[(*path, index)] = self.pos(item)
            out.append(self.value(item, (*path, index)))
        return out

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != _MAP:
            self.error(node, path, f"unsupported YAML tag {node.tag}")
        out: dict[str, Any] = {}
        for key, key_node, value_node in self.pairs(node, path, set()):
            self.positions[(*path, key)] = self.pos(key_node)
            out[key] = self.value(value_node, (*path, key))
        return out

    def pairs(
        self, node: MappingNode, path: KeyPath, merging: set[int]
    ) -> list[tuple[str, Node, Node]]:
        """Key/value nodes of a mapping with `<<` merge keys applied (explicit keys win,
        then earlier merge sources); duplicate explicit keys are errors, as in yaml.v3."""
        explicit: list[tuple[str, Node, Node]] = []
        merged: list[tuple[str, Node, Node]] = []
        first_seen: dict[str, Node] = {}
        merging = merging | {id(node)}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        self.error(key_node, path, "a merge key (<<) takes a mapping or a list "
                                   "of mappings")  # fmt: skip
                    elif id(source) in merging:
                        self.error(key_node, path, "recursive merge key (<<)")
                    else:
                        merged.extend(self.pairs(source, path, merging))
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, path, "mapping keys must be plain values, not "
                           f"{_kind_of_node(key_node)}")  # fmt: skip
                continue
            key = key_node.value  # yaml.v3 into map[string]any: the key as written
            if key in first_seen:
                first = self.pos(first_seen[key]).line
                self.error(key_node, (*path, key),
                           f"duplicate key {key!r} (first defined at line {first})")  # fmt: skip
                continue
            first_seen[key] = key_node
            explicit.append((key, key_node, value_node))
        result: list[tuple[str, Node, Node]] = []
        for entry in merged:
            if entry[0] not in first_seen:
                first_seen[entry[0]] = entry[1]
                result.append(entry)
        return result + explicit


def _kind_of_node(node: Node) -> str:
    return "a mapping" if isinstance(node, MappingNode) else "a list"


def _graft(
    dst: dict[KeyPath, Position],
    src: Mapping[KeyPath, Position],
    src_prefix: KeyPath,
    dst_prefix: KeyPath,
) -> None:
    """Copy the positions under `src_prefix` in `src` to `dst_prefix` in `dst`."""
    size = len(src_prefix)
    for path, pos in src.items():
        if path[:size] == src_prefix:
            dst[dst_prefix + path[size:]] = pos


# ---------------------------------------------------------------------------------------
# Reading files and merging imports
# ---------------------------------------------------------------------------------------


@dataclass
class _Session:
    env: Mapping[str, str]
    strict_env: bool
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    # -- problems -----------------------------------------------------------------------

    def error_at(self, positions: Mapping[KeyPath, Position], path: KeyPath, message: str,
                 file: str) -> None:  # fmt: skip
        pos = SourceMap(positions).locate(path) if path not in positions else positions[path]
        self.errors.append(
            ConfigError(message, file=pos.file if pos else file, line=pos.line if pos else None,
                        key=format_key(path) or None)
        )  # fmt: skip

    def warn_at(self, positions: Mapping[KeyPath, Position], path: KeyPath, message: str,
                file: str) -> None:  # fmt: skip
        pos = positions.get(path) or SourceMap(positions).locate(path)
        self.warnings.append(
            ConfigWarning(message, file=pos.file if pos else file,
                          line=pos.line if pos else None, key=format_key(path) or None)
        )  # fmt: skip

    # -- one file -----------------------------------------------------------------------

    def load_file(self, display: str, resolved: Path, stack: tuple[Path, ...],
                  *, importer: tuple[_Doc, KeyPath] | None = None) -> _Doc | None:  # fmt: skip
        try:
            raw = resolved.read_bytes()
        except FileNotFoundError:
            self._file_problem(display, importer, "file not found")
            return None
        except OSError as exc:
            self._file_problem(display, importer, f"cannot read file: {exc.strerror or exc}")
            return None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self.errors.append(ConfigError("file is not valid UTF-8", file=display, line=line))
            return None
        return self.load_text(text, display, resolved, stack)

    def _file_problem(self, display: str, importer: tuple[_Doc, KeyPath] | None,
                      problem: str) -> None:  # fmt: skip
        if importer is None:
            self.errors.append(ConfigError(problem, file=display))
        else:
            doc, path = importer
            self.error_at(doc.positions, path, f"{problem}: {display}", doc.file)

    def load_text(self, text: str, display: str, resolved: Path | None,
                  stack: tuple[Path, ...]) -> _Doc | None:  # fmt: skip
        self.files.append(display)
        doc = self.parse(text, display)
        if doc is None:
            return None
        doc.resolved = resolved
        self.check_top_level(doc, imported=bool(stack))
        if "application" in doc.data:
            if stack:
                self.error_at(doc.positions, ("application",),
                              "an application file cannot be imported", display)  # fmt: skip
                del doc.data["application"]
            else:
                return self.load_application(doc)
        return self.process_imports(doc, (*stack, resolved) if resolved else stack)

    def parse(self, text: str, display: str) -> _Doc | None:
        try:
            root = _compose(text)
        except yaml.MarkedYAMLError as exc:
            self.errors.append(_syntax_error(exc, display))
            return None
        except yaml.reader.ReaderError as exc:
            line = text[: exc.position].count("\n") + 1
            self.errors.append(ConfigError(f"invalid YAML: {exc.reason}", file=display,
                                           line=line))  # fmt: skip
            return None
        if root is None:  # an empty file is an empty application, as in Go
            return _Doc(display, {}, {(): Position(display, 1)})
        builder = _Builder(display, self.errors)
        try:
            data = builder.build(root)
        except RecursionError:
            self.errors.append(ConfigError("YAML nested too deeply", file=display))
            return None
        if not isinstance(data, dict):
            self.errors.append(
                ConfigError(f"the top level must be a mapping of keys, not {kind_of(data)}",
                            file=display, line=builder.positions[()].line)
            )  # fmt: skip
            return None
        return _Doc(display, data, builder.positions)

    def check_top_level(self, doc: _Doc, *, imported: bool) -> None:
        """Unknown keys and wrong container types; offending keys are dropped from `doc`."""
        for key in list(doc.data):
            value = doc.data[key]
            kind = TOP_LEVEL_KEYS.get(key)
            if kind is None:
                if not key.startswith("x-"):
                    message = f"unknown top-level key {key!r}{suggest(key, TOP_LEVEL_KEYS)}"
                    self.error_at(doc.positions, (key,), message, doc.file)
                    del doc.data[key]
                continue
            if value is None and kind != "scalar":
                del doc.data[key]  # `pipelines:` with nothing under it is no pipelines (Go)
                continue
            if key in ("workflows", "triggers") and isinstance(value, list):
                continue  # the seed documentation's list form
            expected = {"list": list, "mapping": dict}.get(kind)
            if expected is not None and not isinstance(value, expected):
                want = "a list" if expected is list else "a mapping"
                self.error_at(doc.positions, (key,), f"{key} must be {want}, not {kind_of(value)}",
                              doc.file)  # fmt: skip
                del doc.data[key]
            elif kind == "scalar" and isinstance(value, dict | list):
                self.error_at(doc.positions, (key,), f"{key} must be a string, not "
                              f"{kind_of(value)}", doc.file)  # fmt: skip
                del doc.data[key]
        self.check_duplicate_names(doc, "modules", "module")
        if imported:
            for key in doc.data:
                if key not in _IMPORT_MERGED and key not in _QUIET_DROPPED and not (
                    key.startswith("x-") or key == "application"
                ):
                    self.warn_at(doc.positions, (key,), f"{key!r} in an imported file is "
                                 "ignored: imports contribute modules, workflows, triggers, "
                                 "pipelines, platform, plugins, sidecars, secrets, "
                                 "secretStores and environments", doc.file)  # fmt: skip

    def check_duplicate_names(self, doc: _Doc, key: str, what: str) -> None:
        seen: dict[str, KeyPath] = {}
        for index, item in enumerate(doc.data.get(key) or ()):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            path: KeyPath = (key, index, "name")
            if name in seen:
                first = doc.positions.get(seen[name])
                where = f" (first defined at line {first.line})" if first else ""
                self.error_at(doc.positions, path, f"duplicate {what} name {name!r}{where}",
                              doc.file)  # fmt: skip
            else:
                seen[name] = path

    def process_imports(self, doc: _Doc, stack: tuple[Path, ...]) -> _Doc:
        """Load `imports:` depth first and merge each into `doc` (see `_merge_import`)."""
        imports = doc.data.pop("imports", None) or []
        base_display = os.path.dirname(doc.file) if not doc.file.startswith("<") else ""
        base_dir = doc.resolved.parent if doc.resolved else Path.cwd()
        merged = doc
        for index, entry in enumerate(imports):
            path: KeyPath = ("imports", index)
            if not isinstance(entry, str) or not entry:
                self.error_at(doc.positions, path, f"an import must be a file path, not "
                              f"{kind_of(entry)}", doc.file)  # fmt: skip
                continue
            display = entry if os.path.isabs(entry) else os.path.join(base_display, entry)
            display = os.path.normpath(display)
            resolved = (base_dir / entry).resolve()
            if resolved in stack:
                names = [*self._chain(stack, resolved), display]
                self.error_at(doc.positions, path,
                              "circular import: " + " -> ".join(names), doc.file)  # fmt: skip
                continue
            imported = self.load_file(display, resolved, stack, importer=(doc, path))
            if imported is not None:
                merged = self.merge_import(merged, imported)
        merged.positions = {p: v for p, v in merged.positions.items() if p[:1] != ("imports",)}
        return merged

    def _chain(self, stack: tuple[Path, ...], target: Path) -> list[str]:
        start = stack.index(target)
        return [os.path.relpath(p) if p.is_absolute() else str(p) for p in stack[start:]]

    def merge_import(self, main: _Doc, imp: _Doc) -> _Doc:
        """Merge an imported file into the importing one, as Go's processImports does:

        * modules, sidecars and `plugins.external` are appended, skipping names already
          defined (the importing file, then earlier imports, win);
        * workflows, triggers, pipelines, platform, secretStores and environments gain only
          the keys they do not have yet (the importer's entry wins as a whole);
        * `secrets` merges field by field (see `_merge_secrets`);
        * anything else in the imported file is ignored (a warning says so).
        """
        data = dict(main.data)
        positions = dict(main.positions)
        for key in ("modules", "sidecars"):
            if isinstance(imp.data.get(key), list):
                data[key] = self._append_named(data.get(key), imp, (key,), positions)
                _keep_key_position(positions, imp.positions, key)
        for key in ("workflows", "triggers", "pipelines", "platform", "secretStores",
                    "environments"):  # fmt: skip
            incoming = imp.data.get(key)
            if not isinstance(incoming, dict):
                continue
            current = data.get(key)
            if current is not None and not isinstance(current, dict):
                continue  # list form in the importer: nothing to merge into
            merged_map = dict(current or {})
            for name, value in incoming.items():
                if name not in merged_map:
                    merged_map[name] = value
                    _graft(positions, imp.positions, (key, name), (key, name))
            data[key] = merged_map
            _keep_key_position(positions, imp.positions, key)
        plugins = imp.data.get("plugins")
        if isinstance(plugins, dict) and isinstance(plugins.get("external"), list):
            mine = dict(data.get("plugins") or {})
            mine["external"] = self._append_named(mine.get("external"), imp,
                                                  ("plugins", "external"), positions)  # fmt: skip
            data["plugins"] = mine
            _keep_key_position(positions, imp.positions, "plugins")
        if isinstance(imp.data.get("secrets"), dict):
            data["secrets"] = _merge_secrets(data.get("secrets"), imp.data["secrets"],
                                             positions, imp.positions)  # fmt: skip
            _keep_key_position(positions, imp.positions, "secrets")
        return _Doc(main.file, data, positions, main.resolved)

    def _append_named(self, current: Any, imp: _Doc, prefix: KeyPath,
                      positions: dict[KeyPath, Position]) -> list[Any]:  # fmt: skip
        items = list(current) if isinstance(current, list) else []
        names = {i.get("name") for i in items if isinstance(i, dict)}
        incoming = imp.data
        for part in prefix:
            incoming = incoming[part]
        for index, item in enumerate(incoming):  # type: ignore[arg-type]
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name in names:
                continue
            names.add(name)
            _graft(positions, imp.positions, (*prefix, index), (*prefix, len(items)))
            items.append(item)
        return items

    # -- application files (several workflow files sharing one engine) -------------------

    def load_application(self, doc: _Doc) -> _Doc:
        """An `application:` file: load each listed workflow file and combine them, as Go's
        MergeApplicationConfig does. Module, trigger and pipeline names must be unique
        across files; workflow sections merge (route-like lists are concatenated)."""
        app = doc.data["application"]
        combined = _Doc(doc.file, {}, {(): doc.positions[()]}, doc.resolved)
        for key in ("name", "version", "description"):
            if key in doc.data:
                combined.data[key] = doc.data[key]
                _graft(combined.positions, doc.positions, (key,), (key,))
        for key in doc.data:
            if key not in ("application", "name", "version", "description") and not (
                key.startswith("x-")
            ):
                self.error_at(doc.positions, (key,), f"{key!r} is not allowed beside "
                              "'application' (put it in one of its workflow files)",
                              doc.file)  # fmt: skip
        name = app.get("name")
        if name is not None:
            if isinstance(name, dict | list):
                self.error_at(doc.positions, ("application", "name"),
                              "application.name must be a string", doc.file)  # fmt: skip
            else:
                combined.data.setdefault("name", name)
                _graft(combined.positions, doc.positions, ("application", "name"), ("name",))
        refs = app.get("workflows")
        if not isinstance(refs, list) or not refs:
            self.error_at(doc.positions, ("application", "workflows"), "an application needs "
                          "a non-empty list of workflow files under application.workflows",
                          doc.file)  # fmt: skip
            return combined
        owners: dict[tuple[str, str], str] = {}
        base_display = os.path.dirname(doc.file) if not doc.file.startswith("<") else ""
        base_dir = doc.resolved.parent if doc.resolved else Path.cwd()
        stack = (doc.resolved,) if doc.resolved else ()
        for index, ref in enumerate(refs):
            path: KeyPath = ("application", "workflows", index)
            file = ref.get("file") if isinstance(ref, dict) else None
            if not isinstance(file, str) or not file:
                self.error_at(doc.positions, path,
                              "a workflow reference needs a 'file'", doc.file)  # fmt: skip
                continue
            display = os.path.normpath(file if os.path.isabs(file)
                                       else os.path.join(base_display, file))  # fmt: skip
            part = self.load_file(display, (base_dir / file).resolve(), stack,
                                  importer=(doc, (*path, "file")))  # fmt: skip
            if part is not None:
                self._combine(combined, part, owners)
        return combined

    def _combine(self, combined: _Doc, part: _Doc, owners: dict[tuple[str, str], str]) -> None:
        data, positions = combined.data, combined.positions
        for index, module in enumerate(part.data.get("modules") or ()):
            name = module.get("name") if isinstance(module, dict) else None
            if self._conflict(part, ("modules", index), "module", name, owners):
                continue
            modules = data.setdefault("modules", [])
            _graft(positions, part.positions, ("modules", index), ("modules", len(modules)))
            modules.append(module)
        for key, what in (("triggers", "trigger"), ("pipelines", "pipeline")):
            entries = part.data.get(key)
            if not isinstance(entries, dict):
                continue
            target = data.setdefault(key, {})
            for name, value in entries.items():
                if not self._conflict(part, (key, name), what, name, owners):
                    target[name] = value
                    _graft(positions, part.positions, (key, name), (key, name))
        workflows = part.data.get("workflows")
        if isinstance(workflows, dict):
            target = data.setdefault("workflows", {})
            for name, section in workflows.items():
                self._merge_workflow(target, name, section, part, positions)
        plugins = part.data.get("plugins")
        if isinstance(plugins, dict) and isinstance(plugins.get("external"), list):
            mine = data.setdefault("plugins", {})
            mine["external"] = self._append_named(mine.get("external"), part,
                                                  ("plugins", "external"), positions)  # fmt: skip
        for key in part.data:
            if key not in ("modules", "triggers", "pipelines", "workflows", "plugins",
                           "name", "version", "description") and not key.startswith("x-"):  # fmt: skip
                self.warn_at(part.positions, (key,), f"{key!r} in an application's workflow "
                             "file is ignored: application files combine modules, workflows, "
                             "triggers, pipelines and plugins only", part.file)  # fmt: skip
        for key in ("modules", "triggers", "pipelines", "workflows", "plugins"):
            if key in data:
                _keep_key_position(positions, part.positions, key)

    def _conflict(self, part: _Doc, path: KeyPath, what: str, name: Any,
                  owners: dict[tuple[str, str], str]) -> bool:  # fmt: skip
        if not isinstance(name, str):
            return False
        owner = owners.setdefault((what, name), part.file)
        if owner == part.file:
            return False
        self.error_at(part.positions, path, f"{what} {name!r} is defined in both {owner} and "
                      f"{part.file}", part.file)  # fmt: skip
        return True

    def _merge_workflow(self, target: dict[str, Any], name: str, section: Any, part: _Doc,
                        positions: dict[KeyPath, Position]) -> None:  # fmt: skip
        existing = target.get(name)
        if name not in target or existing is None:
            target[name] = section
            _graft(positions, part.positions, ("workflows", name), ("workflows", name))
            return
        if not isinstance(existing, dict) or not isinstance(section, dict):
            return  # cannot merge: the first file wins
        merged = dict(existing)
        for key, value in section.items():
            src: KeyPath = ("workflows", name, key)
            if key in _APPENDED_LISTS and isinstance(value, list):
                before = merged.get(key)
                start = len(before) if isinstance(before, list) else 0
                merged[key] = ([*before] if isinstance(before, list) else []) + value
                for offset in range(len(value)):
                    _graft(positions, part.positions, (*src, offset), (*src, start + offset))
                if not isinstance(before, list):
                    _keep_key_position(positions, part.positions, *src)
            elif key not in merged:
                merged[key] = value
                _graft(positions, part.positions, src, src)
        target[name] = merged

    # -- the typed result ---------------------------------------------------------------

    def finish(self, doc: _Doc | None, display: str) -> AppConfig:
        app = _build(doc, self) if doc is not None else None
        if self.errors or app is None:
            order = {name: i for i, name in enumerate(self.files)}
            errors = sorted(self.errors, key=lambda e: (order.get(e.file or "", len(order)),
                                                        e.line or 0))  # fmt: skip
            count = len(errors)
            raise ConfigError(f"configuration has {count} error{'s' if count != 1 else ''}",
                              file=display, errors=errors)  # fmt: skip
        return app


def _keep_key_position(
    positions: dict[KeyPath, Position], other: Mapping[KeyPath, Position], *key: str | int
) -> None:
    if key not in positions and key in other:
        positions[key] = other[key]


def _merge_secrets(
    current: Any,
    incoming: dict[str, Any],
    positions: dict[KeyPath, Position],
    other: Mapping[KeyPath, Position],
) -> dict[str, Any]:
    """Go's secrets merge: unset fields come from the import, `config` merges key by key,
    `generate` (by `key`) and `entries` (by `name`) gain the items they lack."""
    mine = dict(current) if isinstance(current, dict) else {}
    for field_name, value in incoming.items():
        here = mine.get(field_name)
        if field_name == "config" and isinstance(here, dict) and isinstance(value, dict):
            merged = dict(here)
            for key, item in value.items():
                if key not in merged:
                    merged[key] = item
                    _graft(positions, other, ("secrets", "config", key),
                           ("secrets", "config", key))  # fmt: skip
            mine[field_name] = merged
        elif field_name in ("generate", "entries") and isinstance(value, list):
            ident = "key" if field_name == "generate" else "name"
            items = list(here) if isinstance(here, list) else []
            seen = {i.get(ident) for i in items if isinstance(i, dict)}
            for index, item in enumerate(value):
                item_id = item.get(ident) if isinstance(item, dict) else None
                if item_id is not None and item_id in seen:
                    continue
                seen.add(item_id)
                _graft(positions, other, ("secrets", field_name, index),
                       ("secrets", field_name, len(items)))  # fmt: skip
                items.append(item)
            mine[field_name] = items
        elif here is None or here == "":
            mine[field_name] = value
            _graft(positions, other, ("secrets", field_name), ("secrets", field_name))
    return mine


def _syntax_error(exc: yaml.MarkedYAMLError, display: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.composer.ComposerError) and "single document" in (exc.context or ""):
        return ConfigError("a config file must hold a single YAML document (found a second "
                           "'---')", file=display, line=line)  # fmt: skip
    message = f"invalid YAML: {exc.problem or 'syntax error'}"
    if exc.context:
        where = exc.context_mark
        at = f" started at line {where.line + 1}" if where is not None else ""
        message += f" ({exc.context}{at})"
    return ConfigError(message, file=display, line=line)

