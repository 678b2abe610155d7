"""The Redis store: every write is one Lua script, so checks and writes are atomic.

URL: `redis://host:6379/0?prefix=treadle:` (`rediss://` for TLS). `prefix` (default
`treadle:`) starts every key, so several Treadle installations can share one database;
`pool_max` (default 50) connections are shared by all callers, who wait up to `pool_timeout`
(default 30 s) for one; other query options go to redis-py unchanged.

Durability is Redis's: without AOF, a restart loses everything since the last snapshot (see
docs/stores.md). Scripts touch keys they derive from the prefix, so the store needs a
standalone (or Sentinel) Redis, not Redis Cluster.

Keys, under the prefix:

    x:<id>            hash: the summary row (+ `ck` listing key, `qk` claim key)
    e:<id>            list: the journal, one JSON `[seq, type, data, created_at]` per event
    i:<id>            zset: the inbox, score = signal id, member = `<id>:<JSON [name, payload, at]>`
    idem              hash: idempotency key -> execution id
    p:<queue>         set: pending executions of a queue (its depth)
    s:<queue>         zset: executions of a queue by started_at (start-rate limits)
    sig               counter: signal ids
    l:all l:wf:<w> l:st:<s> l:pa:<p> l:te:<t>   listing zsets (lex order of `ck`)
    c:free c:ready c:signalled                  claim zsets of free executions (lex order of `qk`)
    c:timers c:leases fin                       scored by wake_at, lease_until, finished_at
    r:<kind>          hash: records of a kind, key -> JSON `[tenant, data, created, expires]`
    wake              pub/sub channel of wake-ups (`Notifier`), published by the scripts
    lock:<name>       locks (`Locker`: redis-py's Lock, see treadle.stores.locks)

`ck` is `<created_at as sortable hex>:<id>` (newest first = reverse lex order); `qk` is
`<priority as sortable hex><created_at as sortable hex>:<id>` (claim order = lex order).
"""

from __future__ import annotations

import asyncio
import functools
import json
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from treadle.errors import JournalConflictError, StoreError, require
from treadle.journal import Event, ExecutionStatus, ExecutionSummary, Page, Signal
from treadle.stores.base import (
    ClaimLimits,
    Events,
    ListQuery,
    Record,
    RecordQuery,
    Records,
    RowUpdate,
    Signals,
    Summaries,
    decode_cursor,
    paginate,
    select_records,
)
from treadle.stores.locks import redis_lock
from treadle.stores.notify import PushListener, listen_redis

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_PRUNE_BATCH = 500
_OPTIONS = ("prefix", "pool_max", "pool_timeout")
_SCAN_CHUNK = 200

