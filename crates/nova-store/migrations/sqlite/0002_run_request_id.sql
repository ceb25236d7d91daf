-- Kept in step with ../postgres/0002_run_request_id.sql.
--
-- The X-Request-Id of the HTTP request that submitted a run, so the worker
-- that executes it logs it. Null for runs submitted before.
ALTER TABLE runs ADD COLUMN request_id TEXT;
