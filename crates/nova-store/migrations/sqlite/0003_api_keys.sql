-- Kept in step with ../postgres/0004_api_keys.sql.
--
-- API keys: bearer credentials with scopes. Only a hash of each key is
-- kept; the key itself is shown once, when it is created. Revoking a key
-- deletes its row.

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
