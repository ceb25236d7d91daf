-- Kept in step with ../postgres/0009_key_collections.sql.
--
-- An API key may be held to some collections of the knowledge base:
-- their names, space-separated; NULL for every collection.

ALTER TABLE api_keys ADD COLUMN collections TEXT;
