//! `nova:plugin/store`: versioned JSON documents a plugin keeps.

use async_trait::async_trait;

use super::CapabilityError;
use crate::Quota;

/// One document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub key: String,
    /// JSON text.
    pub value: String,
    /// 1 when created, +1 per write.
    pub version: u64,
}

/// A page of a listing by key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocPage {
    pub docs: Vec<Doc>,
    /// The key to list after for the next page; none on the last page.
    pub next: Option<String>,
}

/// Documents namespaced by plugin, as [`super::Kv`]. The implementation
/// owns every limit on keys, values and listings (one place checks them)
/// and answers a breach with [`CapabilityError::Invalid`].
#[async_trait]
pub trait Docs: Send + Sync + 'static {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Doc>, CapabilityError>;

    /// Writes `value` (JSON text, checked here); `expected_version`: none
    /// writes unconditionally, `Some(0)` only if the document does not
    /// exist, `Some(v)` only if it is at `v` ([`CapabilityError::Conflict`]
    /// otherwise). Returns the new version.
    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        expected_version: Option<u64>,
        quota: Quota,
    ) -> Result<u64, CapabilityError>;

    /// True if the document was there.
    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, CapabilityError>;

    /// The documents whose key starts with `prefix` and comes after
    /// `after`: at most `limit`, and only as many as fit `max_bytes` of
    /// values (the first always).
    async fn page(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        max_bytes: u64,
    ) -> Result<DocPage, CapabilityError>;
}
