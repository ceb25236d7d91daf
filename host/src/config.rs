//! Configuration: an optional `nova.toml`, overridden by environment
//! variables, overridden by command-line flags (clap reads both).
//!
//! Every value has an embedded default, so `nova serve` with nothing set
//! runs on a laptop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::IpNet;
use crate::knowledge::ChunkBudget;
use crate::knowledge::ingest::Source;
use crate::plugins::{
    CompileLimits, ComponentCaps, Limits, MAX_TIMEOUT_MS, OutputLimits, Quota, RuntimeConfig,
};
use crate::ratelimit::RateConfig;
use crate::workflow::RunLimits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid {path}: {error}")]
    Parse {
        path: PathBuf,
        error: Box<toml::de::Error>,
    },
    #[error("invalid value for {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// What a `nova serve` process does. One binary, so a deployment grows
/// from one process to many without code changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// HTTP API and workers.
    #[default]
    All,
    /// HTTP API only: submits runs, never executes them.
    Api,
    /// Workers only (and /health, /admin): executes runs.
    Worker,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// Whether callers must authenticate (`NOVA_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every route but /health needs the admin token or an API key.
    #[default]
    On,
    /// No credentials: every caller holds every scope. Accepted only when
    /// every address the host listens on is loopback.
    Off,
}

/// The HTTP server's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpLimits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how
    /// long a kept-alive connection may sit idle between requests.
    pub header_timeout: Duration,
    /// After a stop signal, how long requests in flight may take before
    /// their connections are closed.
    pub shutdown_timeout: Duration,
    /// Bytes of request bodies handled at once.
    pub max_in_flight: usize,
    /// How long a request waits for room among the bodies in flight before
    /// it is answered 503.
    pub memory_wait: Duration,
    /// How long a request's body may take to arrive once its headers have
    /// (it holds its share of the budget meanwhile); then 408.
    pub body_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS),
            shutdown_timeout: Duration::from_millis(DEFAULT_SHUTDOWN_TIMEOUT_MS),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT_MB << 20,
            memory_wait: Duration::from_millis(DEFAULT_MEMORY_WAIT_MS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
        }
    }
}

/// The resolved configuration the host runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    pub bind: SocketAddr,
    /// A second address that serves `GET /metrics` only, without
    /// credentials (for a scraper on an internal network).
    pub metrics_bind: Option<SocketAddr>,
    pub auth: AuthMode,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
    pub http: HttpLimits,
    /// What runs keep, and what reading them costs.
    pub runs: RunLimits,
    pub data_dir: PathBuf,
    pub plugins_dir: PathBuf,
    pub knowledge_dir: PathBuf,
    /// Compiled plugins, keyed by content and engine; safe to share between
    /// hosts of the same build.
    pub cache_dir: PathBuf,
    /// `None`: `nova serve` generates one and prints it once.
    pub admin_token: Option<String>,
    /// The key secrets are encrypted under, 64 hex digits; `None`: a key
    /// file in the data directory, made on first start.
    pub secrets_key: Option<String>,
    /// The plugin runtime: default limits and their ceilings, the pool's
    /// size and per-component caps, the compiler's limits, and how much of
    /// a plugin's output is kept.
    pub plugins: RuntimeConfig,
    /// Largest `.wasm` accepted by upload.
    pub max_plugin_bytes: usize,
    /// PEM certificates trusted for plugins' https requests, besides the
    /// platform's roots.
    pub extra_ca_file: Option<PathBuf>,
    /// `postgres://…` or `sqlite://…`; none: SQLite in the data directory.
    pub database_url: Option<String>,
    /// `redis://…`; none: in-process queue and kv.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this deployment uses, so several can
    /// share one Redis.
    pub redis_prefix: String,
    /// Runs this process executes at once (worker role).
    pub workers: usize,
    /// How long a worker's claim on a run lasts without renewal: how soon
    /// the runs of a crashed worker are taken over.
    pub lease: Duration,
    /// How long finished runs are kept; none: forever.
    pub run_retention: Option<Duration>,
    pub knowledge: KnowledgeConfig,
}

/// The knowledge base's settings.
#[derive(Debug, Clone)]
pub struct KnowledgeConfig {
    /// Off: no model is loaded and `/rag/*` answers 503.
    pub enabled: bool,
    /// A BERT-family model in Hugging Face layout.
    pub model_dir: PathBuf,
    /// Directories ingested, each into its collection; the first is
    /// `knowledge_dir` into `default`.
    pub sources: Vec<Source>,
    /// A Qdrant server instead of the embedded index.
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<String>,
    /// Prefix of this deployment's Qdrant collection names.
    pub qdrant_prefix: String,
    /// How long a query's answer is cached; zero turns the cache off.
    pub cache_ttl: Duration,
    /// Per-client limit on `/rag/*`; a zero rate turns it off.
    pub rate: RateConfig,
    pub chunk: ChunkBudget,
}

