//! The one interface both SQL backends implement. [`Store`](crate::Store)
//! validates, applies limits and converts, then calls one of these; the
//! backends only speak their dialect. Crate-private: callers see `Store`.

use std::time::Duration;

use async_trait::async_trait;
use nova_client::RawJson;

use crate::{
    ApiKeyRow, Claim, DefinitionRow, Doc, DocWrite, KeyRange, ListRuns, NewRun, Run, RunId,
    RunStatus, RunSummary, SecretRow, StepOutcome, StoreError,
};

/// A relational backend: Postgres ([`PgStore`](crate::postgres::PgStore)) or
/// SQLite ([`SqliteStore`](crate::sqlite::SqliteStore)).
#[async_trait]
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
    /// `"postgres"` or `"sqlite"`.
    fn name(&self) -> &'static str;
    /// The Postgres pool, for the tables several hosts share.
    fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        None
    }
    async fn ping(&self) -> Result<(), StoreError>;
    async fn close(&self);
    async fn create_run(&self, new: NewRun) -> Result<(Run, bool), StoreError>;
    async fn run_by_idempotency_key(&self, key: &str) -> Result<Option<Run>, StoreError>;
    async fn delete_finished(&self, finished_before: i64, limit: u32) -> Result<u64, StoreError>;
    async fn status_of(&self, id: RunId) -> Result<Option<RunStatus>, StoreError>;
    async fn finished_among(&self, ids: &[RunId]) -> Result<Vec<RunId>, StoreError>;
    async fn get_run(&self, id: RunId) -> Result<Option<Run>, StoreError>;
    async fn list_runs(&self, q: &ListRuns) -> Result<Vec<RunSummary>, StoreError>;
    async fn run_json(
        &self,
        ids: &[RunId],
        input: bool,
        output: bool,
    ) -> Result<Vec<(RunId, Option<RawJson>, Option<RawJson>)>, StoreError>;
    async fn run_size(&self, id: RunId) -> Result<Option<Option<i64>>, StoreError>;
    async fn claim_run(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Run>, StoreError>;
    async fn claim_and_start(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
        versions: &[(&str, &str)],
    ) -> Result<Option<Claim>, StoreError>;
    async fn renew_lease(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, StoreError>;
    async fn start_step(
        &self,
        id: RunId,
        index: u32,
        plugin_version: &str,
        worker: &str,
        input: Option<&RawJson>,
    ) -> Result<u32, StoreError>;
    async fn start_sleep(
        &self,
        id: RunId,
        index: u32,
        wake_at: i64,
        input: &RawJson,
        worker: &str,
    ) -> Result<i64, StoreError>;
    async fn park_run(&self, id: RunId, worker: &str, until: i64) -> Result<bool, StoreError>;
    async fn record_items(
        &self,
        id: RunId,
        index: u32,
        items: &RawJson,
        worker: &str,
    ) -> Result<bool, StoreError>;
    async fn finish_step(
        &self,
        id: RunId,
        index: u32,
        outcome: StepOutcome,
        duration_ms: f64,
        worker: &str,
    ) -> Result<bool, StoreError>;
    async fn complete_run(
        &self,
        id: RunId,
        index: u32,
        output: &RawJson,
        duration_ms: f64,
        worker: &str,
    ) -> Result<Option<Run>, StoreError>;
    async fn finish_run(
        &self,
        id: RunId,
        status: RunStatus,
        output: Option<RawJson>,
        error: Option<String>,
        worker: Option<&str>,
    ) -> Result<bool, StoreError>;
    async fn request_cancel(&self, id: RunId) -> Result<Option<RunStatus>, StoreError>;
    async fn cancel_requested(&self, id: RunId) -> Result<bool, StoreError>;
    async fn retry_run(&self, id: RunId) -> Result<bool, StoreError>;
    async fn stale_runs(&self, queued_for: Duration, limit: u32) -> Result<Vec<RunId>, StoreError>;
    async fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError>;
    async fn count_by_status(&self, unfinished: bool) -> Result<Vec<(String, i64)>, StoreError>;
    async fn key_insert(&self, key: &ApiKeyRow) -> Result<(), StoreError>;
    async fn key_list(&self) -> Result<Vec<ApiKeyRow>, StoreError>;
    async fn key_delete(&self, id: uuid::Uuid) -> Result<bool, StoreError>;
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    async fn key_used(&self, id: uuid::Uuid, now: i64) -> Result<(), StoreError>;
    async fn doc_get(&self, namespace: &str, key: &str) -> Result<Option<Doc>, StoreError>;
    async fn doc_put(&self, w: &DocWrite<'_>) -> Result<u64, StoreError>;
    async fn doc_delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError>;
    async fn doc_usage(&self, namespace: &str) -> Result<(i64, i64), StoreError>;
    async fn doc_sizes(
        &self,
        namespace: &str,
        range: &KeyRange<'_>,
        fetch: u32,
    ) -> Result<Vec<(String, i64)>, StoreError>;
    async fn doc_values(&self, namespace: &str, keys: &[&str]) -> Result<Vec<Doc>, StoreError>;
    /// The new version, or none when another save took the version picked.
    async fn definition_put(
        &self,
        name: &str,
        body: &RawJson,
        now: i64,
    ) -> Result<Option<u32>, StoreError>;
    async fn definition_get(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<DefinitionRow>, StoreError>;
    async fn definition_list(&self) -> Result<Vec<DefinitionRow>, StoreError>;
    async fn definition_delete(&self, name: &str, now: i64) -> Result<bool, StoreError>;
    async fn schedule_set(&self, name: &str, next_at: i64) -> Result<(), StoreError>;
    async fn schedule_delete(&self, name: &str) -> Result<(), StoreError>;
    async fn schedules_due(&self, now: i64, limit: u32) -> Result<Vec<(String, i64)>, StoreError>;
    async fn schedule_advance(&self, name: &str, from: i64, to: i64) -> Result<bool, StoreError>;
    async fn secret_put(&self, row: &SecretRow) -> Result<(), StoreError>;
    async fn secret_list(&self) -> Result<Vec<(String, i64)>, StoreError>;
    async fn secret_get_many(&self, names: &[String]) -> Result<Vec<SecretRow>, StoreError>;
    async fn secret_delete(&self, name: &str) -> Result<bool, StoreError>;
}
