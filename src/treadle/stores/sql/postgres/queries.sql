-- Named queries of the PostgreSQL store. Every query is one statement, run in autocommit
-- mode: one statement is one transaction and one round trip. Placeholders are psycopg's
-- named ones; the casts pin parameter types so that prepared plans stay valid with NULLs.
-- A batch of events travels as three strings joined by the ASCII record separator chr(30)
-- (types, JSON data, created_at floats), which JSON text never contains unescaped: far cheaper
-- to send than arrays, and the n-th event's seq is its ordinality after the expected seq.
-- Rows are read as (id, workflow, version, status, created_at, updated_at, finished_at,
-- idempotency_key, parent_id, error, queue, priority, tenant_id, partition_key, started_at,
-- owner, lease_until, wake_at, last_seq): keep every query that returns rows in that order.

-- name: migrate_lock
-- Serialises migrations of one schema between processes starting at once.
SELECT pg_advisory_xact_lock(hashtext('treadle.migrate:' || coalesce(%(schema)s::text, current_schema())));

-- name: migrations_table
CREATE TABLE IF NOT EXISTS treadle_migrations (
    version     INTEGER PRIMARY KEY,
    applied_at  DOUBLE PRECISION NOT NULL
);

-- name: applied_migrations
SELECT version FROM treadle_migrations ORDER BY version;

-- name: record_migration
INSERT INTO treadle_migrations (version, applied_at) VALUES (%(version)s, %(applied_at)s);

-- name: create
-- Inserts the row and its first events, or nothing when the idempotency key is taken.
WITH inserted AS (
    INSERT INTO executions (id, workflow, version, status, created_at, updated_at, finished_at,
        idempotency_key, parent_id, error, queue, priority, tenant_id, partition_key,
        started_at, owner, lease_until, wake_at, last_seq)
    VALUES (%(id)s::text, %(workflow)s::text, %(version)s::text, %(status)s::text,
        %(created_at)s::float8, %(updated_at)s::float8, %(finished_at)s::float8,
        %(idempotency_key)s::text, %(parent_id)s::text, %(error)s::text, %(queue)s::text,
        %(priority)s::integer, %(tenant_id)s::text, %(partition_key)s::text,
        %(started_at)s::float8, %(owner)s::text, %(lease_until)s::float8, %(wake_at)s::float8,
        %(last_seq)s::bigint)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), journal AS (
    INSERT INTO execution_events (execution_id, seq, type, data, created_at)
    SELECT inserted.id, %(first)s::bigint - 1 + e.n, e.type, e.data, e.created_at
    FROM inserted, unnest(string_to_array(%(types)s::text, chr(30)),
                          string_to_array(%(datas)s::text, chr(30))::json[],
                          string_to_array(%(times)s::text, chr(30))::float8[])
                   WITH ORDINALITY AS e (type, data, created_at, n)
)
SELECT count(*) FROM inserted;

-- name: get_by_key
SELECT id, workflow, version, status, created_at, updated_at, finished_at, idempotency_key,
    parent_id, error, queue, priority, tenant_id, partition_key, started_at, owner,
    lease_until, wake_at, last_seq
FROM executions WHERE idempotency_key = %(key)s::text;

-- name: get
SELECT id, workflow, version, status, created_at, updated_at, finished_at, idempotency_key,
    parent_id, error, queue, priority, tenant_id, partition_key, started_at, owner,
    lease_until, wake_at, last_seq
FROM executions WHERE id = %(id)s::text;

-- name: append
-- Moves the head from expected to last only for the lease owner; the events and the signal
-- consumption ride on that UPDATE, so a lost race writes nothing. Concurrent appenders queue
-- on the row lock and re-check the WHERE against the winner's row: exactly one succeeds.
WITH head AS (
    UPDATE executions
    SET last_seq = %(last)s::bigint, updated_at = coalesce(%(updated_at)s::float8, updated_at)
    WHERE id = %(id)s::text AND last_seq = %(expected)s::bigint
      AND owner IS NOT DISTINCT FROM %(owner)s::text
    RETURNING id
), journal AS (
    INSERT INTO execution_events (execution_id, seq, type, data, created_at)
    SELECT head.id, %(expected)s::bigint + e.n, e.type, e.data, e.created_at
    FROM head, unnest(string_to_array(%(types)s::text, chr(30)),
                      string_to_array(%(datas)s::text, chr(30))::json[],
                      string_to_array(%(times)s::text, chr(30))::float8[])
               WITH ORDINALITY AS e (type, data, created_at, n)
), consumed AS (
    DELETE FROM signals
    WHERE id = %(signal)s::bigint AND execution_id = (SELECT id FROM head)
)
SELECT count(*) FROM head;