# Shared by every script: ARGV[1] is the key prefix. `reindex` recomputes an execution's claim
# and retention memberships from its row and inbox; every script that changes those calls it.
_PRELUDE = """
local P = ARGV[1]
local ACTIVE = {pending = true, running = true, suspended = true}
local DONE = {completed = true, failed = true, cancelled = true}
local function opt(s) if s == '' then return nil end return string.sub(s, 2) end
local function publish(kind, at, key)
  redis.call('PUBLISH', P .. 'wake', kind .. ':' .. (at or '') .. ':' .. key)
end
-- Tell workers when an execution nobody holds is (or will become, at wake_at) claimable.
local function wake(id)
  local f = redis.call('HMGET', P .. 'x:' .. id, 'status', 'owner', 'wake_at', 'queue')
  if not f[1] or f[2] or not ACTIVE[f[1]] then return end
  if f[1] == 'suspended' and not f[3] and redis.call('ZCARD', P .. 'i:' .. id) == 0 then return end
  publish('work', f[3], f[4])
end
local function is_due(id, status, wake, now)
  if wake and tonumber(wake) <= now then return true end
  if status ~= 'suspended' then return not wake end
  return redis.call('ZCARD', P .. 'i:' .. id) > 0
end
local function reindex(id)
  local f = redis.call('HMGET', P .. 'x:' .. id,
                       'status', 'owner', 'lease_until', 'wake_at', 'qk', 'finished_at', 'queue')
  local status, owner, lease, wake, qk, fin = f[1], f[2], f[3], f[4], f[5], f[6]
  if not status then return end
  if status == 'pending' then
    redis.call('SADD', P .. 'p:' .. f[7], id)
  else
    redis.call('SREM', P .. 'p:' .. f[7], id)
  end
  for _, set in ipairs({'c:free', 'c:ready', 'c:signalled', 'c:timers', 'c:leases'}) do
    redis.call('ZREM', P .. set, qk)
  end
  if not ACTIVE[status] then
    if fin then redis.call('ZADD', P .. 'fin', fin, id) else redis.call('ZREM', P .. 'fin', id) end
    return
  end
  redis.call('ZREM', P .. 'fin', id)
  if owner then
    redis.call('ZADD', P .. 'c:leases', lease or '-inf', qk)
    return
  end
  redis.call('ZADD', P .. 'c:free', 0, qk)
  if wake then
    redis.call('ZADD', P .. 'c:timers', wake, qk)
  elseif status ~= 'suspended' then
    redis.call('ZADD', P .. 'c:ready', 0, qk)
  end
  if status == 'suspended' and redis.call('ZCARD', P .. 'i:' .. id) > 0 then
    redis.call('ZADD', P .. 'c:signalled', 0, qk)
  end
end
"""

# ARGV: prefix, id, idempotency key (opt), field count, field/value pairs..., events...
_CREATE = """
local id, idem = ARGV[2], opt(ARGV[3])
if idem then
  local existing = redis.call('HGET', P .. 'idem', idem)
  if existing then return {0, redis.call('HGETALL', P .. 'x:' .. existing)} end
end
local k = P .. 'x:' .. id
if redis.call('EXISTS', k) == 1 then return {-1} end
local n = tonumber(ARGV[4])
redis.call('HSET', k, unpack(ARGV, 5, 4 + 2 * n))
if #ARGV > 4 + 2 * n then redis.call('RPUSH', P .. 'e:' .. id, unpack(ARGV, 5 + 2 * n)) end
if idem then redis.call('HSET', P .. 'idem', idem, id) end
local f = redis.call('HMGET', k, 'ck', 'workflow', 'status', 'parent_id', 'tenant_id',
                     'started_at', 'queue')
if f[6] then redis.call('ZADD', P .. 's:' .. f[7], f[6], id) end
redis.call('ZADD', P .. 'l:all', 0, f[1])
redis.call('ZADD', P .. 'l:wf:' .. f[2], 0, f[1])
redis.call('ZADD', P .. 'l:st:' .. f[3], 0, f[1])
if f[4] then redis.call('ZADD', P .. 'l:pa:' .. f[4], 0, f[1]) end
if f[5] then redis.call('ZADD', P .. 'l:te:' .. f[5], 0, f[1]) end
reindex(id)
wake(id)
return {1}
"""

# ARGV: prefix, id, expected seq, owner (opt), has update, status, wake_at (opt),
# finished_at (opt), error (opt), updated_at (opt), signal (opt), last seq, events...
_APPEND = """
local id = ARGV[2]
local k = P .. 'x:' .. id
local cur = redis.call('HMGET', k, 'last_seq', 'owner', 'status', 'ck')
if not cur[1] or cur[1] ~= ARGV[3] or (cur[2] or nil) ~= opt(ARGV[4]) then return 0 end
if #ARGV >= 13 then
  redis.call('RPUSH', P .. 'e:' .. id, unpack(ARGV, 13))
  redis.call('HSET', k, 'last_seq', ARGV[12])
end
local updated = opt(ARGV[10])
if updated then redis.call('HSET', k, 'updated_at', updated) end
local changed = false
if ARGV[5] == '1' then
  local status = ARGV[6]
  redis.call('HSET', k, 'status', status)
  for i, field in ipairs({'wake_at', 'finished_at'}) do
    local value = opt(ARGV[6 + i])
    if value then redis.call('HSET', k, field, value) else redis.call('HDEL', k, field) end
  end
  local err = opt(ARGV[9])
  if err then redis.call('HSET', k, 'error', err) end
  if status ~= cur[3] then
    redis.call('ZREM', P .. 'l:st:' .. cur[3], cur[4])
    redis.call('ZADD', P .. 'l:st:' .. status, 0, cur[4])
    if DONE[status] and not DONE[cur[3]] then publish('done', nil, id) end
  end
  changed = true
end
local signal = opt(ARGV[11])
if signal then
  redis.call('ZREMRANGEBYSCORE', P .. 'i:' .. id, signal, signal)
  changed = true
end
if changed then reindex(id) end
return 1
"""

