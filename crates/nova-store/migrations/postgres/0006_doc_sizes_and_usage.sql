-- What each plugin keeps in the store, for its quota: every document's
-- size (its JSON text, in bytes), and per namespace the documents and
-- bytes held. The usage row is updated in the transaction that writes or
-- deletes a document, holding the row's lock, so two writers of one
-- namespace cannot both pass a quota that only one of them fits.
ALTER TABLE docs ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE docs SET size_bytes = octet_length(value::text);

CREATE TABLE doc_usage (
    namespace TEXT PRIMARY KEY,
    docs      BIGINT NOT NULL,
    bytes     BIGINT NOT NULL
);
INSERT INTO doc_usage (namespace, docs, bytes)
SELECT namespace, COUNT(*), COALESCE(SUM(size_bytes), 0) FROM docs GROUP BY namespace;
