//! Following the plugins shared by every host on one Postgres database
//! (the store's [`crate::store::fleet`] table), and lending it to the
//! registry as its [`FleetSync`].
//!
//! A plugin uploaded or removed through one host's admin API is written to
//! the `plugins` table and announced in the same transaction. Every host
//! listens, reads the row and installs (or removes) that version in its
//! own plugin directory, through the same validation as an upload. A host
//! that was down catches up when it starts, and a periodic pass catches a
//! notification lost while the listening connection was being
//! re-established.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::plugins::capability::{CapabilityError, FleetSync};
use crate::plugins::{Registry, text};
use crate::store::fleet::{Fleet, Head, Listener};

/// How often the whole table is compared with what this host serves, in
/// case a notification was lost. Cheap: names and hashes only.
const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// How long to wait before listening again after the connection failed.
const RETRY_LISTEN: Duration = Duration::from_secs(2);

/// The registry's side: what the admin API does is published to the table.
pub struct Shared(pub Arc<Fleet>);

#[async_trait]
impl FleetSync for Shared {
    async fn publish(&self, name: &str, sha256: &str, wasm: &[u8]) -> Result<(), CapabilityError> {
        self.0
            .publish(name, sha256, wasm)
            .await
            .map_err(|e| CapabilityError::Unavailable(e.to_string()))
    }

    async fn retract(&self, name: &str) -> Result<bool, CapabilityError> {
        self.0
            .retract(name)
            .await
            .map_err(|e| CapabilityError::Unavailable(e.to_string()))
    }
}

/// Keeps this host's plugins in step with the shared store until the
/// process ends. `ready` is sent after the first full pass, so workers can
/// wait for plugins that were uploaded while this host was down.
pub async fn follow(fleet: Arc<Fleet>, registry: Arc<Registry>, ready: oneshot::Sender<()>) {
    let mut follower = Follower {
        fleet,
        registry,
        seen: HashMap::new(),
    };
    let mut ready = Some(ready);
    let mut listener: Option<Listener> = None;
    loop {
        if listener.is_none() {
            listener = follower.listen().await;
        }
        // Listening first, then reading the table: a change made in
        // between is both read and announced, never neither.
        follower.reconcile(None).await;
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        let Some(active) = listener.as_mut() else {
            tokio::time::sleep(RETRY_LISTEN).await;
            continue;
        };
        let pass = tokio::time::sleep(RECONCILE_EVERY);
        tokio::pin!(pass);
        let lost = loop {
            tokio::select! {
                received = active.next() => match received {
                    Ok(Some(name)) => follower.reconcile(Some(&name)).await,
                    // The connection dropped and will be made again:
                    // whatever was announced meanwhile is read next pass.
                    Ok(None) => break false,
                    Err(e) => {
                        tracing::warn!(error = %e, "shared plugin store: stopped listening");
                        break true;
                    }
                },
                _ = &mut pass => break false,
            }
        };
        if lost {
            listener = None;
            tokio::time::sleep(RETRY_LISTEN).await;
        }
    }
}

struct Follower {
    fleet: Arc<Fleet>,
    registry: Arc<Registry>,
    /// The last row of each name acted on, so that a row is applied once
    /// per change, and a local file is not overwritten on every pass.
    seen: HashMap<String, Head>,
}

impl Follower {
    async fn listen(&self) -> Option<Listener> {
        match self.fleet.listen().await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "shared plugin store: cannot listen; polling");
                None
            }
        }
    }

    /// Applies every row that changed since it was last seen (or only the
    /// row of `name`).
    async fn reconcile(&mut self, name: Option<&str>) {
        let heads = match self.fleet.heads(name).await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "shared plugin store: cannot read");
                return;
            }
        };
        for (name, head) in heads {
            if self.seen.get(&name) == Some(&head) {
                continue;
            }
            if self.apply(&name, &head).await {
                self.seen.insert(name, head);
            }
        }
    }

    /// Brings `name` on this host to `head`; false if it should be tried
    /// again (the store could not be read).
    async fn apply(&self, name: &str, head: &Head) -> bool {
        let local = self.registry.get(name).map(|p| p.sha256.clone());
        if head.removed {
            // Only the version that was removed: a different file an
            // operator put here since is this host's own.
            if local.as_deref() == Some(head.sha256.as_str()) {
                match self.registry.withdraw(name).await {
                    Ok(()) => {
                        tracing::info!(plugin = %text::clean(name, 128), "plugin removed by the shared store")
                    }
                    Err(e) => {
                        tracing::warn!(plugin = %text::clean(name, 128), error = %e, "cannot remove plugin")
                    }
                }
            }
            return true;
        }
        if local.as_deref() == Some(head.sha256.as_str()) {
            return true;
        }
        let wasm = match self.fleet.wasm(name, &head.sha256).await {
            Ok(Some(wasm)) => wasm,
            // Replaced or removed since: its own notification follows.
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(plugin = %text::clean(name, 128), error = %e, "shared plugin store: cannot read");
                return false;
            }
        };
        match self.registry.adopt(name, wasm).await {
            Ok(plugin) => tracing::info!(
                plugin = %text::clean(name, 128),
                sha256 = %&plugin.sha256[..12],
                "plugin installed from the shared store"
            ),
            // Recorded as a rejection in the listing, as a bad file is.
            Err(e) => {
                tracing::warn!(plugin = %text::clean(name, 128), error = %e, "shared plugin refused on this host")
            }
        }
        true
    }
}
