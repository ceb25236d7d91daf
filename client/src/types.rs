//! Requests and answers of the nova HTTP API, as typed values.
//!
//! Answers are read tolerantly: a field the host adds later is ignored, and
//! a field it leaves out takes its default, so one client works with hosts
//! a little older or newer than itself. The HTTP API page describes every
//! field; the comments here only say what is not obvious.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json::RawJson;

// ---------------------------------------------------------------- errors

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `plugin_not_found`.
    #[cfg_attr(feature = "openapi", schema(example = "plugin_not_found"))]
    pub code: String,
    /// For people; its wording may change.
    #[serde(default)]
    pub message: String,
}

// ---------------------------------------------------------------- health

/// `GET /health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Health {
    pub status: HealthStatus,
    /// The host's version.
    pub version: String,
    pub uptime_s: f64,
    pub checks: Checks,
}

impl Health {
    /// The host is ready: every check passed.
    pub fn is_ok(&self) -> bool {
        self.status == HealthStatus::Ok
    }

    /// The checks that are not ready, by name.
    pub fn failing(&self) -> Vec<&'static str> {
        self.checks
            .readiness()
            .into_iter()
            .filter(|(_, ready)| !ready)
            .map(|(name, _)| name)
            .collect()
    }
}

/// `ok` when every part is ready; `starting` while plugins load or the
/// first ingest runs; `unavailable` when a dependency does not answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Ready (`200`).
    Ok,
    /// The first plugin scan or the first ingest has not finished (`503`).
    Starting,
    /// The store, the queue or the vector index does not answer (`503`);
    /// also what an answer without a status reads as.
    #[default]
    Unavailable,
    /// A status this client does not know (never sent by a host of this
    /// version).
    #[serde(other, skip_serializing)]
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

/// What `/health` checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Checks {
    pub plugins: PluginsCheck,
    pub store: BackendCheck,
    pub queue: BackendCheck,
    pub kv: KvCheck,
    pub knowledge: KnowledgeCheck,
}

