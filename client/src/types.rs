//! Requests and answers of the nova HTTP API, as typed values.
//!
//! Answers are read tolerantly: a field the host adds later is ignored, and
//! a field it leaves out takes its default, so one client works with hosts
//! a little older or newer than itself. The HTTP API page describes every
//! field; the comments here only say what is not obvious.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::json::RawJson;

// ---------------------------------------------------------------- health

/// `GET /health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    pub status: HealthStatus,
    pub version: String,
    pub uptime_s: f64,
    /// `plugins`, `store`, `queue`, `kv`, `knowledge`, and any check a
    /// newer host adds.
    pub checks: BTreeMap<String, Check>,
}

impl Health {
    /// The host is ready: every check passed.
    pub fn is_ok(&self) -> bool {
        self.status == HealthStatus::Ok
    }

    /// The checks that are not ready, by name.
    pub fn failing(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|(_, c)| !c.ready)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// The host's overall state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Ready (`200`).
    Ok,
    /// The first plugin scan or the first ingest has not finished (`503`).
    Starting,
    /// The store, the queue or the vector index does not answer (`503`).
    Unavailable,
    /// A status this client does not know.
    #[default]
    #[serde(other)]
    Unknown,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Starting => "starting",
            HealthStatus::Unavailable => "unavailable",
            HealthStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the health checks. Fields beyond `ready`, `backend` and `error`
/// (the plugin count, the model name, …) are in `details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Check {
    pub ready: bool,
    pub backend: Option<String>,
    pub error: Option<String>,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

// ------------------------------------------------------------- workflows

/// A workflow to submit (`POST /workflows`): steps run in order, each
/// step's output the next one's input. Any other serializable value with
/// the same shape can be submitted as well (a `serde_json::Value` read
/// from a file, say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub steps: Vec<Step>,
    /// The first step's input: any JSON (null when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: Option<RawJson>,
    /// A second submission with the same key answers the first run (200)
    /// instead of starting another; it also makes the submission safe to
    /// retry after a lost answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// One step of a [`Workflow`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step plugin's name.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub plugin: String,
    /// The step's configuration, handed to the plugin as JSON (`{}` when
    /// absent).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: Option<RawJson>,
    /// Per attempt; the plugin's limit when absent.
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_ms: Option<u64>,
    /// Further attempts after a failure.
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub retries: Option<u32>,
}

impl Step {
    pub fn new(plugin: impl Into<String>, config: Value) -> Step {
        Step {
            plugin: plugin.into(),
            config: Some(RawJson::from_value(&config)),
            ..Step::default()
        }
    }
}

/// An optional field that is `Some` whenever it is present, even as
/// `null`: `#[serde(default, deserialize_with = "present")]`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// An optional whole-number field that also takes a number with a zero
/// fraction (`5.0`), as JSON Schema's `integer` does: `#[serde(default,
/// deserialize_with = "nova_client::types::whole")]`.
pub fn whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let Some(number) = <Option<serde_json::Number> as Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format_args!("{number} is not a whole number in range")))
}

/// The answer to a submission.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Submitted {
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub id: String,
    pub status: RunStatus,
    /// A new run was stored (`202`); `false` for the earlier run of a
    /// repeated idempotency key (`200`). Not part of the JSON.
    #[serde(skip)]
    pub created: bool,
}

/// A status that is not one of the statuses nova knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

