"""The `treadle` command line (typer + rich, from the `cli` extra).

Only `main` lives here, so that `import treadle` never imports typer; the application and its
commands are built when the CLI starts (see `treadle.cli.app`).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exits 1 with the cause chain on errors, 2 on usage errors."""
    from treadle.cli.entry import run

    run(argv)