-- name: append_update
-- `append` that also applies a RowUpdate (status, wake-up time, error, finish time).
WITH head AS (
    UPDATE executions
    SET last_seq = %(last)s::bigint, updated_at = coalesce(%(updated_at)s::float8, updated_at),
        status = %(status)s::text, wake_at = %(wake_at)s::float8,
        finished_at = %(finished_at)s::float8, error = coalesce(%(error)s::text, error)
    WHERE id = %(id)s::text AND last_seq = %(expected)s::bigint
      AND owner IS NOT DISTINCT FROM %(owner)s::text
    RETURNING id
), journal AS (
    INSERT INTO execution_events (execution_id, seq, type, data, created_at)
    SELECT head.id, %(expected)s::bigint + e.n, e.type, e.data, e.created_at
    FROM head, unnest(string_to_array(%(types)s::text, chr(30)),
                      string_to_array(%(datas)s::text, chr(30))::json[],
                      string_to_array(%(times)s::text, chr(30))::float8[])
               WITH ORDINALITY AS e (type, data, created_at, n)
), consumed AS (
    DELETE FROM signals
    WHERE id = %(signal)s::bigint AND execution_id = (SELECT id FROM head)
)
SELECT count(*) FROM head;

-- name: check_position
SELECT count(*) FROM executions
WHERE id = %(id)s::text AND last_seq = %(expected)s::bigint
  AND owner IS NOT DISTINCT FROM %(owner)s::text;

-- name: events
SELECT seq, type, data, created_at FROM execution_events
WHERE execution_id = %(id)s::text AND seq > %(after)s::bigint
ORDER BY seq
LIMIT %(limit)s::bigint;

-- name: select_rows
-- The head of a listing; the store appends WHERE, ORDER BY and LIMIT.
SELECT id, workflow, version, status, created_at, updated_at, finished_at, idempotency_key,
    parent_id, error, queue, priority, tenant_id, partition_key, started_at, owner,
    lease_until, wake_at, last_seq
FROM executions;

-- name: claim_lock
-- Serialises claims that enforce limits, so that counting and claiming are atomic.
SELECT pg_advisory_xact_lock(hashtext('treadle.claim:' || current_schema()));

-- name: claim_candidates
-- Claimable executions, best first, locked: rows another claimer holds are skipped, and the
-- lease check is repeated on the locked row (another claimer may have taken it since our
-- snapshot). Candidates come from the claim indexes only (free ones, lapsed leases).
-- Returns (id, queue, workflow, partition_key).
WITH candidates AS (
    (SELECT id, priority, created_at FROM executions
     WHERE owner IS NULL AND status IN ('pending', 'running', 'suspended')
       AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
     ORDER BY priority DESC, created_at, id LIMIT %(limit)s::bigint)
    UNION
    (SELECT id, priority, created_at FROM executions
     WHERE owner IS NOT NULL AND status IN ('pending', 'running', 'suspended')
       AND lease_until < %(now)s::float8
       AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
     ORDER BY priority DESC, created_at, id LIMIT %(limit)s::bigint)
)
SELECT e.id, e.queue, e.workflow, e.partition_key FROM executions e
WHERE e.id IN (SELECT id FROM candidates
               ORDER BY priority DESC, created_at, id LIMIT %(limit)s::bigint)
  AND e.status IN ('pending', 'running', 'suspended')
  AND (e.owner IS NULL OR e.lease_until < %(now)s::float8)
ORDER BY e.priority DESC, e.created_at, e.id
FOR UPDATE SKIP LOCKED;

