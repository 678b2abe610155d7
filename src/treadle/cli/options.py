"""Options shared by several commands, each with its environment-variable twin.

A command declares `store: StoreOption = DEFAULT_STORE`; the env var (`TREADLE_STORE`) is
read when the option is not given. Commands that can also talk to a server take
`server: ServerOption = None` and `api_key: ApiKeyOption = None` (`TREADLE_SERVER`,
`TREADLE_API_KEY`); the key's value is never shown, not even in `--help`. Values that are
JSON (`--input`, `--payload`) accept `@path.json` to read a file and `@-` to read standard
input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_STORE = "sqlite:///./.treadle/treadle.db"

StoreOption = Annotated[str, typer.Option(
    "--store", envvar="TREADLE_STORE", metavar="URL",
    help="Store URL: sqlite:///path.db, memory://, postgresql://…, redis://…",
)]
JsonOption = Annotated[bool, typer.Option(
    "--json", envvar="TREADLE_JSON", help="Print machine-readable JSON instead of tables.",
)]
ImportOption = Annotated[list[str] | None, typer.Option(
    "--import", "-i", envvar="TREADLE_IMPORT", metavar="MODULE",
    help="Import MODULE (or path/to/file.py) so its workflows can run here; repeatable "
    "(the env var takes a space-separated list).",
)]
ServerOption = Annotated[str | None, typer.Option(
    "--server", envvar="TREADLE_SERVER", metavar="URL", show_default=False,
    help="Ask the Treadle server at URL (e.g. http://127.0.0.1:8080, from `treadle serve`) "
    "instead of opening --store.",
)]
ApiKeyOption = Annotated[str | None, typer.Option(
    "--api-key", envvar="TREADLE_API_KEY", metavar="KEY", show_default=False,
    help="The server's API key, sent as `Authorization: Bearer`. Prefer the env var: a "
    "command line is visible to other users.",
)]
IdArgument = Annotated[str, typer.Argument(
    metavar="ID", help="The execution id.", show_default=False,
)]
PipelineArgument = Annotated[str, typer.Argument(
    metavar="PIPELINE", show_default=False,
    help="A YAML pipeline's name (its workflow is pipeline:NAME) or a code workflow's name.",
)]


def read_json(text: str, option: str) -> Any:
    """Parse an option's JSON value (`@file.json` or `@-` reads it); a bad one is a usage error."""
    source = "the value"
    if text.startswith("@"):
        name = text[1:]
        source = "standard input" if name == "-" else name
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {name}: {exc.strerror}",
                                     param_hint=option) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "quote strings as JSON, e.g. --input '\"text\"'",
            param_hint=option,
        ) from exc