impl Checks {
    /// Each check by name, and whether it is ready.
    pub fn readiness(&self) -> [(&'static str, bool); 5] {
        [
            ("plugins", self.plugins.ready),
            ("store", self.store.ready),
            ("queue", self.queue.ready),
            ("kv", self.kv.ready),
            ("knowledge", self.knowledge.ready),
        ]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PluginsCheck {
    /// The plugin directory has been scanned.
    pub ready: bool,
    pub active: u64,
    pub rejected: u64,
    /// The plugin directory; only to a caller with a credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct BackendCheck {
    pub ready: bool,
    #[cfg_attr(feature = "openapi", schema(example = "sqlite"))]
    pub backend: String,
    /// Why it is not ready: the error to a caller with a credential,
    /// `unavailable` to anyone else.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct KvCheck {
    pub ready: bool,
    pub backend: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct KnowledgeCheck {
    pub ready: bool,
    pub enabled: bool,
    /// The vector index; null when disabled.
    pub backend: Option<String>,
    /// The embedding model; null when disabled.
    pub model: Option<String>,
    pub error: Option<String>,
}

// ------------------------------------------------------------- workflows

/// A workflow to submit (`POST /workflows`): steps run in order, each
/// step's output the next one's input, unless steps say otherwise (`id`,
/// `needs`, `input`, `if`, `for_each`: see [`Step`]). Any other
/// serializable value with the same shape can be submitted as well (a
/// `serde_json::Value` read from a file, say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub steps: Vec<Step>,
    /// The run's output: JSON in which a string beginning with `$.` is a
    /// JSONPath query over `{"input", "steps": {ID: {"output"}}}`; the
    /// output of the last step in order when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub output: Option<Value>,
    /// Most steps of one run running at once (1 to 64, default 8).
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_parallel: Option<u32>,
    /// The longest the run may take from its start, as an ISO 8601
    /// duration (`PT10M`) or a friendly one (`10m`, `1h 30m`): past it, its
    /// steps in flight are stopped and it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
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

/// One step of a [`Workflow`] or a [`Definition`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Its name in `needs` and `$.steps.ID`: a letter or `_`, then
    /// letters, digits, `_` and `-` (at most 64); `step0`, `step1`, … by
    /// position when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The step plugin's name; none for a `sleep` or `sleep_until` step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^([a-z0-9][a-z0-9_-]{0,63})?$")
    )]
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
    /// The steps it waits for, by id. Absent: the step before it (none for
    /// the first); `[]`: none, it starts at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<Vec<String>>,
    /// Its input: JSON in which a string beginning with `$.` is a JSONPath
    /// query (RFC 9535) over `{"input": <run input>, "steps": {ID:
    /// {"output": …}}}` (plus `item` and `index` in a `for_each`), and one
    /// beginning with `$$` a literal `$`. Absent: the output of the step it
    /// needs (the run's input for a step that needs none; an object of
    /// outputs by id for one that needs several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: Option<Value>,
    /// A JSONPath query: the step runs only when its value is truthy (not
    /// null, false, 0, "", [] or {}); otherwise it is `skipped`, with a
    /// null output.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A JSONPath query to an array: the step runs once per element (its
    /// input sees `$.item` and `$.index`), and its output is the array of
    /// the results, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// Elements of a `for_each` running at once (1 to 64, default 4).
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrency: Option<u32>,
    /// How a failed attempt is retried (instead of `retries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<StepRetry>,
    /// A built-in step, with no plugin, that waits this long (ISO 8601,
    /// `PT15M`, or `15m`) holding no worker, then passes its input on as
    /// its output. It survives restarts of every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<String>,
    /// Like `sleep`, until a time: RFC 3339 (`2026-12-24T18:00:00Z`), or a
    /// JSONPath query to such a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_until: Option<String>,
}

/// A step's retry policy: `max` further attempts after a failure, the
/// n-th after `initial_ms * multiplier^(n-1)` (at most `max_ms`; each
/// delay between half and all of that, at random), unless the error is of
/// a kind in `non_retryable`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StepRetry {
    /// Further attempts after a failure (0 to 10) [default: 0].
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub max: Option<u32>,
    /// The first delay, 1 to 3,600,000 ms [default: the host's
    /// `backoff_base`, 200 ms].
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_ms: Option<u64>,
    /// The longest delay, at least `initial_ms`, at most 86,400,000 ms
    /// [default: the host's `backoff_max`, 30 s].
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_ms: Option<u64>,
    /// Growth of the delay per retry, 1 to 10 [default: 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// Kinds of error that fail the step at once: `invalid-input`,
    /// `unsupported`, `failed`, `timeout`, `out-of-memory`,
    /// `stack-overflow`, `trap`, `output-too-large`, `invalid-output`,
    /// `setup-failed` [default: `invalid-input` and `unsupported`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_retryable: Option<Vec<String>>,
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
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? } final $($final:ident)|+) => {
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

            /// Whether it will not change again: `succeeded`, `failed`,
            /// `cancelled` (and a step's `skipped`).
            pub fn is_terminal(self) -> bool {
                matches!(self, $($name::$final)|+)
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
    } final Succeeded | Failed | Cancelled
}

statuses! {
    /// A step's status: `pending` until a worker starts it; `skipped` when
    /// its `if` was false.
    StepStatus {
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Skipped = "skipped",
    } final Succeeded | Failed | Cancelled | Skipped
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
    /// The saved definition the run is of, and its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition_version: Option<u32>,
    /// The schedule tick that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<String>,
    pub steps: Vec<StepRun>,
}

/// One step of a [`Run`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct StepRun {
    pub index: u32,
    /// Its id (`step0`, … when the workflow gave none).
    pub id: String,
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
    /// The input its `input` expressions resolved to (absent for a step
    /// that takes the output of the step it needs).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub input: Option<RawJson>,
    /// A `for_each` step's elements, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemRun>>,
    /// When a sleep step wakes (or woke).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<String>,
}

/// One element of a `for_each` step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ItemRun {
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: StepStatus,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which runs `GET /workflows` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRuns {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs of this saved definition.
    pub definition: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition_version: Option<u32>,
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

/// A saved workflow (`PUT /workflows/definitions/{name}`, as JSON or
/// YAML): a [`Workflow`]'s steps, output and `max_parallel`, saved under
/// a name and run by name; every save is a new version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub steps: Vec<Step>,
    /// As [`Workflow::output`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub output: Option<Value>,
    /// As [`Workflow::max_parallel`].
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_parallel: Option<u32>,
    /// As [`Workflow::timeout`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Start a run at each tick of a cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Start a run for each signed `POST /hooks/{name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

/// A definition's cron schedule: each tick starts exactly one run, across
/// any number of hosts, its input `{"scheduled_for": <the tick, RFC 3339>}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Five fields (minute hour day-of-month month day-of-week) or six
    /// (seconds first): `0 */5 * * * *` is every five minutes.
    pub cron: String,
    /// The IANA time zone the fields are read in (`Europe/Madrid`); UTC
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Ticks missed while no host ran: `skip` starts nothing for them,
    /// `one` starts one run for them all.
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// What a schedule does about ticks missed while no host ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    #[default]
    Skip,
    One,
}

