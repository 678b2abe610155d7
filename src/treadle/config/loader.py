"""Load a YAML application (the format of `GoCodeAlone/workflow`) into an `AppConfig`.

```python
from treadle.config import load_config

app = load_config("app.yaml")                  # imports resolved, ${VAR} expanded
app.pipelines["create-order"].steps[2].type
app.position(("pipelines", "create-order", "steps", 2, "type"))   # app.yaml:41
```

Loading runs in three passes, each collecting every problem it finds; at the end one
`ConfigError` lists them all in `error.errors`, each naming file, line and key:

1. *parse* each file with PyYAML's safe composer (libyaml when present) and a resolver that
   reads scalars as Go's yaml.v3 does (`yes`/`on` stay strings, no timestamps, no
   sexagesimal numbers; duplicate keys are errors), recording where every node starts;
2. *merge* `imports:` as the Go loader does (`_Session.merge_import`), or the workflow
   files of an `application:` file (`_Session.load_application`);
3. *build* the typed objects (`model.build_app_config`) after expanding `${VAR}` in module
   configs (`envexpand`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

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
    from yaml.composer import Composer, ComposerError
    from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
    from yaml.parser import Parser
    from yaml.reader import Reader, ReaderError
    from yaml.resolver import BaseResolver
    from yaml.scanner import Scanner
except ImportError as exc:  # pragma: no cover - PyYAML comes with the `config` extra
    raise MissingExtraError("config", "yaml") from exc

__all__ = ["MODULAR_SECTIONS", "TOP_LEVEL_KEYS", "load_config", "load_config_text"]

TOP_LEVEL_KEYS: Mapping[str, str] = {
    # WorkflowConfig of GoCodeAlone/workflow (config/config.go) and the container each holds
    "imports": "list",
    "modules": "list",
    "workflows": "mapping",  # the seed documentation's list of {name, type, config} too
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
    # module sections of the CrisisTextLine/modular framework the Go engine loads
    "reverseproxy": "mapping",
    "httpserver": "mapping",
    "chimux": "mapping",
    # descriptive keys that the Go examples and the seed documentation put at the top
    "name": "scalar",
    "version": "scalar",
    "description": "scalar",
    "app": "mapping",  # `app: {name, version}` of newer Go examples (descriptive)
    # ApplicationConfig: a file listing workflow files instead of holding one
    "application": "mapping",
}
"""Every key allowed at the top of a file, besides `x-*` keys (kept, e.g. for anchors)."""

MODULAR_SECTIONS = frozenset({
    "auth", "cache", "database", "eventbus", "eventlogger", "httpclient", "jsonschema",
    "letsencrypt", "scheduler",
})  # fmt: skip
"""Config sections of the modules of the Go `modular` framework (`scheduler:`, `database:`,
...) that older Go examples put at the top of the file. Treadle reads a module's config from
its `modules[].config` (`reverseproxy:`, `httpserver:` and `chimux:` excepted, read by the
module types of those names), so these are dropped with a warning rather than refused as
unknown keys."""

# What an imported file contributes (Go's processImports); the rest of it is dropped.
_IMPORT_MERGED = frozenset(
    {"imports", "modules", "workflows", "triggers", "pipelines", "platform", "plugins",
     "sidecars", "secretStores", "environments", "secrets", "name", "version", "description"}
)  # fmt: skip
# What each workflow file of an application contributes (Go's MergeApplicationConfig).
_APP_MERGED = frozenset(
    {"imports", "modules", "workflows", "triggers", "pipelines", "plugins", "name", "version",
     "description"}
)  # fmt: skip
_IMPORTED_LIST = (
    "modules, workflows, triggers, pipelines, platform, plugins, sidecars, secrets, "
    "secretStores and environments"
)
_APP_LIST = "modules, workflows, triggers, pipelines and plugins"
# Workflow-section lists concatenated across application files (Go's mergeWorkflowSection).
_APPENDED_LISTS = frozenset({"routes", "subscriptions", "producers", "definitions"})

Role = Literal["main", "import", "part"]
Stack = tuple[tuple[Path, str], ...]


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    strict_env: bool = False,
) -> AppConfig:
    """Load the application in `path` with its imports (or its workflow files).

    `env` stands in for `os.environ` in `${VAR}` expansion. A reference to an unset
    variable without a default is left as written and reported in `AppConfig.warnings`,
    as the Go engine leaves it; with `strict_env=True` it is an error.

    Raises `ConfigError` whose `errors` lists every problem found.
    """
    display = os.fspath(path)
    session = _Session(os.environ if env is None else env, strict_env)
    doc = session.load_file(display, Path(display).resolve(), (), "main")
    return session.finish(doc, display)


def load_config_text(
    text: str,
    *,
    filename: str = "<string>",
    env: Mapping[str, str] | None = None,
    strict_env: bool = False,
) -> AppConfig:
    """Load an application from `text`; `filename` names it in errors.

    Relative `imports:` resolve against the directory of `filename`, or against the
    current directory when `filename` is not a path (such as the default `<string>`).
    """
    session = _Session(os.environ if env is None else env, strict_env)
    resolved = None if filename.startswith("<") else Path(filename).resolve()
    doc = session.load_text(text, filename, resolved, (), "main")
    return session.finish(doc, filename)


# ---------------------------------------------------------------------------------------
# Parsing: scalars typed as yaml.v3 types them, and the position of every node
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


class _Resolver(BaseResolver):
    """The implicit types of yaml.v3 decoding into `any`: YAML 1.2 booleans and nulls,
    Go's integer literals (`0x1F`, `0o17`, `0b1`, `0755`, `1_000`), floats with or without
    a dot (`1e3`), `<<` merges. No timestamps: dates stay strings, as in Go."""


_Resolver.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), [*"~nN", ""])
_Resolver.add_implicit_resolver(
    _INT,
    re.compile(r"^[-+]?(?:0[bB][01_]+|0[oO][0-7_]+|0[xX][0-9a-fA-F_]+|0[0-7_]*|[1-9][0-9_]*)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9_]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_Resolver.add_implicit_resolver(_MERGE, re.compile(r"^<<$"), ["<"])


class _PyComposer(Reader, Scanner, Parser, Composer, _Resolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


def _compose(text: str) -> Node | None:
    """The node tree of `text`, None when it is empty. Composes only: nothing is built."""
    if yaml.__with_libyaml__:
        from yaml._yaml import CParser

        class _CComposer(CParser, _Resolver):
            def __init__(self, stream: str) -> None:
                CParser.__init__(self, stream)
                _Resolver.__init__(self)

        fast = _CComposer(text)
        try:
            return fast.get_single_node()
        finally:
            fast.dispose()
    slow = _PyComposer(text)
    try:
        return slow.get_single_node()
    finally:
        slow.dispose()


def _parse_int(text: str) -> int:
    plain = text.replace("_", "")
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return sign * int(digits, 8)  # Go reads a leading 0 as octal
    return sign * int(digits, 0)


def _parse_float(text: str) -> float:
    plain = text.replace("_", "").lower()
    if plain.endswith(".inf"):
        return float("-inf") if plain.startswith("-") else float("inf")
    return float("nan") if plain == ".nan" else float(plain)


class _Builder:
    """Turns a composed node tree into plain values, recording the position of each node."""

    def __init__(self, file: str, errors: list[ConfigError]) -> None:
        self.file = file
        self.errors = errors
        self.positions: dict[KeyPath, Position] = {}
        self._done: dict[int, Any] = {}
        self._active: set[int] = set()

    def pos(self, node: Node) -> Position:
        return Position(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node, path: KeyPath, message: str) -> None:
        line = self.pos(node).line
        self.errors.append(ConfigError(message, file=self.file, line=line,
                                       key=format_key(path) or None))  # fmt: skip

    def build(self, root: Node) -> Any:
        self.positions[()] = self.pos(root)
        return self.value(root, ())

    def value(self, node: Node, path: KeyPath) -> Any:
        ident = id(node)
        if ident in self._done:  # an alias: same value; only its first use has positions
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
            elif isinstance(node, MappingNode):
                result = self.mapping(node, path)
            else:  # pragma: no cover - the composer makes only these three kinds
                result = None
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
        for key, key_node, value_node in self.pairs(node, path, frozenset()):
            self.positions[(*path, key)] = self.pos(key_node)
            out[key] = self.value(value_node, (*path, key))
        return out

    def pairs(
        self, node: MappingNode, path: KeyPath, merging: frozenset[int]
    ) -> list[tuple[str, Node, Node]]:
        """A mapping's entries with `<<` merges applied: explicit keys win, then earlier
        merge sources. A key written twice is an error, as in yaml.v3."""
        explicit: list[tuple[str, Node, Node]] = []
        merged: list[tuple[str, Node, Node]] = []
        first: dict[str, Node] = {}
        merging = merging | {id(node)}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        self.error(key_node, path, "a merge key (<<) takes a mapping or a "
                                   "list of mappings")  # fmt: skip
                    elif id(source) in merging:
                        self.error(key_node, path, "recursive merge key (<<)")
                    else:
                        merged.extend(self.pairs(source, path, merging))
            elif not isinstance(key_node, ScalarNode):
                kind = "a mapping" if isinstance(key_node, MappingNode) else "a list"
                self.error(key_node, path, f"a mapping key must be a plain value, not {kind}")
            elif key_node.value in first:
                line = self.pos(first[key_node.value]).line
                self.error(key_node, (*path, key_node.value),
                           f"duplicate key {key_node.value!r} (first defined at line {line})")
            else:  # the key as written, as yaml.v3 decodes keys into map[string]any
                first[key_node.value] = key_node
                explicit.append((key_node.value, key_node, value_node))
        inherited: list[tuple[str, Node, Node]] = []
        for entry in merged:
            if entry[0] not in first:
                first[entry[0]] = entry[1]
                inherited.append(entry)
        return inherited + explicit


# ---------------------------------------------------------------------------------------
# Files, imports and application files
# ---------------------------------------------------------------------------------------


@dataclass
class _Doc:
    """A file's data (or a merge of several) and the position of each of its nodes."""

    file: str
    data: dict[str, Any]
    positions: dict[KeyPath, Position]
    resolved: Path | None = None


