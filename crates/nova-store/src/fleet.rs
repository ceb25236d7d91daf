//! The `plugins` table: plugins shared by every host on one Postgres
//! database (`nova` follows it in `host/src/fleet.rs`).
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

use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Acquire, Row};

use crate::now_ms;

/// The notification channel; the payload is the plugin's name.
pub const CHANNEL: &str = "nova_plugins";

#[derive(Debug, thiserror::Error)]
#[error("shared plugin store: {0}")]
pub struct FleetError(#[from] sqlx::Error);

/// One row of the shared store, without the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub sha256: String,
    /// Removed through the admin API: the row stays, without its bytes.
    pub removed: bool,
    pub updated_at: i64,
}

/// The shared plugin store of a fleet of hosts.
pub struct Fleet {
    pool: PgPool,
    /// This host, as the rows' `updated_by` names it.
    host: String,
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

    /// Every row, or the row of `only`.
    pub async fn heads(&self, only: Option<&str>) -> Result<Vec<(String, Head)>, FleetError> {
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
    pub async fn wasm(&self, name: &str, sha256: &str) -> Result<Option<Vec<u8>>, FleetError> {
        let row = sqlx::query("SELECT wasm FROM plugins WHERE name = $1 AND sha256 = $2")
            .bind(name)
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<Vec<u8>>, _>("wasm").ok().flatten()))
    }

    /// A connection listening on [`CHANNEL`].
    pub async fn listen(&self) -> Result<Listener, FleetError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Listener(listener))
    }
}

/// Announcements of changed rows.
pub struct Listener(PgListener);

impl Listener {
    /// The name of the next plugin whose row changed; `Ok(None)` when the
    /// connection dropped and is being made again (announcements made
    /// meanwhile are lost: read the table).
    pub async fn next(&mut self) -> Result<Option<String>, FleetError> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}