/// A definition's webhook: `POST /hooks/{name}` with the run's input as
/// its body, signed `X-Nova-Signature: t=<unix seconds>,v1=<hex
/// HMAC-SHA256 of "<t>.<body>">` under the secret's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The name of the secret (`nova secrets set`) whose value signs
    /// deliveries.
    pub secret: String,
}

/// The answer to a save: the name and the version it created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DefinitionSaved {
    pub name: String,
    pub version: u32,
}

/// One version of a saved definition (`GET /workflows/definitions/{name}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DefinitionInfo {
    pub name: String,
    pub version: u32,
    pub created_at: Option<String>,
    pub definition: Definition,
}

/// The saved definitions, each at its latest version, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DefinitionList {
    pub definitions: Vec<DefinitionInfo>,
}

/// A run of a saved definition (`POST /workflows/definitions/{name}/runs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The run's input: any JSON (null when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: Option<RawJson>,
    /// As [`Workflow::idempotency_key`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The version to run; the latest when absent.
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<u32>,
}

// -------------------------------------------------------- knowledge base

/// How a search ranks chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// By meaning: the embeddings' cosine similarity.
    Dense,
    /// By words: BM25 over the chunks' keywords, with the collection's
    /// inverse document frequencies. An exact rare token (an error code,
    /// an identifier) ranks its chunks first.
    Keyword,
    /// Both, fused by reciprocal rank (k = 60). The default: it ranked
    /// best on the benchmark (`just bench rag`).
    #[default]
    Hybrid,
}

impl SearchMode {
    pub const ALL: [SearchMode; 3] = [SearchMode::Dense, SearchMode::Keyword, SearchMode::Hybrid];

    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Dense => "dense",
            SearchMode::Keyword => "keyword",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for SearchMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SearchMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown search mode {s:?}: use dense, keyword or hybrid"))
    }
}

/// A search (`POST /rag/query`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The question, at most 4096 bytes, not only whitespace.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"\S"))]
    pub query: String,
    /// How many results, 1 to 100 (5 when absent).
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub top_k: Option<u32>,
    /// The collection to search (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[a-z0-9_-]{1,64}$"))]
    pub collection: Option<String>,
    /// How to rank: `dense`, `keyword` or `hybrid` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SearchMode>,
    /// Conditions on `source`, `source_prefix` (a prefix of the path) or
    /// any metadata key; all must hold. A value is matched exactly, or is
    /// an object: `{"any": [...]}`, `{"not": v or [...]}`, or a range
    /// `{"gte", "gt", "lte", "lt"}` of numbers or RFC 3339 date-times.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(schema_with = filter_schema))]
    pub filter: BTreeMap<String, serde_json::Value>,
}

/// `filter` in the document.
#[cfg(feature = "openapi")]
fn filter_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let string = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Conditions on `source`, `source_prefix` (a prefix of the path) or any metadata \
             key (1 to 64 of A-Z, a-z, 0-9, '_' and '-'; not `collection`); all must hold. \
             A string, integer or boolean matches exactly (a list value matches when it \
             contains it); `{\"any\": [a, b]}` matches one of them; `{\"not\": a}` or \
             `{\"not\": [a, b]}` none of them (a chunk without the key passes); \
             `{\"gte\": 2020, \"lt\": 2025}` is a range of numbers, and of date-times \
             when its ends are RFC 3339 strings (`\"2024-01-01T00:00:00Z\"`).",
        ))
        .property_names(Some(string().pattern(Some("^[A-Za-z0-9_-]{1,64}$"))))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .build()
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
    /// The mode the results were ranked in.
    pub mode: SearchMode,
}

