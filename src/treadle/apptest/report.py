"""Results of `treadle test` and their text rendering (the Go `wfctl test` layout).

```
orders_test.yaml
  PASS create-order                              4ms
  FAIL reject-empty                              2ms
       [0] output["status"]: want "rejected", got "accepted"
             expected: "rejected"
             actual:   "accepted"
--- orders_test.yaml: 1 passed, 1 failed
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
"""Stands for a value that is absent (a key not in the output)."""
_MISSING = MISSING


def show(value: Any) -> str:
    """A value as failures print it: JSON (a missing value is `<missing>`)."""
    if value is _MISSING:
        return "<missing>"
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check: where (`label`: which assertion; `path`: what was compared), the
    expected and the actual value (when the check compares values) and a one-line message."""

    label: str
    path: str
    message: str
    expected: Any = _MISSING
    actual: Any = _MISSING

    @property
    def compares(self) -> bool:
        return self.expected is not _MISSING or self.actual is not _MISSING

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "path": self.path, "message": self.message}
        if self.compares:
            out["expected"] = None if self.expected is _MISSING else self.expected
            out["actual"] = None if self.actual is _MISSING else self.actual
        return out

    def __str__(self) -> str:
        return f"{self.label} {self.message}" if self.label else self.message


@dataclass(slots=True)
class CaseResult:
    """The outcome of one test case."""

    name: str
    description: str = ""
    failures: list[Failure] = field(default_factory=list)
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)
    """Remarks that do not fail the test (an unused mock, an ignored Go-only key)."""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "passed": self.passed,
                "duration_ms": round(self.duration * 1000, 3),
                "failures": [f.to_json() for f in self.failures], "notes": list(self.notes)}


@dataclass(slots=True)
class TestReport:
    """The outcome of one test file. `error` is set when the file itself could not be used
    (then every case, if any could be read, failed with it)."""

    __test__ = False

    path: Path
    cases: list[CaseResult] = field(default_factory=list)
    error: str = ""
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.passed) + (1 if self.error and not self.cases
                                                              else 0)  # fmt: skip

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def case(self, name: str) -> CaseResult:
        """The result of test `name` (KeyError if the file has none)."""
        for result in self.cases:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.path), "passed": self.passed, "failed": self.failed,
                "error": self.error or None, "duration_ms": round(self.duration * 1000, 3),
                "cases": [c.to_json() for c in self.cases], "notes": list(self.notes)}


def exit_code(reports: Iterable[TestReport]) -> int:
    """0 when every test of every file passed, else 1."""
    return 0 if all(r.ok for r in reports) else 1


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.0f}ms" if ms >= 1 else f"{ms:.1f}ms"


def render_report(report: TestReport, *, verbose: bool = False) -> str:
    """The text of one file's results: a line per test, failures under it (path, expected,
    actual), a summary line."""
    lines = [report.path.name]
    if report.error:
        lines.append(f"  error: {report.error}".replace("\n", "\n         "))
    for note in report.notes:
        lines.append(f"  note: {note}")
    for case in report.cases:
        status = "PASS" if case.passed else "FAIL"
        lines.append(f"  {status} {case.name:<40} {_ms(case.duration)}")
        if verbose and case.description:
            lines.append(f"       {case.description}")
        for failure in case.failures:
            lines.append(f"       {failure}".replace("\n", "\n         "))
            if failure.compares:
                lines.append(f"         expected: {show(failure.expected)}")
                lines.append(f"         actual:   {show(failure.actual)}")
        if verbose or not case.passed:
            lines.extend(f"       note: {note}" for note in case.notes)
    if not report.cases and not report.error:
        lines.append("  no tests")
    lines.append(f"--- {report.path.name}: {report.passed} passed, {report.failed} failed")
    return "\n".join(lines)


def render_reports(reports: Iterable[TestReport], *, verbose: bool = False) -> str:
    """Every file's results, then a total when there are several files."""
    reports = list(reports)
    parts = [render_report(r, verbose=verbose) for r in reports]
    if len(reports) > 1:
        passed = sum(r.passed for r in reports)
        failed = sum(r.failed for r in reports)
        parts.append(f"--- Summary ---\n  {passed} passed, {failed} failed")
    return "\n\n".join(parts)


__all__ = [
    "MISSING",
    "CaseResult",
    "Failure",
    "TestReport",
    "exit_code",
    "render_report",
    "render_reports",
    "show",
]
