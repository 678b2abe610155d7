"""Building a pipeline's plan from its config: step types, schemas, policies, all checked.

Every problem is reported at its YAML key (file:line [key]) and all of them at once, like the
config loader does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from treadle.config.model import AppConfig, KeyPath, PipelineConfig, StepConfig
from treadle.engine import StepFunction
from treadle.engine.dead_letters import DEFAULT_RETENTION, DeadLetter
from treadle.errors import ConfigError
from treadle.journal.retry import RetryPolicy
from treadle.steps._durations import parse_duration
from treadle.steps._runtime import NO_RETRY, task_function
from treadle.steps.registry import (
    Checker,
    StepConfigError,
    StepRegistry,
    StepType,
    schema_problems,
)

STRATEGIES = ("stop", "skip", "continue", "compensate")
_BACKOFFS = {"exponential": "exponential", "linear": "linear", "constant": "constant",
             "fixed": "constant"}  # fmt: skip


@dataclass(slots=True)
class StepPlan:
    """One step, ready to run."""

    name: str
    type: str
    spec: StepType
    config: dict[str, Any]
    templated: bool
    """Whether any rendered key of `config` holds a template (else it is passed as is)."""
    sf: StepFunction[..., Any]
    if_: str | None = None
    skip_if: str | None = None
    on_error: str | None = None
    error_status: int | None = None
    compensate: StepPlan | None = None
    path: KeyPath = ()

    @property
    def guarded(self) -> bool:
        return self.if_ is not None or self.skip_if is not None


@dataclass(slots=True)
class IdempotencyPlan:
    key_template: str
    ttl: float | None


@dataclass(slots=True)
class PipelinePlan:
    name: str
    steps: tuple[StepPlan, ...]
    index: dict[str, int]
    compensation: tuple[StepPlan, ...]
    on_error: str
    timeout: float | None
    strict: bool
    idempotency: IdempotencyPlan | None
    dead_letter: DeadLetter | None = None


DEAD_LETTER_KEYS = ("enabled", "retention", "alert_threshold", "replayable")


def has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "${" in value
    if isinstance(value, dict):
        return any(has_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_template(v) for v in value)
    return False


def retry_policy(raw: Any, what: str) -> RetryPolicy:
    """A RetryPolicy from `{max_attempts, backoff, initial_delay, max_delay, multiplier}`."""
    if not isinstance(raw, dict):
        raise ValueError(f"{what} must be a mapping")
    unknown = set(raw) - {"max_attempts", "backoff", "initial_delay", "max_delay", "multiplier",
                          "jitter"}  # fmt: skip
    if unknown:
        raise ValueError(f"{what} has unknown keys: {', '.join(sorted(unknown))}")
    attempts = raw.get("max_attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"{what}.max_attempts must be an integer >= 1, not {attempts!r}")
    backoff = _BACKOFFS.get(str(raw.get("backoff", "exponential")))
    if backoff is None:
        raise ValueError(f"{what}.backoff must be exponential, linear or constant, "
                         f"not {raw.get('backoff')!r}")  # fmt: skip
    multiplier = raw.get("multiplier", 2.0)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) or multiplier < 1:
        raise ValueError(f"{what}.multiplier must be a number >= 1")
    return RetryPolicy(
        retries=attempts - 1, backoff=backoff,  # type: ignore[arg-type]
        initial_delay=parse_duration(raw.get("initial_delay", "100ms"), f"{what}.initial_delay"),
        max_delay=parse_duration(raw.get("max_delay", "60s"), f"{what}.max_delay"),
        multiplier=float(multiplier), jitter=bool(raw.get("jitter", True)),
    )


class Builder:
    """Builds the plans of an application's pipelines, collecting every problem."""

    def __init__(self, app: AppConfig, step_types: StepRegistry) -> None:
        self.app = app
        self.step_types = step_types
        self.errors: list[ConfigError] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(self.app.error_at(path, message))

    def raise_errors(self) -> None:
        if self.errors:
            count = len(self.errors)
            raise ConfigError(f"configuration has {count} error{'s' if count != 1 else ''}",
                              file=self.app.file, errors=self.errors)  # fmt: skip

    def duration(self, value: str | None, path: KeyPath, what: str = "timeout") -> float | None:
        if value is None:
            return None
        try:
            seconds = parse_duration(value, what)
        except ValueError as exc:
            self.error(path, str(exc))
            return None
        if seconds <= 0:
            self.error(path, f"{what} must be greater than zero")
            return None
        return seconds

    def strategy(self, value: str | None, path: KeyPath) -> str | None:
        if value is not None and value not in STRATEGIES:
            self.error(path, f"on_error must be one of {', '.join(STRATEGIES)}, not {value!r}")
            return None
        return value

    def pipeline(self, cfg: PipelineConfig) -> PipelinePlan:
        path = cfg.path
        saga = cfg.saga or {}
        default_strategy = "compensate" if saga.get("enabled") is True else "stop"
        on_error = self.strategy(cfg.on_error, (*path, "on_error")) or default_strategy
        timeout = self.duration(cfg.timeout, (*path, "timeout"))
        if timeout is None and saga.get("timeout") is not None:
            timeout = self.duration(str(saga["timeout"]), (*path, "saga", "timeout"))
        default_policy = NO_RETRY
        if cfg.retry is not None:
            try:
                default_policy = retry_policy(cfg.retry, "retry")
            except ValueError as exc:
                self.error((*path, "retry"), str(exc))
        names = frozenset(s.name for s in cfg.steps)
        steps = tuple(p for s in cfg.steps
                      if (p := self.step(s, names, default_policy)) is not None)  # fmt: skip
        compensation = tuple(p for s in cfg.compensation
                             if (p := self.step(s, frozenset(), NO_RETRY)) is not None)
        for plan in compensation:
            if plan.spec.kind != "task":
                self.error((*plan.path, "type"), f"{plan.type} cannot be a compensation step")
        index: dict[str, int] = {}
        for i, plan in enumerate(steps):
            index.setdefault(plan.name, i)
        return PipelinePlan(cfg.name, steps, index, compensation, on_error, timeout,
                            cfg.strict_templates, self.idempotency(cfg),
                            self.dead_letter(cfg))  # fmt: skip

    def dead_letter(self, cfg: PipelineConfig) -> DeadLetter | None:
        """A pipeline's `dead_letter:` block (the seed's keys), when enabled."""
        raw = cfg.dead_letter
        path = (*cfg.path, "dead_letter")
        for key in raw or {}:
            if key not in DEAD_LETTER_KEYS:
                self.error((*path, key), f"unknown dead_letter key {key!r} (known: "
                           f"{', '.join(DEAD_LETTER_KEYS)})")
        if not raw or raw.get("enabled") is not True:
            return None
        retention = DEFAULT_RETENTION
        if raw.get("retention") is not None:
            retention = self.duration(str(raw["retention"]), (*path, "retention"),
                                      "retention") or retention
        threshold = raw.get("alert_threshold")
        return DeadLetter(retention, raw.get("replayable") is not False,
                          threshold if isinstance(threshold, int) else None)

    def idempotency(self, cfg: PipelineConfig) -> IdempotencyPlan | None:
        raw = cfg.idempotency
        if raw is None:
            return None
        path = (*cfg.path, "idempotency")
        template = raw.get("key_template")
        if not isinstance(template, str) or not template.strip():
            self.error((*path, "key_template"), "idempotency needs a key_template string")
            return None
        ttl = None
        if raw.get("ttl") is not None:
            try:
                ttl = parse_duration(raw["ttl"], "ttl")
            except ValueError as exc:
                self.error((*path, "ttl"), str(exc))
        return IdempotencyPlan(template, ttl)

    def step(self, cfg: StepConfig, names: frozenset[str], default: RetryPolicy,
             *, nested: bool = False) -> StepPlan | None:  # fmt: skip
        path = cfg.path
        spec = self.step_types.find(cfg.type)
        if spec is None:
            known = ", ".join(self.step_types.types())
            self.error((*path, "type"), f"unknown step type {cfg.type!r}; known step types: "
                       f"{known}")  # fmt: skip
            return None
        ok = True
        for key_path, message in schema_problems(spec, cfg.config):
            self.error((*path, "config", *key_path), f"{cfg.type}: {message}")
            ok = False
        if ok and spec.check is not None:
            try:
                spec.check(cfg.config, Checker(self.step_types, names))
            except StepConfigError as exc:
                where = (*path, "config", *(exc.key.split(".") if exc.key else ()))
                self.error(where, f"{cfg.type}: {exc.message}")
        if nested and spec.kind != "task":
            self.error((*path, "type"), f"{cfg.type} cannot be used as a compensate step")
        policy = default
        if cfg.retry is not None:
            try:
                policy = retry_policy(cfg.retry, "retry")
            except ValueError as exc:
                self.error((*path, "retry"), str(exc))
        timeout = self.duration(cfg.timeout, (*path, "timeout"))
        on_error = self.strategy(cfg.on_error, (*path, "on_error"))
        compensate = None
        if cfg.compensate is not None:
            compensate = self.step(cfg.compensate, frozenset(), NO_RETRY, nested=True)
        if spec.kind == "flow":
            policy, timeout = NO_RETRY, None  # a flow step records its outcome; waits are durable
        rendered = {k: v for k, v in cfg.config.items() if k not in spec.raw_keys}
        return StepPlan(
            name=cfg.name, type=cfg.type, spec=spec, config=cfg.config,
            templated=has_template(rendered),
            sf=task_function(cfg.name, cfg.type, policy=policy, timeout=timeout,
                             pure=spec.pure and compensate is None),  # undone: has effects
            if_=cfg.if_, skip_if=cfg.skip_if, on_error=on_error,
            error_status=cfg.error_status, compensate=compensate, path=path,
        )


def build_plans(app: AppConfig, step_types: StepRegistry,
                names: Iterable[str] | None = None) -> dict[str, PipelinePlan]:  # fmt: skip
    """The plans of `app`'s pipelines (or of `names`); one ConfigError lists every problem."""
    builder = Builder(app, step_types)
    wanted = list(app.pipelines) if names is None else list(names)
    plans = {name: builder.pipeline(app.pipelines[name]) for name in wanted}
    builder.raise_errors()
    return plans


__all__ = ["STRATEGIES", "IdempotencyPlan", "PipelinePlan", "StepPlan", "build_plans",
           "retry_policy"]  # fmt: skip
