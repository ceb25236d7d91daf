//! The knowledge base: documents, split into chunks, embedded and indexed,
//! searchable by meaning.
//!
//! [`Knowledge`] answers queries (for `/rag/query` and the plugins'
//! `knowledge.search`): embed the query, search the vector index, cache
//! the answer. [`ingest::Ingestor`] keeps the index in step with the
//! knowledge directories, through the loader plugins.

pub mod cache;
pub mod chunk;
pub mod ingest;
pub mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::embed::{EmbedError, Embedder, ModelInfo};
use crate::vector::{Filter, VectorError, VectorIndex, valid_collection};
pub use cache::QueryCache;
pub use chunk::ChunkBudget;

pub const MAX_TOP_K: u32 = 100;
pub const DEFAULT_TOP_K: u32 = 5;
/// Longest query accepted, in bytes: queries are questions, not documents.
pub const MAX_QUERY_BYTES: usize = 4096;
pub const DEFAULT_COLLECTION: &str = "default";

pub use nova_client::{Hit, QueryAnswer as Answer};

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("query is empty")]
    EmptyQuery,
    #[error("query is {len} bytes; the limit is {MAX_QUERY_BYTES}")]
    QueryTooLong { len: usize },
    #[error("top_k must be between 1 and {MAX_TOP_K}")]
    BadTopK,
    #[error("invalid filter: {0}")]
    BadFilter(String),
    #[error("invalid collection name {0:?}: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    BadCollection(String),
    #[error("no collection named {0:?}")]
    UnknownCollection(String),
    #[error("the knowledge base is disabled: {0}")]
    Disabled(String),
    #[error("ingest failed: {0}")]
    Ingest(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Index(VectorError),
}

impl From<VectorError> for KnowledgeError {
    fn from(e: VectorError) -> Self {
        match e {
            VectorError::UnknownCollection(c) => KnowledgeError::UnknownCollection(c),
            VectorError::InvalidCollection(c) => KnowledgeError::BadCollection(c),
            other => KnowledgeError::Index(other),
        }
    }
}

/// A validated query.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub top_k: u32,
    pub collection: String,
    pub filter: Filter,
}

impl Query {
    /// Checks the parts a caller sends.
    pub fn new(
        text: String,
        top_k: Option<u32>,
        collection: Option<String>,
        filter: Filter,
    ) -> Result<Self, KnowledgeError> {
        if text.trim().is_empty() {
            return Err(KnowledgeError::EmptyQuery);
        }
        if text.len() > MAX_QUERY_BYTES {
            return Err(KnowledgeError::QueryTooLong { len: text.len() });
        }
        let top_k = top_k.unwrap_or(DEFAULT_TOP_K);
        if top_k == 0 || top_k > MAX_TOP_K {
            return Err(KnowledgeError::BadTopK);
        }
        let collection = collection.unwrap_or_else(|| DEFAULT_COLLECTION.to_owned());
        if !valid_collection(&collection) {
            return Err(KnowledgeError::BadCollection(collection));
        }
        for (key, _) in &filter.meta {
            if !valid_meta_key(key) {
                return Err(KnowledgeError::BadFilter(format!(
                    "metadata key {key:?}: use 1 to 64 of A-Z, a-z, 0-9, '_' and '-'"
                )));
            }
        }
        Ok(Query {
            text,
            top_k,
            collection,
            filter,
        })
    }

    /// Builds a query from a plugin's filter pairs: `collection`, `source`,
    /// `source_prefix`, or any metadata key.
    pub fn from_pairs(
        text: String,
        top_k: u32,
        pairs: &[(String, String)],
    ) -> Result<Self, KnowledgeError> {
        let mut filter = Filter::default();
        let mut collection = None;
        for (key, value) in pairs {
            match key.as_str() {
                "collection" => collection = Some(value.clone()),
                "source" => filter.source = Some(value.clone()),
                "source_prefix" => filter.source_prefix = Some(value.clone()),
                _ => filter.meta.push((key.clone(), value.clone())),
            }
        }
        Query::new(text, Some(top_k), collection, filter)
    }

    /// The cache key: everything that shapes the answer.
    fn cache_key(&self) -> String {
        let mut meta = self.filter.meta.clone();
        meta.sort();
        serde_json::json!([
            self.text,
            self.top_k,
            self.filter.source,
            self.filter.source_prefix,
            meta
        ])
        .to_string()
    }
}

/// Metadata keys become payload paths: keep them plain.
fn valid_meta_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A handle to the knowledge base; clones share it.
#[derive(Clone)]
pub struct Knowledge {
    state: Arc<State>,
}

enum State {
    /// No model or index: every query says why.
    Disabled(String),
    Enabled(Inner),
}

pub struct Inner {
    pub embedder: Embedder,
    pub index: Arc<dyn VectorIndex>,
    pub cache: QueryCache,
    pub chunk: ChunkBudget,
    /// Set once the first ingest at start has finished.
    ready: AtomicBool,
}

