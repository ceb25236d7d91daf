//! The relational store: workflow runs, their steps, and the durable JSON
//! documents plugins keep through the `store` host interface.
//!
//! Two backends answer the same calls: an SQLite file under the data
//! directory (the embedded default) and Postgres for deployments where many
//! hosts share one database. `Store` is an enum over the two rather than a
//! trait object: there are exactly two, and the calls stay plain `async fn`s.
//!
//! The store is the truth about runs. The queue only carries run ids and may
//! lose them (Redis without persistence restarting), so every transition a
//! worker makes is guarded here: a run is leased to one worker at a time, a
//! step is checkpointed once, a run finishes once.
//!
//! Timestamps are unix milliseconds from the host's clock, not the
//! database's, so both backends behave alike. Leases are compared against
//! that clock, so hosts sharing a Postgres need roughly synchronised clocks
//! (well under a lease).

/// SQLite keeps NaN as NULL and Postgres as NaN: make both keep a number.
fn finite_ms(ms: f64) -> f64 {
    if ms.is_finite() { ms.max(0.0) } else { 0.0 }
}

/// The columns a `Run` is read from, in both backends (the Postgres
/// backend reads them by position: keep the order).
macro_rules! run_columns {
    () => {
        "id, status, input, output, error, idempotency_key, cancel_requested, \
         created_at, started_at, finished_at, request_id, definition, definition_version, plan, \
         scheduled_for"
    };
}

/// The columns a `Step` is read from, in both backends (by position on
/// Postgres).
macro_rules! step_columns {
    () => {
        "run_id, idx, plugin, config, timeout_ms, retries, plugin_version, status, \
         attempts, output, error, started_at, finished_at, duration_ms, step_id, input, items, \
         wake_at"
    };
}

/// The columns of a `RunSummary` read from `runs`, in both backends.
macro_rules! summary_columns {
    () => {
        "id, status, error, idempotency_key, cancel_requested, created_at, started_at, \
         finished_at, definition, definition_version"
    };
}

/// The bytes of JSON and error text a run holds, its steps' included, as an
/// SQL expression over a row of `runs` (`octet_length` counts bytes in
/// both databases; SQLite has it since 3.43, and the bundled one is newer).
macro_rules! run_size {
    () => {
        "COALESCE(octet_length(CAST(input AS TEXT)), 0) \
         + COALESCE(octet_length(CAST(output AS TEXT)), 0) \
         + COALESCE(octet_length(error), 0) \
         + COALESCE(octet_length(CAST(plan AS TEXT)), 0) \
         + COALESCE((SELECT SUM(COALESCE(octet_length(CAST(steps.config AS TEXT)), 0) \
                     + COALESCE(octet_length(CAST(steps.output AS TEXT)), 0) \
                     + COALESCE(octet_length(steps.error), 0) \
                     + COALESCE(octet_length(CAST(steps.input AS TEXT)), 0) \
                     + COALESCE(octet_length(CAST(steps.items AS TEXT)), 0)) \
                     FROM steps WHERE steps.run_id = runs.id), 0)"
    };
}

/// The columns an `ApiKeyRow` is read from, in both backends.
macro_rules! key_columns {
    () => {
        "id, name, prefix, hash, scopes, collections, created_at, last_used_at"
    };
}

mod backend;
pub mod fleet;
mod migrations;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use backend::Backend;

pub use nova_client::{RawJson, RunStatus, StepStatus, UnknownStatus};

/// A run's id: a UUID v7, so ids sort in creation order and pagination by id
/// is pagination by age.
pub type RunId = uuid::Uuid;

/// The longest document key, in bytes.
pub const MAX_DOC_KEY_BYTES: usize = 512;
/// The largest document value, serialised as JSON: the store keeps state,
/// not blobs.
pub const MAX_DOC_VALUE_BYTES: usize = 1 << 20;
/// The most runs one page lists.
pub const MAX_PAGE: u32 = 100;
/// The most documents one `doc_list` returns.
pub const MAX_DOC_LIST: u32 = 1000;

/// One step of a submitted workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Its id in the run's plan; none for a plain list of steps.
    #[serde(default)]
    pub id: Option<String>,
    pub plugin: String,
    #[serde(default = "RawJson::empty_object")]
    pub config: RawJson,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub retries: Option<u32>,
}

/// A workflow submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    pub steps: Vec<StepSpec>,
    #[serde(default = "RawJson::null")]
    pub input: RawJson,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The `X-Request-Id` of the submitting request, for the worker's logs.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The saved definition (name, version) the run is of.
    #[serde(default)]
    pub definition: Option<(String, u32)>,
    /// The steps' ids, needs and expressions, the output and
    /// `max_parallel`, as the workflow engine reads them; none for a plain
    /// list of steps run in order.
    #[serde(default)]
    pub plan: Option<RawJson>,
    /// The schedule tick (unix ms) that starts it.
    #[serde(default)]
    pub scheduled_for: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub status: RunStatus,
    pub input: RawJson,
    pub output: Option<RawJson>,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub cancel_requested: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The `X-Request-Id` of the request that submitted the run.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The saved definition the run is of, and its version.
    #[serde(default)]
    pub definition: Option<String>,
    #[serde(default)]
    pub definition_version: Option<u32>,
    /// See [`NewRun::plan`].
    #[serde(default)]
    pub plan: Option<RawJson>,
    #[serde(default)]
    pub scheduled_for: Option<i64>,
    /// In order of `index`.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub index: u32,
    pub plugin: String,
    pub config: RawJson,
    pub timeout_ms: Option<u64>,
    pub retries: Option<u32>,
    /// The version of the plugin that ran the latest attempt.
    pub plugin_version: Option<String>,
    pub status: StepStatus,
    pub attempts: u32,
    pub output: Option<RawJson>,
    pub error: Option<String>,
    /// The first attempt's start, unix milliseconds.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The last attempt's duration.
    pub duration_ms: Option<f64>,
    /// Its id in the run's plan; none for a plain list of steps.
    pub id: Option<String>,
    /// The input its expressions resolved to, when it has an `input`.
    pub input: Option<RawJson>,
    /// A `for_each` step's elements, as the engine records them.
    pub items: Option<RawJson>,
    /// A sleep step's wake time, unix milliseconds.
    pub wake_at: Option<i64>,
}

