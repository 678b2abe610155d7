"""Persisted state machine instances: the model, the `InstanceStore` protocol, the memory store.

A store keeps instances and their transition history, in a namespace (the engine's name, so
several engines may share one database). It implements five primitives; the engine owns all
behaviour. Writes are optimistic: `update` commits only if the stored version is still the one
the caller read, and appends the history entry in the same transaction.

```python
store = open_instance_store("sqlite:///orders.db", namespace="order-processor")
store = open_instance_store("postgresql://db/app?schema=sm", namespace="order-processor")
store = open_instance_store("memory://")
```
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from treadle.statemachine.errors import InstanceExistsError


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Instance:
    """One instance of a state machine (Go: `WorkflowInstance`), plus its version.

    `version` starts at 1 and grows by one with every committed transition.
    """

    id: str
    workflow_type: str
    current_state: str
    previous_state: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0
    completed: bool = False
    error: str = ""

    def copy(self) -> Instance:
        return replace(self, data=copy.deepcopy(self.data))

    def to_json(self) -> dict[str, Any]:
        """The Go JSON shape (`workflowType`, `currentState`, `startTime`, ...) plus `version`."""
        out: dict[str, Any] = {
            "id": self.id,
            "workflowType": self.workflow_type,
            "currentState": self.current_state,
            "previousState": self.previous_state,
            "data": self.data,
            "startTime": _rfc3339(self.created_at),
            "lastUpdated": _rfc3339(self.updated_at),
            "completed": self.completed,
            "version": self.version,
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One committed change of an instance: its creation (`transition` empty) or a transition.

    `version` is the instance's version after the change; `auto` marks auto transitions.
    """

    instance_id: str
    version: int
    transition: str
    from_state: str
    to_state: str
    data: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
    auto: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "instanceId": self.instance_id,
            "version": self.version,
            "transition": self.transition,
            "fromState": self.from_state,
            "toState": self.to_state,
            "data": self.data,
            "timestamp": _rfc3339(self.at),
            "auto": self.auto,
        }


@runtime_checkable
class InstanceStore(Protocol):
    """Where instances and their history live. Every method is a single atomic operation."""

    namespace: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def insert(self, instance: Instance, entry: HistoryEntry) -> None:
        """Store a new instance and its creation entry; `InstanceExistsError` if the id is
        taken."""
        ...

    async def get(self, instance_id: str) -> Instance | None: ...

    async def list(
        self, *, workflow_type: str | None = None, state: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Instance]:
        """Instances, oldest first, optionally of one definition and/or in one state."""
        ...

    async def update(self, instance: Instance, expected_version: int,
                     entry: HistoryEntry) -> bool:  # fmt: skip
        """Replace the stored instance if its version is still `expected_version`, and append
        `entry`, atomically. False (and nothing written) if another writer got there first or
        the instance is gone."""
        ...

    async def history(self, instance_id: str) -> builtins.list[HistoryEntry]:
        """The instance's entries, oldest first."""
        ...

    async def delete(self, instance_id: str) -> bool:
        """Remove the instance and its history; whether it existed."""
        ...


class MemoryInstanceStore:
    """An `InstanceStore` in a dict: for tests and single-process use.

    Safe across threads (one lock); every value is copied in and out.
    """

    def __init__(self, namespace: str = "default") -> None:
        self.namespace = namespace
        self._instances: dict[str, Instance] = {}
        self._history: dict[str, list[HistoryEntry]] = {}
        self._lock = threading.Lock()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def insert(self, instance: Instance, entry: HistoryEntry) -> None:
        with self._lock:
            if instance.id in self._instances:
                raise InstanceExistsError(f"instance {instance.id!r} already exists")
            self._instances[instance.id] = instance.copy()
            self._history[instance.id] = [entry]

    async def get(self, instance_id: str) -> Instance | None:
        with self._lock:
            found = self._instances.get(instance_id)
            return None if found is None else found.copy()

    async def list(
        self, *, workflow_type: str | None = None, state: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Instance]:
        with self._lock:
            rows = [i.copy() for i in self._instances.values()
                    if (workflow_type is None or i.workflow_type == workflow_type)
                    and (state is None or i.current_state == state)]  # fmt: skip
        rows.sort(key=lambda i: (i.created_at, i.id))
        return rows if limit is None else rows[:limit]

    async def update(self, instance: Instance, expected_version: int,
                     entry: HistoryEntry) -> bool:  # fmt: skip
        await asyncio.sleep(0)  # let concurrent writers interleave, as a real store would
        with self._lock:
            current = self._instances.get(instance.id)
            if current is None or current.version != expected_version:
                return False
            self._instances[instance.id] = instance.copy()
            self._history.setdefault(instance.id, []).append(entry)
            return True

    async def history(self, instance_id: str) -> builtins.list[HistoryEntry]:
        with self._lock:
            return list(self._history.get(instance_id, []))

    async def delete(self, instance_id: str) -> bool:
        with self._lock:
            self._history.pop(instance_id, None)
            return self._instances.pop(instance_id, None) is not None


def open_instance_store(url: str = "memory://", *, namespace: str = "default") -> InstanceStore:
    """An instance store for a URL: `memory://`, `sqlite:///path.db`, `postgresql://...`.

    Nothing is connected until `open()` (or the first call).
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return MemoryInstanceStore(namespace)
    if scheme == "sqlite":
        from treadle.statemachine.sqlite import SQLiteInstanceStore

        return SQLiteInstanceStore(url, namespace=namespace)
    if scheme in ("postgres", "postgresql"):
        from treadle.statemachine.postgres import PostgresInstanceStore

        return PostgresInstanceStore(url, namespace=namespace)
    raise ValueError(f"no state machine store for {url!r} (memory://, sqlite:///…, "
                     "postgresql://…)")  # fmt: skip


__all__ = [
    "HistoryEntry",
    "Instance",
    "InstanceStore",
    "MemoryInstanceStore",
    "open_instance_store",
]