/// Every setting of `nova serve`, defined once: each is a key of
/// `nova.toml` (its section the struct it sits in) and, where it has one,
/// a flag with its environment variable (clap reads both). A flag or
/// variable wins over the file ([`Settings::overlay`]); what neither sets
/// takes its default in [`Config::resolve`].
#[derive(Debug, Default, Clone, clap::Args, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What this process does: all (API and workers), api, or worker.
    #[arg(long, env = "NOVA_ROLE", value_enum)]
    pub role: Option<Role>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "NOVA_BIND")]
    pub bind: Option<SocketAddr>,
    /// A second address serving only GET /metrics, without credentials
    /// (bind it to an internal interface) [default: none; /metrics on the
    /// main address needs the metrics:read scope].
    #[arg(long, env = "NOVA_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Whether every route but /health needs credentials. `off` is
    /// accepted only when every address is loopback [default: on].
    #[arg(long, env = "NOVA_AUTH", value_enum)]
    pub auth: Option<AuthMode>,
    /// Proxies whose X-Forwarded-For names the client: addresses or CIDR
    /// blocks, comma-separated [default: none].
    #[arg(long, env = "NOVA_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Relational store: postgres://… or sqlite://…
    /// [default: SQLite file DATA_DIR/nova.db].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis for the work queue and plugins' kv [default: in-process].
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of the Redis keys of this deployment [default: nova].
    #[arg(long, env = "NOVA_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// Runs a worker process executes at once [default: 16].
    #[arg(long, env = "NOVA_WORKERS")]
    pub workers: Option<usize>,
    /// How long a worker's claim on a run lasts without renewal, in ms:
    /// the runs of a crashed worker are taken over after it [default: 15000].
    #[arg(long, env = "NOVA_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Days a finished run (and its steps) is kept before it is deleted;
    /// 0 keeps runs forever [default: 30].
    #[arg(long, env = "NOVA_RUN_RETENTION_DAYS")]
    pub run_retention_days: Option<u64>,
    /// Directory for state: the compile cache, and plugins unless
    /// --plugins-dir says otherwise [default: ./data].
    #[arg(long, env = "NOVA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory watched for plugins (NAME.wasm, optional NAME.toml)
    /// [default: DATA_DIR/plugins].
    #[arg(long, env = "NOVA_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Directory of documents for the knowledge base [default: ./knowledge].
    #[arg(long, env = "NOVA_KNOWLEDGE_DIR")]
    pub knowledge_dir: Option<PathBuf>,
    /// Directory for compiled plugins [default: DATA_DIR/cache].
    #[arg(long, env = "NOVA_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The admin token: a bearer credential with every scope (API keys are
    /// made with it). Unset: one is generated and printed.
    #[arg(long, env = "NOVA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The key plugins' secrets are encrypted under in the store: 64 hex
    /// digits (`openssl rand -hex 32`), the same on every host sharing the
    /// store [default: DATA_DIR/secrets.key, made on first start].
    #[arg(long, env = "NOVA_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// `[plugins]`.
    #[command(flatten)]
    #[serde(default)]
    pub plugins: PluginSettings,
    /// `[knowledge]`.
    #[command(flatten)]
    #[serde(default)]
    pub knowledge: KnowledgeSettings,
    /// `[http]`.
    #[command(flatten)]
    #[serde(default)]
    pub http: HttpSettings,
    /// `[limits]`.
    #[command(flatten)]
    #[serde(default)]
    pub limits: RunSettings,
}

/// `[limits]` in `nova.toml`: what runs keep.
#[derive(Debug, Default, Clone, clap::Args, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    #[arg(skip)]
    pub run_input_bytes: Option<usize>,
    #[arg(skip)]
    pub run_bytes: Option<u64>,
    #[arg(skip)]
    pub error_bytes: Option<usize>,
    #[arg(skip)]
    pub page_bytes: Option<u64>,
}

/// `[http]` in `nova.toml`.
#[derive(Debug, Default, Clone, clap::Args, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Connections served at once; more wait to be accepted [default: 1024].
    #[arg(long, env = "NOVA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    #[arg(skip)]
    pub header_timeout_ms: Option<u64>,
    #[arg(skip)]
    pub shutdown_timeout_ms: Option<u64>,
    #[arg(skip)]
    pub max_in_flight_mb: Option<usize>,
    #[arg(skip)]
    pub memory_wait_ms: Option<u64>,
    #[arg(skip)]
    pub body_timeout_ms: Option<u64>,
}

/// `[knowledge]` in `nova.toml`.
#[derive(Debug, Default, Clone, clap::Args, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// Load the embedding model and serve the knowledge base [default: true].
    #[arg(id = "knowledge", long = "knowledge", env = "NOVA_KNOWLEDGE", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub enabled: Option<bool>,
    /// Embedding model: a BERT-family model directory in Hugging Face
    /// layout [default: models/all-MiniLM-L6-v2, fetched by `just model`].
    #[arg(long, env = "NOVA_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// More collections, each ingested from its directory: NAME=DIR,NAME=DIR.
    #[arg(long, env = "NOVA_COLLECTIONS")]
    pub collections: Option<Collections>,
    /// A Qdrant server (gRPC, e.g. http://qdrant:6334) instead of the
    /// embedded index [default: qdrant-edge under DATA_DIR/index].
    #[arg(long, env = "QDRANT_URL")]
    pub qdrant_url: Option<String>,
    /// API key of the Qdrant server.
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// What the Qdrant collections of this deployment are named with: a
    /// nova collection `c` is the Qdrant collection PREFIX + c, so several
    /// deployments can share a server [default: nova_].
    #[arg(long, env = "NOVA_QDRANT_PREFIX")]
    pub qdrant_prefix: Option<String>,
    /// How long query answers are cached, in seconds; 0 turns it off [default: 300].
    #[arg(
        id = "rag_cache_ttl_s",
        value_name = "RAG_CACHE_TTL_S",
        long = "rag-cache-ttl-s",
        env = "NOVA_RAG_CACHE_TTL_S"
    )]
    pub cache_ttl_s: Option<u64>,
    /// Requests per second each client may make to /rag/*; 0 turns the
    /// limit off [default: 50].
    #[arg(
        id = "rag_rate_limit",
        value_name = "RAG_RATE_LIMIT",
        long = "rag-rate-limit",
        env = "NOVA_RAG_RATE_LIMIT"
    )]
    pub rate_limit: Option<f64>,
    /// Requests a client may make at once before the rate applies [default: 100].
    #[arg(
        id = "rag_rate_burst",
        value_name = "RAG_RATE_BURST",
        long = "rag-rate-burst",
        env = "NOVA_RAG_RATE_BURST"
    )]
    pub rate_burst: Option<f64>,
    #[arg(skip)]
    pub chunk_tokens: Option<usize>,
    #[arg(skip)]
    pub chunk_overlap: Option<usize>,
}