impl Run {
    /// The bytes of JSON and error text it holds, its steps' included: what
    /// it costs to keep and to read.
    pub fn stored_bytes(&self) -> u64 {
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        let json = |j: &Option<RawJson>| j.as_ref().map_or(0, RawJson::len);
        let steps: usize = self
            .steps
            .iter()
            .map(|s| {
                s.config.len() + json(&s.output) + text(&s.error) + json(&s.input) + json(&s.items)
            })
            .sum();
        (self.input.len() + json(&self.output) + text(&self.error) + json(&self.plan) + steps)
            as u64
    }

    /// The run as `create_run` stores it, built here so that creating a run
    /// needs no read back.
    fn queued(id: RunId, created_at: i64, new: NewRun) -> Run {
        let steps = new
            .steps
            .into_iter()
            .zip(0u32..)
            .map(|(spec, index)| Step {
                id: spec.id,
                input: None,
                items: None,
                wake_at: None,
                index,
                plugin: spec.plugin,
                config: spec.config,
                timeout_ms: spec.timeout_ms,
                retries: spec.retries,
                plugin_version: None,
                status: StepStatus::Pending,
                attempts: 0,
                output: None,
                error: None,
                started_at: None,
                finished_at: None,
                duration_ms: None,
            })
            .collect();
        Run {
            id,
            status: RunStatus::Queued,
            input: new.input,
            output: None,
            error: None,
            idempotency_key: new.idempotency_key,
            cancel_requested: false,
            created_at,
            started_at: None,
            finished_at: None,
            request_id: new.request_id,
            definition_version: new.definition.as_ref().map(|d| d.1),
            definition: new.definition.map(|d| d.0),
            plan: new.plan,
            scheduled_for: new.scheduled_for,
            steps,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRuns {
    pub status: Option<RunStatus>,
    /// Only runs of this saved definition.
    pub definition: Option<String>,
    /// 1..=`MAX_PAGE`.
    pub limit: u32,
    /// Lists runs older than this one (id < cursor): a page's `next_cursor`.
    pub cursor: Option<RunId>,
    /// Measure each run's input (to fetch it with [`Store::fill_page`]).
    pub input: bool,
    /// Measure each run's output.
    pub output: bool,
    /// Most bytes of input and output one page may hold: the page ends
    /// (with a cursor) before the run that would pass it. The first run is
    /// listed whatever its size.
    pub max_bytes: u64,
}

impl Default for ListRuns {
    fn default() -> Self {
        ListRuns {
            status: None,
            definition: None,
            limit: 20,
            cursor: None,
            input: false,
            output: false,
            max_bytes: u64::MAX,
        }
    }
}

/// A run as a listing shows it: no steps, and its input and output only
/// when asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub id: RunId,
    pub status: RunStatus,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub cancel_requested: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub definition: Option<String>,
    pub definition_version: Option<u32>,
    pub step_count: u32,
    /// Measured when [`ListRuns::input`] asks.
    pub input_bytes: Option<u64>,
    /// Measured when [`ListRuns::output`] asks (none: no output).
    pub output_bytes: Option<u64>,
    pub input: Option<RawJson>,
    pub output: Option<RawJson>,
}

impl RunSummary {
    /// The bytes of input and output it holds or would hold.
    pub fn json_bytes(&self) -> u64 {
        self.input_bytes.unwrap_or(0) + self.output_bytes.unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Newest first.
    pub runs: Vec<RunSummary>,
    /// Set when older runs remain: the cursor for the next page.
    pub next_cursor: Option<RunId>,
}

impl Page {
    /// The bytes of input and output its runs hold or would hold.
    pub fn json_bytes(&self) -> u64 {
        self.runs.iter().map(RunSummary::json_bytes).sum()
    }
}

/// A run a worker claimed, and the step whose attempt the claim started.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The run with its steps, the started one as the claim left it.
    pub run: Run,
    /// The index of the step the claim started (status running, attempts
    /// counted, its plugin version recorded), if it started one.
    pub started: Option<u32>,
}

/// The step a claim starts, with the version it is started at: the first
/// step not yet succeeded, if it is pending or running, its plugin is among
/// `versions` (name, version), and no cancellation was requested. A failed
/// or cancelled step there means the run ends instead; a plugin not among
/// `versions` is for the worker to report.
fn step_to_start<'v>(run: &Run, versions: &[(&str, &'v str)]) -> Option<(u32, &'v str)> {
    // A planned run's next steps are the engine's to find.
    if run.cancel_requested || run.plan.is_some() {
        return None;
    }
    let step = run
        .steps
        .iter()
        .find(|s| s.status != StepStatus::Succeeded)?;
    if !matches!(step.status, StepStatus::Pending | StepStatus::Running) {
        return None;
    }
    let (_, version) = versions.iter().find(|(name, _)| *name == step.plugin)?;
    Some((step.index, version))
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Succeeded {
        output: RawJson,
    },
    Failed {
        error: String,
    },
    Cancelled,
    /// Its `if` was false: done, with no output.
    Skipped,
}

