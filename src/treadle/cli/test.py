"""`treadle test APP_test.yaml…`: run declarative config tests (the `wfctl test` format)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("test")(test)


def test(
    targets: Annotated[list[Path], typer.Argument(
        help="*_test.yaml files, or folders holding them.", show_default=False)],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Descriptions and notes.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", envvar="TREADLE_JSON",
                                          help="Machine-readable results.")] = False,
    timeout: Annotated[float | None, typer.Option(
        envvar="TREADLE_TEST_TIMEOUT", help="Seconds a trigger may take.")] = None,
) -> None:
    """Run config tests: mocks by step type or name, pipeline and HTTP triggers, assertions on
    outputs, step outputs, executed steps and HTTP responses. Exits 1 if a test fails.
    """
    from treadle.apptest import main

    argv = [str(t) for t in targets]
    if verbose:
        argv.append("--verbose")
    if as_json:
        argv.append("--json")
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    raise typer.Exit(main(argv))
