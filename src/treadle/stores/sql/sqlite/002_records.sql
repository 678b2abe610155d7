-- Records: small JSON documents of the control plane (dead letters, breakpoints, tenants,
-- users, API keys, audit entries), addressed by (kind, key).
CREATE TABLE records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    tenant_id TEXT,
    data TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX idx_records_listing ON records (kind, created_at DESC, key DESC);
CREATE INDEX idx_records_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