/// The most one namespace (one plugin) may keep in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocQuota {
    pub docs: u64,
    pub bytes: u64,
}

impl DocQuota {
    pub const UNLIMITED: DocQuota = DocQuota {
        docs: u64::MAX,
        bytes: u64::MAX,
    };
}

/// A write of one document, as the backends take it.
pub(crate) struct DocWrite<'a> {
    namespace: &'a str,
    key: &'a str,
    /// The value, serialised and checked.
    json: &'a str,
    expected: Option<i64>,
    quota: DocQuota,
}

/// Keys that start with `prefix` (so are below `end`, if any) and come
/// after `after`.
pub(crate) struct KeyRange<'a> {
    prefix: &'a str,
    end: Option<String>,
    after: Option<&'a str>,
}

/// One page of a listing of documents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocPage {
    pub docs: Vec<Doc>,
    /// The key to list after for the next page; none on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    pub key: String,
    pub value: RawJson,
    /// 1 when created, +1 per write.
    pub version: u64,
}

/// An API key as the store keeps it: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: uuid::Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart in a listing.
    pub prefix: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// Space-separated scope names.
    pub scopes: String,
    /// Space-separated collection names the key is held to; `None` for
    /// every collection.
    pub collections: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A saved workflow definition, one version of it.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionRow {
    pub name: String,
    pub version: u32,
    /// The definition as saved, as JSON.
    pub body: RawJson,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A secret as the store keeps it: ciphertext, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    pub name: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    /// Unix milliseconds.
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL: expected postgres://… or sqlite:…")]
    UnsupportedUrl,
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    #[error(
        "document {key:?} is at version {}, not {}",
        version_text(*.actual),
        version_text(*.expected)
    )]
    Conflict {
        key: String,
        expected: Option<u64>,
        /// None: the document does not exist.
        actual: Option<u64>,
    },
    /// The worker no longer holds the run: its lease was taken over, or the
    /// run finished or was cancelled.
    #[error("this worker no longer holds the run's lease")]
    LeaseLost,
    #[error("no run {0}")]
    RunNotFound(RunId),
    #[error("run {run} has no step {index}")]
    StepNotFound { run: RunId, index: u32 },
    /// `start_step` on a step that already has its outcome.
    #[error("step {index} of run {run} already finished ({status})")]
    StepFinished {
        run: RunId,
        index: u32,
        status: StepStatus,
    },
    #[error("cannot create the data directory {path}: {error}")]
    DataDir { path: String, error: std::io::Error },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A write that would take a plugin past its store quota.
    #[error("{0}")]
    Quota(String),
    /// A row this version cannot read (an unknown status, invalid JSON):
    /// written by something else, or by a newer version of nova.
    #[error("unreadable data in the store: {0}")]
    Corrupt(String),
}

