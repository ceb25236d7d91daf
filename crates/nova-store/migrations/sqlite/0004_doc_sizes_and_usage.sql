-- Kept in step with ../postgres/0006_doc_sizes_and_usage.sql.
--
-- Every document's size, and per namespace the documents and bytes held,
-- for the plugins' store quotas.
ALTER TABLE docs ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE docs SET size_bytes = octet_length(value);

CREATE TABLE doc_usage (
    namespace TEXT PRIMARY KEY NOT NULL,
    docs      INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
) STRICT;
INSERT INTO doc_usage (namespace, docs, bytes)
SELECT namespace, COUNT(*), COALESCE(SUM(size_bytes), 0) FROM docs GROUP BY namespace;
