//! `nova:plugin/knowledge`: search over the host's knowledge base.

use async_trait::async_trait;

pub use nova_client::Hit;

use super::CapabilityError;

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