/// `rows` of (status, count) as a map over `statuses`, 0 for those absent.
fn status_counts(
    statuses: &[RunStatus],
    rows: Vec<(String, i64)>,
) -> Result<BTreeMap<RunStatus, u64>, StoreError> {
    let mut counts: BTreeMap<RunStatus, u64> = statuses.iter().map(|&s| (s, 0)).collect();
    for (status, n) in rows {
        let status = status
            .parse::<RunStatus>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        counts.insert(status, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}

fn version_text(v: Option<u64>) -> String {
    match v {
        None => "unset (any)".to_owned(),
        Some(0) => "absent".to_owned(),
        Some(v) => v.to_string(),
    }
}

/// The relational store; clones share its connection pools.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    /// `postgres://…` (or `postgresql://…`) → Postgres; `sqlite://PATH` or
    /// `sqlite::memory:` → SQLite. Applies the migrations before returning.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let backend: Arc<dyn Backend> =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Arc::new(postgres::PgStore::connect(url).await?)
            } else if url.starts_with("sqlite:") {
                Arc::new(sqlite::SqliteStore::connect(url).await?)
            } else {
                return Err(StoreError::UnsupportedUrl);
            };
        Ok(Store { backend })
    }

    /// The embedded default: the SQLite file `data_dir/nova.db`, created
    /// (with the directory) if missing.
    pub async fn open_default(data_dir: &Path) -> Result<Store, StoreError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|error| StoreError::DataDir {
                path: data_dir.display().to_string(),
                error,
            })?;
        let path = data_dir.join("nova.db");
        let backend = Arc::new(sqlite::SqliteStore::open(&path).await?);
        Ok(Store { backend })
    }

    /// The Postgres pool, when the store is one several hosts can share.
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        self.backend.postgres_pool()
    }

    /// The plugins shared with the other hosts on this store, as `host`
    /// (its rows' `updated_by`): on Postgres only.
    pub fn fleet(&self, host: String) -> Option<fleet::Fleet> {
        self.postgres_pool()
            .map(|pool| fleet::Fleet::new(pool, host))
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    /// Closes the connection pools, waiting for connections in use to be
    /// returned; later calls fail. For a clean shutdown (SQLite checkpoints
    /// its write-ahead log when the last connection closes).
    pub async fn close(&self) {
        self.backend.close().await
    }

    /// Stores a queued run with its steps (all pending). When the
    /// idempotency key was used before, returns that run and `false`.
    pub async fn create_run(&self, new: NewRun) -> Result<(Run, bool), StoreError> {
        for step in &new.steps {
            if let Some(ms) = step.timeout_ms {
                to_i64(ms, "timeout_ms")?;
            }
            check_json(&step.config, "a step's config")?;
        }
        check_json(&new.input, "the input")?;
        self.backend.create_run(new).await
    }

    pub async fn get_run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        self.backend.get_run(id).await
    }

    /// Deletes up to `limit` finished runs (succeeded, failed or
    /// cancelled), with their steps, that finished before `finished_before`
    /// (unix ms), oldest first; how many were deleted.
    pub async fn delete_finished(
        &self,
        finished_before: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.backend.delete_finished(finished_before, limit).await
    }

    /// Only the run's status: one light read, for polling.
    pub async fn status_of(&self, id: RunId) -> Result<Option<RunStatus>, StoreError> {
        self.backend.status_of(id).await
    }

    /// The run submitted with idempotency key `key`, if any.
    pub async fn run_by_idempotency_key(&self, key: &str) -> Result<Option<Run>, StoreError> {
        self.backend.run_by_idempotency_key(key).await
    }

    /// A page of runs, newest first, without their JSON: `limit` (1 to
    /// `MAX_PAGE`) of them, fewer when the inputs and outputs asked for
    /// would pass `max_bytes`. [`Store::fill_page`] then reads that JSON.
    pub async fn list_runs(&self, q: ListRuns) -> Result<Page, StoreError> {
        if !(1..=MAX_PAGE).contains(&q.limit) {
            return Err(StoreError::Invalid(format!(
                "limit must be 1 to {MAX_PAGE}, not {}",
                q.limit
            )));
        }
        let mut rows: Vec<RunSummary> = self.backend.list_runs(&q).await?;
        let found = rows.len();
        let mut used = 0u64;
        let mut keep = 0;
        for run in rows.iter().take(q.limit as usize) {
            let size = run.json_bytes();
            if keep > 0 && used.saturating_add(size) > q.max_bytes {
                break;
            }
            used = used.saturating_add(size);
            keep += 1;
        }
        rows.truncate(keep);
        let next_cursor = if found > keep {
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok(Page {
            runs: rows,
            next_cursor,
        })
    }

    /// Reads the inputs (with `input`) and outputs (with `output`) of a
    /// page's runs.
    pub async fn fill_page(
        &self,
        page: &mut Page,
        input: bool,
        output: bool,
    ) -> Result<(), StoreError> {
        if !(input || output) || page.runs.is_empty() {
            return Ok(());
        }
        let ids: Vec<RunId> = page.runs.iter().map(|r| r.id).collect();
        let mut json: std::collections::HashMap<RunId, (Option<RawJson>, Option<RawJson>)> = self
            .backend
            .run_json(&ids, input, output)
            .await?
            .into_iter()
            .map(|(id, i, o)| (id, (i, o)))
            .collect();
        for run in &mut page.runs {
            if let Some((i, o)) = json.remove(&run.id) {
                run.input = i;
                run.output = o;
            }
        }
        Ok(())
    }

    /// How many bytes of JSON and error text a run holds, steps included:
    /// what reading it costs. None: no such run.
    pub async fn run_size(&self, id: RunId) -> Result<Option<u64>, StoreError> {
        let size: Option<Option<i64>> = self.backend.run_size(id).await?;
        Ok(size.map(|s| u64::try_from(s.unwrap_or(0)).unwrap_or(0)))
    }

    /// Leases the run to `worker` until now + `lease`. Succeeds only if the
    /// run is queued, or running with an expired lease, or already leased to
    /// `worker`; sets it running (and `started_at`, the first time). A run
    /// whose cancellation was requested is still handed out, so that a new
    /// worker can finish a dead one's cancellation: check
    /// `cancel_requested`. None: finished, cancelled, unknown, or leased to
    /// another live worker.
    pub async fn claim_run(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Run>, StoreError> {
        self.backend.claim_run(id, worker, lease).await
    }

    /// `claim_run`, and in the same round trip on Postgres the start of
    /// the first attempt of the step the worker runs next (see
    /// [`step_to_start`]), at the version `versions` gives its plugin. A
    /// worker that runs a claimed run always runs its started step: the
    /// attempt is already counted.
    pub async fn claim_and_start(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
        versions: &[(&str, &str)],
    ) -> Result<Option<Claim>, StoreError> {
        self.backend
            .claim_and_start(id, worker, lease, versions)
            .await
    }

    /// Extends the lease while `worker` still holds it (even if it expired
    /// and nobody took it over); false once the run was taken over or
    /// finished.
    pub async fn renew_lease(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.backend.renew_lease(id, worker, lease).await
    }

    /// Gives up `worker`'s lease on a running run: it expires now, so any
    /// worker can claim the run at once. False if `worker` did not hold it.
    pub async fn release_lease(&self, id: RunId, worker: &str) -> Result<bool, StoreError> {
        self.renew_lease(id, worker, Duration::ZERO).await
    }

    /// Starts an attempt of step `index`: status running, the plugin version
    /// that runs it, attempts + 1, `started_at` (first attempt). Returns the
    /// attempt number (1 for the first). A pending or running step can be
    /// started (a running one is a retry, or a resumption after a crash);
    /// a finished one is `StepFinished`. Only for the lease holder, else
    /// `LeaseLost`. `input`, when given, is recorded as the input the
    /// step's expressions resolved to.
    pub async fn start_step(
        &self,
        id: RunId,
        index: u32,
        plugin_version: &str,
        worker: &str,
        input: Option<&RawJson>,
    ) -> Result<u32, StoreError> {
        let input = input.map(|i| i.clone().cleaned());
        self.backend
            .start_step(id, index, plugin_version, worker, input.as_ref())
            .await
    }

    /// Starts a sleep step: running, one attempt, its input recorded (the
    /// output it will pass on), waking at `wake_at` (unix ms) unless an
    /// earlier start set its wake already. The wake time kept. Only for
    /// the lease holder (else `LeaseLost`).
    pub async fn start_sleep(
        &self,
        id: RunId,
        index: u32,
        wake_at: i64,
        input: &RawJson,
        worker: &str,
    ) -> Result<i64, StoreError> {
        let input = input.clone().cleaned();
        self.backend
            .start_sleep(id, index, wake_at, &input, worker)
            .await
    }

    /// Parks a running run until `until` (unix ms): `worker` gives up its
    /// lease, which expires then, so no worker holds the run while its
    /// steps sleep and the sweeper queues it again at that time. False if
    /// `worker` did not hold it.
    pub async fn park_run(&self, id: RunId, worker: &str, until: i64) -> Result<bool, StoreError> {
        self.backend.park_run(id, worker, until).await
    }

    /// Records the state of a running `for_each` step's elements. Only for
    /// the lease holder (else `LeaseLost`); false if the step has ended.
    pub async fn record_items(
        &self,
        id: RunId,
        index: u32,
        items: &RawJson,
        worker: &str,
    ) -> Result<bool, StoreError> {
        self.backend.record_items(id, index, items, worker).await
    }

    /// Checkpoints the step's outcome with `finished_at` and `duration_ms`.
    /// Only for the lease holder (else `LeaseLost`); a step that already has
    /// an outcome keeps it and this returns `Ok(false)`.
    pub async fn finish_step(
        &self,
        id: RunId,
        index: u32,
        outcome: StepOutcome,
        duration_ms: f64,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let outcome = match outcome {
            StepOutcome::Succeeded { output } => StepOutcome::Succeeded {
                output: output.cleaned(),
            },
            other => other,
        };
        let duration_ms = finite_ms(duration_ms);
        self.backend
            .finish_step(id, index, outcome, duration_ms, worker)
            .await
    }

    /// The last step succeeded: checkpoints it and ends the run as
    /// succeeded with the same output, atomically (one statement on
    /// Postgres), and returns the finished run, read in the same round
    /// trip. Same answers as `finish_step` then `finish_run`: only for the
    /// lease holder (else `LeaseLost`); `Ok(None)` if the run had already
    /// ended.
    pub async fn complete_run(
        &self,
        id: RunId,
        index: u32,
        output: RawJson,
        duration_ms: f64,
        worker: &str,
    ) -> Result<Option<Run>, StoreError> {
        let output = output.cleaned();
        let duration_ms = finite_ms(duration_ms);
        if let Some(run) = self
            .backend
            .complete_run(id, index, &output, duration_ms, worker)
            .await?
        {
            return Ok(Some(run));
        }
        // Refused: the step-by-step path tells why (lease lost, run or
        // step already finished) and records what still may be.
        let outcome = StepOutcome::Succeeded {
            output: output.clone(),
        };
        match self
            .finish_step(id, index, outcome, duration_ms, worker)
            .await
        {
            Ok(_) => {}
            Err(StoreError::LeaseLost)
                if self.status_of(id).await?.is_some_and(|s| s.is_terminal()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        if !self
            .finish_run(id, RunStatus::Succeeded, Some(output), None, Some(worker))
            .await?
        {
            return Ok(None);
        }
        self.get_run(id).await
    }

    /// Of `ids`, those of runs that have finished (succeeded, failed or
    /// cancelled).
    pub async fn finished_among(&self, ids: &[RunId]) -> Result<Vec<RunId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.backend.finished_among(ids).await
    }

    /// Sets a terminal status with output or error and `finished_at`, and
    /// clears the lease; a cancelled run's unfinished steps become cancelled
    /// too. `Ok(false)` if the run already is terminal. `worker`: Some(w)
    /// requires w to hold the lease (else `LeaseLost`); None skips that
    /// check (the API cancelling a queued run).
    pub async fn finish_run(
        &self,
        id: RunId,
        status: RunStatus,
        output: Option<RawJson>,
        error: Option<String>,
        worker: Option<&str>,
    ) -> Result<bool, StoreError> {
        if !status.is_terminal() {
            return Err(StoreError::Invalid(format!(
                "a run cannot finish as {status}"
            )));
        }
        let output = output.map(RawJson::cleaned);
        let error = error.map(clean_text);
        self.backend
            .finish_run(id, status, output, error, worker)
            .await
    }

    /// A queued run is cancelled at once (with its steps); a running one
    /// gets `cancel_requested`, and its worker stops it. Returns the run's
    /// status after the change (a finished one's unchanged), None if
    /// unknown.
    pub async fn request_cancel(&self, id: RunId) -> Result<Option<RunStatus>, StoreError> {
        self.backend.request_cancel(id).await
    }

    /// Whether the run should stop: its cancellation was requested, or it
    /// was cancelled. False for an unknown run.
    /// Queues a failed or cancelled run again, to resume at its unfinished
    /// steps: those that failed, were cancelled or never ran are pending
    /// again (their attempts back to 0); finished ones keep their outputs.
    /// Its `started_at` is cleared: a run timeout counts from the retry.
    /// False if the run is not failed or cancelled (or does not exist).
    pub async fn retry_run(&self, id: RunId) -> Result<bool, StoreError> {
        self.backend.retry_run(id).await
    }

    pub async fn cancel_requested(&self, id: RunId) -> Result<bool, StoreError> {
        self.backend.cancel_requested(id).await
    }

    /// Runs that need a worker: queued ones created at least `queued_for`
    /// ago, and running ones whose lease expired. Oldest first.
    pub async fn stale_runs(
        &self,
        queued_for: Duration,
        limit: u32,
    ) -> Result<Vec<RunId>, StoreError> {
        self.backend.stale_runs(queued_for, limit).await
    }

    /// All queued and running runs, oldest first.
    pub async fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        self.backend.unfinished_runs().await
    }

    /// Every status, with 0 for those no run has. Reads every run: the
    /// finished ones are most of the table.
    pub async fn count_by_status(&self) -> Result<BTreeMap<RunStatus, u64>, StoreError> {
        let rows: Vec<(String, i64)> = self.backend.count_by_status(false).await?;
        status_counts(&RunStatus::ALL, rows)
    }

    /// Queued and running runs, with 0 when there are none: a range of the
    /// status index, however many finished runs the store keeps.
    pub async fn count_unfinished(&self) -> Result<BTreeMap<RunStatus, u64>, StoreError> {
        let rows: Vec<(String, i64)> = self.backend.count_by_status(true).await?;
        status_counts(&[RunStatus::Queued, RunStatus::Running], rows)
    }

    pub async fn doc_get(&self, namespace: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        check_doc_key(key)?;
        self.backend.doc_get(namespace, key).await
    }

    /// Writes a document. `expected_version`: None writes unconditionally;
    /// Some(0) only if the document does not exist; Some(v) only if it is at
    /// version v. Returns the new version; a mismatch is `Conflict`. A
    /// write that would take the namespace past `quota` is `Quota`, and
    /// writes nothing.
    pub async fn doc_put(
        &self,
        namespace: &str,
        key: &str,
        value: &RawJson,
        expected_version: Option<u64>,
        quota: DocQuota,
    ) -> Result<u64, StoreError> {
        check_doc_key(key)?;
        check_json(value, "a document")?;
        let expected = expected_version
            .map(|v| to_i64(v, "expected_version"))
            .transpose()?;
        let json = value.get();
        check_doc_len(json.len())?;
        let put = DocWrite {
            namespace,
            key,
            json,
            expected,
            quota,
        };
        self.backend.doc_put(&put).await
    }

    /// [`Store::doc_put`] for JSON text not yet checked (what a plugin
    /// hands in): its size is checked before it is parsed.
    pub async fn doc_put_text(
        &self,
        namespace: &str,
        key: &str,
        text: String,
        expected_version: Option<u64>,
        quota: DocQuota,
    ) -> Result<u64, StoreError> {
        check_doc_key(key)?;
        check_doc_len(text.len())?;
        let value = RawJson::parse(text)
            .map_err(|e| StoreError::Invalid(format!("the document value is not JSON: {e}")))?;
        self.doc_put(namespace, key, &value, expected_version, quota)
            .await
    }

    pub async fn doc_delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        check_doc_key(key)?;
        self.backend.doc_delete(namespace, key).await
    }

    /// What a namespace holds: (documents, bytes of their values).
    pub async fn doc_usage(&self, namespace: &str) -> Result<(u64, u64), StoreError> {
        let (docs, bytes): (i64, i64) = self.backend.doc_usage(namespace).await?;
        Ok((to_u64(docs, "documents")?, to_u64(bytes, "bytes")?))
    }

    /// A page of the documents whose key starts with `prefix` (literally)
    /// and comes after `after`, by key (bytewise): at most `limit`
    /// (1..=`MAX_DOC_LIST`), and only as many as fit `max_bytes` of values
    /// (the first always). Sizes are read first, then only the values that
    /// fit: a listing never costs more than it returns.
    pub async fn doc_page(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        max_bytes: u64,
    ) -> Result<DocPage, StoreError> {
        if !(1..=MAX_DOC_LIST).contains(&limit) {
            return Err(StoreError::Invalid(format!(
                "limit must be 1 to {MAX_DOC_LIST}, not {limit}"
            )));
        }
        if prefix.contains('\0') || after.is_some_and(|a| a.contains('\0')) {
            return Ok(DocPage::default());
        }
        let range = KeyRange {
            prefix,
            end: prefix_end(prefix),
            after,
        };
        let sizes: Vec<(String, i64)> =
            self.backend.doc_sizes(namespace, &range, limit + 1).await?;
        let mut used = 0u64;
        let mut take = 0;
        for (_, size) in sizes.iter().take(limit as usize) {
            let size = u64::try_from(*size).unwrap_or(0);
            if take > 0 && used.saturating_add(size) > max_bytes {
                break;
            }
            used = used.saturating_add(size);
            take += 1;
        }
        let Some((last, _)) = sizes.get(take.max(1) - 1) else {
            return Ok(DocPage::default());
        };
        let keys: Vec<&str> = sizes[..take].iter().map(|(k, _)| k.as_str()).collect();
        let docs: Vec<Doc> = self.backend.doc_values(namespace, &keys).await?;
        let next = (sizes.len() > take).then(|| last.clone());
        Ok(DocPage { docs, next })
    }
}

