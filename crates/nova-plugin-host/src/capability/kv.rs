//! `nova:plugin/kv`: a plugin's own key-value space.

use std::time::Duration;

use async_trait::async_trait;

use super::CapabilityError;
use crate::Quota;

/// Keys and byte values, namespaced by plugin: `namespace` is always the
/// calling plugin's name, so no plugin reads another's keys.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, CapabilityError>;

    /// Writes `value`, expiring after `ttl`; refused when the namespace
    /// would hold more than `quota` (keys, bytes of keys and values).
    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        quota: Quota,
    ) -> Result<(), CapabilityError>;

    /// True if the key was there.
    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, CapabilityError>;

    /// Up to about `limit` live keys of the namespace from `cursor` (None:
    /// the start), in no set order, and the cursor of the next page (None:
    /// the last page).
    async fn list(
        &self,
        namespace: &str,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<u64>), CapabilityError>;

    /// Adds `delta` to the key's value, kept as decimal text (a missing key
    /// counts as 0), atomically; the new value. Refused when the value is
    /// not a number, the sum overflows, or the namespace is at its quota.
    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: u64,
        quota: Quota,
    ) -> Result<u64, CapabilityError>;
}
