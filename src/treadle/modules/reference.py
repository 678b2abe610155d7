"""Generate the module reference (docs/modules.md) from the module registry.

```
python -m treadle.modules.reference            # rewrite docs/modules.md
python -m treadle.modules.reference --check    # exit 1 if it is out of date
```

Everything above the marker line of docs/modules.md is hand-written and kept; everything
below it is generated from each module type's schema, documentation and example.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from treadle.modules.registry import GO_ONLY_TYPES, ModuleRegistry, ModuleType, default_registry

MARKER = "<!-- Generated from the module schemas by `python -m treadle.modules.reference`: " \
         "edit the module code, not the text below. -->"  # fmt: skip

_CATEGORIES = {"http": "HTTP", "middleware": "Middleware", "auth": "Authentication",
               "database": "Databases", "storage": "Storage", "messaging": "Messaging",
               "integration": "Integration", "infrastructure": "Infrastructure",
               "observability": "Observability", "scheduling": "Scheduling"}  # fmt: skip


def _type_of(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_of(p) for p in prop["anyOf"])
    kind = prop.get("type")
    if kind is None:
        return "any"
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array" and isinstance(prop.get("items"), dict) and "type" in prop["items"]:
        return f"list of {prop['items']['type']}"
    return {"object": "mapping", "array": "list", "number": "number"}.get(str(kind), str(kind))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_module(spec: ModuleType) -> str:
    lines = [f"### `{spec.type}`", "", spec.doc, ""]
    if spec.provides:
        lines += ["Provides: " + ", ".join(f"`{p}`" for p in sorted(spec.provides)) + ".", ""]
    props: dict[str, Any] = spec.schema.get("properties", {})
    required = set(spec.schema.get("required", ()))
    if props:
        lines += ["| key | type | required | default | description |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for key, prop in props.items():
            default = f"`{prop['default']}`" if "default" in prop else ""
            lines.append(f"| `{key}` | {_type_of(prop)} | {'yes' if key in required else ''} "
                         f"| {_cell(default)} | {_cell(str(prop.get('description', '')))} |")
        lines.append("")
    else:
        lines += ["No configuration keys.", ""]
    if spec.aliases:
        lines += ["Also accepted: " + ", ".join(f"`{a}` for `{c}`" for a, c in spec.aliases)
                  + ".", ""]  # fmt: skip
    if spec.example:
        lines += ["```yaml", "modules:", *("  " + line for line in spec.example.splitlines()),
                  "```", ""]  # fmt: skip
    return "\n".join(lines)


def render_reference(registry: ModuleRegistry = default_registry) -> str:
    """The generated part of docs/modules.md."""
    groups: dict[str, list[ModuleType]] = {}
    for spec in registry:
        groups.setdefault(spec.category, []).append(spec)
    order = [c for c in _CATEGORIES if c in groups] + sorted(set(groups) - set(_CATEGORIES))
    out = [MARKER, "", "## Module reference", ""]
    out += [" · ".join(f"[`{s.type}`](#{s.type.replace('.', '')})"
                       for c in order for s in groups[c]), ""]  # fmt: skip
    for category in order:
        out += [f"## {_CATEGORIES.get(category, category.title())}", ""]
        out += [render_module(spec) for spec in groups[category]]
    unsupported = sorted(GO_ONLY_TYPES - set(registry.types()))
    out += ["## Not supported", "",
            "Module types of GoCodeAlone/workflow that Treadle does not implement; a config using "
            "them fails validation with `module type '…' of GoCodeAlone/workflow is not "
            "supported by Treadle`:", "", ", ".join(f"`{t}`" for t in unsupported), ""]
    return "\n".join(out).rstrip() + "\n"


def regenerate(text: str, registry: ModuleRegistry = default_registry) -> str:
    """`text` (a modules.md) with its generated part replaced."""
    head = text.split(MARKER, 1)[0] if MARKER in text else text.rstrip() + "\n\n"
    return head + render_reference(registry)


def default_path() -> Path:
    return Path(__file__).resolve().parents[3] / "docs" / "modules.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", nargs="?", type=Path, default=default_path())
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    current = args.path.read_text() if args.path.exists() else ""
    fresh = regenerate(current)
    if args.check:
        if fresh != current:
            print(f"{args.path} is out of date: run python -m treadle.modules.reference",
                  file=sys.stderr)  # fmt: skip
            return 1
        return 0
    args.path.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