# ARGV: prefix, owner, now, lease_until, limit, due only, execution id (opt), queues (opt JSON),
# limits (opt JSON {qc, wc, pc, qr}), start of the rate window
_CLAIM = """
local owner, now, lease, limit = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local due_only, target, queues = ARGV[6] == '1', opt(ARGV[7]), nil
if opt(ARGV[8]) then
  queues = {}
  for _, q in ipairs(cjson.decode(opt(ARGV[8]))) do queues[q] = true end
end
local limits = opt(ARGV[9]) and cjson.decode(opt(ARGV[9]))
local want = limits and math.max(limit * 10, 500) or limit
local function in_queues(id)
  return not queues or queues[redis.call('HGET', P .. 'x:' .. id, 'queue')] == true
end
local function eligible(id)
  local f = redis.call('HMGET', P .. 'x:' .. id, 'status', 'owner', 'lease_until', 'wake_at')
  if not f[1] or not ACTIVE[f[1]] then return false end
  if f[2] and f[3] and tonumber(f[3]) >= now then return false end
  if due_only and not is_due(id, f[1], f[4], now) then return false end
  return in_queues(id)
end
local ids = {}
if target then
  if eligible(target) then ids[1] = target end
else
  local candidates, seen = {}, {}
  local function add(qk)
    if not seen[qk] then seen[qk] = true; candidates[#candidates + 1] = qk end
  end
  local function walk(set)
    local got, start = 0, 0
    while got < want do
      local chunk = redis.call('ZRANGE', P .. set, start, start + 99)
      if #chunk == 0 then return end
      for _, qk in ipairs(chunk) do
        if got < want and in_queues(string.sub(qk, 34)) then add(qk); got = got + 1 end
      end
      start = start + 100
    end
  end
  local function upto(set, max)
    for _, qk in ipairs(redis.call('ZRANGEBYSCORE', P .. set, '-inf', max, 'LIMIT', 0, 1000)) do
      add(qk)
    end
  end
  if due_only then
    walk('c:ready'); walk('c:signalled'); upto('c:timers', ARGV[3])
  else
    walk('c:free')
  end
  upto('c:leases', '(' .. ARGV[3])
  table.sort(candidates)
  for _, qk in ipairs(candidates) do
    if #ids >= want then break end
    local id = string.sub(qk, 34)
    if eligible(id) then ids[#ids + 1] = id end
  end
end
local picked = {}
if not limits then
  for i = 1, math.min(limit, #ids) do picked[i] = ids[i] end
elseif #ids > 0 then
  local per_q, per_w, per_p, started = {}, {}, {}, {}
  local function bump(t, key) t[key] = (t[key] or 0) + 1 end
  for _, qk in ipairs(redis.call('ZRANGEBYSCORE', P .. 'c:leases', ARGV[3], '+inf')) do
    local f = redis.call('HMGET', P .. 'x:' .. string.sub(qk, 34),
                         'status', 'queue', 'workflow', 'partition_key')
    if f[1] == 'pending' or f[1] == 'running' then
      bump(per_q, f[2]); bump(per_w, f[3])
      if f[4] then bump(per_p, f[2] .. '/' .. string.len(f[2]) .. '/' .. f[4]) end
    end
  end
  for q, _ in pairs(limits.qr) do
    started[q] = redis.call('ZCOUNT', P .. 's:' .. q, ARGV[10], '+inf')
  end
  for _, id in ipairs(ids) do
    if #picked >= limit then break end
    local f = redis.call('HMGET', P .. 'x:' .. id, 'queue', 'workflow', 'partition_key')
    local q, w = f[1], f[2]
    local p = f[3] and (q .. '/' .. string.len(q) .. '/' .. f[3])
    if not (limits.qc[q] and (per_q[q] or 0) >= limits.qc[q]
            or limits.wc[w] and (per_w[w] or 0) >= limits.wc[w]
            or p and limits.pc[q] and (per_p[p] or 0) >= limits.pc[q]
            or limits.qr[q] and (started[q] or 0) >= limits.qr[q][1]) then
      picked[#picked + 1] = id
      bump(per_q, q); bump(per_w, w); bump(started, q)
      if p then bump(per_p, p) end
    end
  end
end
local out = {}
for i, id in ipairs(picked) do
  local k = P .. 'x:' .. id
  local f = redis.call('HMGET', k, 'status', 'started_at', 'queue', 'ck')
  redis.call('HSET', k, 'owner', owner, 'lease_until', lease)
  if not f[2] then
    redis.call('HSET', k, 'started_at', ARGV[3])
    redis.call('ZADD', P .. 's:' .. f[3], ARGV[3], id)
  end
  if f[1] == 'pending' then
    redis.call('HSET', k, 'status', 'running')
    redis.call('ZREM', P .. 'l:st:pending', f[4])
    redis.call('ZADD', P .. 'l:st:running', 0, f[4])
  end
  reindex(id)
  out[i] = redis.call('HGETALL', k)
end
return out
"""

