-- Secrets plugins read through wasi:config, shared by every host on this
-- database. Only ciphertext is kept: the host encrypts each value with an
-- AEAD under its secrets key (NOVA_SECRETS_KEY), the secret's name bound in
-- as associated data, so a value cannot be moved to another name.

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    -- The AEAD's nonce, random per write.
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
