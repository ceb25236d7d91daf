-- API keys: bearer credentials with scopes, shared by every host on this
-- database. Only a hash of each key is kept (SHA-256 of the whole key: keys
-- are 256 random bits, so a fast hash is enough); the key itself is shown
-- once, when it is created. Revoking a key deletes its row.

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    -- The key's first characters, to tell keys apart in a listing.
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    -- Space-separated scope names.
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- Updated at most once a minute per key.
    last_used_at BIGINT
);