def _locate(positions: Mapping[KeyPath, Position], path: KeyPath) -> Position | None:
    for end in range(len(path), -1, -1):
        if (found := positions.get(path[:end])) is not None:
            return found
    return None


def _graft(
    dst: dict[KeyPath, Position], src: Mapping[KeyPath, Position], src_at: KeyPath,
    dst_at: KeyPath,
) -> None:  # fmt: skip
    """Copy the positions under `src_at` in `src` to the same places under `dst_at`."""
    size = len(src_at)
    for path, pos in src.items():
        if path[:size] == src_at:
            dst[dst_at + path[size:]] = pos


def _relative(doc: _Doc, entry: str) -> tuple[str, Path]:
    """How to show, and where to find, a file named by `doc` (relative to doc's folder)."""
    base_display = "" if doc.file.startswith("<") else os.path.dirname(doc.file)
    base_dir = doc.resolved.parent if doc.resolved else Path.cwd()
    display = os.path.normpath(os.path.join(base_display, entry))
    return display, (base_dir / entry).resolve()


@dataclass
class _Session:
    env: Mapping[str, str]
    strict_env: bool
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def problem(self, doc: _Doc, path: KeyPath, message: str, *, error: bool = True) -> None:
        pos = _locate(doc.positions, path)
        kind = ConfigError if error else ConfigWarning
        problem = kind(message, file=pos.file if pos else doc.file,
                       line=pos.line if pos else None, key=format_key(path) or None)  # fmt: skip
        if isinstance(problem, ConfigError):
            self.errors.append(problem)
        else:
            self.warnings.append(problem)

    # -- one file -----------------------------------------------------------------------

    def load_file(
        self, display: str, resolved: Path, stack: Stack, role: Role,
        importer: tuple[_Doc, KeyPath] | None = None,
    ) -> _Doc | None:  # fmt: skip
        try:
            data = resolved.read_bytes()
        except OSError as exc:
            reason = "file not found" if isinstance(exc, FileNotFoundError) else (
                f"cannot read file: {exc.strerror or exc}")  # fmt: skip
            if importer is None:
                self.errors.append(ConfigError(reason, file=display))
            else:
                self.problem(importer[0], importer[1], f"{reason}: {display}")
            return None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            self.errors.append(ConfigError("file is not valid UTF-8", file=display, line=line))
            return None
        return self.load_text(text, display, resolved, stack, role)

    def load_text(
        self, text: str, display: str, resolved: Path | None, stack: Stack, role: Role
    ) -> _Doc | None:
        self.files.append(display)
        doc = self.parse(text, display)
        if doc is None:
            return None
        doc.resolved = resolved
        self.check_top_level(doc, role)
        stack = (*stack, (resolved, display)) if resolved else stack
        if "application" in doc.data:
            if role != "main":
                self.problem(doc, ("application",), "an application file can only be loaded "
                             "directly, not imported or listed by another")  # fmt: skip
                del doc.data["application"]
            else:
                return self.load_application(doc, stack)
        return self.process_imports(doc, stack)

    def parse(self, text: str, display: str) -> _Doc | None:
        try:
            root = _compose(text)
        except yaml.MarkedYAMLError as exc:
            self.errors.append(_syntax_error(exc, display))
            return None
        except ReaderError as exc:
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
            self.errors.append(ConfigError(
                f"the top level must be a mapping of keys, not {kind_of(data)}",
                file=display, line=builder.positions[()].line))  # fmt: skip
            return None
        return _Doc(display, data, builder.positions)

    def check_top_level(self, doc: _Doc, role: Role) -> None:
        """Unknown keys and wrong container types; offending keys are dropped from `doc`."""
        for key, value in list(doc.data.items()):
            kind = TOP_LEVEL_KEYS.get(key)
            problem = None
            if kind is None:
                if key in MODULAR_SECTIONS:
                    self.problem(doc, (key,), f"{key!r} (a config section of the Go modular "
                                 f"framework's {key} module) is ignored: Treadle modules take "
                                 "their config from modules[].config", error=False)
                    problem = ""
                elif not key.startswith("x-"):
                    problem = f"unknown top-level key {key!r}{suggest(key, TOP_LEVEL_KEYS)}"
            elif value is None:
                problem = "" if kind != "scalar" else None  # `pipelines:` alone: none (Go)
            elif kind == "scalar" and isinstance(value, dict | list):
                problem = f"{key} must be a string, not {kind_of(value)}"
            elif kind == "list" and not isinstance(value, list):
                problem = f"{key} must be a list, not {kind_of(value)}"
            elif kind == "mapping" and not isinstance(value, dict):
                if not (key in ("workflows", "triggers") and isinstance(value, list)):
                    problem = f"{key} must be a mapping, not {kind_of(value)}"
            if problem is not None:
                if problem:
                    self.problem(doc, (key,), problem)
                del doc.data[key]
            elif role != "main" and key not in (
                _IMPORT_MERGED if role == "import" else _APP_MERGED
            ) and not key.startswith("x-"):
                self.problem(doc, (key,), f"{key!r} is ignored here, as in the Go engine: "
                             + (f"imports contribute only {_IMPORTED_LIST}; move it to the "
                                "importing file" if role == "import" else "an application "
                                f"combines only the {_APP_LIST} of its files"),
                             error=False)  # fmt: skip
        seen: dict[str, int] = {}
        for index, item in enumerate(doc.data.get("modules") or ()):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                first = _locate(doc.positions, ("modules", seen[name]))
                where = f" (first defined at line {first.line})" if first else ""
                self.problem(doc, ("modules", index, "name"),
                             f"duplicate module name {name!r}{where}")
            else:
                seen[name] = index

    def process_imports(self, doc: _Doc, stack: Stack) -> _Doc:
        """Load `imports:` depth first, relative to the importing file, merging each into
        `doc` in order; then drop `imports` (Go clears it too)."""
        merged = doc
        for index, entry in enumerate(doc.data.pop("imports", None) or ()):
            path: KeyPath = ("imports", index)
            if not isinstance(entry, str) or not entry:
                self.problem(doc, path, f"an import must be a file path, not {kind_of(entry)}")
                continue
            display, resolved = _relative(doc, entry)
            chain = [name for file, name in stack]
            if resolved in (file for file, _ in stack):
                start = [file for file, _ in stack].index(resolved)
                cycle = " -> ".join([*chain[start:], display])
                self.problem(doc, path, f"circular import: {cycle}")
                continue
            imported = self.load_file(display, resolved, stack, "import", (doc, path))
            if imported is not None:
                merged = self.merge_import(merged, imported)
        merged.positions = {p: v for p, v in merged.positions.items() if p[:1] != ("imports",)}
        return merged

    def merge_import(self, main: _Doc, imp: _Doc) -> _Doc:
        """Merge an imported file into the importing one as Go's processImports does:

        * `modules`, `sidecars` and `plugins.external` gain the entries whose name they
          lack (so the importing file, then earlier imports, win);
        * `workflows`, `triggers`, `pipelines`, `platform`, `secretStores` and
          `environments` gain the keys they lack (an entry is taken or left as a whole);
        * `secrets` merges field by field (`_merge_secrets`);
        * anything else in the imported file is ignored, with a warning.
        """
        out = _Doc(main.file, dict(main.data), dict(main.positions), main.resolved)
        for key in ("modules", "sidecars"):
            if isinstance(imp.data.get(key), list):
                out.data[key] = _append_named(out.data.get(key), imp, (key,), out.positions)
        for key in ("workflows", "triggers", "pipelines", "platform", "secretStores",
                    "environments"):  # fmt: skip
            incoming, current = imp.data.get(key), out.data.get(key)
            if incoming is None:
                continue
            if isinstance(incoming, list) or isinstance(current, list):
                self.problem(imp, (key,), f"{key} written as a list cannot be merged on "
                             f"import; write them as a mapping ({key}: {{name: ...}})",
                             error=False)  # fmt: skip
                continue
            target = dict(current or {})
            for name, value in incoming.items():
                if name not in target:
                    target[name] = value
                    _graft(out.positions, imp.positions, (key, name), (key, name))
            out.data[key] = target
        plugins = imp.data.get("plugins")
        if isinstance(plugins, dict) and isinstance(plugins.get("external"), list):
            mine = dict(out.data.get("plugins") or {})
            mine["external"] = _append_named(mine.get("external"), imp, ("plugins", "external"),
                                             out.positions)  # fmt: skip
            out.data["plugins"] = mine
        if isinstance(imp.data.get("secrets"), dict):
            out.data["secrets"] = _merge_secrets(out.data.get("secrets"), imp, out.positions)
        for key in out.data:  # a section new to the importer starts where the import has it
            if (key,) not in out.positions and (key,) in imp.positions:
                out.positions[(key,)] = imp.positions[(key,)]
        return out

    def load_application(self, doc: _Doc, stack: Stack) -> _Doc:
        """An `application:` file: load each listed workflow file (with its imports) and
        combine them as Go's MergeApplicationConfig does: module, trigger and pipeline names
        must be unique across files; workflow sections merge, their route-like lists
        concatenated; plugins are deduplicated by name."""
        app = doc.data["application"]
        out = _Doc(doc.file, {}, {(): doc.positions[()]}, doc.resolved)
        for key, value in doc.data.items():
            if key in ("name", "version", "description") or key.startswith("x-"):
                out.data[key] = value
                _graft(out.positions, doc.positions, (key,), (key,))
            elif key != "application":
                self.problem(doc, (key,), f"{key!r} is not allowed beside 'application' (put "
                             "it in one of the workflow files)")  # fmt: skip
        name = app.get("name")
        if isinstance(name, dict | list):
            self.problem(doc, ("application", "name"), "application name must be a string")
        elif name is not None and "name" not in out.data:
            out.data["name"] = name
            _graft(out.positions, doc.positions, ("application", "name"), ("name",))
        refs = app.get("workflows")
        if not isinstance(refs, list) or not refs:
            self.problem(doc, ("application", "workflows"), "an application needs a list of "
                         "workflow files: workflows: [{file: path.yaml}, ...]")  # fmt: skip
            return out
        owners: dict[tuple[str, str], str] = {}
        for index, ref in enumerate(refs):
            path: KeyPath = ("application", "workflows", index)
            file = ref.get("file") if isinstance(ref, dict) else None
            if not isinstance(file, str) or not file:
                self.problem(doc, path, "a workflow reference needs a 'file' path")
                continue
            display, resolved = _relative(doc, file)
            part = self.load_file(display, resolved, stack, "part", (doc, (*path, "file")))
            if part is not None:
                self.combine(out, part, owners)
        return out

    def combine(self, out: _Doc, part: _Doc, owners: dict[tuple[str, str], str]) -> None:
        """Add one workflow file of an application to the combined document `out`."""

        def unique(what: str, name: Any, path: KeyPath) -> bool:
            owner = owners.setdefault((what, name), part.file) if isinstance(name, str) else None
            if owner is None or owner == part.file:
                return True
            self.problem(part, path, f"{what} {name!r} is defined in both {owner} and "
                         f"{part.file}")  # fmt: skip
            return False

        data, positions = out.data, out.positions
        for index, module in enumerate(part.data.get("modules") or ()):
            if unique("module", module.get("name") if isinstance(module, dict) else None,
                      ("modules", index)):  # fmt: skip
                modules = data.setdefault("modules", [])
                _graft(positions, part.positions, ("modules", index), ("modules", len(modules)))
                modules.append(module)
        for key in ("triggers", "pipelines"):
            entries = part.data.get(key)
            for name, value in (entries.items() if isinstance(entries, dict) else ()):
                if unique(key[:-1], name, (key, name)):
                    data.setdefault(key, {})[name] = value
                    _graft(positions, part.positions, (key, name), (key, name))
        for key in ("workflows", "triggers"):
            if isinstance(part.data.get(key), list):
                self.problem(part, (key,), f"{key} written as a list cannot be combined in an "
                             f"application; write them as a mapping ({key}: {{name: ...}})",
                             error=False)  # fmt: skip
        workflows = part.data.get("workflows")
        for name, section in (workflows.items() if isinstance(workflows, dict) else ()):
            _merge_workflow(data.setdefault("workflows", {}), name, section, part, positions)
        plugins = part.data.get("plugins")
        if isinstance(plugins, dict) and isinstance(plugins.get("external"), list):
            mine = data.setdefault("plugins", {})
            mine["external"] = _append_named(mine.get("external"), part, ("plugins", "external"),
                                             positions)  # fmt: skip
        for key in data:
            if (key,) not in positions and (key,) in part.positions:
                positions[(key,)] = part.positions[(key,)]

    # -- the result ---------------------------------------------------------------------

    def expand_modules(self, doc: _Doc) -> dict[str, Any]:
        """`${VAR}` in module config values, where the Go engine expands them."""
        modules = doc.data.get("modules")
        if not isinstance(modules, list):
            return doc.data
        expanded: list[Any] = []
        for index, module in enumerate(modules):
            if isinstance(module, dict) and isinstance(module.get("config"), dict):
                config, missing = expand_env_tree(module["config"], self.env)
                for rel, name in missing:
                    message = (f"environment variable {name} is not set and has no default"
                               if self.strict_env else f"environment variable {name} is not "
                               "set; the value is left as written")  # fmt: skip
                    self.problem(doc, ("modules", index, "config", *rel), message,
                                 error=self.strict_env)  # fmt: skip
                module = {**module, "config": config}
            expanded.append(module)
        return {**doc.data, "modules": expanded}

    def finish(self, doc: _Doc | None, display: str) -> AppConfig:
        app = None
        if doc is not None:
            data = self.expand_modules(doc)
            app = build_app_config(
                data, file=display, source_map=SourceMap(doc.positions),
                files=tuple(dict.fromkeys(self.files)),
                report=lambda path, message, is_error: self.problem(
                    doc, path, message, error=is_error),
            )  # fmt: skip
        if self.errors or app is None:
            order = {name: i for i, name in enumerate(self.files)}
            unique = {(e.file, e.line, e.key, e.message): e for e in self.errors}  # diamonds
            errors = sorted(unique.values(),
                            key=lambda e: (order.get(e.file or "", -1), e.line or 0))  # fmt: skip
            count = len(errors)
            raise ConfigError(f"configuration has {count} error{'s' if count != 1 else ''}",
                              file=display, errors=errors)  # fmt: skip
        return replace(app, warnings=tuple(dict.fromkeys(self.warnings)))


