"""The `*_test.yaml` format of the Go project's `wfctl test` / `wftest`, read into value objects.

```yaml
config: app.yaml            # or  yaml: |  (the application inline)
mocks:
  steps:
    step.db_query: {rows: [], count: 0}        # by step type (Go) or by step name (Treadle)
tests:
  greet-alice:
    description: "greet pipeline sets message"
    trigger: {type: pipeline, name: greet, data: {name: alice}}
    stop_after: set_msg
    mocks: {steps: {...}}                      # per test, over the file's
    assertions:
      - output: {message: "hello alice"}
      - step: set_msg
        output: {message: "hello alice"}
      - step: notify
        executed: false
      - response: {status: 200, body: "alice"}
      - compensated: [refund, release]         # Treadle: the saga's undo steps, in order
  sequence-case:
    sequence:
      - name: create
        pipeline: create-order                 # shorthand for a pipeline trigger
        assertions: [...]
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from treadle.errors import TreadleError


class TestFileError(TreadleError):
    """The test file cannot be read or is malformed."""

    __test__ = False
    retryable = False


@dataclass(frozen=True, slots=True)
class ResponseAssert:
    status: int = 0
    """Expected HTTP status (0: not checked)."""
    body: str = ""
    """A substring expected in the body (empty: not checked)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Treadle: expected header values (names case-insensitive)."""


@dataclass(frozen=True, slots=True)
class Assertion:
    """One check of a trigger's result."""

    step: str = ""
    output: dict[str, Any] | None = None
    executed: bool | None = None
    response: ResponseAssert | None = None
    state: dict[str, Any] | None = None
    """Go's state-store assertion: `{store: {key: expected}}` (`treadle.apptest.state`)."""
    compensated: tuple[str, ...] | None = None
    """Treadle: the steps the saga ran while compensating, in order (None: not checked)."""


@dataclass(frozen=True, slots=True)
class TriggerDef:
    type: str = ""
    name: str = ""
    data: dict[str, Any] | None = None
    method: str = ""
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SequenceStep:
    name: str = ""
    pipeline: str = ""
    trigger: TriggerDef = field(default_factory=TriggerDef)
    assertions: tuple[Assertion, ...] = ()


@dataclass(frozen=True, slots=True)
class TestCase:
    __test__ = False

    name: str
    description: str = ""
    trigger: TriggerDef = field(default_factory=TriggerDef)
    stop_after: str = ""
    mocks: dict[str, dict[str, Any]] | None = None
    assertions: tuple[Assertion, ...] = ()
    sequence: tuple[SequenceStep, ...] = ()
    state: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TestFile:
    __test__ = False

    path: Path
    config: Path | None = None
    yaml: str = ""
    mocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    tests: tuple[TestCase, ...] = ()
    notes: tuple[str, ...] = ()