# ARGV: prefix, owner, lease_until, ids...
_RENEW = """
local n = 0
for i = 4, #ARGV do
  local k = P .. 'x:' .. ARGV[i]
  if redis.call('HGET', k, 'owner') == ARGV[2] then
    redis.call('HSET', k, 'lease_until', ARGV[3])
    reindex(ARGV[i])
    n = n + 1
  end
end
return n
"""

# ARGV: prefix, id, owner
_RELEASE = """
local k = P .. 'x:' .. ARGV[2]
if redis.call('HGET', k, 'owner') == ARGV[3] then
  redis.call('HDEL', k, 'owner', 'lease_until')
  reindex(ARGV[2])
  wake(ARGV[2])
end
return 0
"""

# ARGV: prefix, id, JSON [name, payload, created_at]
_SIGNAL = """
if redis.call('EXISTS', P .. 'x:' .. ARGV[2]) == 0 then return 0 end
local sid = redis.call('INCR', P .. 'sig')
redis.call('ZADD', P .. 'i:' .. ARGV[2], sid, sid .. ':' .. ARGV[3])
reindex(ARGV[2])
publish('signal', nil, ARGV[2])
if redis.call('HGET', P .. 'x:' .. ARGV[2], 'status') == 'suspended' then wake(ARGV[2]) end
return sid
"""

# ARGV: prefix, now, queues (opt JSON). Read-only. The earliest timer of a free execution or
# lease end after now, in the queues; when the first 100 of a set are all of other queues, the
# 100th's time (earlier than the true answer, which is allowed).
_NEXT_WAKE = """
local queues = nil
if opt(ARGV[3]) then
  queues = {}
  for _, q in ipairs(cjson.decode(opt(ARGV[3]))) do queues[q] = true end
end
local best, text = nil, false
for set, low in pairs({['c:timers'] = '(' .. ARGV[2], ['c:leases'] = ARGV[2]}) do
  local found = redis.call('ZRANGEBYSCORE', P .. set, low, '+inf', 'WITHSCORES', 'LIMIT', 0, 100)
  for i = 1, #found, 2 do
    local score = tonumber(found[i + 1])
    if best and score >= best then break end
    if i + 1 == 200 or not queues
       or queues[redis.call('HGET', P .. 'x:' .. string.sub(found[i], 34), 'queue')] then
      best, text = score, found[i + 1]
      break
    end
  end
end
return text
"""