def _append_named(
    current: Any, imp: _Doc, at: KeyPath, positions: dict[KeyPath, Position]
) -> list[Any]:
    """`current` plus the items of `imp` at `at` whose `name` it does not have yet."""
    items = list(current) if isinstance(current, list) else []
    names = {item.get("name") for item in items if isinstance(item, dict)}
    incoming: Any = imp.data
    for part in at:
        incoming = incoming[part]
    for index, item in enumerate(incoming):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name in names:
            continue
        names.add(name)
        _graft(positions, imp.positions, (*at, index), (*at, len(items)))
        items.append(item)
    return items


def _merge_workflow(
    target: dict[str, Any], name: str, section: Any, part: _Doc,
    positions: dict[KeyPath, Position],
) -> None:  # fmt: skip
    """Go's mergeWorkflowSection: route-like lists concatenate; otherwise first file wins."""
    at: KeyPath = ("workflows", name)
    existing = target.get(name)
    if existing is None:
        target[name] = section
        _graft(positions, part.positions, at, at)
        return
    if not isinstance(existing, dict) or not isinstance(section, dict):
        return
    merged = dict(existing)
    for key, value in section.items():
        if key in _APPENDED_LISTS and isinstance(value, list):
            found = merged.get(key)
            before: list[Any] = found if isinstance(found, list) else []
            for offset in range(len(value)):
                _graft(positions, part.positions, (*at, key, offset),
                       (*at, key, len(before) + offset))  # fmt: skip
            if not before:
                _graft(positions, part.positions, (*at, key), (*at, key))
            merged[key] = [*before, *value]
        elif key not in merged:
            merged[key] = value
            _graft(positions, part.positions, (*at, key), (*at, key))
    target[name] = merged


