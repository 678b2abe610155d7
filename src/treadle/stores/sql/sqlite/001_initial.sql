-- Treadle schema v1 for SQLite: executions index, append-only journal, signal inbox.
CREATE TABLE executions (
    id              TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    version         TEXT,
    status          TEXT NOT NULL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    finished_at     REAL,
    idempotency_key TEXT UNIQUE,
    parent_id       TEXT,
    error           TEXT,
    queue           TEXT NOT NULL DEFAULT 'default',
    priority        INTEGER NOT NULL DEFAULT 0,
    tenant_id       TEXT,
    partition_key   TEXT,
    started_at      REAL,
    owner           TEXT,
    lease_until     REAL,
    wake_at         REAL
);
CREATE INDEX idx_executions_created ON executions (created_at DESC, id DESC);
CREATE INDEX idx_executions_status ON executions (status, created_at);
CREATE INDEX idx_executions_workflow ON executions (workflow, created_at);
CREATE INDEX idx_executions_parent ON executions (parent_id);
CREATE INDEX idx_executions_queue ON executions (queue, status, priority DESC, created_at);

-- The journal, one row per committed batch of events (one transaction = one row): a durable
-- step costs a single B-tree insert. `events` is a JSON array of [seq, type, data, created_at];
-- batches of one execution cover seqs first_seq..last_seq with no gaps or overlaps.
CREATE TABLE execution_events (
    execution_id    TEXT NOT NULL,
    first_seq       INTEGER NOT NULL,
    last_seq        INTEGER NOT NULL,
    events          TEXT NOT NULL,
    PRIMARY KEY (execution_id, first_seq)
) WITHOUT ROWID;

CREATE TABLE signals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id    TEXT NOT NULL,
    name            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      REAL NOT NULL
);
CREATE INDEX idx_signals_execution ON signals (execution_id, id);
