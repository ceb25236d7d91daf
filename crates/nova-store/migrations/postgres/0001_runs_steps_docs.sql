-- Workflow runs, their steps, and the JSON documents plugins keep.
--
-- Kept in step with ../sqlite/0001_runs_steps_docs.sql: same tables, same
-- columns, same meaning. Timestamps are unix milliseconds (BIGINT) from the
-- host's clock in both backends; JSON is JSONB here, TEXT there.

CREATE TABLE runs (
    -- UUID v7: id order is creation order, so pages are ranges of the key.
    id               UUID PRIMARY KEY,
    status           TEXT NOT NULL
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    input            JSONB NOT NULL,
    output           JSONB,
    error            TEXT,
    -- UNIQUE lets many runs have none, and makes a second submission with
    -- the same key an INSERT conflict rather than a race.
    idempotency_key  TEXT UNIQUE,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    -- The worker that holds the run, and until when; NULL unless running.
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
-- Room on each page for lease renewals to be HOT updates (no index
-- changes, no new index entries).
) WITH (fillfactor = 85);

-- Listing by status newest first; finding queued and running runs.
CREATE INDEX runs_status_id ON runs (status, id);

CREATE TABLE steps (
    run_id         UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL CHECK (idx >= 0),
    plugin         TEXT NOT NULL,
    config         JSONB NOT NULL,
    timeout_ms     BIGINT,
    retries        BIGINT,
    -- The plugin version that ran the latest attempt.
    plugin_version TEXT,
    status         TEXT NOT NULL
                   CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    output         JSONB,
    error          TEXT,
    started_at     BIGINT,
    finished_at    BIGINT,
    duration_ms    DOUBLE PRECISION,
    PRIMARY KEY (run_id, idx)
-- A step's row is updated two or three times and no indexed column
-- changes: with room on the page, every update is HOT.
) WITH (fillfactor = 85);

CREATE TABLE docs (
    namespace  TEXT NOT NULL,
    -- Bytewise order, as SQLite's: listing by prefix is a range of the
    -- primary key (prefix <= key < next string), whatever the database's
    -- locale.
    key        TEXT COLLATE "C" NOT NULL,
    value      JSONB NOT NULL,
    version    BIGINT NOT NULL CHECK (version > 0),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);
