-- Workflow runs, their steps, and the JSON documents plugins keep.
--
-- Kept in step with ../postgres/0001_runs_steps_docs.sql: same tables, same
-- columns, same meaning. STRICT tables, so a value of the wrong type is an
-- error here as it would be in Postgres. UUIDs are 16-byte BLOBs (they
-- compare bytewise, so v7 ids still sort by creation); JSON is TEXT;
-- booleans are 0/1.

CREATE TABLE runs (
    id               BLOB PRIMARY KEY NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    idempotency_key  TEXT UNIQUE,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
) STRICT;

CREATE INDEX runs_status_id ON runs (status, id);

CREATE TABLE steps (
    run_id         BLOB NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL CHECK (idx >= 0),
    plugin         TEXT NOT NULL,
    config         TEXT NOT NULL,
    timeout_ms     INTEGER,
    retries        INTEGER,
    plugin_version TEXT,
    status         TEXT NOT NULL
                   CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    output         TEXT,
    error          TEXT,
    started_at     INTEGER,
    finished_at    INTEGER,
    duration_ms    REAL,
    PRIMARY KEY (run_id, idx)
) STRICT;

CREATE TABLE docs (
    namespace  TEXT NOT NULL,
    -- TEXT compares bytewise (BINARY collation): listing by prefix is a
    -- range of the primary key, as in Postgres.
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) STRICT;
