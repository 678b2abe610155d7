-- Records: small JSON documents of the control plane (dead letters, breakpoints, tenants,
-- users, API keys, audit entries), addressed by (kind, key). Keys sort bytewise (COLLATE "C")
-- so cursors page the same way on every backend.
CREATE TABLE records (
    kind        TEXT NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    tenant_id   TEXT,
    data        JSON NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION,
    PRIMARY KEY (kind, key)
);
CREATE INDEX idx_records_listing ON records (kind, created_at DESC, key DESC);
CREATE INDEX idx_records_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