# ARGV: prefix, finished before, batch size
_PRUNE = """
local ids = redis.call('ZRANGEBYSCORE', P .. 'fin', '-inf', '(' .. ARGV[2],
                       'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local k = P .. 'x:' .. id
  local f = redis.call('HMGET', k, 'ck', 'workflow', 'status', 'parent_id', 'tenant_id',
                       'idempotency_key', 'queue')
  redis.call('ZREM', P .. 's:' .. f[7], id)
  redis.call('SREM', P .. 'p:' .. f[7], id)
  redis.call('ZREM', P .. 'l:all', f[1])
  redis.call('ZREM', P .. 'l:wf:' .. f[2], f[1])
  redis.call('ZREM', P .. 'l:st:' .. f[3], f[1])
  if f[4] then redis.call('ZREM', P .. 'l:pa:' .. f[4], f[1]) end
  if f[5] then redis.call('ZREM', P .. 'l:te:' .. f[5], f[1]) end
  if f[6] and redis.call('HGET', P .. 'idem', f[6]) == id then
    redis.call('HDEL', P .. 'idem', f[6])
  end
  redis.call('DEL', k, P .. 'e:' .. id, P .. 'i:' .. id)
  redis.call('ZREM', P .. 'fin', id)
end
return #ids
"""


@asynccontextmanager
async def _kept_cancellation() -> AsyncIterator[None]:
    """Re-raise a cancellation that redis-py swallowed.

    redis-py waits for a pooled connection (and for replies) under timeouts that, on Python
    3.11, can swallow a cancellation arriving as the wait ends (CPython gh-86296): the
    cancelled caller would carry on as if nothing happened.
    """
    task = asyncio.current_task()
    cancels = 0 if task is None else task.cancelling()
    yield
    if task is not None and task.cancelling() > cancels:
        raise asyncio.CancelledError()


