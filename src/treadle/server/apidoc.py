"""Render the control plane's OpenAPI document as Markdown (`docs/api.md`).

    python -m treadle.server.apidoc            # rewrite docs/api.md
    python -m treadle.server.apidoc --check    # exit 1 when docs/api.md is stale
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HEADER = """# HTTP API reference

Generated from `/openapi.json` by `python -m treadle.server.apidoc`; do not edit by hand.
`docs/server.md` explains how to serve it, with examples. Each operation says what it needs
of the caller (`x-permission` in the document); a server started without instance keys
treats a request without credentials as an instance admin.

"""


WHO = {  # an operation's `x-permission`, for people
    "public": "Open to anyone: no credentials.",
    "authenticated": "Any caller with valid credentials.",
    "read": "Needs the `read` permission: roles viewer, editor, admin, owner.",
    "write": "Needs the `write` permission: roles editor, admin, owner.",
    "admin": "Needs the `admin` permission: roles admin, owner.",
    "instance": "Instance admins only (an instance key): refused (403) to every tenant's "
                "users and keys.",
}


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "null":
        return "null"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    return str(kind or "any JSON")


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}.** " + _cell(op.get("description")), ""]
    permission = op.get("x-permission")
    if permission in WHO:
        lines += [WHO[permission], ""]
    elif op.get("security"):
        lines += ["Needs an API key when the server has keys.", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            about = p.get("description") or p.get("schema", {}).get("description")
            lines.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                         f"{'yes' if p.get('required') else 'no'} | {_cell(about)} |")
        lines.append("")
    body = op.get("requestBody")
    if body:
        schema = body.get("content", {}).get("application/json", {}).get("schema", {})
        required = "required" if body.get("required") else "optional"
        lines += [f"Body ({required}): {_type(schema)}", ""]
    responses = op.get("responses", {})
    lines += ["Responses: " + ", ".join(
        f"{code} {_response(r)}" for code, r in sorted(responses.items())), ""]
    return lines


def _response(response: dict[str, Any]) -> str:
    content = response.get("content", {})
    for media, spec in content.items():
        schema = spec.get("schema")
        if schema:
            return _type(schema)
        return f"`{media}`"
    return _cell(response.get("description"))


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### `{name}`", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    props = schema.get("properties", {})
    if props:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        for field, spec in props.items():
            lines.append(f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'}"
                         f" | {_cell(spec.get('description'))} |")
        lines.append("")
    return lines


def render(spec: dict[str, Any]) -> str:
    """Markdown for an OpenAPI document."""
    lines = [HEADER.rstrip("\n"), "", _cell(spec["info"].get("description")), ""]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((path, method, op))
    for tag, ops in by_tag.items():
        lines += [f"## {tag.capitalize()}", ""]
        for path, method, op in ops:
            lines += _operation(path, method, op)
    lines += ["## Schemas", ""]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip("\n") + "\n"


def current() -> str:
    """`docs/api.md` as it should be for the code as it is."""
    from treadle.engine import Engine, Registry
    from treadle.server.app import create_app

    return render(create_app(Engine(registry=Registry())).openapi())


def main(argv: list[str]) -> int:
    target = Path(__file__).resolve().parents[3] / "docs" / "api.md"
    text = current()
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run python -m treadle.server.apidoc", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
