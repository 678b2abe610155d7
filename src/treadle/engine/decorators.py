"""`@workflow` and `@step`, and the registry that maps journaled names back to functions."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from treadle.engine import current
from treadle.engine.dead_letters import DeadLetter
from treadle.errors import WorkflowNotFoundError, WorkflowVersionError
from treadle.journal.retry import Backoff, RetryPolicy

P = ParamSpec("P")
R = TypeVar("R")


class StepFunction(Generic[P, R]):
    """A function decorated with `@step`.

    Outside a workflow it is the plain function. Called inside a workflow it returns an
    awaitable whose result is journaled: on resume, a completed call returns its recorded
    output without running again.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str,
        policy: RetryPolicy,
        timeout: float | None,
        compensate: StepFunction[..., Any] | Callable[..., Any] | None,
        step_type: str | None = None,
        pure: bool = False,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name
        self.step_type = step_type
        self.pure = pure and compensate is None
        self.policy = policy
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(fn)
        self.compensate: StepFunction[..., Any] | None = (
            None if compensate is None else as_step(compensate)
        )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        run = current.RUN.get()
        if run is None or current.STEP.get() is not None:
            return self.fn(*args, **kwargs)
        return run.call_step(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def as_step(fn: StepFunction[..., Any] | Callable[..., Any]) -> StepFunction[..., Any]:
    """Wrap a plain callable as a step with default options (steps pass through)."""
    if isinstance(fn, StepFunction):
        return fn
    return StepFunction(fn, name=_qualname(fn), policy=RetryPolicy(), timeout=None, compensate=None)


@overload
def step(fn: Callable[P, R], /) -> StepFunction[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    backoff: Backoff = "exponential",
    initial_delay: float = 0.1,
    max_delay: float = 60.0,
    jitter: bool = True,
    retry_on: type[BaseException] | Sequence[type[BaseException]] = (Exception,),
    timeout: float | None = None,
    compensate: Callable[..., Any] | None = None,
    pure: bool = False,
) -> Callable[[Callable[P, R]], StepFunction[P, R]]: ...
def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    backoff: Backoff = "exponential",
    initial_delay: float = 0.1,
    max_delay: float = 60.0,
    jitter: bool = True,
    retry_on: type[BaseException] | Sequence[type[BaseException]] = (Exception,),
    timeout: float | None = None,
    compensate: Callable[..., Any] | None = None,
    pure: bool = False,
) -> StepFunction[P, R] | Callable[[Callable[P, R]], StepFunction[P, R]]:
    """Declare a step: a unit of work whose result is journaled once it completes.

    `retries` extra attempts with `backoff` ("exponential", "linear" or "constant") from
    `initial_delay` up to `max_delay` seconds, with jitter; only errors in `retry_on` are
    retried. `timeout` bounds one attempt. `compensate` is the step that undoes this one in a
    saga: it is called with this step's output followed by this step's arguments.

    `pure=True` declares a step without side effects (it computes its output from its
    arguments; logging is fine): its completion is not committed on its own but with the
    execution's next journal write (the next other step's completion, a wait, the end), so a
    chain of pure steps costs no commit each. A crash before that write runs it again. A
    step that is not pure never starts before the pure steps' results it may use are durable,
    so it sees the same inputs when it runs again. Ignored when `compensate` is set.

    >>> @step(retries=2)
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> double(21)   # outside a workflow: a plain call
    42
    """
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    policy = RetryPolicy(
        retries=retries, backoff=backoff, initial_delay=initial_delay, max_delay=max_delay,
        jitter=jitter, retry_on=tuple(retry_on),
    )
    if retries < 0:
        raise ValueError("retries must be >= 0")
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be > 0 seconds")

    def decorate(f: Callable[P, R]) -> StepFunction[P, R]:
        return StepFunction(f, name=name or _qualname(f), policy=policy, timeout=timeout,
                            compensate=compensate, pure=pure)

    return decorate(fn) if fn is not None else decorate


WorkflowFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class WorkflowDef:
    """A registered workflow: its name, version, function and options."""

    name: str
    fn: WorkflowFn
    version: str | None = None
    timeout: float | None = None
    concurrency: int | None = None
    dead_letter: DeadLetter | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return self.fn(*args, **kwargs)


@dataclass
class Registry:
    """Maps workflow names (and versions) to their functions."""

    _by_name: dict[str, dict[str | None, WorkflowDef]] = field(default_factory=dict)

    def add(self, wf: WorkflowDef) -> None:
        self._by_name.setdefault(wf.name, {})[wf.version] = wf

    def get(self, name: str, version: str | None = None, *, exact: bool = False) -> WorkflowDef:
        """The workflow `name` at `version`; without `exact`, None means the latest added."""
        versions = self._by_name.get(name)
        if not versions:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise WorkflowNotFoundError(
                f"no workflow named {name!r} is registered (known: {known})"
            )
        if version in versions:
            return versions[version]
        if version is None and not exact:
            return list(versions.values())[-1]
        have = ", ".join(repr(v) for v in versions)
        raise WorkflowVersionError(
            f"workflow {name!r} version {version!r} is not loaded (loaded versions: {have}); "
            "an execution resumes only on the version it started with"
        )

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[WorkflowDef]:
        for versions in self._by_name.values():
            yield from versions.values()


default_registry = Registry()


@overload
def workflow(fn: WorkflowFn, /) -> WorkflowDef: ...
@overload
def workflow(
    *,
    name: str | None = None,
    version: str | None = None,
    timeout: float | None = None,
    concurrency: int | None = None,
    dead_letter: bool | DeadLetter = False,
    registry: Registry | None = None,
) -> Callable[[WorkflowFn], WorkflowDef]: ...
def workflow(
    fn: WorkflowFn | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    timeout: float | None = None,
    concurrency: int | None = None,
    dead_letter: bool | DeadLetter = False,
    registry: Registry | None = None,
) -> WorkflowDef | Callable[[WorkflowFn], WorkflowDef]:
    """Declare a durable workflow: `async def fn(ctx: Context, *args)`.

    Registered by `name` (default: the function's qualified name) and `version` in
    `registry` (default: the process-wide one). `timeout` bounds the whole execution,
    durably: a resumed execution keeps its original deadline. `concurrency` limits how many
    enqueued executions of it workers run at once, across all workers. `dead_letter` (True,
    or a `DeadLetter` with its retention) keeps executions that fail for good in the
    dead-letter queue, `engine.dlq`.
    """
    letters = DeadLetter() if dead_letter is True else dead_letter or None

    def decorate(f: WorkflowFn) -> WorkflowDef:
        if not inspect.iscoroutinefunction(f):
            raise TypeError(
                f"@workflow needs an async def function, got {_qualname(f)}: "
                "write `async def` and `await` its steps"
            )
        wf = WorkflowDef(name=name or _qualname(f), fn=f, version=version, timeout=timeout,
                         concurrency=concurrency, dead_letter=letters)
        (registry or default_registry).add(wf)
        return wf

    return decorate(fn) if fn is not None else decorate


def _qualname(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn)))
