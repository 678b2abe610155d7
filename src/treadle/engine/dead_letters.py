"""Dead letters: executions that failed for good, kept for inspection and replay.

A workflow declared with `dead_letter=True` (or a `DeadLetter` with its own retention), or a
YAML pipeline with `dead_letter: {enabled: true, retention: 7d}`, sends every execution that
fails after its retries to the dead-letter queue: a store record (kind `dlq`) holding the
workflow, the execution's input (a pipeline's trigger data), the error, the step that failed
and when. The record is written before the failure is journaled, so a crash in between writes
it again on resume, never loses it.

`engine.dlq` lists, gets, replays (a new execution with the same input, linked by
`metadata.dlq_of`; the letter leaves the queue) and discards letters; letters older than their
retention are pruned by `engine.dlq.prune()` (and by `treadle executions prune`).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from treadle.errors import TreadleError
from treadle.journal import Page
from treadle.stores.base import Record, RecordQuery

if TYPE_CHECKING:
    from treadle.engine.engine import Engine, Handle
    from treadle.engine.run import Run

RECORD_KIND = "dlq"
DEFAULT_RETENTION = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Dead-letter options of a workflow: keep failed executions for `retention` seconds.

    `replayable` False keeps letters for inspection only. `alert_threshold` marks a queue
    deeper than that as alerting in listings (`DeadLetterQueue.stats`).
    """

    retention: float = DEFAULT_RETENTION
    replayable: bool = True
    alert_threshold: int | None = None

    def __post_init__(self) -> None:
        if self.retention <= 0:
            raise ValueError("dead-letter retention must be > 0 seconds")


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter: a failed execution's input and error."""

    id: str
    workflow: str
    input: list[Any]
    error: dict[str, Any]
    failed_step: str | None
    failed_at: float
    expires_at: float | None
    tenant_id: str | None
    replayable: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "execution_id": self.id, "workflow": self.workflow,
                "input": self.input, "error": self.error, "failed_step": self.failed_step,
                "failed_at": self.failed_at, "expires_at": self.expires_at,
                "tenant_id": self.tenant_id, "replayable": self.replayable}

    @classmethod
    def from_record(cls, record: Record) -> Letter:
        data = record.data
        return cls(str(data["execution_id"]), str(data["workflow"]), list(data["input"]),
                   dict(data["error"]), data.get("failed_step"), record.created_at,
                   record.expires_at, record.tenant_id, bool(data.get("replayable", True)))


def letter_key(workflow: str, execution_id: str) -> str:
    return f"{workflow}/{execution_id}"


async def post(run: Run, options: DeadLetter, error: Mapping[str, Any]) -> None:
    """Put a failing execution in the queue (idempotent: the key is its id)."""
    now = run.engine.clock.time()
    data = {"execution_id": run.id, "workflow": run.wf.name, "input": run.args,
            "error": {k: v for k, v in error.items() if k != "traceback"},
            "failed_step": run.failed_step, "replayable": options.replayable}
    await run.store.put_record(Record(RECORD_KIND, letter_key(run.wf.name, run.id), data, now,
                                      run.tenant_id, now + options.retention))


class DeadLetterQueue:
    """`engine.dlq`: the dead letters of every workflow in the engine's store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def list(self, workflow: str | None = None, *, tenant_id: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> Page[Letter]:
        """Letters (of `workflow`), newest first, cursor-paginated; expired ones are hidden."""
        await self.engine.open()
        page = await self.engine.store.list_records(RecordQuery(
            RECORD_KIND, tenant_id=tenant_id, limit=limit, cursor=cursor,
            key_prefix=None if workflow is None else f"{workflow}/"))
        now = self.engine.clock.time()
        letters = [letter for letter in map(Letter.from_record, page.items)
                   if (workflow is None or letter.workflow == workflow)
                   and (letter.expires_at is None or letter.expires_at > now)]
        return Page(letters, page.next_cursor)

    async def get(self, workflow: str, execution_id: str) -> Letter | None:
        await self.engine.open()
        record = await self.engine.store.get_record(RECORD_KIND,
                                                    letter_key(workflow, execution_id))
        if record is None:
            return None
        letter = Letter.from_record(record)
        expired = letter.expires_at is not None and letter.expires_at <= self.engine.clock.time()
        return None if expired else letter

    async def depth(self, workflow: str | None = None, *, tenant_id: str | None = None) -> int:
        """How many letters wait (of `workflow`)."""
        total, cursor = 0, None
        while True:
            page = await self.list(workflow, tenant_id=tenant_id, limit=1000, cursor=cursor)
            total += len(page.items)
            if page.next_cursor is None:
                return total
            cursor = page.next_cursor

    async def replay(self, workflow: str, execution_id: str, *,
                     by: str | None = None) -> Handle:
        """Start the letter's workflow again with its input; the letter leaves the queue."""
        letter = await self.get(workflow, execution_id)
        if letter is None:
            raise KeyError(f"no dead letter {execution_id} of {workflow!r}")
        if not letter.replayable:
            raise TreadleError(f"dead letters of {workflow!r} are not replayable")
        metadata: dict[str, Any] = {"dlq_of": letter.id, "replay_of": letter.id}
        if by is not None:
            metadata["replayed_by"] = by
        handle = await self.engine.start(letter.workflow, *letter.input, metadata=metadata,
                                         tenant_id=letter.tenant_id)
        await self.engine.store.delete_record(RECORD_KIND, letter_key(workflow, execution_id))
        return handle

    async def replay_all(self, workflow: str, *, tenant_id: str | None = None,
                         by: str | None = None) -> dict[str, Handle]:
        """Replay every letter of `workflow` (of one tenant when given), oldest first.

        Returns the new executions by the id of the letter (the failed execution) they replay.
        """
        letters: builtins.list[Letter] = []
        cursor = None
        while True:
            page = await self.list(workflow, tenant_id=tenant_id, limit=1000, cursor=cursor)
            letters.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return {letter.id: await self.replay(workflow, letter.id, by=by)
                for letter in reversed(letters)}

    async def discard(self, workflow: str, execution_id: str) -> bool:
        """Remove a letter without replaying it."""
        await self.engine.open()
        return await self.engine.store.delete_record(RECORD_KIND,
                                                     letter_key(workflow, execution_id))

    async def prune(self) -> int:
        """Delete letters past their retention."""
        await self.engine.open()
        return await self.engine.store.prune_records(self.engine.clock.time(), RECORD_KIND)
