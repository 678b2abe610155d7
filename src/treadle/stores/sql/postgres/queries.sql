-- Named queries of the PostgreSQL store. Every query is one statement, run in autocommit
-- mode: one statement is one transaction and one round trip (the one exception: an append
-- without events, see `lock_execution`). Placeholders are psycopg's named ones; the casts pin
-- parameter types so that prepared plans stay valid with NULLs.
-- The journal is one `execution_batches` row per append (migration 004): `events` is the JSON
-- array of [seq, type, data, created_at] the store encodes in one go, `types` travels as an
-- array literal (text: parsed by the server, far cheaper than adapting a Python list).
-- The journal's head is the `last_seq` of an execution's last batch (one backward step on the
-- primary key). Rows are read as (id, workflow, version, status, created_at, updated_at,
-- finished_at, idempotency_key, parent_id, error, queue, priority, tenant_id, partition_key,
-- started_at, owner, lease_until, wake_at, last_seq), from `select_rows`: keep every query that
-- returns rows in that order. A row's `updated_at` is the later of the row's own (creation,
-- status changes) and its last batch's time.

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
-- Inserts the row and its first events (one batch, recorded at the row's updated_at), or
-- nothing when the idempotency key is taken.
WITH inserted AS (
    INSERT INTO executions (id, workflow, version, status, created_at, updated_at, finished_at,
        idempotency_key, parent_id, error, queue, priority, tenant_id, partition_key,
        started_at, owner, lease_until, wake_at)
    VALUES (%(id)s::text, %(workflow)s::text, %(version)s::text, %(status)s::text,
        %(created_at)s::float8, %(updated_at)s::float8, %(finished_at)s::float8,
        %(idempotency_key)s::text, %(parent_id)s::text, %(error)s::text, %(queue)s::text,
        %(priority)s::integer, %(tenant_id)s::text, %(partition_key)s::text,
        %(started_at)s::float8, %(owner)s::text, %(lease_until)s::float8, %(wake_at)s::float8)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), journal AS (
    INSERT INTO execution_batches (execution_id, first_seq, last_seq, created_at, types, events)
    SELECT inserted.id, %(first)s::bigint, %(last)s::bigint, %(updated_at)s::float8,
           %(types)s::text[], %(events)s::json
    FROM inserted WHERE %(last)s::bigint >= %(first)s::bigint
)
SELECT count(*) FROM inserted;

-- name: get_by_key
-- (`select_rows` + this condition; see the store)
WHERE idempotency_key = %(key)s::text;

-- name: get
WHERE id = %(id)s::text;

-- name: append
-- The common append (events, no row change, no signal): one batch row, inserted only for the
-- lease owner and only right after the journal's head. The owner check locks the row FOR
-- SHARE, so it waits for a claim in progress and re-checks the owner it committed (a claimer's
-- FOR UPDATE SKIP LOCKED skips the row meanwhile), while appends never block each other. Two
-- writers that both saw the head insert the same (execution_id, first_seq): the primary key
-- lets one commit and fails the other with a unique violation (a JournalConflictError).
INSERT INTO execution_batches (execution_id, first_seq, last_seq, created_at, types, events)
SELECT %(id)s::text, %(expected)s::bigint + 1, %(last)s::bigint, %(at)s::float8,
       %(types)s::text[], %(events)s::json
WHERE EXISTS (SELECT FROM executions WHERE id = %(id)s::text
                AND owner IS NOT DISTINCT FROM %(owner)s::text FOR SHARE)
  AND coalesce((SELECT last_seq FROM execution_batches WHERE execution_id = %(id)s::text
                ORDER BY first_seq DESC LIMIT 1), 0) = %(expected)s::bigint;

-- name: append_signal
-- `append` that also deletes the inbox signal the batch consumes.
WITH head AS (
    SELECT id FROM executions
    WHERE id = %(id)s::text AND owner IS NOT DISTINCT FROM %(owner)s::text
      AND coalesce((SELECT last_seq FROM execution_batches WHERE execution_id = %(id)s::text
                    ORDER BY first_seq DESC LIMIT 1), 0) = %(expected)s::bigint
    FOR SHARE
), journal AS (
    INSERT INTO execution_batches (execution_id, first_seq, last_seq, created_at, types, events)
    SELECT head.id, %(expected)s::bigint + 1, %(last)s::bigint, %(at)s::float8,
           %(types)s::text[], %(events)s::json
    FROM head WHERE %(last)s::bigint > %(expected)s::bigint
), consumed AS (
    DELETE FROM signals
    WHERE id = %(signal)s::bigint AND execution_id = (SELECT id FROM head)
)
SELECT count(*) FROM head;

-- name: append_update
-- `append_signal` that also applies a RowUpdate (status, wake-up time, error, finish time).
WITH head AS (
    UPDATE executions
    SET updated_at = coalesce(%(at)s::float8, updated_at), status = %(status)s::text,
        wake_at = %(wake_at)s::float8, finished_at = %(finished_at)s::float8,
        error = coalesce(%(error)s::text, error)
    WHERE id = %(id)s::text AND owner IS NOT DISTINCT FROM %(owner)s::text
      AND coalesce((SELECT last_seq FROM execution_batches WHERE execution_id = %(id)s::text
                    ORDER BY first_seq DESC LIMIT 1), 0) = %(expected)s::bigint
    RETURNING id
), journal AS (
    INSERT INTO execution_batches (execution_id, first_seq, last_seq, created_at, types, events)
    SELECT head.id, %(expected)s::bigint + 1, %(last)s::bigint, %(at)s::float8,
           %(types)s::text[], %(events)s::json
    FROM head WHERE %(last)s::bigint > %(expected)s::bigint
), consumed AS (
    DELETE FROM signals
    WHERE id = %(signal)s::bigint AND execution_id = (SELECT id FROM head)
)
SELECT count(*) FROM head;

-- name: lock_execution
-- An append without events (a row change or a consumed signal alone) has no batch for the
-- primary key to guard, so it runs in a transaction that first takes the row: its statement's
-- snapshot then sees every batch committed before it, and appends wait for it.
SELECT FROM executions WHERE id = %(id)s::text FOR UPDATE;

-- name: check_position
SELECT count(*) FROM executions
WHERE id = %(id)s::text AND owner IS NOT DISTINCT FROM %(owner)s::text
  AND coalesce((SELECT last_seq FROM execution_batches WHERE execution_id = %(id)s::text
                ORDER BY first_seq DESC LIMIT 1), 0) = %(expected)s::bigint;

-- name: events
-- The batches holding seqs after `after`, in order: from the one holding after + 1 (found on
-- the primary key) on. The store unpacks them; `limit` batches hold at least `limit` events.
SELECT events FROM execution_batches
WHERE execution_id = %(id)s::text AND last_seq > %(after)s::bigint
  AND first_seq >= coalesce((SELECT max(first_seq) FROM execution_batches
                             WHERE execution_id = %(id)s::text
                               AND first_seq <= %(after)s::bigint + 1), 0)
ORDER BY first_seq
LIMIT %(limit)s::bigint;

-- name: select_rows
-- The head of every query returning rows; the store appends WHERE, ORDER BY and LIMIT (on the
-- executions' own columns). The journal's head comes from the last batch, one index probe.
SELECT id, workflow, version, status, created_at, greatest(updated_at, head_at), finished_at,
    idempotency_key, parent_id, error, queue, priority, tenant_id, partition_key, started_at,
    owner, lease_until, wake_at, coalesce(head_seq, 0)
FROM executions LEFT JOIN LATERAL (
    SELECT last_seq AS head_seq, created_at AS head_at FROM execution_batches
    WHERE execution_id = executions.id ORDER BY first_seq DESC LIMIT 1) AS head ON true

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
WITH taken AS (
    UPDATE executions
    SET owner = %(owner)s::text, lease_until = %(lease_until)s::float8,
        started_at = coalesce(started_at, %(now)s::float8),
        status = CASE status WHEN 'pending' THEN 'running' ELSE status END
    WHERE id = ANY(%(ids)s::text[])
    RETURNING *
)
SELECT id, workflow, version, status, created_at, greatest(updated_at, head_at), finished_at,
    idempotency_key, parent_id, error, queue, priority, tenant_id, partition_key, started_at,
    owner, lease_until, wake_at, coalesce(head_seq, 0)
FROM taken LEFT JOIN LATERAL (
    SELECT last_seq AS head_seq, created_at AS head_at FROM execution_batches
    WHERE execution_id = taken.id ORDER BY first_seq DESC LIMIT 1) AS head ON true;

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
    DELETE FROM execution_batches WHERE execution_id IN (SELECT id FROM doomed)
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
