"""Named locks shared by every process using a store: `async with engine.lock("name"):`.

One mechanism per backend, each released by the backend itself when a holder dies:

- PostgreSQL: `pg_advisory_lock(k1, k2)` on a connection of its own, held for the block (the
  two 32-bit keys come from blake2b of schema and name). A holder that dies ends its session:
  the lock is free at once.
- Redis: redis-py's `Lock` (`SET NX PX`, token-checked Lua release) with a TTL (the engine's
  `lease_seconds`), renewed every third of it while held. A dead holder's lock frees when the
  TTL runs out.
- SQLite: `flock` on one file per name in `<database>.locks/`; the OS releases it with the
  process.
- memory (and SQLite `:memory:`): in-process, first come first served.

A lock whose connection is lost while held (PostgreSQL) or that expired (Redis, when the
holder could not renew it for a whole TTL) may be taken by another process before the block
ends: leaving the block then raises `StoreError`, unless the block raised already.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from treadle.errors import LockTimeoutError, StoreError, require

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from redis.asyncio import Redis

    from treadle.stores.base import Store

logger = logging.getLogger("treadle.stores")


def store_lock(
    store: Store, name: str, *, timeout: float | None, ttl: float
) -> AbstractAsyncContextManager[None]:
    """The lock `name` of `store` (see the module docstring), for `async with`."""
    from treadle.stores.base import Locker

    if not name:
        raise ValueError("a lock needs a name")
    if isinstance(store, Locker):
        return store.lock(name, timeout=timeout, ttl=ttl)
    raise TypeError(f"the store {type(store).__name__} offers no locks shared between "
                    "processes (treadle.stores.base.Locker)")


def lock_key(namespace: str, name: str) -> tuple[int, int]:
    """Two signed 32-bit keys for `pg_advisory_lock(int4, int4)`: stable across processes,
    versions and machines (blake2b, not Python's salted `hash`)."""
    digest = hashlib.blake2b(f"{namespace}\x00{name}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest[:4], "big", signed=True),
            int.from_bytes(digest[4:], "big", signed=True))


# -- in-process ---------------------------------------------------------------------------------


class LocalLocks:
    """Named locks within one process, first come first served, usable from any thread and
    event loop (the memory store may be shared between threads)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}

    @asynccontextmanager
    async def hold(self, name: str, timeout: float | None) -> AsyncIterator[None]:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._mutex:
            queue = self._queues.setdefault(name, deque())
            queue.append(granted)
            if len(queue) == 1:
                granted.set_result(None)
        try:
            await asyncio.wait_for(asyncio.shield(granted), timeout)
        except TimeoutError:
            self._leave(name, granted)
            raise LockTimeoutError(name, timeout) from None
        except BaseException:
            self._leave(name, granted)
            raise
        try:
            yield
        finally:
            self._leave(name, granted)

    def _leave(self, name: str, waiter: asyncio.Future[None]) -> None:
        """Leave the queue; the head of the queue is the holder, so the next one gets it."""
        with self._mutex:
            queue = self._queues[name]
            was_holder = queue[0] is waiter
            queue.remove(waiter)
            if not queue:
                del self._queues[name]
            elif was_holder:
                _grant(queue[0])


def _grant(waiter: asyncio.Future[None]) -> None:
    def give() -> None:
        if not waiter.done():
            waiter.set_result(None)

    with contextlib.suppress(RuntimeError):  # its loop is closed: it will never ask again
        waiter.get_loop().call_soon_threadsafe(give)


# -- SQLite: a file per name --------------------------------------------------------------------


@asynccontextmanager
async def file_lock(database: str, name: str, timeout: float | None) -> AsyncIterator[None]:
    """`flock` on `<database>.locks/<hash of name>.lock`, polled without blocking (so that
    waiting never ties up a thread and stays cancellable); files are kept for reuse."""
    try:
        import fcntl
    except ImportError as exc:  # pragma: no cover - Windows
        raise StoreError("locks on a SQLite store need fcntl.flock (POSIX systems)") from exc
    folder = f"{database}.locks"
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise LockTimeoutError(name, timeout) from None
                await asyncio.sleep(delay if left is None else min(delay, left))
                delay = min(delay * 2, 0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- PostgreSQL: a session advisory lock ---------------------------------------------------------


@asynccontextmanager
async def advisory_lock(
    connect: Callable[[], Awaitable[AsyncConnection[Any]]], schema: str | None, name: str,
    timeout: float | None, describe: str,
) -> AsyncIterator[None]:
    """Hold `pg_advisory_lock` on a connection opened for the purpose (so no pooled connection
    ever carries a session lock, and closing it always releases the lock)."""
    psycopg = require("psycopg", "postgres")
    try:
        conn = await connect()
    except psycopg.Error as exc:
        raise StoreError(f"{describe}: cannot connect for lock {name!r}: {exc}") from exc
    try:
        try:
            if schema is None:
                cur = await conn.execute("SELECT current_schema()")
                found = await cur.fetchone()
                schema = str(found[0]) if found else ""
            k1, k2 = lock_key(schema, name)
            if timeout is not None and timeout < 0.001:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)",
                                         (k1, k2))
                found = await cur.fetchone()
                if not (found and found[0]):
                    raise LockTimeoutError(name, timeout)
            else:
                await conn.execute("SELECT set_config('lock_timeout', %s, false)",
                                   ("0" if timeout is None else f"{int(timeout * 1000)}ms",))
                try:
                    await conn.execute("SELECT pg_advisory_lock(%s::int4, %s::int4)", (k1, k2))
                except psycopg.errors.LockNotAvailable:
                    raise LockTimeoutError(name, timeout) from None
        except psycopg.Error as exc:
            raise StoreError(f"{describe}: lock {name!r}: {exc}") from exc
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            held = False
            with contextlib.suppress(psycopg.Error):
                cur = await conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)",
                                         (k1, k2))
                found = await cur.fetchone()
                held = bool(found and found[0])
            if not held and not failed:
                raise StoreError(f"{describe}: lock {name!r} was lost while held (its "
                                 "connection ended): another process may have taken it")
    finally:
        await conn.close()


# -- Redis: redis-py's Lock, renewed while held -------------------------------------------------


@asynccontextmanager
async def redis_lock(
    client: Redis, key: str, name: str, timeout: float | None, ttl: float, describe: str,
) -> AsyncIterator[None]:
    """redis-py's `Lock` with TTL `ttl`, renewed (reset to `ttl`) every `ttl / 3` while held."""
    exceptions = require("redis.exceptions", "redis")
    lock = client.lock(key, timeout=ttl, sleep=0.02, blocking=True,
                       blocking_timeout=timeout, thread_local=False)
    try:
        acquired = await lock.acquire()
    except exceptions.RedisError as exc:
        raise StoreError(f"{describe}: lock {name!r}: {exc}") from exc
    if not acquired:
        raise LockTimeoutError(name, timeout)

    async def keep() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await lock.reacquire()
            except exceptions.LockNotOwnedError:
                logger.error("lock %r expired while held: another process may take it", name)
                return
            except exceptions.RedisError as exc:
                logger.warning("cannot renew lock %r (will retry): %s", name, exc)

    keeper = asyncio.get_running_loop().create_task(keep(), name=f"treadle:lock:{name}")
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        try:
            await lock.release()
        except exceptions.LockError as exc:
            if not failed:
                raise StoreError(f"{describe}: lock {name!r} expired while held (not renewed "
                                 "within its TTL): another process may have taken it") from exc
        except exceptions.RedisError as exc:
            if not failed:
                raise StoreError(f"{describe}: cannot release lock {name!r} (it expires "
                                 f"within {ttl}s): {exc}") from exc
