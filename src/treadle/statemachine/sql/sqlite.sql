-- State machine instances and their history, on SQLite (treadle.statemachine.sqlite).
-- `version` is the optimistic concurrency column: an update commits only WHERE version = the
-- version the writer read. The history's primary key repeats that guarantee.

-- name: schema
CREATE TABLE IF NOT EXISTS statemachine_instances (
    namespace      TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    workflow_type  TEXT    NOT NULL,
    current_state  TEXT    NOT NULL,
    previous_state TEXT    NOT NULL DEFAULT '',
    data           TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    created_at     REAL    NOT NULL,
    updated_at     REAL    NOT NULL,
    completed      INTEGER NOT NULL DEFAULT 0,
    error          TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (namespace, id)
);
CREATE INDEX IF NOT EXISTS statemachine_instances_by_state
    ON statemachine_instances (namespace, workflow_type, current_state);
CREATE TABLE IF NOT EXISTS statemachine_history (
    namespace   TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    transition  TEXT    NOT NULL,
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    at          REAL    NOT NULL,
    auto        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, instance_id, version)
);

-- name: insert_instance
INSERT INTO statemachine_instances (namespace, id, workflow_type, current_state, previous_state,
    data, version, created_at, updated_at, completed, error)
VALUES (:namespace, :id, :workflow_type, :current_state, :previous_state, :data, :version,
    :created_at, :updated_at, :completed, :error);

-- name: insert_history
INSERT INTO statemachine_history (namespace, instance_id, version, transition, from_state,
    to_state, data, at, auto)
VALUES (:namespace, :instance_id, :version, :transition, :from_state, :to_state, :data, :at,
    :auto);

-- name: get_instance
SELECT * FROM statemachine_instances WHERE namespace = :namespace AND id = :id;

-- name: list_instances
SELECT * FROM statemachine_instances
WHERE namespace = :namespace
  AND (:workflow_type IS NULL OR workflow_type = :workflow_type)
  AND (:state IS NULL OR current_state = :state)
ORDER BY created_at, id
LIMIT :limit;

-- name: update_instance
-- Commits only if nobody else did since the caller read `expected`.
UPDATE statemachine_instances
SET current_state = :current_state, previous_state = :previous_state, data = :data,
    version = :version, updated_at = :updated_at, completed = :completed, error = :error
WHERE namespace = :namespace AND id = :id AND version = :expected;

-- name: history
SELECT * FROM statemachine_history
WHERE namespace = :namespace AND instance_id = :id
ORDER BY version;

-- name: delete_history
DELETE FROM statemachine_history WHERE namespace = :namespace AND instance_id = :id;

-- name: delete_instance
DELETE FROM statemachine_instances WHERE namespace = :namespace AND id = :id;