/// Extra collections, name → directory: a table in `nova.toml`,
/// `NAME=DIR,NAME=DIR` as a flag or variable.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Collections(pub std::collections::BTreeMap<String, PathBuf>);

impl std::str::FromStr for Collections {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut map = std::collections::BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((name, dir)) if !name.trim().is_empty() && !dir.trim().is_empty() => {
                    let name = name.trim().to_owned();
                    if map
                        .insert(name.clone(), PathBuf::from(dir.trim()))
                        .is_some()
                    {
                        return Err(format!("{name:?} is listed twice"));
                    }
                }
                _ => return Err(format!("expected NAME=DIR, got {pair:?}")),
            }
        }
        Ok(Collections(map))
    }
}

/// `[plugins]` in `nova.toml`.
#[derive(Debug, Default, Clone, clap::Args, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Default wall-clock limit of one plugin call, in ms [default: 10000].
    #[arg(
        id = "plugin_timeout_ms",
        value_name = "PLUGIN_TIMEOUT_MS",
        long = "plugin-timeout-ms",
        env = "NOVA_PLUGIN_TIMEOUT_MS"
    )]
    pub timeout_ms: Option<u64>,
    /// Default memory limit of one plugin instance, in MiB [default: 128].
    #[arg(
        id = "plugin_memory_mb",
        value_name = "PLUGIN_MEMORY_MB",
        long = "plugin-memory-mb",
        env = "NOVA_PLUGIN_MEMORY_MB"
    )]
    pub memory_mb: Option<u64>,
    #[arg(skip)]
    pub max_memory_mb: Option<u64>,
    #[arg(skip)]
    pub max_output_bytes: Option<u64>,
    #[arg(skip)]
    pub output_ceiling_bytes: Option<u64>,
    /// Plugin instances that may run at once [default: 64].
    #[arg(
        id = "plugin_concurrency",
        value_name = "PLUGIN_CONCURRENCY",
        long = "plugin-concurrency",
        env = "NOVA_PLUGIN_CONCURRENCY"
    )]
    pub concurrency: Option<u32>,
    #[arg(skip)]
    pub max_upload_bytes: Option<usize>,
    #[arg(skip)]
    pub max_memories_per_component: Option<u32>,
    #[arg(skip)]
    pub max_tables_per_component: Option<u32>,
    #[arg(skip)]
    pub max_core_instances_per_component: Option<u32>,
    #[arg(skip)]
    pub compile_timeout_ms: Option<u64>,
    #[arg(skip)]
    pub compile_memory_mb: Option<u64>,
    #[arg(skip)]
    pub compile_concurrency: Option<usize>,
    #[arg(skip)]
    pub describe_bytes: Option<usize>,
    #[arg(skip)]
    pub max_chunks: Option<usize>,
    #[arg(skip)]
    pub chunk_bytes: Option<usize>,
    #[arg(skip)]
    pub store_docs: Option<u64>,
    #[arg(skip)]
    pub store_bytes: Option<u64>,
    #[arg(skip)]
    pub kv_keys: Option<u64>,
    #[arg(skip)]
    pub kv_bytes: Option<u64>,
    #[arg(skip)]
    pub max_store_docs: Option<u64>,
    #[arg(skip)]
    pub max_store_bytes: Option<u64>,
    #[arg(skip)]
    pub max_kv_keys: Option<u64>,
    #[arg(skip)]
    pub max_kv_bytes: Option<u64>,
    #[arg(skip)]
    pub list_bytes: Option<u64>,
    /// PEM certificates trusted for plugins' https requests besides the
    /// platform's roots (a private CA) [default: none].
    #[arg(long, env = "NOVA_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,
    #[arg(skip)]
    pub max_http_response_bytes: Option<u64>,
    #[arg(skip)]
    pub max_http_concurrency: Option<u32>,
}

