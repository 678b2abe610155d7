-- The journal as one row per appended batch (the layout the SQLite store uses), and appends
-- that insert without updating the execution's row.
--
-- Before: one row per event, and every append moved `executions.last_seq` with an UPDATE, so a
-- durable step wrote a new version of the execution's row, 4 journal rows and 12 index entries.
-- After: a step inserts one `execution_batches` row (3 index entries) and locks the execution's
-- row FOR SHARE to check the lease (see queries.sql, `append`); the journal's head is the
-- `last_seq` of the execution's last batch, so `executions.last_seq` goes.
--
-- A batch's `events` is a JSON array of [seq, type, data, created_at], seqs first_seq..last_seq
-- with no gaps; batches of one execution neither overlap nor leave gaps (the primary key
-- rejects a second batch starting at the same seq). `types` lists the batch's event types in
-- order, for the type index. `created_at` is when the batch was recorded: the time of its last
-- event, or for the batch `create` writes, the execution's creation time.
--
-- Existing journals are converted one batch per event, so every event keeps its exact data
-- text and time. `execution_events` becomes a view with the old columns (one row per event),
-- plus each batch's `types` and `created_at` so that queries by type and time use the indexes.

CREATE TABLE execution_batches (
    execution_id    TEXT NOT NULL,
    first_seq       BIGINT NOT NULL,
    last_seq        BIGINT NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    types           TEXT[] NOT NULL,
    events          JSON NOT NULL,
    PRIMARY KEY (execution_id, first_seq),
    CHECK (last_seq >= first_seq)
);

INSERT INTO execution_batches (execution_id, first_seq, last_seq, created_at, types, events)
SELECT execution_id, seq, seq, created_at, ARRAY[type],
       json_build_array(json_build_array(seq, type, data, created_at))
FROM execution_events;

DROP TABLE execution_events;
ALTER TABLE executions DROP COLUMN last_seq;

-- The seed roadmap's journal indexes, on batches: by event type (`types @> ARRAY['…']`) and by
-- time (batches recorded in a period).
CREATE INDEX idx_execution_batches_types ON execution_batches USING gin (types);
CREATE INDEX idx_execution_batches_created ON execution_batches (created_at);

-- No JSON operator reads the elements: on the JSON type, `->` and `->>` de-escape every string
-- they pass and fail on a \u0000, which an event's data may hold (JSON, unlike JSONB, keeps
-- it). json_array_elements returns each element's text as written.
CREATE VIEW execution_events AS
SELECT b.execution_id, b.first_seq + e.n - 1 AS seq, b.types[e.n] AS type,
       f.data::json AS data, f.created_at::float8 AS created_at, b.types AS batch_types,
       b.created_at AS batch_created_at
FROM execution_batches b
CROSS JOIN LATERAL json_array_elements(b.events) WITH ORDINALITY AS e (item, n)
CROSS JOIN LATERAL (
    SELECT max(part::text) FILTER (WHERE k = 3) AS data,
           max(part::text) FILTER (WHERE k = 4) AS created_at
    FROM json_array_elements(e.item) WITH ORDINALITY AS p (part, k)) AS f;