impl Store {
    /// Stores a new API key.
    pub async fn key_insert(&self, key: &ApiKeyRow) -> Result<(), StoreError> {
        self.backend.key_insert(key).await
    }

    /// Every API key, oldest first.
    pub async fn key_list(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.backend.key_list().await
    }

    /// Revokes (deletes) a key; false if there was none with this id.
    pub async fn key_delete(&self, id: uuid::Uuid) -> Result<bool, StoreError> {
        self.backend.key_delete(id).await
    }

    /// The key whose SHA-256 (hex) is `hash`.
    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.backend.key_by_hash(hash).await
    }

    /// Records that key `id` was used at `now` (unix ms).
    pub async fn key_used(&self, id: uuid::Uuid, now: i64) -> Result<(), StoreError> {
        self.backend.key_used(id, now).await
    }
}

impl Store {
    /// Saves `body` as the next version of definition `name` (1 for a new
    /// name, and after a delete the numbering goes on); its version.
    pub async fn definition_put(&self, name: &str, body: &RawJson) -> Result<u32, StoreError> {
        for _ in 0..GUARDED_TRIES {
            // Two saves at once may pick the same next version: the loser
            // conflicts on the key and picks again.
            if let Some(version) = self.backend.definition_put(name, body, now_ms()).await? {
                return Ok(version);
            }
        }
        Err(StoreError::Invalid(format!(
            "definition {name:?} is being saved by others at the same time; try again"
        )))
    }

