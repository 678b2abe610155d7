"""The command behind `treadle test`: run test files, print the reports, return the exit code.

```python
raise SystemExit(main(["tests/", "-v"]))     # or from the CLI: treadle test tests/ -v
```
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from treadle.apptest.report import exit_code, render_reports
from treadle.apptest.runner import DEFAULT_TIMEOUT, discover, run_tests


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """`[-v] [--json] [--timeout SECONDS] FILE_OR_DIR...`; returns 0 if every test passed,
    1 if any failed, 2 on a usage error (no targets, no test files found)."""
    import argparse

    parser = argparse.ArgumentParser(prog="treadle test", description="Run *_test.yaml files.")
    parser.add_argument("targets", nargs="*", help="test files or directories of *_test.yaml")
    parser.add_argument("-v", "--verbose", action="store_true", help="descriptions and notes")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds a trigger may take")  # fmt: skip
    args = parser.parse_args(argv)
    stream = out or sys.stdout
    if not args.targets:
        print("treadle test: at least one file or directory is required", file=stream)
        return 2
    if not discover(args.targets):
        print("No *_test.yaml files found.", file=stream)
        return 2
    reports = run_tests(args.targets, timeout=args.timeout)
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2), file=stream)
    else:
        print(render_reports(reports, verbose=args.verbose), file=stream)
    return exit_code(reports)


__all__ = ["main"]
