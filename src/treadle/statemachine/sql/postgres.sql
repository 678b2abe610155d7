-- State machine instances and their history, on PostgreSQL (treadle.statemachine.postgres).
-- `version` is the optimistic concurrency column: an update commits only WHERE version = the
-- version the writer read. The history's primary key repeats that guarantee.

-- name: schema
CREATE TABLE IF NOT EXISTS statemachine_instances (
    namespace      TEXT             NOT NULL,
    id             TEXT             NOT NULL,
    workflow_type  TEXT             NOT NULL,
    current_state  TEXT             NOT NULL,
    previous_state TEXT             NOT NULL DEFAULT '',
    data           JSONB            NOT NULL,
    version        BIGINT           NOT NULL,
    created_at     DOUBLE PRECISION NOT NULL,
    updated_at     DOUBLE PRECISION NOT NULL,
    completed      BOOLEAN          NOT NULL DEFAULT FALSE,
    error          TEXT             NOT NULL DEFAULT '',
    PRIMARY KEY (namespace, id)
);
CREATE INDEX IF NOT EXISTS statemachine_instances_by_state
    ON statemachine_instances (namespace, workflow_type, current_state);
CREATE TABLE IF NOT EXISTS statemachine_history (
    namespace   TEXT             NOT NULL,
    instance_id TEXT             NOT NULL,
    version     BIGINT           NOT NULL,
    transition  TEXT             NOT NULL,
    from_state  TEXT             NOT NULL,
    to_state    TEXT             NOT NULL,
    data        JSONB            NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    auto        BOOLEAN          NOT NULL DEFAULT FALSE,
    PRIMARY KEY (namespace, instance_id, version)
);

-- name: schema_lock
SELECT pg_advisory_xact_lock(hashtext('treadle.statemachine.schema'));

-- name: insert_instance
INSERT INTO statemachine_instances (namespace, id, workflow_type, current_state, previous_state,
    data, version, created_at, updated_at, completed, error)
VALUES (%(namespace)s, %(id)s, %(workflow_type)s, %(current_state)s, %(previous_state)s,
    %(data)s::jsonb, %(version)s, %(created_at)s, %(updated_at)s, %(completed)s, %(error)s)
ON CONFLICT DO NOTHING;

-- name: insert_history
INSERT INTO statemachine_history (namespace, instance_id, version, transition, from_state,
    to_state, data, at, auto)
VALUES (%(namespace)s, %(instance_id)s, %(version)s, %(transition)s, %(from_state)s,
    %(to_state)s, %(data)s::jsonb, %(at)s, %(auto)s);

-- name: get_instance
SELECT id, workflow_type, current_state, previous_state, data::text AS data, version,
    created_at, updated_at, completed, error
FROM statemachine_instances WHERE namespace = %(namespace)s AND id = %(id)s;

-- name: list_instances
SELECT id, workflow_type, current_state, previous_state, data::text AS data, version,
    created_at, updated_at, completed, error
FROM statemachine_instances
WHERE namespace = %(namespace)s
  AND (%(workflow_type)s::text IS NULL OR workflow_type = %(workflow_type)s::text)
  AND (%(state)s::text IS NULL OR current_state = %(state)s::text)
ORDER BY created_at, id
LIMIT %(limit)s;

-- name: update_instance
-- Commits only if nobody else did since the caller read `expected`.
UPDATE statemachine_instances
SET current_state = %(current_state)s, previous_state = %(previous_state)s,
    data = %(data)s::jsonb, version = %(version)s, updated_at = %(updated_at)s,
    completed = %(completed)s, error = %(error)s
WHERE namespace = %(namespace)s AND id = %(id)s AND version = %(expected)s;

-- name: history
SELECT instance_id, version, transition, from_state, to_state, data::text AS data, at, auto
FROM statemachine_history
WHERE namespace = %(namespace)s AND instance_id = %(id)s
ORDER BY version;

-- name: delete_history
DELETE FROM statemachine_history WHERE namespace = %(namespace)s AND instance_id = %(id)s;

-- name: delete_instance
DELETE FROM statemachine_instances WHERE namespace = %(namespace)s AND id = %(id)s;
