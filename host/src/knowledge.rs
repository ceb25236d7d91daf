//! The knowledge base as plugins and the HTTP API see it.
//!
//! Until an index is attached this answers every search with no hits: the
//! call path from a plugin's `knowledge.search` through the host is real,
//! there is just nothing indexed yet.

use std::sync::Arc;

/// One search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub source: String,
    pub text: String,
    pub score: f32,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("query is empty")]
    EmptyQuery,
    #[error("top_k must be between 1 and {max}")]
    BadTopK { max: u32 },
}

pub const MAX_TOP_K: u32 = 100;

/// A handle to the knowledge base; clones share it.
#[derive(Clone, Default)]
pub struct Knowledge {
    _inner: Arc<()>,
}

impl Knowledge {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Searches for `query`. `filter` pairs narrow the hits by `source`,
    /// `source_prefix`, `collection` or any metadata key.
    pub async fn search(
        &self,
        query: &str,
        top_k: u32,
        filter: &[(String, String)],
    ) -> Result<Vec<Hit>, KnowledgeError> {
        if query.trim().is_empty() {
            return Err(KnowledgeError::EmptyQuery);
        }
        if top_k == 0 || top_k > MAX_TOP_K {
            return Err(KnowledgeError::BadTopK { max: MAX_TOP_K });
        }
        tracing::debug!(
            query,
            top_k,
            filters = filter.len(),
            "knowledge search on an empty index"
        );
        Ok(Vec::new())
    }
}
