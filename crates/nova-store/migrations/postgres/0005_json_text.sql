-- JSON kept as the text it was written as (`json`), not parsed into
-- `jsonb`: nova reads it back and serves it as that text without parsing
-- it, and nothing queries inside it. Writing and reading get cheaper too.
ALTER TABLE runs
    ALTER COLUMN input TYPE json USING input::json,
    ALTER COLUMN output TYPE json USING output::json;
ALTER TABLE steps
    ALTER COLUMN config TYPE json USING config::json,
    ALTER COLUMN output TYPE json USING output::json;
ALTER TABLE docs
    ALTER COLUMN value TYPE json USING value::json;