    /// Version `version` of definition `name` (the latest when none), unless
    /// the definition was deleted.
    pub async fn definition_get(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<DefinitionRow>, StoreError> {
        self.backend.definition_get(name, version).await
    }

    /// The latest version of every definition not deleted, by name.
    pub async fn definition_list(&self) -> Result<Vec<DefinitionRow>, StoreError> {
        self.backend.definition_list().await
    }

    /// Deletes definition `name` (every version; runs keep theirs) and its
    /// schedule; false if there was none.
    pub async fn definition_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.backend.schedule_delete(name).await?;
        self.backend.definition_delete(name, now_ms()).await
    }

    /// Sets the next tick of definition `name`'s schedule (unix ms).
    pub async fn schedule_set(&self, name: &str, next_at: i64) -> Result<(), StoreError> {
        self.backend.schedule_set(name, next_at).await
    }

    /// Forgets definition `name`'s schedule.
    pub async fn schedule_delete(&self, name: &str) -> Result<(), StoreError> {
        self.backend.schedule_delete(name).await
    }

    /// Schedules whose next tick is at or before `now`, earliest first:
    /// (name, tick).
    pub async fn schedules_due(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.backend.schedules_due(now, limit).await
    }

    /// Moves schedule `name` from tick `from` to tick `to`, if it is still
    /// at `from`: true for the one host that moved it.
    pub async fn schedule_advance(
        &self,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        self.backend.schedule_advance(name, from, to).await
    }
}

