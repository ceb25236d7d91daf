//! `nova:plugin/knowledge`: search over the host's knowledge base.

use async_trait::async_trait;

pub use nova_client::Hit;

use super::CapabilityError;

/// Semantic search, read-only.
#[async_trait]
pub trait KnowledgeSearch: Send + Sync + 'static {
    /// The `top_k` passages closest to `query` whose metadata has every
    /// `(key, value)` of `filter`, in a collection of `granted` (the
    /// plugin's `grants.knowledge`; `"*"` is every collection): any other
    /// is answered as if it did not exist.
    async fn search(
        &self,
        query: &str,
        top_k: u32,
        filter: &[(String, String)],
        granted: &[String],
    ) -> Result<Vec<Hit>, CapabilityError>;
}