/// One search result: a chunk of a document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Hit {
    pub text: String,
    /// The document's id: its path relative to its collection's
    /// directory, or the id it was uploaded under.
    pub source: String,
    /// Higher is better. In `dense` mode the cosine similarity, in
    /// `keyword` the BM25 score, in `hybrid` the fused reciprocal rank.
    pub score: f32,
    /// The loader's metadata (`title`, `heading_path`, `page`, …) and the
    /// document's own.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

// ------------------------------------------------ collections, documents

/// A collection's settings (`PUT /rag/collections/{c}`'s body; all
/// optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CollectionSettings {
    /// For people.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub description: Option<String>,
    /// Largest chunk in model tokens, for documents uploaded into the
    /// collection (the host's `[knowledge] chunk_tokens` when absent;
    /// capped at what the model reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 16, maximum = 510))]
    pub chunk_tokens: Option<u32>,
    /// Tokens consecutive chunks share (at most half of `chunk_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_overlap: Option<u32>,
}

/// A collection (`GET /rag/collections`, and the answer to a create).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CollectionInfo {
    pub name: String,
    pub documents: u64,
    pub chunks: u64,
    pub settings: CollectionSettings,
    /// The host directory it mirrors, if it is configured with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Set on `PUT`: it did not exist before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
}

/// `GET /rag/collections`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CollectionList {
    pub collections: Vec<CollectionInfo>,
}

/// `PUT /rag/collections/{c}/documents/{id}`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DocumentSaved {
    pub collection: String,
    pub id: String,
    /// Chunks the document was split into.
    pub chunks: u32,
    /// Chunks embedded by this call: 0 when the content, loader and
    /// metadata were those already indexed.
    pub embedded: u32,
    /// The document did not exist before (answered with 201).
    pub created: bool,
    /// sha256 of the body, hex.
    pub content_hash: String,
    pub loader: String,
    pub loader_version: String,
}

/// One chunk of a document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DocumentChunk {
    pub index: u32,
    pub text: String,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// A document of a collection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DocumentInfo {
    pub id: String,
    /// sha256 of the document's bytes, hex.
    pub content_hash: String,
    pub loader: String,
    pub loader_version: String,
    /// How many chunks it was split into.
    pub chunks: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Uploaded through the document API (else read from the collection's
    /// directory).
    pub uploaded: bool,
    /// The metadata it was uploaded with.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Its chunks, in order, with `?chunks=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_list: Option<Vec<DocumentChunk>>,
}

/// `GET /rag/collections/{c}/documents`: a page, in the index's stable
/// order (sorted by id within the page).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DocumentPage {
    pub documents: Vec<DocumentInfo>,
    /// An opaque cursor: pass it as `after` for the next page; null on the
    /// last.
    pub next: Option<String>,
}

/// A document to upload (the client's side of `PUT …/documents/{id}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    pub body: Vec<u8>,
    /// Its media type (`text/markdown`, `application/pdf`, `text/html`…),
    /// which picks the loader.
    pub media_type: String,
    /// A loader to use instead of the one the media type picks.
    pub loader: Option<String>,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// `GET /rag/stats`: collections, documents, the model, the cache and
/// ingest progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RagStats {
    /// The first ingest has finished.
    pub ready: bool,
    pub collections: Vec<CollectionStats>,
    /// Documents in all collections.
    pub documents: u64,
    /// Chunks in all collections.
    pub chunks: u64,
    pub model: ModelInfo,
    pub index: IndexStats,
    pub cache: CacheStats,
    pub rate_limit: RateLimitStats,
    /// Null on a host that does not ingest.
    pub ingest: Option<IngestState>,
    /// The configured directories; null on a host that does not ingest.
    pub sources: Option<Vec<Source>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CollectionStats {
    pub name: String,
    pub documents: u64,
    pub chunks: u64,
}