def _map(raw: Any, what: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise TestFileError(f"{what} must be a mapping")
    return {str(k): v for k, v in raw.items()}


def _text(raw: Mapping[str, Any], key: str, what: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TestFileError(f"{what}.{key} must be a string")
    return str(value)


def _mocks(raw: Any, what: str) -> dict[str, dict[str, Any]]:
    steps = _map(_map(raw, what).get("steps"), f"{what}.steps")
    out: dict[str, dict[str, Any]] = {}
    for key, output in steps.items():
        out[key] = _map(output, f"{what}.steps.{key}")
    return out


def _trigger(raw: Any, what: str) -> TriggerDef:
    body = _map(raw, what)
    data = body.get("data")
    if data is not None and not isinstance(data, Mapping):
        raise TestFileError(f"{what}.data must be a mapping")
    headers = {str(k): str(v) for k, v in _map(body.get("headers"), f"{what}.headers").items()}
    return TriggerDef(_text(body, "type", what), _text(body, "name", what),
                      None if data is None else dict(data), _text(body, "method", what),
                      _text(body, "path", what), headers)  # fmt: skip


def _assertion(raw: Any, what: str) -> Assertion:
    body = _map(raw, what)
    executed = body.get("executed")
    if executed is not None and not isinstance(executed, bool):
        raise TestFileError(f"{what}.executed must be true or false")
    output = body.get("output")
    if output is not None:
        output = _map(output, f"{what}.output")
    response = None
    if body.get("response") is not None:
        resp = _map(body["response"], f"{what}.response")
        status = resp.get("status", 0)
        if isinstance(status, bool) or not isinstance(status, int):
            raise TestFileError(f"{what}.response.status must be an integer")
        headers = {str(k): str(v)
                   for k, v in _map(resp.get("headers"), f"{what}.response.headers").items()}
        response = ResponseAssert(status, _text(resp, "body", f"{what}.response"), headers)
    state = body.get("state")
    compensated = body.get("compensated")
    if compensated is not None and (not isinstance(compensated, list) or not all(
            isinstance(name, str) for name in compensated)):
        raise TestFileError(f"{what}.compensated must be a list of step names")
    return Assertion(_text(body, "step", what), output, executed, response,
                     None if state is None else _map(state, f"{what}.state"),
                     None if compensated is None else tuple(compensated))  # fmt: skip


def _assertions(raw: Any, what: str) -> tuple[Assertion, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TestFileError(f"{what} must be a list")
    return tuple(_assertion(a, f"{what}[{i}]") for i, a in enumerate(raw))


def _case(name: str, raw: Any) -> TestCase:
    what = f"tests.{name}"
    body = _map(raw, what)
    sequence: list[SequenceStep] = []
    raw_seq = body.get("sequence") or []
    if not isinstance(raw_seq, list):
        raise TestFileError(f"{what}.sequence must be a list")
    for i, item in enumerate(raw_seq):
        swhat = f"{what}.sequence[{i}]"
        step = _map(item, swhat)
        sequence.append(SequenceStep(_text(step, "name", swhat), _text(step, "pipeline", swhat),
                                     _trigger(step.get("trigger"), f"{swhat}.trigger"),
                                     _assertions(step.get("assertions"),
                                                 f"{swhat}.assertions")))  # fmt: skip
    mocks = None if body.get("mocks") is None else _mocks(body["mocks"], f"{what}.mocks")
    state = body.get("state")
    return TestCase(
        name=name, description=_text(body, "description", what),
        trigger=_trigger(body.get("trigger"), f"{what}.trigger"),
        stop_after=_text(body, "stop_after", what), mocks=mocks,
        assertions=_assertions(body.get("assertions"), f"{what}.assertions"),
        sequence=tuple(sequence), state=None if state is None else _map(state, f"{what}.state"),
    )


def parse_test_file(path: str | Path, raw: Any) -> TestFile:
    """A `TestFile` from the parsed YAML of `path` (`config:` resolved against its folder)."""
    where = Path(path)
    body = _map(raw, "the test file")
    config = _text(body, "config", "the test file")
    inline = body.get("yaml")
    if inline is not None and not isinstance(inline, str | Mapping):
        raise TestFileError("yaml must be the application's YAML text")
    if isinstance(inline, Mapping):
        import yaml as pyyaml

        inline = pyyaml.safe_dump(dict(inline), sort_keys=False)
    notes = []
    if body.get("plugin_dir"):
        notes.append("plugin_dir is a Go feature: ignored")
    tests = _map(body.get("tests"), "tests")
    return TestFile(
        path=where,
        config=None if not config else (where.parent / config),
        yaml=inline or "",
        mocks=_mocks(body.get("mocks"), "mocks"),
        tests=tuple(_case(name, case) for name, case in tests.items()),
        notes=tuple(notes),
    )


@cache
def _go_loader() -> Any:
    """A PyYAML loader typing scalars as Go's yaml.v3 does into `any`: YAML 1.2 booleans
    (`yes` stays a string), Go integer literals, no timestamps (dates stay strings)."""
    import re

    import yaml as pyyaml

    class GoLoader(pyyaml.SafeLoader):
        def construct_yaml_int(self, node: Any) -> int:
            plain = str(self.construct_scalar(node)).replace("_", "")
            sign = -1 if plain.startswith("-") else 1
            digits = plain.lstrip("+-")
            if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
                return sign * int(digits, 8)
            return sign * int(digits, 0)

    GoLoader.yaml_implicit_resolvers = {}  # none of YAML 1.1's: only those below
    add = GoLoader.add_implicit_resolver
    add("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"))
    add("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), [*"~nN", ""])
    add("tag:yaml.org,2002:int", re.compile(
        r"^[-+]?(?:0[bB][01_]+|0[oO][0-7_]+|0[xX][0-9a-fA-F_]+|0[0-7_]*|[1-9][0-9_]*)$"),
        list("-+0123456789"))
    add("tag:yaml.org,2002:float", re.compile(
        r"^(?:[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9_]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+.0123456789"))
    add("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])
    GoLoader.add_constructor("tag:yaml.org,2002:int", GoLoader.construct_yaml_int)
    return GoLoader


def load_test_file(path: str | Path) -> TestFile:
    """Read and parse a `*_test.yaml` file; `TestFileError` if it is malformed."""
    from treadle.errors import require

    pyyaml = require("yaml", "config")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TestFileError(f"read: {exc}") from exc
    try:
        raw = pyyaml.load(text, Loader=_go_loader())  # a SafeLoader subclass
    except pyyaml.YAMLError as exc:
        raise TestFileError(f"parse: {exc}") from exc
    return parse_test_file(path, raw)


__all__ = [
    "Assertion",
    "ResponseAssert",
    "SequenceStep",
    "TestCase",
    "TestFile",
    "TestFileError",
    "TriggerDef",
    "load_test_file",
    "parse_test_file",
]
