-- name: insert_execution
INSERT INTO executions (id, workflow, version, status, created_at, updated_at, finished_at,
    idempotency_key, parent_id, error, queue, priority, tenant_id, owner, lease_until, wake_at,
    last_seq)
VALUES (:id, :workflow, :version, :status, :created_at, :updated_at, :finished_at,
    :idempotency_key, :parent_id, :error, :queue, :priority, :tenant_id, :owner, :lease_until,
    :wake_at, :last_seq);

-- name: get_by_key
SELECT * FROM executions WHERE idempotency_key = ?;

-- name: get_execution
SELECT * FROM executions WHERE id = ?;

-- name: insert_event
INSERT INTO execution_events (execution_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?);

-- name: advance
UPDATE executions SET last_seq = ?, updated_at = ?
WHERE id = ? AND last_seq = ? AND owner IS ?;

-- name: advance_with_status
UPDATE executions SET last_seq = ?, updated_at = ?, status = ?, wake_at = ?, finished_at = ?,
    error = coalesce(?, error)
WHERE id = ? AND last_seq = ? AND owner IS ?;

-- name: consume_signal
DELETE FROM signals WHERE id = ? AND execution_id = ?;

-- name: select_events
SELECT execution_id, seq, type, data, created_at FROM execution_events
WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?;

-- name: claim_candidates
SELECT id FROM executions
WHERE status IN ('pending', 'running', 'suspended')
  AND (owner IS NULL OR lease_until < :now)
  AND (:due_only = 0 OR status != 'suspended' OR wake_at <= :now
       OR EXISTS (SELECT 1 FROM signals s WHERE s.execution_id = executions.id))
  AND (:execution_id IS NULL OR id = :execution_id)
ORDER BY priority DESC, created_at
LIMIT :limit;

-- name: take_lease
UPDATE executions SET owner = ?, lease_until = ? WHERE id = ? RETURNING *;

-- name: renew
UPDATE executions SET lease_until = ? WHERE owner = ? AND id = ?;

-- name: release
UPDATE executions SET owner = NULL, lease_until = NULL WHERE id = ? AND owner = ?;

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
