"""`treadle test`: declarative tests of YAML applications, in the `*_test.yaml` format of the Go
project's `wfctl test` (inline or referenced config, mocks by step type or name, pipeline and
HTTP triggers, assertions on outputs, step outputs, executed steps and HTTP responses).

```python
from treadle.apptest import run_test_file, render_report, exit_code

report = run_test_file("orders_test.yaml")
print(render_report(report))
raise SystemExit(exit_code([report]))
```

See docs/testing-yaml.md.
"""

from treadle.apptest.assertions import TriggerResult
from treadle.apptest.cli import main
from treadle.apptest.model import TestFileError, load_test_file
from treadle.apptest.report import (
    CaseResult,
    Failure,
    TestReport,
    exit_code,
    render_report,
    render_reports,
)
from treadle.apptest.runner import (
    discover,
    run_test_file,
    run_test_file_async,
    run_tests,
)

__all__ = [
    "CaseResult",
    "Failure",
    "TestFileError",
    "TestReport",
    "TriggerResult",
    "discover",
    "exit_code",
    "load_test_file",
    "main",
    "render_report",
    "render_reports",
    "run_test_file",
    "run_test_file_async",
    "run_tests",
]
