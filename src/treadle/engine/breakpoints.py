"""Breakpoints: pause an execution before a step, so an operator can inspect it and decide.

A breakpoint names a workflow (a pipeline's workflow is `pipeline:<name>`) and a step, with an
optional condition and a time to live. It is a store record (kind `breakpoint`), so every
engine sharing the store honours it; each engine caches the list and refreshes it at most
every `refresh_seconds`.

When a live step call matches, the run journals `breakpoint.hit` (position, step, input,
breakpoint) and suspends until a decision arrives in its inbox:

- `resume`: the step runs, with `input` in place of its arguments when one is given (the
  journal's input shape: a list of positional arguments, or `{"args": [...], "kwargs": {...}}`);
- `skip`: the step does not run; it returns `output` (journaled `step.skipped`);
- `abort`: the execution is cancelled (compensations run, it ends `cancelled`).

The decision is journaled (`signal.received` with `"for": "breakpoint"`), so a resumed
execution replays it instead of pausing again, and a paused execution survives restarts like
any signal wait. Replaying from an earlier step is `engine.replay(..., mode="step_from")`.

Conditions use the expression language of YAML pipelines (`${ }` syntax, see
docs/templates.md) over `{"input": <the step's input>, "steps": {<name>: <output>, ...},
"workflow": ..., "execution_id": ...}`; a condition that fails to evaluate counts as a hit.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from treadle.errors import ExecutionNotFoundError, TreadleError
from treadle.journal import EventType
from treadle.stores.base import Record, RecordQuery

if TYPE_CHECKING:
    from treadle.engine.engine import Engine

logger = logging.getLogger("treadle.breakpoints")

BREAKPOINT_SIGNAL = "treadle.breakpoint"
RECORD_KIND = "breakpoint"
ACTIONS = ("resume", "skip", "abort")
MAX_TTL = 366 * 86400.0

Condition = Callable[[str, Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """Pause executions of `workflow` before `step` (when `condition` holds)."""

    id: str
    workflow: str
    step: str
    condition: str | None
    created_at: float
    expires_at: float | None = None
    tenant_id: str | None = None
    created_by: str | None = None
    notify: tuple[str, ...] = ()
    """Who to tell (kept for UIs and hooks; Treadle sends nothing itself)."""

    def applies_to(self, workflow: str, step: str, tenant_id: str | None, now: float) -> bool:
        return (self.workflow == workflow and self.step == step
                and (self.expires_at is None or self.expires_at > now)
                and (self.tenant_id is None or self.tenant_id == tenant_id))

    @classmethod
    def from_record(cls, record: Record) -> Breakpoint:
        data = record.data
        return cls(record.key, str(data["workflow"]), str(data["step"]), data.get("condition"),
                   record.created_at, record.expires_at, record.tenant_id,
                   data.get("created_by"), tuple(data.get("notify") or ()))


def pipeline_workflow(pipeline: str, names: Collection[str]) -> str:
    """The workflow a `{pipeline}` of the API (or a CLI argument) names, given the registered
    workflow names: `pipeline:<name>` as is; a name registered as a code workflow (and not as
    a pipeline) is that workflow; any other name is the pipeline's, `pipeline:<name>`.

    >>> pipeline_workflow("checkout", ["checkout"]), pipeline_workflow("orders", [])
    ('checkout', 'pipeline:orders')
    """
    if pipeline.startswith("pipeline:"):
        return pipeline
    if f"pipeline:{pipeline}" not in names and pipeline in names:
        return pipeline
    return f"pipeline:{pipeline}"


def workflow_of(engine: Engine, pipeline: str) -> str:
    """`pipeline_workflow` over the workflows registered in `engine`."""
    return pipeline_workflow(pipeline, engine.registry.names())


def expression_condition(expr: str, data: Mapping[str, Any]) -> bool:
    """The default condition evaluator: the YAML expression language, its truth rule."""
    from treadle.config.templates import evaluate, truthy

    return bool(truthy(evaluate(expr, data)))


def check_condition(expr: str) -> None:
    """Raise ValueError when `expr` does not parse (checked when a breakpoint is set)."""
    from treadle.config.templates import check
    from treadle.errors import TemplateError

    try:
        check(expr)
    except TemplateError as exc:
        raise ValueError(f"invalid breakpoint condition {expr!r}: {exc}") from exc


class Breakpoints:
    """`engine.breakpoints`: set, list and remove breakpoints; decide for paused executions."""

    def __init__(self, engine: Engine, *, refresh_seconds: float = 1.0,
                 condition: Condition = expression_condition) -> None:
        self.engine = engine
        self.refresh_seconds = refresh_seconds
        self.condition = condition
        self._cache: builtins.list[Breakpoint] = []
        self._fresh_until = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    # -- managing -----------------------------------------------------------------------------

    async def set(
        self,
        workflow: str,
        step: str,
        *,
        condition: str | None = None,
        ttl: float | None = 3600.0,
        tenant_id: str | None = None,
        created_by: str | None = None,
        notify: Sequence[str] = (),
    ) -> Breakpoint:
        """Add a breakpoint; it expires after `ttl` seconds (None: until removed)."""
        if not workflow or not step:
            raise ValueError("a breakpoint needs a workflow and a step")
        if ttl is not None and not 0 < ttl <= MAX_TTL:
            raise ValueError(f"ttl must be > 0 seconds and at most {MAX_TTL:.0f} (a year)")
        if condition is not None:
            condition = condition.strip() or None
        if condition is not None:
            check_condition(condition)
        await self.engine.open()
        now = time.time()
        found = Breakpoint(uuid.uuid4().hex, workflow, step, condition, now,
                           None if ttl is None else now + ttl, tenant_id, created_by,
                           tuple(notify))
        data = {"workflow": workflow, "step": step, "condition": condition,
                "created_by": created_by, "notify": list(notify)}
        await self.engine.store.put_record(Record(RECORD_KIND, found.id, data, now, tenant_id,
                                                  found.expires_at))
        self._cache = [found, *self._cache]
        return found

    async def list(self, *, workflow: str | None = None,
                   tenant_id: str | None = None) -> builtins.list[Breakpoint]:
        """Breakpoints that have not expired, newest first."""
        await self.engine.open()
        return await self._read(workflow=workflow, tenant_id=tenant_id)

    async def _read(self, *, workflow: str | None = None,
                    tenant_id: str | None = None) -> builtins.list[Breakpoint]:
        now = time.time()
        found: builtins.list[Breakpoint] = []
        cursor: str | None = None
        while True:
            page = await self.engine.store.list_records(
                RecordQuery(RECORD_KIND, tenant_id=tenant_id, limit=500, cursor=cursor))
            found.extend(bp for bp in map(Breakpoint.from_record, page.items)
                         if (workflow is None or bp.workflow == workflow)
                         and (bp.expires_at is None or bp.expires_at > now))
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def get(self, breakpoint_id: str) -> Breakpoint | None:
        await self.engine.open()
        record = await self.engine.store.get_record(RECORD_KIND, breakpoint_id)
        if record is None:
            return None
        found = Breakpoint.from_record(record)
        return None if found.expires_at is not None and found.expires_at <= time.time() else found

    async def remove(self, breakpoint_id: str) -> bool:
        """Remove a breakpoint (executions already paused at it stay paused)."""
        await self.engine.open()
        self._cache = [bp for bp in self._cache if bp.id != breakpoint_id]
        return await self.engine.store.delete_record(RECORD_KIND, breakpoint_id)

    # -- deciding -----------------------------------------------------------------------------

    async def paused(self, execution_id: str) -> dict[str, Any] | None:
        """Where an execution waits at a breakpoint: its `breakpoint.hit` data, or None."""
        await self.engine.open()
        hits: dict[int, dict[str, Any]] = {}
        for event in await self.engine.store.events(execution_id):
            pos = event.data.get("pos")
            if event.type == EventType.BREAKPOINT_HIT and isinstance(pos, int):
                hits[pos] = dict(event.data)
            elif event.type == EventType.SIGNAL_RECEIVED and event.data.get("for") == "breakpoint":
                hits.pop(pos, None)  # type: ignore[arg-type]
        return hits[max(hits)] if hits else None

    async def resume(self, execution_id: str, *, input: Any = None,
                     by: str | None = None) -> dict[str, Any]:
        """Let the paused step run, with `input` instead of its arguments when given."""
        decision: dict[str, Any] = {"action": "resume"}
        if input is not None:
            decision["input"] = input
        return await self.decide(execution_id, decision, by=by)

    async def skip(self, execution_id: str, *, output: Any = None,
                   by: str | None = None) -> dict[str, Any]:
        """Do not run the paused step: it returns `output`."""
        return await self.decide(execution_id, {"action": "skip", "output": output}, by=by)

    async def abort(self, execution_id: str, *, reason: str = "aborted at a breakpoint",
                    by: str | None = None) -> dict[str, Any]:
        """Cancel the paused execution (its completed saga steps are compensated)."""
        return await self.decide(execution_id, {"action": "abort", "reason": reason}, by=by)

    async def decide(self, execution_id: str, decision: Mapping[str, Any], *,
                     by: str | None = None) -> dict[str, Any]:
        """Send a decision to a paused execution; returns the `breakpoint.hit` it answers.

        Raises `ExecutionNotFoundError`, or `TreadleError` when the execution is not paused.
        """
        from treadle.engine.serde import to_json_value

        action = decision.get("action")
        if action not in ACTIONS:
            raise ValueError(f"unknown breakpoint action {action!r}: {', '.join(ACTIONS)}")
        engine = self.engine
        await engine.open()
        row = await engine.store.get(execution_id)
        if row is None:
            raise ExecutionNotFoundError(f"no execution {execution_id}")
        hit = await self.paused(execution_id) if not row.status.is_terminal else None
        if hit is None:
            raise TreadleError(f"execution {execution_id} is not paused at a breakpoint")
        payload = to_json_value({**decision, "pos": hit["pos"], "by": by},
                                "breakpoint decision")
        await engine.store.send_signal(execution_id, BREAKPOINT_SIGNAL, payload,
                                       engine.clock.time())
        run = engine._runs.get(execution_id)
        if run is not None:
            run.notify_signal(BREAKPOINT_SIGNAL)
        else:
            try:  # nobody holds it (e.g. after a restart): resume it here if we can
                await engine._ensure_running(execution_id)
            except TreadleError as exc:
                logger.info("execution %s left for a worker: %s", execution_id, exc)
        return hit

    # -- the engine's side --------------------------------------------------------------------

    def armed(self) -> bool:
        """Whether a live step call must look for breakpoints (the cached view, or time to
        refresh it)."""
        return bool(self._cache) or time.time() >= self._fresh_until

    def hit(self, workflow: str, step: str, tenant_id: str | None,
            data: Callable[[], Mapping[str, Any]]) -> Breakpoint | None:
        """The breakpoint a live call of `step` stops at, if any (`data` feeds conditions).

        Never waits: it reads the cached list, and a stale cache is refreshed in the
        background (so a breakpoint set by another process applies within about
        `refresh_seconds`; one set through this engine applies at once).
        """
        now = time.time()
        if now >= self._fresh_until:
            self._fresh_until = now + self.refresh_seconds
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.get_running_loop().create_task(
                    self._refresh(), name="treadle:breakpoints")
        for bp in self._cache:
            if not bp.applies_to(workflow, step, tenant_id, now):
                continue
            if bp.condition is None:
                return bp
            try:
                if self.condition(bp.condition, data()):
                    return bp
            except Exception as exc:
                logger.warning("breakpoint %s: condition %r failed (%s); pausing", bp.id,
                               bp.condition, exc)
                return bp
        return None

    async def load(self) -> None:
        """Read the breakpoints now (the engine does it when it opens)."""
        await self._refresh()
        self._fresh_until = time.time() + self.refresh_seconds

    def stop(self) -> None:
        """Cancel a background refresh (the engine does it when it closes)."""
        if self._refreshing is not None:
            self._refreshing.cancel()
            self._refreshing = None

    async def _refresh(self) -> None:
        try:
            self._cache = await self._read()
        except Exception as exc:  # a store hiccup must not fail a step: keep the old list
            logger.warning("cannot refresh breakpoints: %s", exc)


def apply_input(args: tuple[Any, ...], kwargs: dict[str, Any],
                new: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A step's arguments with an operator's replacement input (in the journal's shape).

    A dict argument of a dict subclass (a YAML step's rendered config) is updated in place, so
    what it carries besides its items stays.
    """
    if isinstance(new, dict) and set(new) <= {"args", "kwargs"} and new:
        positional = new.get("args", list(args))
        named = new.get("kwargs", kwargs)
    else:
        positional, named = new, kwargs
    if not isinstance(positional, list) or not isinstance(named, dict):
        raise ValueError("a breakpoint's input is a list of arguments or "
                         '{"args": [...], "kwargs": {...}}')
    replaced: list[Any] = []
    for i, value in enumerate(positional):
        old = args[i] if i < len(args) else None
        if isinstance(value, dict) and isinstance(old, dict) and type(old) is not dict:
            old.clear()
            old.update(value)
            value = old
        replaced.append(value)
    return tuple(replaced), dict(named)
