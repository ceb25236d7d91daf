//! The vector index: chunks with their embeddings and payloads, searchable
//! by similarity with filters. Two backends behind one trait:
//! [`edge::EdgeIndex`] (qdrant-edge on local disk, the default) and
//! [`server::ServerIndex`] (a Qdrant server, with `QDRANT_URL`).
//!
//! A nova collection maps to one qdrant-edge shard or one Qdrant
//! collection. Each chunk's payload carries what ingestion needs to be
//! incremental (source, content hash, loader and version), so the index
//! itself is the record of what was ingested: nothing can drift apart.

pub mod edge;
pub mod server;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("no collection named {0:?}")]
    UnknownCollection(String),
    #[error("invalid collection name {0:?}: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    InvalidCollection(String),
    #[error("the vector index failed: {0}")]
    Backend(String),
    #[error("the vector index is unreachable: {0}")]
    Unavailable(String),
}

/// What is stored with every chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkPayload {
    /// The file's path relative to the ingested directory.
    pub source: String,
    pub text: String,
    pub collection: String,
    pub loader: String,
    pub loader_version: String,
    /// The embedding model's name: vectors of another model are not
    /// comparable, so a model change re-ingests.
    #[serde(default)]
    pub model: String,
    /// sha256 of the file's bytes.
    pub content_hash: String,
    /// Position of this chunk in its file; chunk 0 doubles as the file's
    /// record and is written last, so a file is recorded only once all its
    /// chunks are in.
    pub chunk_index: u32,
    /// How many chunks the file has.
    pub chunks: u32,
    /// The file's size and modification time (ms since the epoch), to skip
    /// hashing unchanged files at start.
    pub size: u64,
    pub modified_ms: u64,
    /// The loader's metadata (heading path, title, page, tags...).
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}

/// One chunk to write.
#[derive(Debug, Clone)]
pub struct Point {
    pub id: u64,
    pub vector: Vec<f32>,
    pub payload: ChunkPayload,
}

/// What a file's chunk 0 records about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub source: String,
    pub content_hash: String,
    pub loader: String,
    pub loader_version: String,
    pub model: String,
    pub chunks: u32,
    pub size: u64,
    pub modified_ms: u64,
}

impl From<ChunkPayload> for FileRecord {
    fn from(p: ChunkPayload) -> Self {
        FileRecord {
            source: p.source,
            content_hash: p.content_hash,
            loader: p.loader,
            loader_version: p.loader_version,
            model: p.model,
            chunks: p.chunks,
            size: p.size,
            modified_ms: p.modified_ms,
        }
    }
}

/// Narrows a search; every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    /// The chunk's source equals this.
    pub source: Option<String>,
    /// The chunk's source starts with this.
    pub source_prefix: Option<String>,
    /// Metadata key equals value, for each pair.
    pub meta: Vec<(String, String)>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.source.is_none() && self.source_prefix.is_none() && self.meta.is_empty()
    }
}

/// A search result.
#[derive(Debug, Clone)]
pub struct Scored {
    pub score: f32,
    pub payload: ChunkPayload,
}

/// Payload fields with a keyword index: filters and deletes on them are
/// index lookups, not scans.
pub const SOURCE_FIELD: &str = "source";
pub const CHUNK_INDEX_FIELD: &str = "chunk_index";
/// Metadata keys live under this object in the payload.
pub const META_FIELD: &str = "meta";

/// A vector index backend.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// `qdrant-edge` or `qdrant`.
    fn backend(&self) -> &'static str;

    /// Names of the collections that exist.
    async fn collections(&self) -> Result<Vec<String>, VectorError>;

    /// Creates `collection` for vectors of `dim` dimensions if it does not
    /// exist yet.
    async fn ensure_collection(&self, collection: &str, dim: usize) -> Result<(), VectorError>;

    /// Inserts or replaces points (by id).
    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<(), VectorError>;

    /// Deletes every chunk of `source`.
    async fn delete_source(&self, collection: &str, source: &str) -> Result<(), VectorError>;

    /// The `top_k` chunks closest to `vector` that pass `filter`, best first.
    async fn search(
        &self,
        collection: &str,
        vector: Vec<f32>,
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Scored>, VectorError>;

    /// The record of every file in `collection` (its chunk 0).
    async fn files(&self, collection: &str) -> Result<Vec<FileRecord>, VectorError>;

    /// How many chunks `collection` holds.
    async fn count(&self, collection: &str) -> Result<u64, VectorError>;

    /// Deletes `collection` and everything in it.
    async fn drop_collection(&self, collection: &str) -> Result<(), VectorError>;

    /// Called after a bulk change; a backend that indexes lazily builds its
    /// search index here (in the background).
    async fn optimize(&self, collection: &str) -> Result<(), VectorError>;
}

/// Whether `name` is a valid collection name.
pub fn valid_collection(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A stable point id for chunk `index` of `source`: re-ingesting a file
/// overwrites its points instead of duplicating them.
pub fn point_id(collection: &str, source: &str, index: u32) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(collection.as_bytes());
    hash.update([0]);
    hash.update(source.as_bytes());
    hash.update([0]);
    hash.update(index.to_le_bytes());
    let digest = hash.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names() {
        assert!(valid_collection("default"));
        assert!(valid_collection("tenant-a_2"));
        assert!(!valid_collection(""));
        assert!(!valid_collection("Upper"));
        assert!(!valid_collection("../etc"));
        assert!(!valid_collection(&"a".repeat(65)));
    }

    #[test]
    fn point_ids_are_stable_and_distinct() {
        assert_eq!(point_id("c", "a.md", 0), point_id("c", "a.md", 0));
        assert_ne!(point_id("c", "a.md", 0), point_id("c", "a.md", 1));
        assert_ne!(point_id("c", "a.md", 0), point_id("d", "a.md", 0));
        assert_ne!(point_id("c", "ab", 0), point_id("c", "a", 0));
    }
}