impl Store {
    /// Creates or replaces a secret's ciphertext.
    pub async fn secret_put(&self, row: &SecretRow) -> Result<(), StoreError> {
        self.backend.secret_put(row).await
    }

    /// Every secret's name and when it was last written, by name; no
    /// ciphertext.
    pub async fn secret_list(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.backend.secret_list().await
    }

    /// The secrets among `names` that exist.
    pub async fn secret_get_many(&self, names: &[String]) -> Result<Vec<SecretRow>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.backend.secret_get_many(names).await
    }

    /// Deletes a secret; false if there was none by that name.
    pub async fn secret_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.backend.secret_delete(name).await
    }
}

fn secret_row((name, nonce, ciphertext, updated_at): (String, Vec<u8>, Vec<u8>, i64)) -> SecretRow {
    SecretRow {
        name,
        nonce,
        ciphertext,
        updated_at,
    }
}

/// Unix milliseconds now: the clock every stored time is read against.
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The databases hold signed 64-bit integers.
fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} is too large")))
}

fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

fn run_status(s: &str) -> Result<RunStatus, StoreError> {
    s.parse()
        .map_err(|e: UnknownStatus| StoreError::Corrupt(e.to_string()))
}

fn step_status(s: &str) -> Result<StepStatus, StoreError> {
    s.parse()
        .map_err(|e: UnknownStatus| StoreError::Corrupt(e.to_string()))
}

/// Postgres text cannot hold NUL characters, and an error message from a
/// plugin may contain anything: replace them rather than fail the
/// checkpoint.
fn clean_text(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

/// What a caller submits is refused with a reason; both backends refuse
/// alike, so that SQLite does not accept what Postgres would not.
fn check_json(value: &RawJson, what: &str) -> Result<(), StoreError> {
    match value.problem() {
        Some(problem) => Err(StoreError::Invalid(format!(
            "{what} holds {problem}, which the store cannot keep"
        ))),
        None => Ok(()),
    }
}

fn check_doc_len(bytes: usize) -> Result<(), StoreError> {
    if bytes > MAX_DOC_VALUE_BYTES {
        return Err(StoreError::Invalid(format!(
            "document value of {bytes} bytes is over the {MAX_DOC_VALUE_BYTES}-byte limit"
        )));
    }
    Ok(())
}

fn check_doc_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_DOC_KEY_BYTES {
        return Err(StoreError::Invalid(format!(
            "a document key is 1 to {MAX_DOC_KEY_BYTES} bytes"
        )));
    }
    if key.contains('\0') {
        return Err(StoreError::Invalid(
            "a document key cannot contain NUL".into(),
        ));
    }
    Ok(())
}

