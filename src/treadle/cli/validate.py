"""`treadle validate APP.yaml`: every problem of a configuration at once, with file:line [key]."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(
    config: Annotated[list[Path] | None, typer.Argument(
        dir_okay=False, help="YAML applications to check.", show_default=False)] = None,
    schema: Annotated[bool, typer.Option(
        "--schema", help="Print the JSON Schema of the config format (for editors) and exit.",
    )] = False,
    strict_env: Annotated[bool, typer.Option(
        "--strict-env", envvar="TREADLE_STRICT_ENV",
        help="An unset ${VAR} without a default is an error, not a warning.")] = False,
) -> None:
    """Validate configurations: schema, ${VAR} expansion, imports, references, module and step
    types. Prints every error and warning; exits 1 if any file has an error.
    """
    from treadle.config.schema import config_schema
    from treadle.config.validate import validate_report

    if schema:
        typer.echo(json.dumps(config_schema(), indent=2))
        return
    if not config:
        raise typer.BadParameter("give at least one APP.yaml (or --schema)", param_hint="CONFIG")
    failed = False
    for path in config:
        report = validate_report(path, strict_env=strict_env)
        for warning in report.warnings:
            typer.echo(f"warning: {warning}", err=True)
        for error in report.errors:
            typer.echo(f"error: {error}", err=True)
        if report.ok:
            typer.echo(f"{path}: ok" + (f" ({len(report.warnings)} warnings)"
                                        if report.warnings else ""))
        else:
            failed = True
            typer.echo(f"{path}: {len(report.errors)} errors", err=True)
    if failed:
        raise typer.Exit(1)
