//! Sharing what the admin API installs with the other hosts of a fleet.
//!
//! Not lent to plugins: the [`crate::Registry`] calls it after an upload
//! or a removal, and whoever implements it calls [`crate::Registry::adopt`]
//! and [`crate::Registry::withdraw`] on every host when the shared set
//! changes.

use async_trait::async_trait;

use super::CapabilityError;

#[async_trait]
pub trait FleetSync: Send + Sync + 'static {
    /// Makes `wasm` the version of `name` on every host.
    async fn publish(&self, name: &str, sha256: &str, wasm: &[u8]) -> Result<(), CapabilityError>;

    /// Removes `name` from every host; true if it was shared.
    async fn retract(&self, name: &str) -> Result<bool, CapabilityError>;
}