/// `Conflict` unless the document's `actual` version is the one `w`
/// expects.
fn check_version(w: &DocWrite<'_>, actual: Option<i64>) -> Result<(), StoreError> {
    let matches = match w.expected {
        None => true,
        Some(0) => actual.is_none(),
        Some(v) => actual == Some(v),
    };
    if matches {
        return Ok(());
    }
    Err(StoreError::Conflict {
        key: w.key.to_owned(),
        expected: w.expected.and_then(|v| u64::try_from(v).ok()),
        actual: actual.and_then(|v| u64::try_from(v).ok()),
    })
}

/// What a namespace holding `before` (documents, bytes) holds once a
/// document of `size` bytes replaces one of `replaced` bytes (none: a new
/// document).
fn usage_after(before: (i64, i64), replaced: Option<i64>, size: i64) -> (i64, i64) {
    match replaced {
        Some(old) => (before.0, before.1 - old + size),
        None => (before.0 + 1, before.1 + size),
    }
}

/// Why a write is over `quota`: the namespace held `before` (documents,
/// bytes) and would hold `after`. A write that does not grow what is held
/// always passes, so a namespace over a lowered quota can still shrink.
fn over_quota(quota: DocQuota, before: (i64, i64), after: (i64, i64)) -> Option<StoreError> {
    let size = |n: i64| u64::try_from(n).unwrap_or(0);
    let (docs, bytes) = (size(after.0), size(after.1));
    if after.0 > before.0 && docs > quota.docs {
        return Some(StoreError::Quota(format!(
            "over the plugin's store quota of {} documents",
            quota.docs
        )));
    }
    if after.1 > before.1 && bytes > quota.bytes {
        return Some(StoreError::Quota(format!(
            "over the plugin's store quota of {} bytes ({bytes} with this write)",
            quota.bytes
        )));
    }
    None
}

/// The least string greater than every string that starts with `prefix`,
/// in bytewise (code point) order, or None when there is none (an empty
/// prefix). `prefix <= key < end` selects the keys with that prefix through
/// the primary key index, with no LIKE pattern to escape.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next code point, skipping the surrogates, which no string
        // holds.
        let next = match u32::from(last) {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// What the store knows about a step and its run, to tell why a guarded
/// update changed nothing.
struct StepState {
    run_status: RunStatus,
    lease_owner: Option<String>,
    step_status: Option<StepStatus>,
}

/// Why a guarded step update changed nothing.
enum StepRefusal {
    RunNotFound,
    LeaseLost,
    StepNotFound,
    Finished(StepStatus),
    /// Nothing in the state explains it: it changed between the update and
    /// the look, so the update is worth another try.
    Changed,
}

impl StepState {
    fn refusal(state: Option<StepState>, worker: &str) -> StepRefusal {
        let Some(state) = state else {
            return StepRefusal::RunNotFound;
        };
        if state.run_status != RunStatus::Running || state.lease_owner.as_deref() != Some(worker) {
            return StepRefusal::LeaseLost;
        }
        match state.step_status {
            None => StepRefusal::StepNotFound,
            Some(status) if status.is_terminal() => StepRefusal::Finished(status),
            Some(_) => StepRefusal::Changed,
        }
    }
}

/// What a guarded update of a run was refused on.
enum RunRefusal {
    NotFound,
    Terminal,
    LeaseLost,
    Changed,
}

fn run_refusal(state: Option<(RunStatus, Option<String>)>, worker: Option<&str>) -> RunRefusal {
    match state {
        None => RunRefusal::NotFound,
        Some((status, _)) if status.is_terminal() => RunRefusal::Terminal,
        Some((_, owner)) if worker.is_some() && owner.as_deref() != worker => RunRefusal::LeaseLost,
        Some(_) => RunRefusal::Changed,
    }
}

/// How many times a guarded update is tried when the state it was refused
/// on changed under it.
const GUARDED_TRIES: usize = 3;

/// The parts of a step outcome as columns: status, output, error.
fn outcome_columns(outcome: StepOutcome) -> (StepStatus, Option<RawJson>, Option<String>) {
    match outcome {
        StepOutcome::Succeeded { output } => (StepStatus::Succeeded, Some(output), None),
        StepOutcome::Failed { error } => (StepStatus::Failed, None, Some(clean_text(error))),
        StepOutcome::Cancelled => (StepStatus::Cancelled, None, None),
        StepOutcome::Skipped => (StepStatus::Skipped, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_string() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a").as_deref(), Some("b"));
        assert_eq!(prefix_end("ab%").as_deref(), Some("ab&"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }

    #[test]
    fn statuses_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
        }
        for s in StepStatus::ALL {
            assert_eq!(s.as_str().parse::<StepStatus>(), Ok(s));
        }
        assert!("done".parse::<RunStatus>().is_err());
    }
}
