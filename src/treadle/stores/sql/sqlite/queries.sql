-- name: insert_execution
INSERT INTO executions (id, workflow, version, status, created_at, updated_at, finished_at,
    idempotency_key, parent_id, error, queue, priority, tenant_id, partition_key, started_at,
    owner, lease_until, wake_at)
VALUES (:id, :workflow, :version, :status, :created_at, :updated_at, :finished_at,
    :idempotency_key, :parent_id, :error, :queue, :priority, :tenant_id, :partition_key,
    :started_at, :owner, :lease_until, :wake_at);

-- name: select_rows
-- Rows with the journal's last seq (kept in the journal, not duplicated in the row).
SELECT executions.*, coalesce((SELECT last_seq FROM execution_events ev
    WHERE ev.execution_id = executions.id ORDER BY first_seq DESC LIMIT 1), 0) AS last_seq
FROM executions;

-- name: exists
SELECT 1 FROM executions WHERE id = ?;

-- name: last_seq
SELECT last_seq FROM execution_events WHERE execution_id = ? ORDER BY first_seq DESC LIMIT 1;

-- name: insert_batch
INSERT INTO execution_events (execution_id, first_seq, last_seq, events) VALUES (?, ?, ?, ?);

-- name: append_batch
-- Appends only for the lease owner, and only right after the journal's last seq.
INSERT INTO execution_events (execution_id, first_seq, last_seq, events)
SELECT :id, :first, :last, :events
WHERE EXISTS (SELECT 1 FROM executions WHERE id = :id AND owner IS :owner)
  AND coalesce((SELECT last_seq FROM execution_events WHERE execution_id = :id
                ORDER BY first_seq DESC LIMIT 1), 0) = :expected;

-- name: set_status
UPDATE executions SET updated_at = ?, status = ?, wake_at = ?, finished_at = ?,
    error = coalesce(?, error)
WHERE id = ?;

-- name: set_status_checked
UPDATE executions SET updated_at = ?, status = ?, wake_at = ?, finished_at = ?,
    error = coalesce(?, error)
WHERE id = ? AND owner IS ?
  AND coalesce((SELECT last_seq FROM execution_events WHERE execution_id = executions.id
                ORDER BY first_seq DESC LIMIT 1), 0) = ?;

-- name: check_position
SELECT count(*) FROM executions
WHERE id = ? AND owner IS ?
  AND coalesce((SELECT last_seq FROM execution_events WHERE execution_id = executions.id
                ORDER BY first_seq DESC LIMIT 1), 0) = ?;

-- name: consume_signal
DELETE FROM signals WHERE id = ? AND execution_id = ?;

-- name: select_batches
SELECT events FROM execution_events
WHERE execution_id = ? AND last_seq > ? ORDER BY first_seq;

-- name: claim_candidates
SELECT id, queue, workflow, partition_key FROM executions
WHERE status IN ('pending', 'running', 'suspended')
  AND (owner IS NULL OR lease_until < :now)
  AND (:due_only = 0 OR wake_at IS NULL AND status != 'suspended' OR wake_at <= :now
       OR status = 'suspended'
          AND EXISTS (SELECT 1 FROM signals s WHERE s.execution_id = executions.id))
  AND (:execution_id IS NULL OR id = :execution_id)
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
ORDER BY priority DESC, created_at
LIMIT :limit;

-- name: running_usage
-- What counts against concurrency limits: executions leased by a live worker and running.
SELECT queue, workflow, partition_key FROM executions
WHERE owner IS NOT NULL AND lease_until >= :now AND status IN ('pending', 'running');

-- name: recent_starts
SELECT queue, count(*) FROM executions WHERE started_at >= ? GROUP BY queue;

-- name: take_lease
UPDATE executions SET owner = ?, lease_until = ?, started_at = coalesce(started_at, ?),
    status = CASE status WHEN 'pending' THEN 'running' ELSE status END
WHERE id = ?;

-- name: queue_depth
SELECT count(*) FROM executions WHERE queue = ? AND status = 'pending';

-- name: renew
UPDATE executions SET lease_until = ? WHERE owner = ? AND id = ?;

-- name: release
UPDATE executions SET owner = NULL, lease_until = NULL WHERE id = ? AND owner = ?
RETURNING queue, status, wake_at;

-- name: has_signals
SELECT 1 FROM signals WHERE execution_id = ? LIMIT 1;

-- name: free_sleeper
-- The queue of a suspended execution nobody holds (a signal makes it claimable).
SELECT queue FROM executions WHERE id = ? AND owner IS NULL AND status = 'suspended';

-- name: next_wake
-- The earliest future time an execution of the queues becomes claimable by the clock alone:
-- a free one's wake-up time (timer, delayed start) or a lease running out.
SELECT min(CASE WHEN owner IS NULL THEN wake_at ELSE lease_until END) FROM executions
WHERE status IN ('pending', 'running', 'suspended')
  AND (owner IS NULL AND wake_at > :now OR owner IS NOT NULL AND lease_until >= :now)
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)));

-- name: insert_signal
INSERT INTO signals (execution_id, name, payload, created_at) VALUES (?, ?, ?, ?);

-- name: select_signals
SELECT id, execution_id, name, payload, created_at FROM signals WHERE execution_id = ? ORDER BY id;

-- name: prunable
SELECT id FROM executions
WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < ?;

-- name: delete_events
DELETE FROM execution_events WHERE execution_id = ?;

-- name: delete_signals
DELETE FROM signals WHERE execution_id = ?;

-- name: delete_execution
DELETE FROM executions WHERE id = ?;

-- name: upsert_record
INSERT INTO records (kind, key, tenant_id, data, created_at, expires_at)
VALUES (:kind, :key, :tenant_id, :data, :created_at, :expires_at)
ON CONFLICT (kind, key) DO UPDATE SET tenant_id = excluded.tenant_id, data = excluded.data,
    created_at = excluded.created_at, expires_at = excluded.expires_at;

-- name: insert_record
INSERT INTO records (kind, key, tenant_id, data, created_at, expires_at)
VALUES (:kind, :key, :tenant_id, :data, :created_at, :expires_at)
ON CONFLICT (kind, key) DO NOTHING;

-- name: select_record
SELECT kind, key, tenant_id, data, created_at, expires_at FROM records
WHERE kind = ? AND key = ?;

-- name: list_records
-- Newest first; the cursor is the (created_at, key) of the last record of the previous page.
SELECT kind, key, tenant_id, data, created_at, expires_at FROM records
WHERE kind = :kind
  AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
  AND (:prefix IS NULL OR substr(key, 1, length(:prefix)) = :prefix)
  AND (:after_ts IS NULL OR created_at < :after_ts
       OR (created_at = :after_ts AND key < :after_key))
ORDER BY created_at DESC, key DESC
LIMIT :limit;

-- name: delete_record
DELETE FROM records WHERE kind = ? AND key = ?;

-- name: prune_records
DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= :now
  AND (:kind IS NULL OR kind = :kind);
