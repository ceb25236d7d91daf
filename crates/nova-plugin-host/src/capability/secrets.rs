//! Secrets: values an operator stores once and the plugins whose manifests
//! list them read through `wasi:config/store`, beside the manifest's plain
//! `[config]` values.
//!
//! The host reads a plugin's secrets when each call starts, so a rotated
//! value is seen by the next call without a reload.

use async_trait::async_trait;

use super::CapabilityError;

#[async_trait]
pub trait Secrets: Send + Sync {
    /// The current values of those of `names` that exist, as `(name,
    /// value)`; a name with no secret is left out.
    async fn reveal(&self, names: &[String]) -> Result<Vec<(String, String)>, CapabilityError>;
}