impl Settings {
    /// Reads `path`; a missing file is an empty configuration only when
    /// `required` is false (the default `./nova.toml`).
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(error) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }

    /// These settings with every one `over` sets replaced by its value:
    /// flags and environment over the file. Generic over the fields, so a
    /// new setting needs no line here.
    pub fn overlay(self, over: Settings) -> Result<Self, ConfigError> {
        // Sections (`[plugins]`, …) are merged key by key; a value, a list
        // or a table inside one (the collections) is replaced whole. An
        // unset value, or an empty table, leaves the file's.
        fn merge(base: &mut serde_json::Value, over: serde_json::Value, depth: u8) {
            let unset = |v: &serde_json::Value| {
                v.is_null() || v.as_object().is_some_and(serde_json::Map::is_empty)
            };
            match (base, over) {
                (serde_json::Value::Object(base), serde_json::Value::Object(over)) if depth < 2 => {
                    for (key, value) in over {
                        match base.get_mut(&key) {
                            Some(slot) => merge(slot, value, depth + 1),
                            None if !unset(&value) => {
                                base.insert(key, value);
                            }
                            None => {}
                        }
                    }
                }
                (_, over) if unset(&over) => {}
                (base, over) => *base = over,
            }
        }
        // JSON has no NaN or infinity (they would read as "not set").
        for (key, value) in [
            ("knowledge.rate_limit", over.knowledge.rate_limit),
            ("knowledge.rate_burst", over.knowledge.rate_burst),
        ] {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(ConfigError::Invalid {
                    key,
                    message: "must be a finite number".into(),
                });
            }
        }
        let json = |settings: &Settings| {
            serde_json::to_value(settings).map_err(|e| ConfigError::Invalid {
                key: "settings",
                message: e.to_string(),
            })
        };
        let mut base = json(&self)?;
        merge(&mut base, json(&over)?, 0);
        serde_json::from_value(base).map_err(|e| ConfigError::Invalid {
            key: "settings",
            message: e.to_string(),
        })
    }
}

pub const DEFAULT_MODEL_DIR: &str = "models/all-MiniLM-L6-v2";
pub const DEFAULT_CACHE_TTL_S: u64 = 300;
pub const DEFAULT_RAG_RATE: f64 = 50.0;
pub const DEFAULT_RAG_BURST: f64 = 100.0;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_MAX_IN_FLIGHT_MB: usize = 64;
pub const DEFAULT_MEMORY_WAIT_MS: u64 = 5_000;
/// `[http] body_timeout_ms`.
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_MEMORY_MB: u64 = 128;
pub const DEFAULT_MAX_MEMORY_MB: u64 = 1024;
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 16 << 20;
pub const DEFAULT_CONCURRENCY: u32 = 64;
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 64 << 20;
pub const DEFAULT_WORKERS: usize = 16;
pub const DEFAULT_LEASE_MS: u64 = 15_000;
/// Finished runs are deleted this many days after they finished.
pub const DEFAULT_RUN_RETENTION_DAYS: u64 = 30;
/// Ceiling of the memory settings: 4 GiB per instance (the most a 32-bit
/// linear memory can hold). Time limits are the plugin host's
/// [`MAX_TIMEOUT_MS`], an hour.
pub const MAX_MAX_MEMORY_MB: u64 = 4096;
/// Memories the instance pool may hold, all its slots together.
pub const MAX_POOLED_MEMORIES: u64 = 16_384;

impl Config {
    /// The configuration `settings` describe, every unset value at its
    /// default; refused when a value is out of range or the values do not
    /// fit together.
    pub fn resolve(file: Settings) -> Result<Self, ConfigError> {
        let bind = match file.bind {
            Some(bind) => bind,
            None => DEFAULT_BIND.parse().map_err(|e| ConfigError::Invalid {
                key: "bind",
                message: format!("{e}"),
            })?,
        };
        let metrics_bind = file.metrics_bind;
        let auth = file.auth.unwrap_or_default();
        if auth == AuthMode::Off {
            let exposed: Vec<String> = std::iter::once(bind)
                .chain(metrics_bind)
                .filter(|a| !a.ip().is_loopback())
                .map(|a| a.to_string())
                .collect();
            if !exposed.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "auth",
                    message: format!(
                        "authentication can only be off on a host that listens on loopback \
                         alone; it would listen on {}",
                        exposed.join(", ")
                    ),
                });
            }
        }
        let proxies: Vec<String> = file.trusted_proxies.unwrap_or_default();
        let trusted_proxies = proxies
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.parse::<IpNet>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| ConfigError::Invalid {
                key: "trusted_proxies",
                message,
            })?;
        let http = resolve_http(file.http)?;
        let runs = resolve_limits(file.limits)?;
        let data_dir = file.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        let plugins_dir = file.plugins_dir.unwrap_or_else(|| data_dir.join("plugins"));
        let knowledge_dir = file
            .knowledge_dir
            .unwrap_or_else(|| PathBuf::from("knowledge"));
        let cache_dir = file.cache_dir.unwrap_or_else(|| data_dir.join("cache"));
        let admin_token = file.admin_token.filter(|t| !t.is_empty());
        if let Some(token) = &admin_token
            && token.len() < 16
        {
            return Err(ConfigError::Invalid {
                key: "admin_token",
                message: "must be at least 16 characters".into(),
            });
        }

        let p = file.plugins;
        let timeout_ms = p.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let memory_mb = p.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        let max_memory_mb = p.max_memory_mb.unwrap_or(DEFAULT_MAX_MEMORY_MB);
        if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
            return Err(ConfigError::Invalid {
                key: "plugins.timeout_ms",
                message: format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            });
        }
        if p.max_output_bytes == Some(0) {
            return Err(ConfigError::Invalid {
                key: "plugins.max_output_bytes",
                message: "must be above 0".into(),
            });
        }
        if p.max_upload_bytes == Some(0) {
            return Err(ConfigError::Invalid {
                key: "plugins.max_upload_bytes",
                message: "must be above 0".into(),
            });
        }
        if max_memory_mb == 0 || max_memory_mb > MAX_MAX_MEMORY_MB {
            return Err(ConfigError::Invalid {
                key: "plugins.max_memory_mb",
                message: format!("must be between 1 and {MAX_MAX_MEMORY_MB}"),
            });
        }
        if memory_mb == 0 || memory_mb > max_memory_mb {
            return Err(ConfigError::Invalid {
                key: "plugins.memory_mb",
                message: format!("must be between 1 and plugins.max_memory_mb ({max_memory_mb})"),
            });
        }
        let concurrency = p.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > 10_000 {
            return Err(ConfigError::Invalid {
                key: "plugins.concurrency",
                message: "must be between 1 and 10000".into(),
            });
        }
        let workers = file.workers.unwrap_or(DEFAULT_WORKERS);
        if workers == 0 || workers > 1024 {
            return Err(ConfigError::Invalid {
                key: "workers",
                message: "must be between 1 and 1024".into(),
            });
        }
        let lease_ms = file.lease_ms.unwrap_or(DEFAULT_LEASE_MS);
        if !(300..=600_000).contains(&lease_ms) {
            return Err(ConfigError::Invalid {
                key: "lease_ms",
                message: "must be between 300 and 600000".into(),
            });
        }
        let run_retention_days = file
            .run_retention_days
            .unwrap_or(DEFAULT_RUN_RETENTION_DAYS);
        if run_retention_days > 36_500 {
            return Err(ConfigError::Invalid {
                key: "run_retention_days",
                message: "must be between 0 (keep forever) and 36500".into(),
            });
        }
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let knowledge = resolve_knowledge(&knowledge_dir, file.knowledge)?;
        let role = file.role.unwrap_or_default();
        let redis_url = non_empty(file.redis_url);
        if role != Role::All && redis_url.is_none() {
            // The in-process queue cannot cross processes: an api host
            // would queue runs that no worker ever sees.
            return Err(ConfigError::Invalid {
                key: "role",
                message: "--role api and --role worker need REDIS_URL (a shared queue)".into(),
            });
        }
        Ok(Config {
            role,
            metrics_bind,
            auth,
            trusted_proxies,
            http,
            runs,
            database_url: non_empty(file.database_url),
            redis_url,
            redis_prefix: non_empty(file.redis_prefix).unwrap_or_else(|| "nova".to_owned()),
            workers,
            lease: Duration::from_millis(lease_ms),
            run_retention: (run_retention_days > 0)
                .then(|| Duration::from_secs(run_retention_days * 86_400)),
            bind,
            data_dir,
            plugins_dir,
            knowledge_dir,
            cache_dir,
            admin_token,
            secrets_key: file.secrets_key.filter(|k| !k.is_empty()),
            max_plugin_bytes: p.max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES),
            extra_ca_file: p.extra_ca_file.clone(),
            plugins: resolve_runtime(
                &p,
                Limits {
                    timeout: Duration::from_millis(timeout_ms),
                    memory_bytes: memory_mb << 20,
                    max_output_bytes: p.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES),
                    ..Limits::default()
                },
                max_memory_mb << 20,
                concurrency,
                runs.error_bytes,
            )?,
            knowledge,
        })
    }
}