-- name: claim_due_candidates
-- `claim_candidates` for due work only: an execution with a wake-up time (a timer, a delayed
-- start) once it has come; a suspended one also when a signal waits in its inbox.
WITH candidates AS (
    (SELECT id, priority, created_at FROM executions
     WHERE owner IS NULL AND status IN ('pending', 'running') AND wake_at IS NULL
       AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
     ORDER BY priority DESC, created_at, id LIMIT %(limit)s::bigint)
    UNION
    (SELECT id, priority, created_at FROM executions
     WHERE owner IS NULL AND status IN ('pending', 'running', 'suspended')
       AND wake_at <= %(now)s::float8
       AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
     ORDER BY priority DESC, created_at, id LIMIT %(limit)s::bigint)
    UNION
    (SELECT e.id, e.priority, e.created_at FROM executions e
     WHERE e.owner IS NULL AND e.status = 'suspended'
       AND e.id IN (SELECT execution_id FROM signals)
       AND (%(queues)s::text[] IS NULL OR e.queue = ANY(%(queues)s::text[]))
     ORDER BY e.priority DESC, e.created_at, e.id LIMIT %(limit)s::bigint)
    UNION
    (SELECT e.id, e.priority, e.created_at FROM executions e
     WHERE e.owner IS NOT NULL AND e.status IN ('pending', 'running', 'suspended')
       AND e.lease_until < %(now)s::float8
       AND (e.wake_at IS NULL AND e.status <> 'suspended' OR e.wake_at <= %(now)s::float8
            OR e.status = 'suspended'
               AND EXISTS (SELECT 1 FROM signals s WHERE s.execution_id = e.id))
       AND (%(queues)s::text[] IS NULL OR e.queue = ANY(%(queues)s::text[]))
     ORDER BY e.priority DESC, e.created_at, e.id LIMIT %(limit)s::bigint)
)
SELECT e.id, e.queue, e.workflow, e.partition_key FROM executions e
WHERE e.id IN (SELECT id FROM candidates
               ORDER BY priority DESC, created_at, id LIMIT %(limit)s::bigint)
  AND e.status IN ('pending', 'running', 'suspended')
  AND (e.owner IS NULL OR e.lease_until < %(now)s::float8)
ORDER BY e.priority DESC, e.created_at, e.id
FOR UPDATE SKIP LOCKED;

-- name: claim_one_candidate
SELECT e.id, e.queue, e.workflow, e.partition_key FROM executions e
WHERE e.id = %(id)s::text AND e.status IN ('pending', 'running', 'suspended')
  AND (e.owner IS NULL OR e.lease_until < %(now)s::float8)
  AND (NOT %(due_only)s::boolean
       OR e.wake_at IS NULL AND e.status <> 'suspended' OR e.wake_at <= %(now)s::float8
       OR e.status = 'suspended'
          AND EXISTS (SELECT 1 FROM signals s WHERE s.execution_id = e.id))
  AND (%(queues)s::text[] IS NULL OR e.queue = ANY(%(queues)s::text[]))
FOR UPDATE SKIP LOCKED;

-- name: running_usage
-- What counts against concurrency limits: executions leased by a live worker and running.
SELECT queue, workflow, partition_key FROM executions
WHERE owner IS NOT NULL AND status IN ('pending', 'running')
  AND lease_until >= %(now)s::float8;

-- name: recent_starts
SELECT queue, count(*) FROM executions WHERE started_at >= %(since)s::float8 GROUP BY queue;

-- name: take_leases
-- The claim itself, on rows `claim_*candidate*` locked: a pending execution starts running.
UPDATE executions
SET owner = %(owner)s::text, lease_until = %(lease_until)s::float8,
    started_at = coalesce(started_at, %(now)s::float8),
    status = CASE status WHEN 'pending' THEN 'running' ELSE status END
WHERE id = ANY(%(ids)s::text[])
RETURNING id, workflow, version, status, created_at, updated_at, finished_at, idempotency_key,
    parent_id, error, queue, priority, tenant_id, partition_key, started_at, owner,
    lease_until, wake_at, last_seq;