/// Statuses: the variants, their names, whether one is final.
macro_rules! statuses {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            #[default]
            $($variant),+
        }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// `succeeded`, `failed` or `cancelled`: it will not change again.
            pub fn is_terminal(self) -> bool {
                matches!(self, $name::Succeeded | $name::Failed | $name::Cancelled)
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|status| status.as_str() == s)
                    .ok_or_else(|| UnknownStatus(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

statuses! {
    /// A run's status.
    RunStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

statuses! {
    /// A step's status: `pending` until a worker starts it.
    StepStatus {
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

/// A run (`GET /workflows/{id}`): timestamps in RFC 3339 with
/// milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Run {
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub id: String,
    pub status: RunStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: RawJson,
    /// The last step's output once the run succeeded; null until then.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub output: RawJson,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub cancel_requested: bool,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub steps: Vec<StepRun>,
}

/// One step of a [`Run`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct StepRun {
    pub index: u32,
    pub plugin: String,
    /// The plugin version that ran the latest attempt.
    pub plugin_version: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: RawJson,
    pub timeout_ms: Option<u64>,
    pub retries: Option<u32>,
    pub status: StepStatus,
    pub attempts: u32,
    /// Null until the step succeeded.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub output: RawJson,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The last attempt's duration.
    pub duration_ms: Option<f64>,
}

/// Which runs `GET /workflows` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRuns {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Runs per page, 1 to 100 (the host's default is 20).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Include each run's input (`include=input`).
    pub input: bool,
    /// Include each run's output (`include=output`). With either, a page
    /// ends early, with a cursor, before it passes the host's byte limit.
    pub output: bool,
}

/// A run in a listing: no steps, and its input and output only on request
/// (`include`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RunSummary {
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub id: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub cancel_requested: bool,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// How many steps the run has.
    pub step_count: u32,
    /// With `include=input` ([`ListRuns::input`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub input: Option<RawJson>,
    /// With `include=output` ([`ListRuns::output`]): the run's output,
    /// null until it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub output: Option<RawJson>,
}

/// One page of runs, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Set when older runs remain: pass it as `cursor` for the next page
    /// ([`ListRuns::cursor`]).
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub next_cursor: Option<String>,
}

// -------------------------------------------------------- knowledge base

/// A search (`POST /rag/query`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// `source`, `source_prefix`, or any metadata key, each matched
    /// exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, String>,
}

impl Query {
    pub fn new(text: impl Into<String>) -> Query {
        Query {
            query: text.into(),
            ..Query::default()
        }
    }
}

/// The answer to a search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct QueryAnswer {
    /// Best first.
    pub results: Vec<Hit>,
    pub took_ms: f64,
    /// Answered from the query cache.
    pub cached: bool,
}

/// One search result: a chunk of a document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Hit {
    pub text: String,
    /// The document's path relative to its collection's directory.
    pub source: String,
    /// Cosine similarity; higher is closer.
    pub score: f32,
    /// The loader's metadata (`title`, `heading_path`, `page`, …).
    pub metadata: BTreeMap<String, String>,
}

/// `GET /rag/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RagStats {
    pub ready: bool,
    pub collections: Vec<CollectionStats>,
    pub documents: u64,
    pub chunks: u64,
    pub model: ModelInfo,
    pub index: Map<String, Value>,
    pub cache: Map<String, Value>,
    pub rate_limit: Map<String, Value>,
    pub ingest: IngestState,
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionStats {
    pub name: String,
    pub documents: u64,
    pub chunks: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelInfo {
    pub name: String,
    pub dimensions: u64,
    pub max_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestState {
    pub running: Option<IngestReport>,
    pub last: Option<IngestReport>,
    pub queued: Vec<String>,
}

/// A configured directory and its collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Source {
    pub collection: String,
    pub dir: String,
}

/// What to ingest (`POST /rag/reload`): nothing set means every
/// configured directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// An absolute path on the host's file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// The answer to `POST /rag/reload`: follow `id` with
/// [`Client::rag_ingest`](crate::Client::rag_ingest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReloadStarted {
    pub id: String,
    pub status: String,
    pub collections: Vec<String>,
}

/// `GET /rag/ingests/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestProgress {
    pub running: bool,
    /// Waiting for another ingest to finish; `report` is then `None`.
    pub queued: bool,
    pub report: Option<IngestReport>,
}

impl IngestProgress {
    /// The ingest has finished, well or not.
    pub fn is_finished(&self) -> bool {
        !self.running && !self.queued && self.report.is_some()
    }
}

/// What one ingest did, updated as it runs: `finished_at` and
/// `duration_ms` are set once it has finished, `error` when it failed as a
/// whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct IngestReport {
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub id: String,
    pub collection: String,
    pub dir: String,
    pub started_at: String,
    /// Absent while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Absent while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub files_total: u64,
    pub files_done: u64,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub chunks_embedded: u64,
    pub failures: Vec<IngestFailure>,
    /// Set when the ingest as a whole failed (index unreachable...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A file an ingest could not index, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct IngestFailure {
    pub source: String,
    pub error: String,
}

// --------------------------------------------------------------- plugins

/// `GET /admin/plugins`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginList {
    /// Sorted by name.
    pub plugins: Vec<Plugin>,
}