/// The plugin runtime's settings beyond the default limits.
fn resolve_runtime(
    p: &PluginSettings,
    defaults: Limits,
    max_memory_bytes: u64,
    concurrency: u32,
    error_bytes: usize,
) -> Result<RuntimeConfig, ConfigError> {
    let base = RuntimeConfig::default();
    let invalid = |key: &'static str, message: String| ConfigError::Invalid { key, message };
    let output_ceiling = p.output_ceiling_bytes.unwrap_or(base.max_output_bytes);
    if defaults.max_output_bytes > output_ceiling {
        return Err(invalid(
            "plugins.max_output_bytes",
            format!("must be at most plugins.output_ceiling_bytes ({output_ceiling})"),
        ));
    }
    let caps = ComponentCaps {
        memories: p.max_memories_per_component.unwrap_or(base.caps.memories),
        tables: p.max_tables_per_component.unwrap_or(base.caps.tables),
        core_instances: p
            .max_core_instances_per_component
            .unwrap_or(base.caps.core_instances),
    };
    for (key, value) in [
        ("plugins.max_memories_per_component", caps.memories),
        ("plugins.max_tables_per_component", caps.tables),
        (
            "plugins.max_core_instances_per_component",
            caps.core_instances,
        ),
    ] {
        if !(1..=1000).contains(&value) {
            return Err(invalid(key, "must be between 1 and 1000".into()));
        }
    }
    // Each memory slot of the pool reserves 4 GiB of address space (and a
    // guard): keep the pool within 64 TiB of the 128 TiB a process has.
    if u64::from(concurrency) * u64::from(caps.memories) > MAX_POOLED_MEMORIES {
        return Err(invalid(
            "plugins.concurrency",
            format!(
                "plugins.concurrency × plugins.max_memories_per_component must be at most \
                 {MAX_POOLED_MEMORIES} (each pooled memory reserves 4 GiB of address space)"
            ),
        ));
    }
    let compile = CompileLimits {
        timeout: Duration::from_millis(
            p.compile_timeout_ms
                .unwrap_or(base.compile.timeout.as_millis() as u64),
        ),
        memory_bytes: p
            .compile_memory_mb
            .map_or(base.compile.memory_bytes, |mb| mb << 20),
        concurrency: p.compile_concurrency.unwrap_or(base.compile.concurrency),
    };
    if compile.timeout.is_zero() || compile.timeout > Duration::from_millis(MAX_TIMEOUT_MS) {
        return Err(invalid(
            "plugins.compile_timeout_ms",
            format!("must be between 1 and {MAX_TIMEOUT_MS}"),
        ));
    }
    if !((256 << 20)..=(1 << 40)).contains(&compile.memory_bytes) {
        return Err(invalid(
            "plugins.compile_memory_mb",
            "must be at least 256 (the compiler's own code needs that much)".into(),
        ));
    }
    if !(1..=64).contains(&compile.concurrency) {
        return Err(invalid(
            "plugins.compile_concurrency",
            "must be between 1 and 64".into(),
        ));
    }
    let output = OutputLimits {
        error_bytes,
        describe_bytes: p.describe_bytes.unwrap_or(base.output.describe_bytes),
        max_chunks: p.max_chunks.unwrap_or(base.output.max_chunks),
        chunk_bytes: p.chunk_bytes.unwrap_or(base.output.chunk_bytes),
    };
    if !(64..=(1 << 20)).contains(&output.describe_bytes) {
        return Err(invalid(
            "plugins.describe_bytes",
            "must be between 64 and 1048576".into(),
        ));
    }
    if !(1..=1_000_000).contains(&output.max_chunks) {
        return Err(invalid(
            "plugins.max_chunks",
            "must be between 1 and 1000000".into(),
        ));
    }
    if !(64..=(16 << 20)).contains(&output.chunk_bytes) {
        return Err(invalid(
            "plugins.chunk_bytes",
            "must be between 64 and 16777216".into(),
        ));
    }
    let max_store = Quota {
        items: p.max_store_docs.unwrap_or(base.max_store.items),
        bytes: p.max_store_bytes.unwrap_or(base.max_store.bytes),
    };
    let max_kv = Quota {
        items: p.max_kv_keys.unwrap_or(base.max_kv.items),
        bytes: p.max_kv_bytes.unwrap_or(base.max_kv.bytes),
    };
    let mut defaults = defaults;
    defaults.store = Quota {
        items: p.store_docs.unwrap_or(base.defaults.store.items),
        bytes: p.store_bytes.unwrap_or(base.defaults.store.bytes),
    };
    defaults.kv = Quota {
        items: p.kv_keys.unwrap_or(base.defaults.kv.items),
        bytes: p.kv_bytes.unwrap_or(base.defaults.kv.bytes),
    };
    for (key, value, max, setting) in [
        (
            "plugins.store_docs",
            defaults.store.items,
            max_store.items,
            "max_store_docs",
        ),
        (
            "plugins.store_bytes",
            defaults.store.bytes,
            max_store.bytes,
            "max_store_bytes",
        ),
        (
            "plugins.kv_keys",
            defaults.kv.items,
            max_kv.items,
            "max_kv_keys",
        ),
        (
            "plugins.kv_bytes",
            defaults.kv.bytes,
            max_kv.bytes,
            "max_kv_bytes",
        ),
    ] {
        if value > max {
            return Err(invalid(
                key,
                format!("must be at most plugins.{setting} ({max})"),
            ));
        }
    }
    let list_bytes = p.list_bytes.unwrap_or(base.list_bytes);
    if !((1 << 20)..=(1 << 30)).contains(&list_bytes) {
        return Err(invalid(
            "plugins.list_bytes",
            "must be between 1048576 (one document's largest) and 1073741824".into(),
        ));
    }
    let mut max_http = base.max_http;
    if let Some(bytes) = p.max_http_response_bytes {
        if !(1..=(1 << 40)).contains(&bytes) {
            return Err(invalid(
                "plugins.max_http_response_bytes",
                "must be between 1 and 1099511627776".into(),
            ));
        }
        max_http.response_bytes = bytes;
    }
    if let Some(n) = p.max_http_concurrency {
        if !(1..=10_000).contains(&n) {
            return Err(invalid(
                "plugins.max_http_concurrency",
                "must be between 1 and 10000".into(),
            ));
        }
        max_http.concurrency = n;
    }
    // A plugin's defaults never exceed the ceilings.
    defaults.http.response_bytes = defaults.http.response_bytes.min(max_http.response_bytes);
    defaults.http.concurrency = defaults.http.concurrency.min(max_http.concurrency);
    Ok(RuntimeConfig {
        defaults,
        max_memory_bytes,
        max_output_bytes: output_ceiling,
        max_store,
        max_kv,
        max_http,
        list_bytes,
        concurrency,
        caps,
        compile,
        output,
    })
}