/// The embedding model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ModelInfo {
    pub name: String,
    pub dimensions: u64,
    pub max_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct IndexStats {
    /// `edge` (embedded) or `qdrant`.
    pub backend: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CacheStats {
    pub backend: String,
    pub ttl_s: u64,
    pub hits: u64,
    pub misses: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RateLimitStats {
    pub backend: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct IngestState {
    pub running: Option<IngestReport>,
    pub last: Option<IngestReport>,
    /// Ingests requested and not finished yet.
    pub queued: Vec<String>,
}

/// A configured directory and its collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Source {
    pub collection: String,
    pub dir: String,
}

/// What to ingest (`POST /rag/reload`): all fields optional; an empty body
/// re-ingests every configured directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Reload {
    /// A configured collection, or the collection to ingest `dir` into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[a-z0-9_-]{1,64}$"))]
    pub collection: Option<String>,
    /// An absolute directory on the host to ingest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^/"))]
    pub dir: Option<String>,
}

/// The answer to `POST /rag/reload`: follow `id` at `GET /rag/ingests/{id}`
/// (`Client::rag_ingest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ReloadStarted {
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub id: String,
    /// Always `started`.
    #[cfg_attr(feature = "openapi", schema(example = "started"))]
    pub status: String,
    /// The collections it covers.
    pub collections: Vec<String>,
}

/// `GET /rag/ingests/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct IngestProgress {
    pub running: bool,
    /// Present (true) while the ingest waits behind another; `report` is
    /// then null.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PluginList {
    /// Sorted by name.
    pub plugins: Vec<Plugin>,
}

/// What a plugin is, from the interface its component exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Loader,
    #[default]
    Step,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Loader => "loader",
            PluginKind::Step => "step",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `rejected` when the latest file was refused (the reason in `error`);
/// an older version may still serve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PluginStatus {
    #[default]
    Active,
    Rejected,
}

impl fmt::Display for PluginStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginStatus::Active => "active",
            PluginStatus::Rejected => "rejected",
        })
    }
}

/// One plugin in the admin listing. The top-level fields describe the
/// version that serves; the fields marked "serving only" are absent when
/// none does (a name whose only file was refused has `serving: false`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Plugin {
    pub name: String,
    pub kind: Option<PluginKind>,
    pub version: Option<String>,
    /// Serving only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Serving only: the contract version the component was built against.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "0.1"))]
    pub contract: Option<String>,
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    pub loaded_at: Option<String>,
    pub path: Option<String>,
    pub limits: Option<PluginLimits>,
    /// Serving only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants: Option<PluginGrants>,
    /// Serving only; loaders only: the file extensions they handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<String>>,
    /// Serving only; loaders only: the media types they handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_types: Option<Vec<String>>,
    /// Serving only; steps that declare one: the JSON Schema their `config`
    /// must match. Invoke and workflow submission check config against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub config_schema: Option<Value>,
    /// Serving only: how the component was obtained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile: Option<CompileInfo>,
    pub stats: Option<PluginStats>,
    pub status: PluginStatus,
    /// Whether a version of this plugin serves calls.
    pub serving: bool,
    /// Why the latest file was refused.
    pub error: Option<String>,
    pub rejected: Option<RejectedFile>,
}

/// Resource limits of one call, and the plugin's quotas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PluginLimits {
    pub timeout_ms: u64,
    pub memory_mb: u64,
    pub max_output_bytes: u64,
    /// Documents it may keep in the store.
    pub store_docs: u64,
    /// Bytes of documents it may keep in the store.
    pub store_bytes: u64,
    /// Keys it may keep in kv.
    pub kv_keys: u64,
    /// Bytes of keys and values it may keep in kv.
    pub kv_bytes: u64,
    /// Its outbound HTTP requests: timeouts in ms, the response body's
    /// size, and how many may be in flight at once.
    pub http_connect_timeout_ms: u64,
    pub http_first_byte_timeout_ms: u64,
    pub http_between_bytes_timeout_ms: u64,
    pub http_response_bytes: u64,
    pub http_concurrency: u32,
}

/// What the plugin may reach beyond its own memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PluginGrants {
    /// Names of the environment variables granted (never their values).
    pub env: Vec<String>,
    /// Real clocks; without this grant they read zero.
    pub clocks: bool,
    /// Addresses it may connect to, `host:port`.
    pub network: Vec<String>,
    pub dirs: Vec<DirGrant>,
    /// URLs it may send HTTP requests to (`wasi:http`), as the manifest
    /// writes them: `https://api.example.com`, `https://*.example.com:8443`.
    pub allowed_outbound_hosts: Vec<String>,
    /// Names of the secrets it may read through `wasi:config` (never values).
    pub secrets: Vec<String>,
    /// Keys of its manifest's `[config]` values (not the values).
    pub config: Vec<String>,
    /// The knowledge collections its `knowledge.search` may read (`*`:
    /// all); `default` unless its manifest says otherwise.
    pub knowledge: Vec<String>,
}

