//! The vector index: chunks with their embeddings and payloads, searchable
//! by similarity with filters. Two backends behind one trait:
//! [`edge::EdgeIndex`] (qdrant-edge on local disk, the default) and
//! [`server::ServerIndex`] (a Qdrant server, with `QDRANT_URL`).
//!
//! A nova collection maps to one qdrant-edge shard or one Qdrant
//! collection. Each chunk's payload carries what ingestion needs to be
//! incremental (source, content hash, loader and version), so the index
//! itself is the record of what was ingested: nothing can drift apart.
//!
//! Every chunk has two vectors: the embedding (dense, for meaning) and its
//! keywords (sparse, BM25: see [`keywords`]), whose inverse document
//! frequencies the index itself keeps, so a search ranks by meaning, by
//! keywords, or by both fused ([`Ranking`]).

pub mod edge;
pub mod keywords;
pub mod server;

pub use keywords::{KEYWORDS_MODEL, Keywords, Sparse};

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
    /// The loader's metadata (heading path, title, page, tags...), and the
    /// document's own (given with an upload), which wins on a clash.
    #[serde(default)]
    pub meta: BTreeMap<String, serde_json::Value>,
    /// The keyword model the chunk's sparse vector was made with (empty:
    /// none, for chunks indexed before keyword search).
    #[serde(default)]
    pub keywords: String,
    /// Whether the document came through the document API rather than a
    /// directory: a directory's sync leaves uploads alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uploaded: bool,
    /// On chunk 0 only: the metadata the document was uploaded with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub doc_meta: BTreeMap<String, serde_json::Value>,
}

/// One chunk to write.
#[derive(Debug, Clone)]
pub struct Point {
    pub id: u64,
    pub vector: Vec<f32>,
    /// Its keywords (BM25 term weights); none leaves the chunk out of
    /// keyword search.
    pub keywords: Option<Sparse>,
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
    pub keywords: String,
    pub uploaded: bool,
    pub metadata: BTreeMap<String, serde_json::Value>,
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
            keywords: p.keywords,
            uploaded: p.uploaded,
            metadata: p.doc_meta,
        }
    }
}

/// A metadata value a filter compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Integer(i64),
    Bool(bool),
}

/// One end of a range: a number, or an RFC 3339 date-time (a metadata
/// value that is a date-time string compares as a date-time).
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(f64),
    Date(String),
}

/// What a metadata key's value must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Equal to this (for a list value: contains it).
    Eq(Scalar),
    /// Equal to one of these.
    Any(Vec<Scalar>),
    /// Equal to none of these (a chunk without the key passes).
    Not(Vec<Scalar>),
    /// Within the range; every end given must hold, and all ends are of
    /// one kind (numbers or dates).
    Range {
        gt: Option<Bound>,
        gte: Option<Bound>,
        lt: Option<Bound>,
        lte: Option<Bound>,
    },
}

impl Test {
    /// Whether this is a range over dates (rather than numbers).
    pub fn is_date_range(&self) -> bool {
        matches!(self, Test::Range { gt, gte, lt, lte }
            if [gt, gte, lt, lte].into_iter().flatten().any(|b| matches!(b, Bound::Date(_))))
    }
}

/// Narrows a search; every condition must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// The chunk's source equals this.
    pub source: Option<String>,
    /// The chunk's source starts with this.
    pub source_prefix: Option<String>,
    /// A test on the value of a metadata key, for each pair.
    pub meta: Vec<(String, Test)>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.source.is_none() && self.source_prefix.is_none() && self.meta.is_empty()
    }
}

/// How a search ranks chunks.
#[derive(Debug, Clone)]
pub enum Ranking {
    /// By the embedding's cosine similarity.
    Dense(Vec<f32>),
    /// By BM25 over the keywords, with the collection's IDF.
    Keywords(Sparse),
    /// Both, fused by reciprocal rank: each list's best `depth` chunks
    /// count `1 / (k + rank)`.
    Hybrid {
        dense: Vec<f32>,
        keywords: Sparse,
        depth: usize,
    },
}

/// Settings a collection is created with, kept by the index with it;
/// nova's own (chunking, a description) as an opaque JSON object.
pub type Settings = serde_json::Map<String, serde_json::Value>;

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
/// The name of the sparse (keyword) vector; the dense one is unnamed.
pub const KEYWORDS_VECTOR: &str = "keywords";

