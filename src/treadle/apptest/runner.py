"""Running `*_test.yaml` files: a fresh application per test case, triggers, assertions.

Every test case gets its own memory engine (fake clock: durable sleeps take no time), its own
modules and state machines (memory stores), so cases never see each other; the steps of a
`sequence` share one. Mocks replace steps: a mock key that is a step type replaces every step
of that type (the Go rule), one that is a step name replaces that step (Treadle; a name wins
over a type). A mocked step returns a copy of its mock output without rendering its config.

HTTP triggers go through the serving layer (`treadle.apps.build_app`: routers, middleware,
the HTTP trigger's rules) when it is installed, else straight to the route's pipeline.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treadle.apptest.assertions import TriggerResult, check
from treadle.apptest.model import (
    Assertion,
    TestCase,
    TestFile,
    TestFileError,
    TriggerDef,
    load_test_file,
)
from treadle.apptest.report import CaseResult, Failure, TestReport
from treadle.apptest.state import StateStores
from treadle.errors import ConfigError, ExecutionCancelledError, ExecutionFailedError

if TYPE_CHECKING:
    from treadle.config.model import AppConfig
    from treadle.engine import Engine
    from treadle.journal import Execution
    from treadle.pipelines import Application
    from treadle.pipelines._plan import StepPlan

DEFAULT_TIMEOUT = 30.0
"""Seconds a trigger may take before the test fails (a pipeline waiting for a signal...)."""

_HTTP_METHODS = {"http": "", "http.get": "GET", "get": "GET", "http.post": "POST",
                 "post": "POST", "http.put": "PUT", "put": "PUT", "http.patch": "PATCH",
                 "patch": "PATCH", "http.delete": "DELETE", "delete": "DELETE",
                 "http.head": "HEAD", "head": "HEAD"}  # fmt: skip
_EXECUTION_HEADER = "x-treadle-execution-id"


class TriggerError(Exception):
    """The trigger could not be fired (no name, unknown step in stop_after, ...)."""


def _constant(output: Mapping[str, Any]) -> Any:
    async def impl(config: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return copy.deepcopy(dict(output))

    return impl


def _plans(application: Application) -> Iterable[StepPlan]:
    for pipeline in application.pipelines.values():
        for plan in (*pipeline.plan.steps, *pipeline.plan.compensation):
            yield plan
            if plan.compensate is not None:
                yield plan.compensate


def _substeps(config: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """`(name, type)` of the sub-steps in a step's config (foreach, parallel, retry), nested."""
    single = config.get("step")
    items = [single] if isinstance(single, Mapping) else []
    many = config.get("steps")
    items += [s for s in many if isinstance(s, Mapping)] if isinstance(many, list) else []
    for item in items:
        if isinstance(item.get("type"), str):
            yield str(item.get("name") or ""), item["type"]
            inner = item.get("config")
            yield from _substeps(inner if isinstance(inner, Mapping) else {})


