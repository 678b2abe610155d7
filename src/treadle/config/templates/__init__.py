"""Templates and expressions for YAML pipelines, compatible with the Go seed project.

Two forms, usable together in one string (see docs/templates.md):

* Go text/template: `{{ .steps.fetch.id }}`, `{{ .name | lower }}`, `{{ if ... }}...{{ end }}`,
  `{{ index .steps "parse-request" "id" }}`, `{{ step "parse-request" "id" }}`;
* expr-lang: `${ steps["fetch"].id }`, `${ count > 5 && status == "ok" }`.

Both are parsed by hand-written tokenizers and recursive-descent parsers, compiled to closures
and cached by source text. Neither can reach Python attributes or call anything but the
registered function table.

Missing keys render as `<no value>` in `{{ }}` (Go's output with `missingkey=zero`) and as
the empty string in `${ }`; with `strict=True` they raise `TemplateError` naming the path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from treadle.errors import TemplateError

from ._common import truthy
from ._exec import Template
from ._expr import compile_expression

__all__ = ["check", "evaluate", "is_template", "render", "render_value", "truthy"]

_CACHE_SIZE = 4096


@lru_cache(maxsize=_CACHE_SIZE)
def _template(source: str) -> Template:
    return Template(source)


@lru_cache(maxsize=_CACHE_SIZE)
def _expression(source: str) -> Callable[[Mapping[str, Any], bool], Any]:
    return compile_expression(source)


def is_template(text: str) -> bool:
    """Whether `text` contains a `{{ }}` action or a `${ }` expression (and so needs rendering)."""
    return "{{" in text or "${" in text


def render(template: str, data: Mapping[str, Any], *, strict: bool = False) -> str:
    """Render `template` to text against `data` (the root: `steps`, `trigger`, context keys).

    Raises TemplateError on syntax errors, on runtime errors and, when `strict`, on
    missing keys.
    """
    if "{{" not in template and "${" not in template:
        return template
    return _template(template).render(data, strict)


def render_value(
    value: Any, data: Mapping[str, Any], *, strict: bool = False, native: bool = True
) -> Any:
    """Render every string inside `value` (dicts and lists are walked; keys are left alone).

    A string that is exactly one `{{ ... }}` action or one `${ ... }` block returns the native
    value (int, bool, dict, list, None for a missing key) instead of its text, so
    `count: "{{ .steps.scan.total }}"` stays a number. The Go project always produces
    strings; pass `native=False` for that behaviour. Errors name the path of the failing
    string (`body.items[2]`).
    """
    return _render_value(value, data, strict, native, "")


def _render_value(
    value: Any, data: Mapping[str, Any], strict: bool, native: bool, path: str
) -> Any:
    if isinstance(value, str):
        if "{{" not in value and "${" not in value:
            return value
        try:
            template = _template(value)
            return template.value(data, strict) if native else template.render(data, strict)
        except TemplateError as exc:
            if not path:
                raise
            raise TemplateError(f"{path}: {exc}") from exc
    if isinstance(value, Mapping):
        return {
            k: _render_value(v, data, strict, native, f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        items = [
            _render_value(v, data, strict, native, f"{path}[{i}]") for i, v in enumerate(value)
        ]
        return items if isinstance(value, list) else tuple(items)
    return value


def evaluate(expr: str, data: Mapping[str, Any], *, strict: bool = False) -> Any:
    """Evaluate a condition or expression (`skip_if`, `if`, step conditions).

    `expr` may be template text (`{{ eq .status "ok" }}`, `${ count > 1 }`), evaluated like
    `render_value` (one action gives its native value, mixed text gives a string), or a bare
    expression in the `${ }` language (`steps.check.ok && count > 1`). Blank input is None.
    Decide with `truthy(result)`, which applies the Go project's guard rule.
    """
    if not expr.strip():
        return None
    if "{{" in expr or "${" in expr:
        return _template(expr).value(data, strict)
    return _expression(expr)(data, strict)


def check(expr: str) -> None:
    """Parse `expr` as `evaluate` would, without evaluating it: TemplateError if malformed."""
    if "{{" in expr or "${" in expr:
        _template(expr)
    elif expr.strip():
        _expression(expr)
