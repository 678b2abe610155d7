"""`${VAR}` environment references in config values — the Go engine's rules, plus defaults.

What the Go project (`GoCodeAlone/workflow`) does, and so what we do:

* Expansion runs on parsed string *values*, never on the YAML text and never on keys, so a
  value keeps its YAML type (`port: ${PORT}` is the string `"8080"`, as in Go).
* Only the braced form is a reference: `${NAME}` and `${env:NAME}`. A bare `$NAME` is left
  alone (shell commands, jq programs and `${{ .total }}` templates stay intact).
* A name is looked up as written, then the way Go's env provider spells it: upper case with
  dots as underscores (`${db.password}` reads `DB_PASSWORD`).
* A reference to an unset variable is left as written, `${NAME}` included, and reported to
  the caller (the Go engine silently keeps the original value).
* Anything else between `${` and `}` — `${ expr }` with spaces, `${vault:path#key}` secret
  references — is not an environment reference and is left untouched for the layer that
  owns it (the Go engine resolves `${scheme:key}` through secret providers).

Treadle additions, which the seed documentation promises but the Go resolver lacks:

* `${NAME:-default}` uses `default` when NAME is unset or empty. The default is literal text
  (no nested references, no `}`).
* `$${...}` is an escape for a literal `${...}`.

>>> expand_env("addr=:${PORT:-8080}", {})
'addr=:8080'
>>> expand_env("${HOST}/x and $HOME and $${HOST}", {"HOST": "h"})
'h/x and $HOME and ${HOST}'
>>> expand_env_report("${A}-${B}", {"A": "1"})
('1-${B}', ('B',))
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from treadle.config.model import KeyPath

_REF = re.compile(r"\$(\$)?\{([^}]*)\}")
_NAME = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_.]*)(?::-(.*))?", re.DOTALL)


def lookup_env(name: str, env: Mapping[str, str]) -> str | None:
    """The value of `name` in `env`: as written, else Go's spelling (upper, `.` → `_`)."""
    value = env.get(name)
    if value is None:
        value = env.get(name.upper().replace(".", "_"))
    return value


def expand_env_report(
    text: str, env: Mapping[str, str] | None = None
) -> tuple[str, tuple[str, ...]]:
    """Expand references in `text`; return the result and the names that were not set."""
    source = os.environ if env is None else env
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        escaped, inner = match.group(1), match.group(2)
        if escaped:
            return "${" + inner + "}"
        ref = _NAME.fullmatch(inner)
        if ref is None:
            return match.group(0)
        name, default = ref.group(1), ref.group(2)
        value = lookup_env(name, source)
        if default is not None and not value:
            return default
        if value is None:
            missing.append(name)
            return match.group(0)
        return value

    if "${" not in text:
        return text, ()
    return _REF.sub(replace, text), tuple(missing)


def expand_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """Expand references in `text`; unset variables without a default stay as written."""
    return expand_env_report(text, env)[0]


def expand_env_tree(
    value: Any, env: Mapping[str, str] | None = None
) -> tuple[Any, list[tuple[KeyPath, str]]]:
    """Expand every string value inside nested dicts and lists (keys are left alone).

    Returns a new tree (the input is not modified) and, for each reference to an unset
    variable, its path relative to `value` and the variable's name. A container that occurs
    several times (a YAML alias) is expanded once and shared, so alias bombs stay cheap.
    """
    source = os.environ if env is None else env
    missing: list[tuple[KeyPath, str]] = []
    done: dict[int, Any] = {}  # containers shared through YAML aliases are expanded once

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, str):
            out, names = expand_env_report(node, source)
            missing.extend((path, name) for name in names)
            return out
        if not isinstance(node, dict | list):
            return node
        if id(node) not in done:
            if isinstance(node, dict):
                done[id(node)] = {k: walk(v, (*path, k)) for k, v in node.items()}
            else:
                done[id(node)] = [walk(v, (*path, i)) for i, v in enumerate(node)]
        return done[id(node)]

    return walk(value, ()), missing