/// A plugin's listing entry. A name whose only file was refused has
/// `serving: false` and no kind, version, limits or stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Plugin {
    pub name: String,
    /// `loader` or `step`.
    pub kind: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub contract: Option<String>,
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    pub loaded_at: Option<String>,
    pub path: Option<String>,
    pub limits: Option<Limits>,
    /// `{env, clocks, network, dirs}`.
    pub grants: Value,
    pub extensions: Vec<String>,
    pub media_types: Vec<String>,
    /// `{from_cache, ms}`.
    pub compile: Value,
    pub stats: Option<PluginStats>,
    /// `active` or `rejected`.
    pub status: String,
    pub serving: bool,
    pub error: Option<String>,
    /// The refused file: `{sha256, size_bytes, path, at}`.
    pub rejected: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub timeout_ms: u64,
    pub memory_mb: u64,
    pub max_output_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginStats {
    pub calls: u64,
    pub failures: u64,
    pub p50_ms: Option<f64>,
}

/// The answer to `POST /admin/plugins/reload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginsReloaded {
    /// Per name: `loaded`, `unchanged`, `rejected` or `removed`.
    pub outcomes: BTreeMap<String, String>,
    pub plugins: Vec<Plugin>,
}

/// The answer to `PUT /admin/plugins/{name}`: the new listing entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Uploaded {
    #[serde(flatten)]
    pub plugin: Plugin,
    /// The name had no serving version (`201`); `false` when one was
    /// replaced (`200`). Not part of the JSON.
    #[serde(skip)]
    pub created: bool,
}

/// The answer to `DELETE /admin/plugins/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Removed {
    pub removed: String,
}

/// Parameters of `POST /admin/plugins/{name}/invoke`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invoke {
    /// A step's configuration (`?config=`).
    pub config: Option<Value>,
    /// A loader's document name (`?source=`).
    pub source: Option<String>,
}

/// The answer to an invocation: `output` for a step, `chunks` for a
/// loader.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Invocation {
    pub plugin: String,
    pub version: String,
    /// `step` or `loader`.
    pub kind: String,
    pub output: Option<Value>,
    pub chunks: Vec<Chunk>,
    pub duration_ms: f64,
}

/// A chunk a loader produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Chunk {
    pub text: String,
    pub metadata: Map<String, Value>,
}

// ------------------------------------------------------------------ keys

/// A key to make (`POST /admin/keys`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    pub name: String,
    /// `runs:write`, `runs:read`, `rag:query`, `rag:write`,
    /// `plugins:invoke`, `metrics:read`, `admin`.
    pub scopes: Vec<String>,
}

/// A key just made: `key` is shown this once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub key: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

/// A key as listed (`GET /admin/keys`): never the key itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The key's first characters.
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RevokedKey {
    pub revoked: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_tolerantly() {
        let run: Run = serde_json::from_value(json!({
            "id": "r1", "status": "succeeded", "added_later": [1, 2],
            "steps": [{"index": 0, "plugin": "template", "status": "pending"}]
        }))
        .expect("run");
        assert_eq!(run.status, RunStatus::Succeeded);
        assert!(run.status.is_terminal());
        assert_eq!(run.steps[0].status, StepStatus::Pending);
        assert_eq!(run.error, None);

        let health: Health = serde_json::from_value(json!({
            "status": "degraded",
            "checks": {"store": {"ready": false, "backend": "postgres", "error": "down"},
                       "plugins": {"ready": true, "active": 3}}
        }))
        .expect("health");
        assert_eq!(health.status, HealthStatus::Unknown);
        assert_eq!(health.failing(), ["store"]);
        assert_eq!(health.checks["plugins"].details["active"], 3);
    }

    #[test]
    fn requests_leave_out_what_is_unset() {
        let query = serde_json::to_value(Query::new("q")).expect("query");
        assert_eq!(query, json!({"query": "q"}));
        let workflow = Workflow {
            steps: vec![Step::new("template", json!({"template": "x"}))],
            ..Workflow::default()
        };
        assert_eq!(
            serde_json::to_value(workflow).expect("workflow"),
            json!({"steps": [{"plugin": "template", "config": {"template": "x"}}]})
        );
        assert_eq!(
            serde_json::to_value(Reload::default()).expect("reload"),
            json!({})
        );
    }
}