-- name: next_wake
-- The earliest future time an execution of the queues becomes claimable by the clock alone:
-- a free one's wake-up time (timer, delayed start) or a lease running out. Each half reads
-- its claim index (idx_executions_timers, idx_executions_leases) in order.
SELECT least(
    (SELECT min(wake_at) FROM executions
     WHERE owner IS NULL AND status IN ('pending', 'running', 'suspended')
       AND wake_at IS NOT NULL AND wake_at > %(now)s::float8
       AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))),
    (SELECT min(lease_until) FROM executions
     WHERE owner IS NOT NULL AND status IN ('pending', 'running', 'suspended')
       AND lease_until >= %(now)s::float8
       AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))));

-- name: depth
SELECT count(*) FROM executions WHERE queue = %(queue)s::text AND status = 'pending';

-- name: renew
UPDATE executions SET lease_until = %(lease_until)s::float8
WHERE owner = %(owner)s::text AND id = ANY(%(ids)s::text[]);

-- name: release
UPDATE executions SET owner = NULL, lease_until = NULL
WHERE id = %(id)s::text AND owner = %(owner)s::text;

-- name: send_signal
INSERT INTO signals (execution_id, name, payload, created_at)
SELECT %(id)s::text, %(name)s::text, %(payload)s::json, %(created_at)s::float8
WHERE EXISTS (SELECT 1 FROM executions WHERE id = %(id)s::text)
RETURNING id;

-- name: signals
SELECT id, execution_id, name, payload, created_at FROM signals
WHERE execution_id = %(id)s::text ORDER BY id;

-- name: prune
-- One batch: finished rows, their journals and inboxes. The store repeats it until a batch
-- comes back short, so no transaction grows with the backlog.
WITH doomed AS (
    DELETE FROM executions
    WHERE id IN (SELECT id FROM executions
                 WHERE status IN ('completed', 'failed', 'cancelled')
                   AND finished_at < %(before)s::float8
                 LIMIT %(batch)s::bigint FOR UPDATE SKIP LOCKED)
    RETURNING id
), journal AS (
    DELETE FROM execution_events WHERE execution_id IN (SELECT id FROM doomed)
), inbox AS (
    DELETE FROM signals WHERE execution_id IN (SELECT id FROM doomed)
)
SELECT count(*) FROM doomed;

-- name: upsert_record
INSERT INTO records (kind, key, tenant_id, data, created_at, expires_at)
VALUES (%(kind)s, %(key)s, %(tenant_id)s, %(data)s::json, %(created_at)s, %(expires_at)s)
ON CONFLICT (kind, key) DO UPDATE SET tenant_id = excluded.tenant_id, data = excluded.data,
    created_at = excluded.created_at, expires_at = excluded.expires_at;

-- name: insert_record
INSERT INTO records (kind, key, tenant_id, data, created_at, expires_at)
VALUES (%(kind)s, %(key)s, %(tenant_id)s, %(data)s::json, %(created_at)s, %(expires_at)s)
ON CONFLICT (kind, key) DO NOTHING;

-- name: select_record
SELECT kind, key, tenant_id, data::text, created_at, expires_at FROM records
WHERE kind = %(kind)s AND key = %(key)s;

-- name: list_records
-- Newest first; the cursor is the (created_at, key) of the last record of the previous page.
SELECT kind, key, tenant_id, data::text, created_at, expires_at FROM records
WHERE kind = %(kind)s
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s::text)
  AND (%(prefix)s::text IS NULL OR left(key, length(%(prefix)s::text)) = %(prefix)s::text)
  AND (%(after_ts)s::float8 IS NULL OR created_at < %(after_ts)s::float8
       OR (created_at = %(after_ts)s::float8 AND key < %(after_key)s::text))
ORDER BY created_at DESC, key DESC
LIMIT %(limit)s;

-- name: delete_record
DELETE FROM records WHERE kind = %(kind)s AND key = %(key)s;

-- name: prune_records
DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= %(now)s
  AND (%(kind)s::text IS NULL OR kind = %(kind)s::text);
