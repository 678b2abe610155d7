"""Starting the CLI: check the extra is installed, run the app, report errors (exit 1).

`TREADLE_DEBUG=1` prints the full traceback of an error as well.
"""

from __future__ import annotations

import os
import sys
import traceback

from treadle.errors import MissingExtraError

_CLI_EXTRA = ("typer", "rich", "click")


def run(argv: list[str] | None = None) -> None:
    try:
        from treadle.cli.app import build_app
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _CLI_EXTRA:
            raise
        sys.stderr.write(f"error: {MissingExtraError('cli', exc.name or 'typer')}\n")
        raise SystemExit(1) from None
    from treadle.cli.errors import error_lines
    from treadle.cli.session import Interrupted

    try:
        build_app()(args=argv, prog_name="treadle")
    except Interrupted as stop:
        sys.stderr.write(f"interrupted ({stop}); executions running here stay resumable\n")
        raise SystemExit(stop.exit_code) from None
    except Exception as exc:
        if os.environ.get("TREADLE_DEBUG", "").lower() in ("1", "true", "yes"):
            traceback.print_exc()
        sys.stderr.write("\n".join(error_lines(exc)) + "\n")
        sys.stderr.flush()
        raise SystemExit(1) from None