def _merge_secrets(current: Any, imp: _Doc, positions: dict[KeyPath, Position]) -> dict[str, Any]:
    """Go's secrets merge: fields the importer leaves unset come from the import, `config`
    merges key by key, `generate` (by `key`) and `entries` (by `name`) gain missing items."""
    mine = dict(current) if isinstance(current, dict) else {}
    for name, value in imp.data["secrets"].items():
        here, at = mine.get(name), ("secrets", name)
        if name == "config" and isinstance(here, dict) and isinstance(value, dict):
            merged = dict(here)
            for key, item in value.items():
                if key not in merged:
                    merged[key] = item
                    _graft(positions, imp.positions, (*at, key), (*at, key))
            mine[name] = merged
        elif name in ("generate", "entries") and isinstance(value, list):
            ident = "key" if name == "generate" else "name"
            items = list(here) if isinstance(here, list) else []
            seen = {item.get(ident) for item in items if isinstance(item, dict)}
            for index, item in enumerate(value):
                item_id = item.get(ident) if isinstance(item, dict) else None
                if item_id is None or item_id not in seen:
                    seen.add(item_id)
                    _graft(positions, imp.positions, (*at, index), (*at, len(items)))
                    items.append(item)
            mine[name] = items
        elif here is None or here == "":
            mine[name] = value
            _graft(positions, imp.positions, at, at)
    return mine


def _syntax_error(exc: yaml.MarkedYAMLError, display: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, ComposerError) and "single document" in (exc.context or ""):
        return ConfigError("a config file must hold one YAML document (found a second '---')",
                           file=display, line=line)  # fmt: skip
    message = f"invalid YAML: {exc.problem or 'syntax error'}"
    if exc.context:
        where = exc.context_mark
        started = f" started at line {where.line + 1}" if where is not None else ""
        message += f" ({exc.context}{started})"
    return ConfigError(message, file=display, line=line)
