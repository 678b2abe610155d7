-- Treadle schema v1 for PostgreSQL: executions index, append-only journal, signal inbox.
--
-- Times are epoch seconds in DOUBLE PRECISION, exactly the floats the engine wrote (a
-- TIMESTAMPTZ would round them to microseconds and break keyset cursors).
--
-- Payloads are JSON, not JSONB: JSONB reorders object keys (a resumed workflow iterating a
-- recorded dict would see another order than the first run), rejects strings containing
-- \u0000 and turns floats such as 1e16 into integers. JSON keeps the text as written, takes the
-- same operators (->, ->>, json_each) and casts to JSONB for ad-hoc queries.

CREATE TABLE executions (
    id              TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    version         TEXT,
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'suspended', 'completed', 'failed', 'cancelled')),
    created_at      DOUBLE PRECISION NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL,
    finished_at     DOUBLE PRECISION,
    idempotency_key TEXT UNIQUE,
    parent_id       TEXT,
    error           TEXT,
    queue           TEXT NOT NULL DEFAULT 'default',
    priority        INTEGER NOT NULL DEFAULT 0,
    tenant_id       TEXT,
    partition_key   TEXT,
    -- When a worker first claimed it (rate limits count these).
    started_at      DOUBLE PRECISION,
    owner           TEXT,
    lease_until     DOUBLE PRECISION,
    wake_at         DOUBLE PRECISION,
    -- The journal's head, checked and moved by every append (optimistic concurrency).
    last_seq        BIGINT NOT NULL DEFAULT 0
) WITH (fillfactor = 80);  -- room for HOT updates: most appends change unindexed columns only

-- Listings: newest first, optionally by status, workflow, parent or tenant.
CREATE INDEX idx_executions_created ON executions (created_at DESC, id DESC);
CREATE INDEX idx_executions_status ON executions (status, created_at DESC, id DESC);
CREATE INDEX idx_executions_workflow ON executions (workflow, created_at DESC, id DESC);
CREATE INDEX idx_executions_parent ON executions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX idx_executions_tenant ON executions (tenant_id, created_at DESC, id DESC)
    WHERE tenant_id IS NOT NULL;
-- Claims read small sets only, never the executions leased by live workers: free ones in
-- priority order (recovery), free ones runnable now, free ones with a wake-up time (timers,
-- delayed starts), and leases by expiry. Signalled sleepers are found through `signals`.
CREATE INDEX idx_executions_free ON executions (priority DESC, created_at, id)
    WHERE owner IS NULL AND status IN ('pending', 'running', 'suspended');
CREATE INDEX idx_executions_ready ON executions (priority DESC, created_at, id)
    WHERE owner IS NULL AND status IN ('pending', 'running') AND wake_at IS NULL;
CREATE INDEX idx_executions_timers ON executions (wake_at)
    WHERE owner IS NULL AND status IN ('pending', 'running', 'suspended')
      AND wake_at IS NOT NULL;
CREATE INDEX idx_executions_leases ON executions (lease_until)
    WHERE owner IS NOT NULL AND status IN ('pending', 'running', 'suspended');
-- Queue depth (pending executions per queue) and start-rate limits.
CREATE INDEX idx_executions_pending ON executions (queue) WHERE status = 'pending';
CREATE INDEX idx_executions_started ON executions (started_at) WHERE started_at IS NOT NULL;
-- Retention.
CREATE INDEX idx_executions_finished ON executions (finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

-- The journal: one row per event. The primary key makes seqs unique per execution and
-- serves reads by execution (so no separate index on execution_id). No foreign key: every
-- insert goes through an UPDATE of the execution's row in the same statement, which already
-- proves the row exists, and a per-event RI check would cost a lookup per event.
CREATE TABLE execution_events (
    execution_id    TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    type            TEXT NOT NULL,
    data            JSON NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (execution_id, seq)
);
CREATE INDEX idx_execution_events_type ON execution_events (type);
CREATE INDEX idx_execution_events_created ON execution_events (created_at);

-- The inbox: unconsumed signals (consuming one deletes it, in the append that records it).
CREATE TABLE signals (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id    TEXT NOT NULL,
    name            TEXT NOT NULL,
    payload         JSON NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL
);
CREATE INDEX idx_signals_execution ON signals (execution_id, id);