def apply_mocks(application: Application, mocks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Replace the mocked steps of every pipeline, sub-steps of step.foreach / step.parallel
    / step.retry_with_backoff included (when the application has its own step registry);
    returns the mock keys that matched none."""
    from treadle.steps import StepType, default_registry

    used: set[str] = set()
    for plan in _plans(application):
        key = plan.name if plan.name in mocks else plan.type if plan.type in mocks else None
        if key is None:
            continue
        used.add(key)
        plan.spec = replace(plan.spec, kind="task", impl=_constant(mocks[key]))
        plan.templated = False
    types = application.step_types
    if types is not default_registry:
        for pipeline in application.config.pipelines.values():
            for step in (*pipeline.steps, *pipeline.compensation):
                for name, kind in _substeps(step.config):
                    key = name if name in mocks else kind if kind in mocks else None
                    if key is not None:
                        used.add(key)
                        types.substitutes[key] = StepType(f"mock of {key}", {}, "",
                                                          _constant(mocks[key]))
    return [key for key in mocks if key not in used]


def stop_after(application: Application, pipeline: str, step: str) -> None:
    """End `pipeline` right after `step` (Go's `stop_after`)."""
    try:
        plans = application.pipeline(pipeline).plan.steps
    except KeyError as exc:
        raise TriggerError(f"stop_after: pipeline {pipeline!r} not found") from exc
    for plan in plans:
        if plan.name == step:
            plan.spec = replace(plan.spec, stops=lambda output: True)
            return
    raise TriggerError(f"stop_after: step {step!r} not found in pipeline {pipeline!r}")


def in_memory_state(config: AppConfig) -> AppConfig:
    """`config` with every `statemachine.engine` module's instances in memory, whatever its
    `store` (tests never touch a real database of instances)."""
    from treadle.statemachine.app import MODULE_TYPE

    modules = tuple(replace(m, config={**m.config, "store": "memory://"})
                    if m.type == MODULE_TYPE else m for m in config.modules)  # fmt: skip
    return replace(config, modules=modules)


class Harness:
    """One application built for tests: engine, modules, state machines, pipelines."""

    def __init__(self, config: AppConfig, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.timeout = timeout
        self.runtime: Any = None
        self.engine: Engine
        self.application: Application
        self.modules: Mapping[str, Any] = {}

    def build(self, mocks: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Build everything (nothing started yet); returns the unused mock keys.

        With the serving layer the application is built by `treadle.apps.build_app`, as
        `treadle serve` builds it (so modules' own routes, such as a state machine's
        `http_prefix` binding, are mounted the same way); only the state machines' stores are
        replaced by memory ones."""
        import treadle
        from treadle.statemachine import register_steps
        from treadle.steps import StepRegistry, default_registry
        from treadle.testing import test_engine

        registry = treadle.Registry()
        self.engine = test_engine(registry=registry)
        step_types = StepRegistry(parent=default_registry)
        register_steps(step_types)
        config = in_memory_state(self.config)
        try:
            from treadle.apps import build_app
        except ImportError:
            self._build_direct(config, registry, step_types)
        else:
            self.runtime = build_app(config, self.engine, step_types=step_types)
            self.application = self.runtime.application
            self.modules = self.runtime.modules
        return apply_mocks(self.application, mocks)

    def _build_direct(self, config: AppConfig, registry: Any, step_types: Any) -> None:
        """Without the serving layer: only the state machine modules, then the pipelines."""
        from treadle.pipelines import load_application
        from treadle.statemachine.app import MODULE_TYPE, attach, engine_from_module
        from treadle.statemachine.module import StateTrackerModule

        extras: dict[str, Any] = {}
        for m in config.modules:
            if m.type == MODULE_TYPE:
                extras[m.name] = engine_from_module(m.name, m.config)
            elif m.type == "state.tracker":
                extras[m.name] = StateTrackerModule(m.name, m.config)
        self.modules = extras
        self.application = load_application(config, registry=registry, modules=extras,
                                            step_types=step_types)  # fmt: skip
        attach(config, self.modules, self.application, self.engine, share_store=False)

    async def start(self) -> None:
        if self.runtime is not None:
            await self.runtime.start(recover=False)
        else:
            await self.engine.open()
            for module in self.modules.values():
                init = getattr(module, "init", None)
                if callable(init):
                    await init(self.modules)

    async def close(self) -> None:
        try:
            if self.runtime is not None:
                await self.runtime.stop()
        finally:
            await self.engine.close()

    # -- triggers -------------------------------------------------------------------------------

    async def fire(self, trigger: TriggerDef) -> TriggerResult:
        kind = trigger.type.lower()
        if kind in ("", "pipeline"):
            if not trigger.name:
                raise TriggerError("trigger.name is required for pipeline triggers")
            return await self._pipeline(trigger.name, dict(trigger.data or {}))
        if kind in _HTTP_METHODS:
            if not trigger.path:
                raise TriggerError("trigger.path is required for http triggers")
            method = (_HTTP_METHODS[kind] or trigger.method or "GET").upper()
            return await self._http(method, trigger)
        raise TriggerError(f"unsupported trigger type {trigger.type!r} (pipeline, http, "
                           "http.get, http.post, http.put, http.patch, http.delete)")

    async def _pipeline(self, name: str, data: dict[str, Any]) -> TriggerResult:
        result = TriggerResult()
        try:
            handle = await self.application.start_pipeline(self.engine, name, data)
        except KeyError as exc:
            result.error = str(exc.args[0]) if exc.args else f"pipeline {name!r} not found"
            return result
        result.execution_id = handle.id
        try:
            result.output = await handle.result(self.timeout)
        except ExecutionFailedError as exc:
            result.error = str(exc.error.get("message", exc))
        except ExecutionCancelledError as exc:
            result.error = str(exc)
        except TimeoutError:
            result.error = f"pipeline {name!r} did not finish within {self.timeout}s"
        await self._journal(result)
        return result

    async def _http(self, method: str, trigger: TriggerDef) -> TriggerResult:
        import json

        body = b""
        if trigger.data is not None and method not in ("GET", "HEAD"):
            body = json.dumps(trigger.data).encode()
        headers = {k.lower(): v for k, v in trigger.headers.items()}
        if body and "content-type" not in headers:
            headers["content-type"] = "application/json"
        result = TriggerResult()
        if self.runtime is not None:
            import urllib.parse

            from treadle.modules.web import HTTPRequest

            raw_path, _, query = trigger.path.partition("?")
            request = HTTPRequest(method=method, path=urllib.parse.unquote(raw_path),
                                  raw_path=raw_path, query_string=query, headers=headers,
                                  body=body, client="127.0.0.1")  # fmt: skip
            try:
                response = await asyncio.wait_for(self.runtime.handle(request), self.timeout)
            except TimeoutError as exc:
                raise TriggerError(f"{method} {trigger.path} got no response within "
                                   f"{self.timeout}s") from exc
            result.status, result.body = response.status, response.body
            result.headers = {k: v for k, v in response.headers}
            result.execution_id = next((v for k, v in response.headers
                                        if k.lower() == _EXECUTION_HEADER), "")  # fmt: skip
        else:
            from treadle.apptest._http import EXECUTION_HEADER, dispatch

            status, hdrs, payload, execution_id = await dispatch(
                self.config, self.application, self.engine, method, trigger.path, headers,
                body, self.timeout)
            result.status, result.headers, result.body = status, hdrs, payload
            result.execution_id = execution_id
            if execution_id:
                result.headers[EXECUTION_HEADER] = execution_id
        if result.execution_id:
            await self._journal(result, from_execution=True)
        return result

    async def _journal(self, result: TriggerResult, *, from_execution: bool = False) -> None:
        """Fill the step outputs (and, for HTTP, the pipeline's output) from the journal."""
        from treadle.journal import ExecutionStatus
        from treadle.journal.model import StepStatus

        execution = await self.engine.get(result.execution_id)
        result.compensated = await self._compensated(execution)
        for record in execution.steps:  # a compensation never hides a step of the same name
            if record.kind not in ("step", "compensation") or (
                    record.kind == "compensation" and record.name in result.steps):
                continue
            if record.status == StepStatus.COMPLETED:
                output = record.output
                result.steps[record.name] = output if isinstance(output, dict) \
                    else {"result": output}
            elif record.status == StepStatus.FAILED:
                result.steps[record.name] = {"_error": (record.error or {}).get("message", "")}
        if from_execution:
            if execution.status == ExecutionStatus.COMPLETED:
                result.output = execution.output
            elif execution.status == ExecutionStatus.FAILED:
                result.error = str((execution.error or {}).get("message", "failed"))

    async def _compensated(self, execution: Execution) -> list[str]:
        """The steps run while the saga compensated — between its `saga.compensating` and
        `saga.compensated` events: the per-step `compensate:` steps, then the pipeline's
        `compensation:` steps — in the order they ran."""
        from treadle.journal import EventType

        spans: list[list[float]] = []
        for event in await self.engine.events(execution.id):
            pos = event.data.get("pos")
            if event.type == EventType.SAGA_COMPENSATING and isinstance(pos, int):
                spans.append([pos, float("inf")])
            elif event.type == EventType.SAGA_COMPENSATED and isinstance(pos, int) and spans:
                spans[-1][1] = pos
        return [r.name for r in sorted(execution.steps, key=lambda r: r.pos)
                if r.kind in ("step", "compensation")
                and any(lo < r.pos < hi for lo, hi in spans)]  # fmt: skip


# -- running files ------------------------------------------------------------------------------


def _merge(base: Mapping[str, dict[str, Any]], case: TestCase) -> dict[str, dict[str, Any]]:
    return {**base, **(case.mocks or {})}


async def _check_all(label: str, assertions: tuple[Assertion, ...], result: TriggerResult,
                     stores: StateStores) -> list[Failure]:  # fmt: skip
    out: list[Failure] = []
    for i, assertion in enumerate(assertions):
        out.extend(check(f"{label}[{i}]", assertion, result))
        if assertion.state:
            out.extend(await stores.check(f"{label}[{i}]", assertion.state))
    return out


async def run_case(config: AppConfig, tf: TestFile, case: TestCase, *,
                   timeout: float = DEFAULT_TIMEOUT) -> CaseResult:  # fmt: skip
    """Run one test case on a fresh application."""
    result = CaseResult(case.name, case.description)
    started = time.perf_counter()
    harness = Harness(config, timeout=timeout)
    try:
        unused = harness.build(_merge(tf.mocks, case))
        result.notes.extend(f"mock {key!r} matches no step type or step name" for key in unused)
        if case.stop_after:
            if case.sequence or case.trigger.type.lower() not in ("", "pipeline"):
                raise TriggerError("stop_after needs a pipeline trigger")
            stop_after(harness.application, case.trigger.name, case.stop_after)
    except Exception as exc:  # a config the runtime rejects, a bad stop_after, ...
        result.failures.append(Failure("", "setup", f"engine setup: {exc}"))
        result.duration = time.perf_counter() - started
        return result
    stores = StateStores(harness.modules)
    try:
        await harness.start()
        if case.state:
            try:
                await stores.load(case.state, tf.path.parent)
            except TestFileError as exc:
                result.failures.append(Failure("", "state", f"state: {exc}"))
                return result
        if case.sequence:
            for i, step in enumerate(case.sequence):
                trigger = step.trigger
                if not trigger.name and step.pipeline:
                    trigger = replace(trigger, name=step.pipeline, type=trigger.type or "pipeline")
                label = f"sequence[{i}]({step.name})"
                try:
                    fired = await harness.fire(trigger)
                except TriggerError as exc:
                    result.failures.append(Failure(label, "trigger", f"trigger: {exc}"))
                    break
                result.failures.extend(await _check_all(f"{label}.assertion", step.assertions,
                                                        fired, stores))  # fmt: skip
        else:
            try:
                fired = await harness.fire(case.trigger)
            except TriggerError as exc:
                result.failures.append(Failure("", "trigger", f"trigger: {exc}"))
            else:
                result.failures.extend(await _check_all("", case.assertions, fired, stores))
    finally:
        await harness.close()
        result.duration = time.perf_counter() - started
    return result


def _load_config(tf: TestFile) -> AppConfig:
    from treadle.config import load_config, load_config_text

    if tf.yaml:
        return load_config_text(tf.yaml, filename=f"{tf.path} (yaml)")
    if tf.config is not None:
        return load_config(tf.config)
    raise TestFileError("test file must set 'yaml' or 'config'")


async def run_test_file_async(path: str | Path, *,
                              timeout: float = DEFAULT_TIMEOUT) -> TestReport:  # fmt: skip
    """Run every test of a `*_test.yaml` file, in file order."""
    report = TestReport(Path(path))
    started = time.perf_counter()
    try:
        tf = load_test_file(path)
    except TestFileError as exc:
        report.error = str(exc)
        report.duration = time.perf_counter() - started
        return report
    report.notes.extend(tf.notes)
    if not tf.tests:  # as Go: nothing to run, the config is not even loaded
        report.duration = time.perf_counter() - started
        return report
    try:
        config = _load_config(tf)
    except (ConfigError, TestFileError) as exc:
        report.error = f"engine setup: load config: {exc}"
        head = str(exc).splitlines()[0]
        report.cases = [CaseResult(c.name, c.description,
                                   [Failure("", "setup", f"engine setup: {head}")])
                        for c in tf.tests]  # fmt: skip
        report.duration = time.perf_counter() - started
        return report
    report.notes.extend(str(w) for w in config.warnings)
    for case in tf.tests:
        report.cases.append(await run_case(config, tf, case, timeout=timeout))
    report.duration = time.perf_counter() - started
    return report


def run_test_file(path: str | Path, *, timeout: float = DEFAULT_TIMEOUT) -> TestReport:
    """Run a `*_test.yaml` file (synchronously; from async code use `run_test_file_async`)."""
    return asyncio.run(run_test_file_async(path, timeout=timeout))


def discover(targets: Iterable[str | Path]) -> list[Path]:
    """The test files of `targets`: files as given, directories' `*_test.yaml` (sorted)."""
    found: list[Path] = []
    for target in targets:
        p = Path(target)
        if p.is_dir():
            found.extend(sorted(p.glob("*_test.yaml")))
        else:
            found.append(p)
    return found


def run_tests(targets: Iterable[str | Path], *,
              timeout: float = DEFAULT_TIMEOUT) -> list[TestReport]:  # fmt: skip
    """Run every test file of `targets` (files or directories)."""

    async def main() -> list[TestReport]:
        return [await run_test_file_async(p, timeout=timeout) for p in discover(targets)]

    return asyncio.run(main())


__all__ = [
    "DEFAULT_TIMEOUT",
    "Harness",
    "TriggerError",
    "apply_mocks",
    "discover",
    "in_memory_state",
    "run_case",
    "run_test_file",
    "run_test_file_async",
    "run_tests",
    "stop_after",
]