def redis_options(url: str) -> tuple[str, dict[str, str]]:
    """Split a URL into what redis-py gets and Treadle's own options."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _OPTIONS:
            ours[key] = value
        else:
            theirs.append((key, value))
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(theirs), ""))
    return client_url, ours


class RedisStore:
    """A `Store` in Redis (redis.asyncio), all writes as Lua scripts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client_url, options = redis_options(url)
        self.prefix = options.get("prefix", "treadle:")
        self._max_size = int(options.get("pool_max", "50"))
        self._timeout = float(options.get("pool_timeout", "30"))
        if self._max_size < 1:
            raise ValueError("pool_max must be at least 1")
        self._client: Redis | None = None
        self._opening = asyncio.Lock()
        self._scripts: dict[str, AsyncScript] = {}
        self._error: type[Exception] = Exception

    async def open(self) -> None:
        async with self._opening:
            if self._client is None:
                await self._open()

    async def _open(self) -> None:
        module = require("redis.asyncio", "redis")
        self._error = require("redis.exceptions", "redis").RedisError
        # A blocking pool: callers beyond `pool_max` wait for a connection, never fail.
        pool = module.BlockingConnectionPool.from_url(
            self._client_url, max_connections=self._max_size, timeout=self._timeout,
            decode_responses=True)
        client: Redis = module.Redis.from_pool(pool)
        try:
            await client.ping()
        except self._error as exc:
            await client.aclose()
            raise StoreError(f"cannot open {self._redacted()}: {exc}") from exc
        self._scripts = {
            name: client.register_script(_PRELUDE + body)
            for name, body in (("create", _CREATE), ("append", _APPEND), ("claim", _CLAIM),
                               ("renew", _RENEW), ("release", _RELEASE),
                               ("signal", _SIGNAL), ("prune", _PRUNE),
                               ("next_wake", _NEXT_WAKE))
        }
        self._client = client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _redis(self) -> Redis:
        if self._client is None:
            await self.open()
        assert self._client is not None
        return self._client

    async def _run(self, script: str, *args: Any) -> Any:
        await self._redis()
        try:
            async with _kept_cancellation():
                return await self._scripts[script](args=[self.prefix, *args])
        except self._error as exc:
            raise StoreError(f"{self._redacted()}: {exc}") from exc

    def _redacted(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"

    # -- executions ---------------------------------------------------------------------------

    async def create(
        self, row: ExecutionSummary, events: Sequence[Event]
    ) -> tuple[ExecutionSummary, bool]:
        last_seq = events[-1].seq if events else 0
        fields = _fields(row, last_seq)
        result = await self._run("create", row.id, _opt(row.idempotency_key), len(fields) // 2,
                                 *fields, *(_event(ev) for ev in events))
        if result[0] == -1:
            raise JournalConflictError(f"execution {row.id} already exists")
        if result[0] == 0:
            return _row(result[1]), False
        return _row(fields), True

    async def append(
        self,
        execution_id: str,
        events: Sequence[Event],
        *,
        expected_seq: int,
        owner: str | None,
        update: RowUpdate | None = None,
        consume_signal: int | None = None,
    ) -> None:
        if events and (events[0].seq != expected_seq + 1
                       or events[-1].seq != expected_seq + len(events)):
            raise JournalConflictError(f"event seqs do not follow seq {expected_seq}")
        result = await self._run(
            "append", execution_id, expected_seq, _opt(owner), int(update is not None),
            "" if update is None else str(update.status),
            _opt(None if update is None else update.wake_at),
            _opt(None if update is None else update.finished_at),
            _opt(None if update is None else update.error),
            _opt(events[-1].created_at if events else None), _opt(consume_signal),
            events[-1].seq if events else expected_seq, *(_event(ev) for ev in events),
        )
        if result != 1:
            raise JournalConflictError(
                f"execution {execution_id}: journal is not at seq {expected_seq} "
                f"owned by {owner!r}"
            )

    async def get(self, execution_id: str) -> ExecutionSummary | None:
        client = await self._redis()
        async with _kept_cancellation():
            found = cast(dict[str, str], await client.hgetall(self.prefix + "x:" + execution_id))
        return _row(found) if found else None

    async def events(
        self, execution_id: str, *, after: int = 0, limit: int | None = None
    ) -> Events:
        if limit is not None and limit <= 0:
            return []
        client = await self._redis()
        end = -1 if limit is None else after + limit - 1
        async with _kept_cancellation():
            found = cast(list[str], await client.lrange(self.prefix + "e:" + execution_id,
                                                        after, end))
        events: Events = []
        for text in found:
            seq, kind, data, created_at = json.loads(text)
            events.append(Event(execution_id, seq, kind, data, created_at))
        return events

    async def list(self, query: ListQuery) -> Page[ExecutionSummary]:
        client = await self._redis()
        key, checks = "l:all", _checks(query)
        for name, value in (("pa", query.parent_id), ("wf", query.workflow),
                            ("te", query.tenant_id), ("st", query.status)):
            if value is not None:
                key = f"l:{name}:{value}"
                break
        high = "+"
        if query.created_before is not None:
            high = "(" + _sortable(query.created_before)
        if query.cursor:
            created, ident = decode_cursor(query.cursor)
            bound = "(" + _sortable(created) + ":" + ident
            high = bound if high == "+" else min(high, bound)
        low = "-" if query.created_after is None else "[" + _sortable(query.created_after)
        rows: Summaries = []
        while len(rows) <= query.limit:
            async with _kept_cancellation():
                members = cast(list[str], await client.zrevrangebylex(
                    self.prefix + key, high, low, 0, _SCAN_CHUNK))
            if not members:
                break
            async with _kept_cancellation(), client.pipeline(transaction=False) as pipe:
                for member in members:
                    pipe.hgetall(self.prefix + "x:" + member[17:])
                found = await pipe.execute()
            rows.extend(r for r in (_row(f) for f in found if f) if checks(r))
            high = "(" + members[-1]
        return paginate(rows, query.limit)

    # -- leases -------------------------------------------------------------------------------

    async def claim(
        self,
        owner: str,
        *,
        now: float,
        lease_until: float,
        limit: int,
        execution_id: str | None = None,
        due_only: bool = False,
        queues: Sequence[str] | None = None,
        limits: ClaimLimits | None = None,
    ) -> Summaries:
        if limit <= 0:
            return []
        encoded_limits = None if limits is None else _dumps({
            "qc": dict(limits.queue_concurrency),
            "wc": dict(limits.workflow_concurrency),
            "pc": dict(limits.partition_concurrency),
            "qr": {q: list(rate) for q, rate in limits.queue_rate.items()},
        })
        since = now - (limits.rate_window if limits is not None else 0.0)
        found = await self._run("claim", owner, repr(float(now)), repr(float(lease_until)),
                                limit, int(due_only), _opt(execution_id),
                                _opt(None if queues is None else _dumps(list(queues))),
                                _opt(encoded_limits), repr(float(since)))
        return [_row(flat) for flat in found]

    async def depth(self, queue: str) -> int:
        client = await self._redis()
        async with _kept_cancellation():
            return int(await client.scard(self.prefix + "p:" + queue))

    async def renew(self, owner: str, execution_ids: Sequence[str], lease_until: float) -> int:
        if not execution_ids:
            return 0
        return int(await self._run("renew", owner, repr(float(lease_until)), *execution_ids))

    async def release(self, execution_id: str, owner: str) -> None:
        await self._run("release", execution_id, owner)

    # -- signals and retention ----------------------------------------------------------------

    async def send_signal(self, execution_id: str, name: str, payload: Any, now: float) -> int:
        found = await self._run("signal", execution_id, _dumps([name, payload, now]))
        if not found:
            raise JournalConflictError(f"execution {execution_id} does not exist")
        return int(found)

    async def signals(self, execution_id: str) -> Signals:
        client = await self._redis()
        async with _kept_cancellation():
            members = cast(list[str], await client.zrange(self.prefix + "i:" + execution_id,
                                                          0, -1))
        found: Signals = []
        for member in members:
            sid, _, rest = member.partition(":")
            name, payload, created_at = json.loads(rest)
            found.append(Signal(int(sid), execution_id, name, payload, created_at))
        return found

    async def prune(self, finished_before: float) -> int:
        total = 0
        while True:
            count = int(await self._run("prune", repr(float(finished_before)), _PRUNE_BATCH))
            total += count
            if count < _PRUNE_BATCH:
                return total

    # -- wake-ups and locks -------------------------------------------------------------------

    def listen(self) -> PushListener:
        return PushListener(self._redacted(), functools.partial(
            listen_redis, self._client_url, self.prefix + "wake", self._timeout))

    async def next_wake(self, queues: Sequence[str] | None, now: float) -> float | None:
        found = await self._run("next_wake", repr(float(now)),
                                _opt(None if queues is None else _dumps(list(queues))))
        return None if found is None else float(found)

    @asynccontextmanager
    async def lock(self, name: str, *, timeout: float | None, ttl: float) -> AsyncIterator[None]:
        async with redis_lock(await self._redis(), self.prefix + "lock:" + name, name, timeout,
                              ttl, self._redacted()):
            yield

    # -- records ------------------------------------------------------------------------------

    async def put_record(self, record: Record, *, create_only: bool = False) -> bool:
        client = await self._redis()
        encoded = _dumps([record.tenant_id, record.data, record.created_at, record.expires_at])
        name = self.prefix + "r:" + record.kind
        async with _kept_cancellation():
            if create_only:
                return bool(await client.hsetnx(name, record.key, encoded))
            await client.hset(name, record.key, encoded)
        return True

    async def get_record(self, kind: str, key: str) -> Record | None:
        client = await self._redis()
        async with _kept_cancellation():
            found = cast(str | None, await client.hget(self.prefix + "r:" + kind, key))
        return None if found is None else _record(kind, key, found)

    async def list_records(self, query: RecordQuery) -> Page[Record]:
        return select_records(await self._records(query.kind), query)

    async def delete_record(self, kind: str, key: str) -> bool:
        client = await self._redis()
        async with _kept_cancellation():
            return bool(await client.hdel(self.prefix + "r:" + kind, key))

    async def prune_records(self, now: float, kind: str | None = None) -> int:
        client = await self._redis()
        if kind is None:
            start = len(self.prefix) + 2
            kinds = [name[start:] async for name in client.scan_iter(
                match=_glob_escape(self.prefix) + "r:*", count=_SCAN_CHUNK)]
        else:
            kinds = [kind]
        total = 0
        for each in kinds:
            doomed = [r.key for r in await self._records(each)
                      if r.expires_at is not None and r.expires_at <= now]
            if doomed:
                async with _kept_cancellation():
                    total += int(await client.hdel(self.prefix + "r:" + each, *doomed))
        return total

    async def _records(self, kind: str) -> Records:
        client = await self._redis()
        async with _kept_cancellation():
            found = cast(dict[str, str], await client.hgetall(self.prefix + "r:" + kind))
        return [_record(kind, key, encoded) for key, encoded in found.items()]


_FLOATS = ("created_at", "updated_at", "finished_at", "started_at", "lease_until", "wake_at")
_INTS = ("priority", "last_seq")
_STRINGS = ("id", "workflow", "version", "status", "idempotency_key", "parent_id", "error",
            "queue", "tenant_id", "partition_key", "owner")



def _record(kind: str, key: str, encoded: str) -> Record:
    tenant_id, data, created_at, expires_at = json.loads(encoded)
    return Record(kind, key, data, created_at, tenant_id, expires_at)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _opt(value: Any) -> str:
    """Optional script argument: '' for None, else '=' and the value (floats exactly)."""
    if value is None:
        return ""
    return "=" + (repr(value) if isinstance(value, float) else str(value))


def _sortable(value: float) -> str:
    """16 hex digits whose byte order is the numeric order of the float."""
    bits: int = struct.unpack(">Q", struct.pack(">d", value))[0]
    return f"{bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63:016x}"


def _fields(row: ExecutionSummary, last_seq: int) -> list[str]:
    if not -(2**63) <= row.priority < 2**63:
        raise ValueError("priority must fit in 64 bits")
    ck = _sortable(row.created_at) + ":" + row.id
    qk = f"{(1 << 63) - 1 - row.priority:016x}" + ck
    out = ["ck", ck, "qk", qk, "last_seq", str(last_seq), "priority", str(row.priority)]
    for name in (*_STRINGS, *_FLOATS):
        value = getattr(row, name)
        if value is not None:
            out += [name, repr(float(value)) if name in _FLOATS else str(value)]
    return out


def _row(found: dict[str, str] | list[str]) -> ExecutionSummary:
    values = found if isinstance(found, dict) else dict(zip(found[::2], found[1::2], strict=True))
    kwargs: dict[str, Any] = {name: values.get(name) for name in _STRINGS}
    kwargs.update({name: float(values[name]) for name in _FLOATS if name in values})
    kwargs.update({name: int(values[name]) for name in _INTS})
    kwargs["status"] = ExecutionStatus(kwargs["status"])
    return ExecutionSummary(**kwargs)


def _event(ev: Event) -> str:
    return _dumps([ev.seq, ev.type, ev.data, ev.created_at])


def _checks(q: ListQuery) -> Any:
    def check(r: ExecutionSummary) -> bool:
        return ((q.workflow is None or r.workflow == q.workflow)
                and (q.status is None or r.status == q.status)
                and (q.parent_id is None or r.parent_id == q.parent_id)
                and (q.tenant_id is None or r.tenant_id == q.tenant_id))

    return check