fn resolve_limits(file: RunSettings) -> Result<RunLimits, ConfigError> {
    let defaults = RunLimits::default();
    let limits = RunLimits {
        input_bytes: file.run_input_bytes.unwrap_or(defaults.input_bytes),
        run_bytes: file.run_bytes.unwrap_or(defaults.run_bytes),
        error_bytes: file.error_bytes.unwrap_or(defaults.error_bytes),
        page_bytes: file.page_bytes.unwrap_or(defaults.page_bytes),
    };
    let invalid = |key: &'static str, message: String| ConfigError::Invalid { key, message };
    if !(1..=(64 << 20)).contains(&limits.input_bytes) {
        return Err(invalid(
            "limits.run_input_bytes",
            "must be between 1 and 67108864".into(),
        ));
    }
    if (limits.input_bytes as u64) > limits.run_bytes || limits.run_bytes > 1 << 30 {
        return Err(invalid(
            "limits.run_bytes",
            format!(
                "must be at least limits.run_input_bytes ({}) and at most 1073741824",
                limits.input_bytes
            ),
        ));
    }
    if !(256..=(1 << 20)).contains(&limits.error_bytes) {
        return Err(invalid(
            "limits.error_bytes",
            "must be between 256 and 1048576".into(),
        ));
    }
    if !(1..=(1 << 30)).contains(&limits.page_bytes) {
        return Err(invalid(
            "limits.page_bytes",
            "must be between 1 and 1073741824".into(),
        ));
    }
    Ok(limits)
}

