//! `nova:plugin/knowledge`: search over the host's knowledge base.

use async_trait::async_trait;

use super::CapabilityError;

/// One passage found.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub source: String,
    pub text: String,
    pub score: f32,
    pub metadata: Vec<(String, String)>,
}

/// Semantic search, read-only.
#[async_trait]
pub trait KnowledgeSearch: Send + Sync + 'static {
    /// The `top_k` passages closest to `query` whose metadata has every
    /// `(key, value)` of `filter`.
    async fn search(
        &self,
        query: &str,
        top_k: u32,
        filter: &[(String, String)],
    ) -> Result<Vec<Hit>, CapabilityError>;
}
