-- The plugins uploaded through any host's admin API, shared by every host
-- on this database (Postgres only: SQLite means one host).
--
-- A host that uploads or removes a plugin writes its row and notifies the
-- channel `nova_plugins`; every host listens, reads the row and installs
-- or removes the plugin in its own plugin directory. A removal keeps the
-- row without its bytes (a tombstone), so a host that was down when it
-- happened removes the plugin too when it comes back.

CREATE TABLE plugins (
    name        TEXT PRIMARY KEY,
    -- The version last published; after a removal, the one removed.
    sha256      TEXT NOT NULL,
    -- NULL: removed.
    wasm        BYTEA,
    size_bytes  BIGINT,
    -- Unix milliseconds, from the writing host's clock.
    updated_at  BIGINT NOT NULL,
    -- The host (hostname-pid) that wrote it, for operators.
    updated_by  TEXT NOT NULL
);
