-- Kept in step with ../postgres/0007_secrets.sql.
--
-- Secrets plugins read through wasi:config: only ciphertext is kept, the
-- secret's name bound in as the AEAD's associated data.

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