/// A directory granted to a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DirGrant {
    pub host: String,
    pub guest: String,
    pub writable: bool,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CompileInfo {
    /// Loaded from the compiled-component cache instead of compiled.
    pub from_cache: bool,
    pub ms: f64,
}

/// Calls to the serving version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PluginStats {
    pub calls: u64,
    pub failures: u64,
    /// Median duration of the recent calls; null before any.
    pub p50_ms: Option<f64>,
}

/// The latest file that was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RejectedFile {
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    pub path: String,
    pub at: String,
}

/// What a rescan did with one plugin name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReloadOutcome {
    Loaded,
    #[default]
    Unchanged,
    Rejected,
    Removed,
}

impl fmt::Display for ReloadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReloadOutcome::Loaded => "loaded",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Rejected => "rejected",
            ReloadOutcome::Removed => "removed",
        })
    }
}

/// The answer to `POST /admin/plugins/reload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PluginsReloaded {
    /// What the rescan did, per plugin name.
    pub outcomes: BTreeMap<String, ReloadOutcome>,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Removed {
    /// The plugin's name.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Invocation {
    pub plugin: String,
    pub version: String,
    pub kind: PluginKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub output: Option<RawJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<Chunk>>,
    pub duration_ms: f64,
    /// What the plugin logged during the call, oldest first (at most 200
    /// lines and 64 KiB; `logs_dropped` counts the rest).
    #[serde(default)]
    pub logs: Vec<LogLine>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub logs_dropped: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A line a plugin logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

/// A chunk a loader produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Chunk {
    pub text: String,
    pub metadata: BTreeMap<String, String>,
}

// ---------------------------------------------------------- code sandbox

/// A language a snippet may be written in: each is run by the shipped
/// code step of that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CodeLanguage {
    /// CPython 3, built into a component by componentize-py.
    Python,
    /// SpiderMonkey (ECMAScript), built by componentize-js.
    Javascript,
}

impl CodeLanguage {
    pub const ALL: [CodeLanguage; 2] = [CodeLanguage::Python, CodeLanguage::Javascript];

