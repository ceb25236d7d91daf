-- Kept in step with ../postgres/0008_workflows_v2.sql.
--
-- Workflows v2: saved, versioned definitions; runs that record which
-- definition (and version) they run and the plan of their DAG; steps with
-- an id, the input their expressions resolved to, the elements of a
-- for_each, when a sleep wakes, and a `skipped` status for a step whose
-- `if` was false.

CREATE TABLE workflow_definitions (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (name, version)
) STRICT;

CREATE TABLE workflow_schedules (
    name    TEXT PRIMARY KEY NOT NULL,
    next_at INTEGER NOT NULL
) STRICT;
CREATE INDEX workflow_schedules_next_at ON workflow_schedules (next_at);

ALTER TABLE runs ADD COLUMN scheduled_for INTEGER;
ALTER TABLE runs ADD COLUMN definition TEXT;
ALTER TABLE runs ADD COLUMN definition_version INTEGER;
ALTER TABLE runs ADD COLUMN plan TEXT;
CREATE INDEX runs_definition_id ON runs (definition, id) WHERE definition IS NOT NULL;

-- A CHECK cannot be altered in SQLite: the table is rebuilt with the new
-- status and columns. Nothing refers to steps, so it can be dropped.
CREATE TABLE steps_v2 (
    run_id         BLOB NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL CHECK (idx >= 0),
    plugin         TEXT NOT NULL,
    config         TEXT NOT NULL,
    timeout_ms     INTEGER,
    retries        INTEGER,
    plugin_version TEXT,
    status         TEXT NOT NULL
                   CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    output         TEXT,
    error          TEXT,
    started_at     INTEGER,
    finished_at    INTEGER,
    duration_ms    REAL,
    step_id        TEXT,
    input          TEXT,
    items          TEXT,
    wake_at        INTEGER,
    PRIMARY KEY (run_id, idx)
) STRICT;
INSERT INTO steps_v2 (run_id, idx, plugin, config, timeout_ms, retries, plugin_version,
                      status, attempts, output, error, started_at, finished_at, duration_ms)
SELECT run_id, idx, plugin, config, timeout_ms, retries, plugin_version,
       status, attempts, output, error, started_at, finished_at, duration_ms
FROM steps;
DROP TABLE steps;
ALTER TABLE steps_v2 RENAME TO steps;