/// A vector index backend.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// `qdrant-edge` or `qdrant`.
    fn backend(&self) -> &'static str;

    /// Names of the collections that exist.
    async fn collections(&self) -> Result<Vec<String>, VectorError>;

    /// Creates `collection` for vectors of `dim` dimensions if it does not
    /// exist yet (with `settings`); one made before keyword search gets its
    /// keyword vector. True when it was created now.
    async fn create_collection(
        &self,
        collection: &str,
        dim: usize,
        settings: &Settings,
    ) -> Result<bool, VectorError>;

    /// [`VectorIndex::create_collection`] without settings.
    async fn ensure_collection(&self, collection: &str, dim: usize) -> Result<(), VectorError> {
        self.create_collection(collection, dim, &Settings::new())
            .await
            .map(drop)
    }

    /// The settings `collection` was created with.
    async fn settings(&self, collection: &str) -> Result<Settings, VectorError>;

    /// Inserts or replaces points (by id).
    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<(), VectorError>;

    /// Deletes every chunk of `source`.
    async fn delete_source(&self, collection: &str, source: &str) -> Result<(), VectorError>;

    /// The `top_k` best chunks by `ranking` that pass `filter`, best first.
    async fn query(
        &self,
        collection: &str,
        ranking: Ranking,
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Scored>, VectorError>;

    /// The `top_k` chunks closest to `vector` that pass `filter`, best first.
    async fn search(
        &self,
        collection: &str,
        vector: Vec<f32>,
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<Scored>, VectorError> {
        self.query(collection, Ranking::Dense(vector), top_k, filter)
            .await
    }

    /// The record of every file in `collection` (its chunk 0).
    async fn files(&self, collection: &str) -> Result<Vec<FileRecord>, VectorError>;

    /// How many documents `collection` holds (its chunk 0s).
    async fn file_count(&self, collection: &str) -> Result<u64, VectorError>;

    /// At most `limit` records of `collection`, from `cursor` on (none:
    /// the first page), in the index's own stable order; and the cursor of
    /// the next page, if there is one. Holds one page in memory, however
    /// big the collection.
    async fn files_page(
        &self,
        collection: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<FileRecord>, Option<u64>), VectorError>;

    /// The record of `source` in `collection`, if it is there.
    async fn file(
        &self,
        collection: &str,
        source: &str,
    ) -> Result<Option<FileRecord>, VectorError> {
        Ok(self
            .chunk(collection, point_id(collection, source, 0))
            .await?
            .filter(|p| p.source == source)
            .map(FileRecord::from))
    }

    /// The payload of the chunk with id `id`.
    async fn chunk(&self, collection: &str, id: u64) -> Result<Option<ChunkPayload>, VectorError>;

    /// Every chunk of `source`, in order.
    async fn chunks(
        &self,
        collection: &str,
        source: &str,
    ) -> Result<Vec<ChunkPayload>, VectorError>;

    /// How many chunks `collection` holds.
    async fn count(&self, collection: &str) -> Result<u64, VectorError>;

    /// Deletes `collection` and everything in it.
    async fn drop_collection(&self, collection: &str) -> Result<(), VectorError>;

    /// Called after a bulk change; a backend that indexes lazily builds its
    /// search index here (in the background).
    async fn optimize(&self, collection: &str) -> Result<(), VectorError>;
}

/// RRF's `k`: how much a lower rank still counts (`1 / (k + rank)`); 60 is
/// the constant of the paper that introduced it, and what most engines use.
pub const RRF_K: usize = 60;

/// The payload path of metadata key `key`.
pub fn meta_path(key: &str) -> String {
    format!("{META_FIELD}.{key}")
}

/// What kind of payload index serves a test on a metadata key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Keyword,
    Integer,
    Bool,
    Float,
    Datetime,
}

impl Test {
    /// The index this test is fastest with.
    pub fn index_kind(&self) -> IndexKind {
        let of = |s: &Scalar| match s {
            Scalar::Text(_) => IndexKind::Keyword,
            Scalar::Integer(_) => IndexKind::Integer,
            Scalar::Bool(_) => IndexKind::Bool,
        };
        match self {
            Test::Eq(s) => of(s),
            Test::Any(list) | Test::Not(list) => list.first().map_or(IndexKind::Keyword, of),
            Test::Range { .. } if self.is_date_range() => IndexKind::Datetime,
            Test::Range { .. } => IndexKind::Float,
        }
    }
}

impl Filter {
    /// The filter in Qdrant's JSON form (`{"must": [...], "must_not":
    /// [...]}`), or `None` when it lets everything through.
    pub fn to_qdrant_json(&self) -> Option<serde_json::Value> {
        use serde_json::{Value, json};
        let scalar = |s: &Scalar| match s {
            Scalar::Text(t) => json!(t),
            Scalar::Integer(i) => json!(i),
            Scalar::Bool(b) => json!(b),
        };
        let bound = |b: &Option<Bound>| match b {
            Some(Bound::Number(n)) => json!(n),
            Some(Bound::Date(d)) => json!(d),
            None => Value::Null,
        };
        let mut must = Vec::new();
        let mut must_not = Vec::new();
        if let Some(source) = &self.source {
            must.push(json!({"key": SOURCE_FIELD, "match": {"value": source}}));
        }
        if let Some(prefix) = &self.source_prefix {
            must.push(json!({"key": SOURCE_FIELD, "match": {"prefix": prefix}}));
        }
        for (key, test) in &self.meta {
            let key = meta_path(key);
            match test {
                Test::Eq(s) => must.push(json!({"key": key, "match": {"value": scalar(s)}})),
                Test::Any(list) => must.push(
                    json!({"key": key, "match": {"any": list.iter().map(scalar).collect::<Vec<_>>()}}),
                ),
                Test::Not(list) => must_not.push(
                    json!({"key": key, "match": {"any": list.iter().map(scalar).collect::<Vec<_>>()}}),
                ),
                Test::Range { gt, gte, lt, lte } => {
                    let mut range = serde_json::Map::new();
                    for (name, end) in [("gt", gt), ("gte", gte), ("lt", lt), ("lte", lte)] {
                        if end.is_some() {
                            range.insert(name.to_owned(), bound(end));
                        }
                    }
                    must.push(json!({"key": key, "range": range}));
                }
            }
        }
        if must.is_empty() && must_not.is_empty() {
            return None;
        }
        let mut filter = serde_json::Map::new();
        if !must.is_empty() {
            filter.insert("must".into(), Value::Array(must));
        }
        if !must_not.is_empty() {
            filter.insert("must_not".into(), Value::Array(must_not));
        }
        Some(Value::Object(filter))
    }
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