    /// The language's name, which is also its code step's plugin name.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeLanguage::Python => "python",
            CodeLanguage::Javascript => "javascript",
        }
    }

    /// The language whose code step is the plugin `name`, if one is.
    pub fn of_plugin(name: &str) -> Option<CodeLanguage> {
        CodeLanguage::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

impl std::fmt::Display for CodeLanguage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snippet to run once in the sandbox (`POST /sandbox/run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SandboxRun {
    pub language: CodeLanguage,
    /// The source. Its result is what it assigns to `result`, or what its
    /// `main(input)` returns (JavaScript: or what it `return`s).
    pub code: String,
    /// The value the code sees as `input` (null when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub input: Option<RawJson>,
    /// Wall-clock limit of the run, in milliseconds: at most the code
    /// step's own limit (10 s by default), which is also the default.
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub timeout_ms: Option<u64>,
    /// Memory limit of the run, in MiB: at most the code step's own limit
    /// (128 MiB by default), which is also the default. The interpreters
    /// need 16 MiB (Python) and 10 MiB (JavaScript) to start.
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub memory_mb: Option<u64>,
    /// How much of stdout, and of stderr, is kept: 0 to 1 MiB (64 KiB
    /// when absent). The rest is counted, not kept.
    #[serde(
        default,
        deserialize_with = "whole",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1048576))]
    pub capture_bytes: Option<u32>,
}

/// What a snippet did: its result and what it printed, or why it stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SandboxResult {
    /// The code's result (null when it failed).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub result: RawJson,
    /// What it printed (`print`, `console.log`), up to `capture_bytes`.
    pub stdout: String,
    /// What it wrote to stderr (`console.error`, `console.warn`).
    pub stderr: String,
    /// Why it failed, or null.
    pub error: Option<SandboxError>,
    /// How long the run took, start of the sandbox to its answer.
    pub duration_ms: f64,
}

/// Why a snippet failed: an exception of its own, or a limit of the
/// sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SandboxError {
    /// The exception's class (`ZeroDivisionError`, `TypeError`,
    /// `SyntaxError`, ...), `ResultError` for a result that is not JSON, or
    /// a limit of the sandbox: `TimeLimit`, `MemoryLimit`,
    /// `StackOverflow`, `OutputLimit`, `Crash`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    /// The line of the snippet it was raised at, when known.
    pub line: Option<u32>,
}

/// `ZeroDivisionError: division by zero (line 3)`: as a failed code step
/// says it.
impl std::fmt::Display for SandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.kind)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ keys

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Submit and cancel runs.
    RunsWrite,
    /// Read and list runs.
    RunsRead,
    /// Search the knowledge base and read its statistics.
    RagQuery,
    /// Re-ingest the knowledge base and follow ingests.
    RagWrite,
    /// Invoke a plugin directly (`/admin/plugins/{name}/invoke`).
    PluginsInvoke,
    /// Read `/metrics`.
    MetricsRead,
    /// Run code snippets in the sandbox (`POST /sandbox/run`).
    SandboxRun,
    /// Everything: plugins, keys, and every other scope.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::RunsWrite,
        Scope::RunsRead,
        Scope::RagQuery,
        Scope::RagWrite,
        Scope::PluginsInvoke,
        Scope::MetricsRead,
        Scope::SandboxRun,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RunsWrite => "runs:write",
            Scope::RunsRead => "runs:read",
            Scope::RagQuery => "rag:query",
            Scope::RagWrite => "rag:write",
            Scope::PluginsInvoke => "plugins:invoke",
            Scope::MetricsRead => "metrics:read",
            Scope::SandboxRun => "sandbox:run",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scope {0:?}: use runs:write, runs:read, rag:query, rag:write, plugins:invoke, \
     metrics:read, sandbox:run or admin"
)]
pub struct UnknownScope(pub String);

/// A key to make (`POST /admin/keys`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// For people: who or what holds the key (1 to 64 characters, not
    /// only spaces, no control characters; outer spaces are trimmed).
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "ci-deploy",
            max_length = 64,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    /// What the key may do: `runs:write`, `runs:read`, `rag:query`,
    /// `rag:write`, `plugins:invoke`, `metrics:read`, `admin`.
    #[cfg_attr(feature = "openapi", schema(schema_with = scope_list))]
    pub scopes: Vec<String>,
    /// The only collections the key may read or write (a collection
    /// outside them answers 404, as if it did not exist); every
    /// collection when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
}

/// `scopes` in the document: one or more of the scope names.
#[cfg(feature = "openapi")]
fn scope_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(Scope::ALL.map(|s| s.as_str()))),
        )
        .min_items(Some(1))
        .description(Some("What the key may do; `admin` holds every scope."))
        .examples([serde_json::json!(["runs:write", "runs:read"])])
        .build()
}

/// A key just made. `key` is shown this once: the host keeps only its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CreatedKey {
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub id: String,
    pub name: String,
    /// Send it as `Authorization: Bearer <key>`.
    pub key: String,
    pub scopes: Vec<String>,
    /// The collections the key is held to; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    pub created_at: String,
}

/// A key as listed (`GET /admin/keys`): never the key itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct KeyInfo {
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The collections the key is held to; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    /// The key's first characters, to tell keys apart.
    #[cfg_attr(feature = "openapi", schema(example = "nova_3f0c1a2b"))]
    pub prefix: String,
    pub created_at: String,
    /// To the minute; null if never used.
    pub last_used_at: Option<String>,
}

/// `PUT /admin/secrets/{name}`'s body. Its `Debug` never shows the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// At most 65,536 bytes.
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &"<redacted>")
            .finish()
    }
}

/// A secret, as the listing shows it: never its value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SecretInfo {
    pub name: String,
    /// When it was last set (RFC 3339).
    pub updated_at: String,
    /// The loaded plugins whose manifests list it (`grants.secrets`).
    pub readers: Vec<String>,
}

/// `GET /admin/secrets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SecretList {
    /// By name.
    pub secrets: Vec<SecretInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct KeyList {
    /// Oldest first.
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RevokedKey {
    /// The revoked key's id.
    #[cfg_attr(feature = "openapi", schema(format = "uuid"))]
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
        assert_eq!(health.failing(), ["store", "queue", "kv", "knowledge"]);
        assert_eq!(health.checks.plugins.active, 3);
        assert_eq!(health.checks.store.error.as_deref(), Some("down"));
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