fn resolve_http(file: HttpSettings) -> Result<HttpLimits, ConfigError> {
    let invalid = |key: &'static str, message: &str| ConfigError::Invalid {
        key,
        message: message.to_owned(),
    };
    let max_connections = file.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=1_000_000).contains(&max_connections) {
        return Err(invalid(
            "http.max_connections",
            "must be between 1 and 1000000",
        ));
    }
    let ms = |v: Option<u64>, default: u64, key: &'static str| {
        let v = v.unwrap_or(default);
        if (1..=3_600_000).contains(&v) {
            Ok(Duration::from_millis(v))
        } else {
            Err(invalid(key, "must be between 1 and 3600000 (ms)"))
        }
    };
    let max_in_flight_mb = file.max_in_flight_mb.unwrap_or(DEFAULT_MAX_IN_FLIGHT_MB);
    if !(1..=1 << 20).contains(&max_in_flight_mb) {
        return Err(invalid(
            "http.max_in_flight_mb",
            "must be between 1 and 1048576",
        ));
    }
    Ok(HttpLimits {
        max_connections,
        header_timeout: ms(
            file.header_timeout_ms,
            DEFAULT_HEADER_TIMEOUT_MS,
            "http.header_timeout_ms",
        )?,
        shutdown_timeout: ms(
            file.shutdown_timeout_ms,
            DEFAULT_SHUTDOWN_TIMEOUT_MS,
            "http.shutdown_timeout_ms",
        )?,
        max_in_flight: max_in_flight_mb << 20,
        memory_wait: ms(
            file.memory_wait_ms,
            DEFAULT_MEMORY_WAIT_MS,
            "http.memory_wait_ms",
        )?,
        body_timeout: ms(
            file.body_timeout_ms,
            DEFAULT_BODY_TIMEOUT_MS,
            "http.body_timeout_ms",
        )?,
    })
}

