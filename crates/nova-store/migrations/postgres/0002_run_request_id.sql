-- The X-Request-Id of the HTTP request that submitted a run, so the worker
-- that executes it (on any host) logs it. Null for runs submitted before.
ALTER TABLE runs ADD COLUMN request_id TEXT;
