"""Generate the YAML step reference (docs/steps.md) from the step registry.

```
python -m treadle.steps.reference            # rewrite docs/steps.md
python -m treadle.steps.reference --check    # exit 1 if it is out of date
```

Everything above the marker line of docs/steps.md is hand-written and kept; everything below it
is generated from each step type's schema, documentation, outputs and example.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from treadle.steps.registry import FAMILIES, StepRegistry, StepType, default_registry

MARKER = "<!-- Generated from the step schemas by `python -m treadle.steps.reference`: " \
         "edit the step modules, not the text below. -->"  # fmt: skip

_TITLES = {"data": "Data", "http": "HTTP", "webhook": "Webhook", "db": "Database",
           "cache": "Cache",
           "messaging": "Messaging", "flow": "Flow control and durable waits",
           "statemachine": "State machine"}  # fmt: skip


def _type_of(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type")
    if kind is None:
        return "any"
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array" and isinstance(prop.get("items"), dict) and "type" in prop["items"]:
        return f"list of {prop['items']['type']}"
    return {"object": "mapping", "array": "list"}.get(str(kind), str(kind))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_step(spec: StepType) -> str:
    lines = [f"### `{spec.type}`", "", spec.doc, ""]
    if spec.kind == "flow":
        lines += ["*Runs in the workflow (durable waits, journaled sub-steps); top level only, "
                  "not inside step.foreach / step.parallel.*", ""]
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
    if spec.outputs:
        lines += ["Output: " + ", ".join(f"`{k}` ({_cell(v)})" for k, v in spec.outputs.items())
                  + ".", ""]  # fmt: skip
    else:
        lines += ["Output: nothing (an empty mapping).", ""]
    if spec.example:
        lines += ["```yaml", spec.example, "```", ""]
    return "\n".join(lines)


def render_reference(registry: StepRegistry = default_registry) -> str:
    """The generated part of docs/steps.md."""
    families: dict[str, list[StepType]] = {}
    for spec in registry:
        family = spec.impl.__module__.rsplit(".", 1)[-1]
        families.setdefault(family if family in FAMILIES else "other", []).append(spec)
    out = [MARKER, "", "## Step reference", ""]
    index = []
    for family in [*FAMILIES, "other"]:
        for spec in families.get(family, []):
            index.append(f"[`{spec.type}`](#{spec.type.replace('.', '')})")
    out += [" · ".join(index), ""]
    for family in [*FAMILIES, "other"]:
        if family not in families:
            continue
        out += [f"## {_TITLES.get(family, family.title())} steps", ""]
        out += [render_step(spec) for spec in families[family]]
    return "\n".join(out).rstrip() + "\n"


def regenerate(text: str, registry: StepRegistry = default_registry) -> str:
    """`text` (a steps.md) with its generated part replaced."""
    head = text.split(MARKER, 1)[0] if MARKER in text else text.rstrip() + "\n\n"
    return head + render_reference(registry)


def default_path() -> Path:
    return Path(__file__).resolve().parents[3] / "docs" / "steps.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", nargs="?", type=Path, default=default_path())
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    current = args.path.read_text() if args.path.exists() else ""
    fresh = regenerate(current)
    if args.check:
        if fresh != current:
            print(f"{args.path} is out of date: run python -m treadle.steps.reference",
                  file=sys.stderr)  # fmt: skip
            return 1
        return 0
    args.path.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
