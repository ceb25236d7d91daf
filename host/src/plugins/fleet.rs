//! Plugins shared by every host on one Postgres database.
//!
//! A plugin uploaded or removed through one host's admin API is written to
//! the `plugins` table and announced on the channel [`CHANNEL`] in the same
//! transaction. Every host listens on the channel, reads the row and
//! installs (or removes) that version in its own plugin directory, through
//! the same validation as an upload. A host that was down catches up when
//! it starts, and a periodic pass catches a notification lost while the
//! listening connection was being re-established.
//!
//! Why Postgres and not a Redis notification plus a fetch from the
//! uploading host: the bytes and the announcement live in one place and
//! commit together, no host has to serve the others, and a host that was
//! down finds the current version in the table rather than a missed
//! message.
//!
//! Only what comes through the admin API is shared; a file dropped into
//! one host's plugin directory stays that host's own. A name the shared
//! store knows is owned by it: on start and on every change of its row,
//! the shared version replaces the local file.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Acquire, Row};
use tokio::sync::oneshot;

use super::registry::Registry;

/// The notification channel; the payload is the plugin's name.
pub const CHANNEL: &str = "nova_plugins";

/// How often the whole table is compared with what this host serves, in
/// case a notification was lost. Cheap: names and hashes only.
const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// How long to wait before listening again after the connection failed.
const RETRY_LISTEN: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error("shared plugin store: {0}")]
pub struct FleetError(#[from] sqlx::Error);

/// One row of the shared store, without the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    sha256: String,
    removed: bool,
    updated_at: i64,
}

/// The shared plugin store of a fleet of hosts.
pub struct Fleet {
    pool: PgPool,
    /// This host, as the rows' `updated_by` names it.
    host: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Fleet {
    pub fn new(pool: PgPool, host: String) -> Self {
        Fleet { pool, host }
    }

    /// Makes `wasm` the version of `name` on every host.
    pub async fn publish(&self, name: &str, sha256: &str, wasm: &[u8]) -> Result<(), FleetError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO plugins (name, sha256, wasm, size_bytes, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET
                 sha256 = EXCLUDED.sha256, wasm = EXCLUDED.wasm,
                 size_bytes = EXCLUDED.size_bytes, updated_at = EXCLUDED.updated_at,
                 updated_by = EXCLUDED.updated_by",
        )
        .bind(name)
        .bind(sha256)
        .bind(wasm)
        .bind(wasm.len() as i64)
        .bind(now_ms())
        .bind(&self.host)
        .execute(&mut *tx)
        .await?;
        // Delivered at commit, so no host reads the row before it exists.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes `name` from every host; true if it was shared.
    pub async fn retract(&self, name: &str) -> Result<bool, FleetError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        // The row stays, without its bytes, so that hosts that are down
        // now remove the plugin when they start.
        let done = sqlx::query(
            "UPDATE plugins SET wasm = NULL, size_bytes = NULL, updated_at = $2, updated_by = $3
             WHERE name = $1 AND wasm IS NOT NULL",
        )
        .bind(name)
        .bind(now_ms())
        .bind(&self.host)
        .execute(&mut *tx)
        .await?;
        let shared = done.rows_affected() > 0;
        if shared {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(shared)
    }

    async fn heads(&self, only: Option<&str>) -> Result<Vec<(String, Head)>, FleetError> {
        let rows = sqlx::query(
            "SELECT name, sha256, wasm IS NULL AS removed, updated_at FROM plugins
             WHERE $1::TEXT IS NULL OR name = $1",
        )
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("name")?,
                    Head {
                        sha256: row.try_get("sha256")?,
                        removed: row.try_get("removed")?,
                        updated_at: row.try_get("updated_at")?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(FleetError)
    }

    /// The bytes of `name` if they still have hash `sha256`.
    async fn wasm(&self, name: &str, sha256: &str) -> Result<Option<Vec<u8>>, FleetError> {
        let row = sqlx::query("SELECT wasm FROM plugins WHERE name = $1 AND sha256 = $2")
            .bind(name)
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<Vec<u8>>, _>("wasm").ok().flatten()))
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
    let mut listener: Option<PgListener> = None;
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
                received = active.try_recv() => match received {
                    Ok(Some(note)) => follower.reconcile(Some(note.payload())).await,
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
    async fn listen(&self) -> Option<PgListener> {
        let attempt = async {
            let mut listener = PgListener::connect_with(&self.fleet.pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match attempt.await {
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
                        tracing::info!(plugin = %super::text::clean(name, 128), "plugin removed by the shared store")
                    }
                    Err(e) => {
                        tracing::warn!(plugin = %super::text::clean(name, 128), error = %e, "cannot remove plugin")
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
                tracing::warn!(plugin = %super::text::clean(name, 128), error = %e, "shared plugin store: cannot read");
                return false;
            }
        };
        match self.registry.adopt(name, wasm).await {
            Ok(plugin) => tracing::info!(
                plugin = %super::text::clean(name, 128),
                sha256 = %&plugin.sha256[..12],
                "plugin installed from the shared store"
            ),
            // Recorded as a rejection in the listing, as a bad file is.
            Err(e) => {
                tracing::warn!(plugin = %super::text::clean(name, 128), error = %e, "shared plugin refused on this host")
            }
        }
        true
    }
}