fn resolve_knowledge(
    knowledge_dir: &Path,
    file: KnowledgeSettings,
) -> Result<KnowledgeConfig, ConfigError> {
    let invalid = |key: &'static str, message: &str| ConfigError::Invalid {
        key,
        message: message.to_owned(),
    };
    let mut sources = vec![Source {
        collection: crate::knowledge::DEFAULT_COLLECTION.to_owned(),
        dir: knowledge_dir.to_owned(),
    }];
    for (collection, dir) in file.collections.unwrap_or_default().0 {
        if !crate::vector::valid_collection(&collection) {
            return Err(invalid(
                "knowledge.collections",
                &format!("{collection:?} is not a valid name (a-z, 0-9, '-', '_')"),
            ));
        }
        if sources.iter().any(|s| s.collection == collection) {
            return Err(invalid(
                "knowledge.collections",
                &format!("{collection:?} is listed twice (\"default\" is the knowledge directory)"),
            ));
        }
        sources.push(Source { collection, dir });
    }
    let rate = file.rate_limit.unwrap_or(DEFAULT_RAG_RATE);
    let burst = file.rate_burst.unwrap_or(DEFAULT_RAG_BURST.max(rate));
    if !(rate >= 0.0 && rate.is_finite()) {
        return Err(invalid("knowledge.rate_limit", "must be 0 (off) or more"));
    }
    if rate > 0.0 && !(burst >= 1.0 && burst.is_finite()) {
        return Err(invalid("knowledge.rate_burst", "must be at least 1"));
    }
    let chunk = ChunkBudget {
        max_tokens: file
            .chunk_tokens
            .unwrap_or(ChunkBudget::default().max_tokens),
        overlap: file.chunk_overlap.unwrap_or(ChunkBudget::default().overlap),
    };
    if !(16..=510).contains(&chunk.max_tokens) {
        return Err(invalid(
            "knowledge.chunk_tokens",
            "must be between 16 and 510",
        ));
    }
    if chunk.overlap * 2 > chunk.max_tokens {
        return Err(invalid(
            "knowledge.chunk_overlap",
            "must be at most half of chunk_tokens",
        ));
    }
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Ok(KnowledgeConfig {
        enabled: file.enabled.unwrap_or(true),
        model_dir: file
            .model_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR)),
        sources,
        qdrant_url: non_empty(file.qdrant_url),
        qdrant_api_key: non_empty(file.qdrant_api_key),
        qdrant_prefix: file.qdrant_prefix.unwrap_or_else(|| "nova_".to_owned()),
        cache_ttl: Duration::from_secs(file.cache_ttl_s.unwrap_or(DEFAULT_CACHE_TTL_S)),
        rate: RateConfig { rate, burst },
        chunk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_nothing() {
        let c = Config::resolve(Settings::default()).unwrap();
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.plugins_dir, PathBuf::from("data/plugins"));
        assert_eq!(c.plugins.defaults.timeout, Duration::from_secs(10));
        assert_eq!(c.plugins.defaults.memory_bytes, 128 << 20);
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn overrides_win_over_file() {
        let file: Settings = toml::from_str(
            "data_dir = \"/srv/nova\"\n[plugins]\ntimeout_ms = 500\nmemory_mb = 64\n",
        )
        .unwrap();
        let over = Settings {
            plugins: PluginSettings {
                timeout_ms: Some(250),
                ..PluginSettings::default()
            },
            ..Settings::default()
        };
        let c = Config::resolve(file.overlay(over).unwrap()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/nova"));
        assert_eq!(c.plugins_dir, PathBuf::from("/srv/nova/plugins"));
        assert_eq!(c.plugins.defaults.timeout, Duration::from_millis(250));
        assert_eq!(c.plugins.defaults.memory_bytes, 64 << 20);
    }

    #[test]
    fn flags_and_the_file_are_one_definition() {
        // Every flag of `nova serve` is a key of the file: parsing the
        // flags and the same values as TOML gives the same settings.
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            settings: Settings,
        }
        let flags = Flags::try_parse_from([
            "nova",
            "--workers",
            "3",
            "--plugin-timeout-ms",
            "250",
            "--rag-rate-burst",
            "7",
            "--knowledge",
            "false",
            "--trusted-proxies",
            "10.0.0.0/8,127.0.0.1",
            "--collections",
            "a=/srv/a",
        ])
        .unwrap()
        .settings;
        let file: Settings = toml::from_str(
            "workers = 3\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n\
             [plugins]\ntimeout_ms = 250\n\
             [knowledge]\nrate_burst = 7.0\nenabled = false\ncollections = { a = \"/srv/a\" }\n",
        )
        .unwrap();
        assert_eq!(format!("{flags:?}"), format!("{file:?}"));
        // A flag wins over the file; what it leaves unset, the file keeps.
        let file: Settings = toml::from_str(
            "workers = 9\nlease_ms = 900\n[knowledge]\ncollections = { b = \"/srv/b\" }\n",
        )
        .unwrap();
        let merged = file.clone().overlay(flags).unwrap();
        assert_eq!((merged.workers, merged.lease_ms), (Some(3), Some(900)));
        // A table is replaced whole, unless the flag's is empty.
        let names = |s: &Settings| s.knowledge.collections.clone().unwrap_or_default().0;
        assert_eq!(names(&merged).keys().collect::<Vec<_>>(), ["a"]);
        let empty = Settings {
            knowledge: KnowledgeSettings {
                collections: Some("".parse().unwrap()),
                ..KnowledgeSettings::default()
            },
            ..Settings::default()
        };
        assert_eq!(
            names(&file.overlay(empty).unwrap())
                .keys()
                .collect::<Vec<_>>(),
            ["b"]
        );
        let nan = Settings {
            knowledge: KnowledgeSettings {
                rate_limit: Some(f64::NAN),
                ..KnowledgeSettings::default()
            },
            ..Settings::default()
        };
        assert!(Settings::default().overlay(nan).is_err());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_limits() {
        assert!(toml::from_str::<Settings>("bogus = 1").is_err());
        let file: Settings = toml::from_str("[plugins]\nmemory_mb = 4096\n").unwrap();
        let err = Config::resolve(file).unwrap_err();
        assert!(err.to_string().contains("plugins.memory_mb"), "{err}");
        let over = Settings {
            admin_token: Some("short".into()),
            ..Settings::default()
        };
        assert!(Config::resolve(over).is_err());
        let split = Settings {
            role: Some(Role::Worker),
            ..Settings::default()
        };
        let err = Config::resolve(split).unwrap_err();
        assert!(err.to_string().contains("need REDIS_URL"), "{err}");
    }

    #[test]
    fn run_retention() {
        let day = Duration::from_secs(86_400);
        let c = Config::resolve(Settings::default()).unwrap();
        assert_eq!(c.run_retention, Some(30 * day));
        let file: Settings = toml::from_str("run_retention_days = 7").unwrap();
        let c = Config::resolve(file).unwrap();
        assert_eq!(c.run_retention, Some(7 * day));
        let keep = Settings {
            run_retention_days: Some(0),
            ..Settings::default()
        };
        let c = Config::resolve(keep).unwrap();
        assert_eq!(c.run_retention, None);
        let absurd = Settings {
            run_retention_days: Some(100_000),
            ..Settings::default()
        };
        let err = Config::resolve(absurd).unwrap_err();
        assert!(err.to_string().contains("run_retention_days"), "{err}");
    }

    #[test]
    fn knowledge_sources_and_limits() {
        let c = Config::resolve(Settings::default()).unwrap();
        let k = &c.knowledge;
        assert!(k.enabled);
        assert_eq!(k.sources.len(), 1);
        assert_eq!(k.sources[0].collection, "default");
        assert_eq!(k.sources[0].dir, PathBuf::from("knowledge"));
        assert_eq!(
            k.rate,
            RateConfig {
                rate: 50.0,
                burst: 100.0
            }
        );

        let collections = |text: &str| Settings {
            knowledge: KnowledgeSettings {
                collections: Some(text.parse().unwrap()),
                ..KnowledgeSettings::default()
            },
            ..Settings::default()
        };
        let over = collections("team-a=/srv/a, team-b=/srv/b");
        let c = Config::resolve(over).unwrap();
        let names: Vec<_> = c
            .knowledge
            .sources
            .iter()
            .map(|s| s.collection.as_str())
            .collect();
        assert_eq!(names, ["default", "team-a", "team-b"]);

        assert!("nodir".parse::<Collections>().is_err());
        assert!("a=/x,a=/y".parse::<Collections>().is_err());
        for bad in ["Bad=/x", "default=/x"] {
            let over = collections(bad);
            assert!(Config::resolve(over).is_err(), "{bad}");
        }
        let file: Settings =
            toml::from_str("[knowledge]\nchunk_tokens = 100\nchunk_overlap = 60\n").unwrap();
        assert!(Config::resolve(file).is_err());
    }
}
