"""The `treadle` application: a root command with one module per command (group).

Adding a command: write `treadle/cli/<name>.py` with `register(app: typer.Typer) -> None`
(which calls `app.command(...)` or `app.add_typer(...)`), and add its module to `COMMANDS`.
Modules import only when the CLI starts, so `import treadle` never loads typer.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Protocol, cast

import typer

import treadle

COMMANDS: tuple[str, ...] = (
    "treadle.cli.run",          # treadle run MODULE:WORKFLOW
    "treadle.cli.executions",   # treadle executions list|show|events|timeline|replay|diff|
                                #   signal|cancel|resume|prune
    "treadle.cli.dlq",          # treadle dlq list|show|replay|replay-all|discard|prune
    "treadle.cli.breakpoints",  # treadle breakpoints set|list|remove|inspect|resume|skip|abort
    "treadle.cli.worker",       # treadle worker --queue Q --concurrency N --import M
    "treadle.cli.db",           # treadle db upgrade
    "treadle.cli.serve",        # treadle serve [CONFIG.yaml]
    "treadle.cli.validate",     # treadle validate APP.yaml [--schema]
    "treadle.cli.test",         # treadle test APP_test.yaml
)


class CommandModule(Protocol):
    def register(self, app: typer.Typer) -> None: ...


def _version(value: bool) -> None:
    if value:
        typer.echo(f"treadle {treadle.__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    """Treadle: durable, observable workflows.

    Every option can also be set by its environment variable (shown in each command's help),
    e.g. TREADLE_STORE for --store.
    """


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="treadle", no_args_is_help=True, add_completion=False,
        pretty_exceptions_enable=False, rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    )
    app.callback()(_root)
    for name in COMMANDS:
        cast(CommandModule, importlib.import_module(name)).register(app)
    return app
