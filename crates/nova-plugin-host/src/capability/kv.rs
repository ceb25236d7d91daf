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
}
