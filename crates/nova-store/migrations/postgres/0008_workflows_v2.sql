-- Kept in step with ../sqlite/0006_workflows_v2.sql.
--
-- Workflows v2: saved, versioned definitions; runs that record which
-- definition (and version) they run and the plan of their DAG; steps with
-- an id, the input their expressions resolved to, the elements of a
-- for_each, when a sleep wakes, and a `skipped` status for a step whose
-- `if` was false.

CREATE TABLE workflow_definitions (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    -- The definition as saved, normalised to JSON.
    body       JSON NOT NULL,
    created_at BIGINT NOT NULL,
    -- Deleting a definition marks every version: runs keep reading theirs,
    -- and saving the name again continues the numbering.
    deleted_at BIGINT,
    PRIMARY KEY (name, version)
);

-- The next tick of each scheduled definition. A host fires a tick by
-- creating its run (idempotency key cron:NAME:TICK) and then moving
-- next_at on from that tick with a compare-and-set: one run per tick,
-- however many hosts race for it.
CREATE TABLE workflow_schedules (
    name    TEXT PRIMARY KEY,
    next_at BIGINT NOT NULL
);
CREATE INDEX workflow_schedules_next_at ON workflow_schedules (next_at);

ALTER TABLE runs
    -- The schedule tick (unix ms) that started the run.
    ADD COLUMN scheduled_for BIGINT,
    ADD COLUMN definition TEXT,
    ADD COLUMN definition_version INTEGER,
    -- The steps' ids, needs and expressions, and the run's output and
    -- max_parallel; NULL for a plain list of steps.
    ADD COLUMN plan JSON;
CREATE INDEX runs_definition_id ON runs (definition, id) WHERE definition IS NOT NULL;

ALTER TABLE steps
    ADD COLUMN step_id TEXT,
    ADD COLUMN input JSON,
    ADD COLUMN items JSON,
    -- A sleep step's wake time (unix ms); the run waits parked, its lease
    -- expiring then, holding no worker.
    ADD COLUMN wake_at BIGINT,
    DROP CONSTRAINT steps_status_check,
    ADD CONSTRAINT steps_status_check
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'));