impl Knowledge {
    /// A knowledge base that answers every query with why it cannot.
    pub fn disabled(reason: impl Into<String>) -> Self {
        Knowledge {
            state: Arc::new(State::Disabled(reason.into())),
        }
    }

    pub fn new(
        embedder: Embedder,
        index: Arc<dyn VectorIndex>,
        cache: QueryCache,
        chunk: ChunkBudget,
    ) -> Self {
        // A chunk the model would truncate loses its tail: cap the budget
        // at what the model reads ([CLS] and [SEP] take two).
        let most = embedder.info().max_tokens.saturating_sub(2).max(1);
        let chunk = ChunkBudget {
            max_tokens: chunk.max_tokens.min(most),
            overlap: chunk.overlap.min(most / 2),
        };
        Knowledge {
            state: Arc::new(State::Enabled(Inner {
                embedder,
                index,
                cache,
                chunk,
                ready: AtomicBool::new(false),
            })),
        }
    }

    /// The parts, or why there are none.
    pub fn inner(&self) -> Result<&Inner, KnowledgeError> {
        match &*self.state {
            State::Enabled(inner) => Ok(inner),
            State::Disabled(reason) => Err(KnowledgeError::Disabled(reason.clone())),
        }
    }

    /// Whether the first ingest has finished (always false when disabled).
    pub fn is_ready(&self) -> bool {
        self.inner()
            .is_ok_and(|inner| inner.ready.load(Ordering::Acquire))
    }

    pub fn set_ready(&self) {
        if let Ok(inner) = self.inner() {
            inner.ready.store(true, Ordering::Release);
        }
    }

    pub fn model(&self) -> Option<&ModelInfo> {
        self.inner().ok().map(|inner| inner.embedder.info())
    }

    /// Answers `query`: from the cache, or by embedding it and searching.
    pub async fn query(&self, query: &Query) -> Result<Answer, KnowledgeError> {
        let start = Instant::now();
        let inner = self.inner()?;
        let key = query.cache_key();
        if let Some(cached) = inner.cache.get(&query.collection, &key).await
            && let Ok(results) = serde_json::from_str::<Vec<Hit>>(&cached)
        {
            return Ok(Answer {
                results,
                took_ms: elapsed_ms(start),
                cached: true,
            });
        }
        let generation = inner.cache.generation();
        let vector = inner.embedder.embed_one(&query.text).await?;
        let scored = inner
            .index
            .search(
                &query.collection,
                vector,
                query.top_k as usize,
                &query.filter,
            )
            .await?;
        let results: Vec<Hit> = scored
            .into_iter()
            .map(|s| Hit {
                text: s.payload.text,
                source: s.payload.source,
                score: s.score,
                metadata: s.payload.meta,
            })
            .collect();
        if let Ok(json) = serde_json::to_string(&results) {
            inner
                .cache
                .put(&query.collection, &key, json, generation)
                .await;
        }
        Ok(Answer {
            results,
            took_ms: elapsed_ms(start),
            cached: false,
        })
    }

    /// The plugins' `knowledge.search`.
    pub async fn search(
        &self,
        query: &str,
        top_k: u32,
        filter: &[(String, String)],
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let query = Query::from_pairs(query.to_owned(), top_k, filter)?;
        Ok(self.query(&query).await?.results)
    }
}

fn elapsed_ms(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1e3 * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_validated() {
        let ok = |text: &str| Query::new(text.into(), None, None, Filter::default());
        assert!(matches!(ok("  "), Err(KnowledgeError::EmptyQuery)));
        assert!(matches!(
            ok(&"x".repeat(MAX_QUERY_BYTES + 1)),
            Err(KnowledgeError::QueryTooLong { .. })
        ));
        let q = ok("how do plugins reload?").unwrap();
        assert_eq!((q.top_k, q.collection.as_str()), (5, "default"));
        for top_k in [0, MAX_TOP_K + 1] {
            assert!(matches!(
                Query::new("q".into(), Some(top_k), None, Filter::default()),
                Err(KnowledgeError::BadTopK)
            ));
        }
        assert!(matches!(
            Query::new("q".into(), None, Some("../x".into()), Filter::default()),
            Err(KnowledgeError::BadCollection(_))
        ));
        let bad_key = Filter {
            meta: vec![("a.b".into(), "x".into())],
            ..Filter::default()
        };
        assert!(matches!(
            Query::new("q".into(), None, None, bad_key),
            Err(KnowledgeError::BadFilter(_))
        ));
    }

    #[test]
    fn plugin_filter_pairs() {
        let pairs = [
            ("collection".to_owned(), "docs".to_owned()),
            ("source_prefix".to_owned(), "guides/".to_owned()),
            ("title".to_owned(), "Intro".to_owned()),
        ];
        let q = Query::from_pairs("q".into(), 3, &pairs).unwrap();
        assert_eq!(q.collection, "docs");
        assert_eq!(q.filter.source_prefix.as_deref(), Some("guides/"));
        assert_eq!(
            q.filter.meta,
            vec![("title".to_owned(), "Intro".to_owned())]
        );
    }
}
