//! Configuration: an optional `nova.toml`, overridden by environment
//! variables, overridden by command-line flags (clap reads both).
//!
//! Every value has an embedded default, so `nova serve` with nothing set
//! runs on a laptop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
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
    /// The plugin runtime: default limits and their ceilings, the pool's
    /// size and per-component caps, the compiler's limits, and how much of
    /// a plugin's output is kept.
    pub plugins: RuntimeConfig,
    /// Largest `.wasm` accepted by upload.
    pub max_plugin_bytes: usize,
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

/// `nova.toml`: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub role: Option<Role>,
    pub bind: Option<SocketAddr>,
    pub metrics_bind: Option<SocketAddr>,
    pub auth: Option<AuthMode>,
    pub trusted_proxies: Option<Vec<String>>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub redis_prefix: Option<String>,
    pub workers: Option<usize>,
    pub lease_ms: Option<u64>,
    pub run_retention_days: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub plugins_dir: Option<PathBuf>,
    pub knowledge_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub admin_token: Option<String>,
    #[serde(default)]
    pub plugins: FilePluginConfig,
    #[serde(default)]
    pub knowledge: FileKnowledgeConfig,
    #[serde(default)]
    pub http: FileHttpConfig,
    #[serde(default)]
    pub limits: FileLimits,
}

/// `[limits]` in `nova.toml`: what runs keep.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub run_input_bytes: Option<usize>,
    pub run_bytes: Option<u64>,
    pub error_bytes: Option<usize>,
    pub page_bytes: Option<u64>,
}

/// `[http]` in `nova.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttpConfig {
    pub max_connections: Option<usize>,
    pub header_timeout_ms: Option<u64>,
    pub shutdown_timeout_ms: Option<u64>,
    pub max_in_flight_mb: Option<usize>,
    pub memory_wait_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
}

/// `[knowledge]` in `nova.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKnowledgeConfig {
    pub enabled: Option<bool>,
    pub model_dir: Option<PathBuf>,
    /// Extra collections: name = directory.
    pub collections: Option<std::collections::BTreeMap<String, PathBuf>>,
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<String>,
    pub qdrant_prefix: Option<String>,
    pub cache_ttl_s: Option<u64>,
    pub rate_limit: Option<f64>,
    pub rate_burst: Option<f64>,
    pub chunk_tokens: Option<usize>,
    pub chunk_overlap: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePluginConfig {
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub max_memory_mb: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub output_ceiling_bytes: Option<u64>,
    pub concurrency: Option<u32>,
    pub max_upload_bytes: Option<usize>,
    pub max_memories_per_component: Option<u32>,
    pub max_tables_per_component: Option<u32>,
    pub max_core_instances_per_component: Option<u32>,
    pub compile_timeout_ms: Option<u64>,
    pub compile_memory_mb: Option<u64>,
    pub compile_concurrency: Option<usize>,
    pub describe_bytes: Option<usize>,
    pub max_chunks: Option<usize>,
    pub chunk_bytes: Option<usize>,
    pub store_docs: Option<u64>,
    pub store_bytes: Option<u64>,
    pub kv_keys: Option<u64>,
    pub kv_bytes: Option<u64>,
    pub max_store_docs: Option<u64>,
    pub max_store_bytes: Option<u64>,
    pub max_kv_keys: Option<u64>,
    pub max_kv_bytes: Option<u64>,
    pub list_bytes: Option<u64>,
}

impl FileConfig {
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
}

/// Values given on the command line or in the environment; they win over
/// the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub role: Option<Role>,
    pub bind: Option<SocketAddr>,
    pub metrics_bind: Option<SocketAddr>,
    pub auth: Option<AuthMode>,
    /// Comma-separated addresses or CIDR blocks.
    pub trusted_proxies: Option<String>,
    pub max_connections: Option<usize>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub redis_prefix: Option<String>,
    pub workers: Option<usize>,
    pub lease_ms: Option<u64>,
    pub run_retention_days: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub plugins_dir: Option<PathBuf>,
    pub knowledge_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub plugin_timeout_ms: Option<u64>,
    pub plugin_memory_mb: Option<u64>,
    pub plugin_concurrency: Option<u32>,
    pub knowledge: Option<bool>,
    pub model_dir: Option<PathBuf>,
    /// `name=dir` pairs.
    pub collections: Vec<(String, PathBuf)>,
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<String>,
    pub rag_cache_ttl_s: Option<u64>,
    pub rag_rate_limit: Option<f64>,
    pub rag_rate_burst: Option<f64>,
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
    pub fn resolve(file: FileConfig, over: Overrides) -> Result<Self, ConfigError> {
        let knowledge_over = over.clone();
        let bind = match over.bind.or(file.bind) {
            Some(bind) => bind,
            None => DEFAULT_BIND.parse().map_err(|e| ConfigError::Invalid {
                key: "bind",
                message: format!("{e}"),
            })?,
        };
        let metrics_bind = over.metrics_bind.or(file.metrics_bind);
        let auth = over.auth.or(file.auth).unwrap_or_default();
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
        let proxies: Vec<String> = match &over.trusted_proxies {
            Some(text) => text.split(',').map(str::to_owned).collect(),
            None => file.trusted_proxies.unwrap_or_default(),
        };
        let trusted_proxies = proxies
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.parse::<IpNet>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| ConfigError::Invalid {
                key: "trusted_proxies",
                message,
            })?;
        let http = resolve_http(file.http, &over)?;
        let runs = resolve_limits(file.limits)?;
        let data_dir = over
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let plugins_dir = over
            .plugins_dir
            .or(file.plugins_dir)
            .unwrap_or_else(|| data_dir.join("plugins"));
        let knowledge_dir = over
            .knowledge_dir
            .or(file.knowledge_dir)
            .unwrap_or_else(|| PathBuf::from("knowledge"));
        let cache_dir = over
            .cache_dir
            .or(file.cache_dir)
            .unwrap_or_else(|| data_dir.join("cache"));
        let admin_token = over
            .admin_token
            .or(file.admin_token)
            .filter(|t| !t.is_empty());
        if let Some(token) = &admin_token
            && token.len() < 16
        {
            return Err(ConfigError::Invalid {
                key: "admin_token",
                message: "must be at least 16 characters".into(),
            });
        }

        let p = file.plugins;
        let timeout_ms = over
            .plugin_timeout_ms
            .or(p.timeout_ms)
            .unwrap_or(DEFAULT_TIMEOUT_MS);
        let memory_mb = over
            .plugin_memory_mb
            .or(p.memory_mb)
            .unwrap_or(DEFAULT_MEMORY_MB);
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
        let concurrency = over
            .plugin_concurrency
            .or(p.concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > 10_000 {
            return Err(ConfigError::Invalid {
                key: "plugins.concurrency",
                message: "must be between 1 and 10000".into(),
            });
        }
        let workers = over.workers.or(file.workers).unwrap_or(DEFAULT_WORKERS);
        if workers == 0 || workers > 1024 {
            return Err(ConfigError::Invalid {
                key: "workers",
                message: "must be between 1 and 1024".into(),
            });
        }
        let lease_ms = over.lease_ms.or(file.lease_ms).unwrap_or(DEFAULT_LEASE_MS);
        if !(300..=600_000).contains(&lease_ms) {
            return Err(ConfigError::Invalid {
                key: "lease_ms",
                message: "must be between 300 and 600000".into(),
            });
        }
        let run_retention_days = over
            .run_retention_days
            .or(file.run_retention_days)
            .unwrap_or(DEFAULT_RUN_RETENTION_DAYS);
        if run_retention_days > 36_500 {
            return Err(ConfigError::Invalid {
                key: "run_retention_days",
                message: "must be between 0 (keep forever) and 36500".into(),
            });
        }
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let knowledge = resolve_knowledge(&knowledge_dir, file.knowledge, &knowledge_over)?;
        let role = over.role.or(file.role).unwrap_or_default();
        let redis_url = non_empty(over.redis_url.or(file.redis_url));
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
            database_url: non_empty(over.database_url.or(file.database_url)),
            redis_url,
            redis_prefix: non_empty(over.redis_prefix.or(file.redis_prefix))
                .unwrap_or_else(|| "nova".to_owned()),
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
            max_plugin_bytes: p.max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES),
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
    p: &FilePluginConfig,
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
    Ok(RuntimeConfig {
        defaults,
        max_memory_bytes,
        max_output_bytes: output_ceiling,
        max_store,
        max_kv,
        list_bytes,
        concurrency,
        caps,
        compile,
        output,
    })
}

fn resolve_limits(file: FileLimits) -> Result<RunLimits, ConfigError> {
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

fn resolve_http(file: FileHttpConfig, over: &Overrides) -> Result<HttpLimits, ConfigError> {
    let invalid = |key: &'static str, message: &str| ConfigError::Invalid {
        key,
        message: message.to_owned(),
    };
    let max_connections = over
        .max_connections
        .or(file.max_connections)
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
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
    file: FileKnowledgeConfig,
    over: &Overrides,
) -> Result<KnowledgeConfig, ConfigError> {
    let invalid = |key: &'static str, message: &str| ConfigError::Invalid {
        key,
        message: message.to_owned(),
    };
    let mut sources = vec![Source {
        collection: crate::knowledge::DEFAULT_COLLECTION.to_owned(),
        dir: knowledge_dir.to_owned(),
    }];
    let extra: Vec<(String, PathBuf)> = if over.collections.is_empty() {
        file.collections.unwrap_or_default().into_iter().collect()
    } else {
        over.collections.clone()
    };
    for (collection, dir) in extra {
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
    let rate = over
        .rag_rate_limit
        .or(file.rate_limit)
        .unwrap_or(DEFAULT_RAG_RATE);
    let burst = over
        .rag_rate_burst
        .or(file.rate_burst)
        .unwrap_or(DEFAULT_RAG_BURST.max(rate));
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
        enabled: over.knowledge.or(file.enabled).unwrap_or(true),
        model_dir: over
            .model_dir
            .clone()
            .or(file.model_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR)),
        sources,
        qdrant_url: non_empty(over.qdrant_url.clone().or(file.qdrant_url)),
        qdrant_api_key: non_empty(over.qdrant_api_key.clone().or(file.qdrant_api_key)),
        qdrant_prefix: file.qdrant_prefix.unwrap_or_else(|| "nova_".to_owned()),
        cache_ttl: Duration::from_secs(
            over.rag_cache_ttl_s
                .or(file.cache_ttl_s)
                .unwrap_or(DEFAULT_CACHE_TTL_S),
        ),
        rate: RateConfig { rate, burst },
        chunk,
    })
}

/// Parses `name=dir,name=dir` (the `NOVA_COLLECTIONS` format).
pub fn parse_collections(text: &str) -> Result<Vec<(String, PathBuf)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, dir)) if !name.trim().is_empty() && !dir.trim().is_empty() => {
                Ok((name.trim().to_owned(), PathBuf::from(dir.trim())))
            }
            _ => Err(format!("{pair:?} is not NAME=DIR")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_nothing() {
        let c = Config::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.plugins_dir, PathBuf::from("data/plugins"));
        assert_eq!(c.plugins.defaults.timeout, Duration::from_secs(10));
        assert_eq!(c.plugins.defaults.memory_bytes, 128 << 20);
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn overrides_win_over_file() {
        let file: FileConfig = toml::from_str(
            "data_dir = \"/srv/nova\"\n[plugins]\ntimeout_ms = 500\nmemory_mb = 64\n",
        )
        .unwrap();
        let over = Overrides {
            plugin_timeout_ms: Some(250),
            ..Overrides::default()
        };
        let c = Config::resolve(file, over).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/nova"));
        assert_eq!(c.plugins_dir, PathBuf::from("/srv/nova/plugins"));
        assert_eq!(c.plugins.defaults.timeout, Duration::from_millis(250));
        assert_eq!(c.plugins.defaults.memory_bytes, 64 << 20);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_limits() {
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
        let file: FileConfig = toml::from_str("[plugins]\nmemory_mb = 4096\n").unwrap();
        let err = Config::resolve(file, Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("plugins.memory_mb"), "{err}");
        let over = Overrides {
            admin_token: Some("short".into()),
            ..Overrides::default()
        };
        assert!(Config::resolve(FileConfig::default(), over).is_err());
        let split = Overrides {
            role: Some(Role::Worker),
            ..Overrides::default()
        };
        let err = Config::resolve(FileConfig::default(), split).unwrap_err();
        assert!(err.to_string().contains("need REDIS_URL"), "{err}");
    }

    #[test]
    fn run_retention() {
        let day = Duration::from_secs(86_400);
        let c = Config::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(c.run_retention, Some(30 * day));
        let file: FileConfig = toml::from_str("run_retention_days = 7").unwrap();
        let c = Config::resolve(file, Overrides::default()).unwrap();
        assert_eq!(c.run_retention, Some(7 * day));
        let keep = Overrides {
            run_retention_days: Some(0),
            ..Overrides::default()
        };
        let c = Config::resolve(FileConfig::default(), keep).unwrap();
        assert_eq!(c.run_retention, None);
        let absurd = Overrides {
            run_retention_days: Some(100_000),
            ..Overrides::default()
        };
        let err = Config::resolve(FileConfig::default(), absurd).unwrap_err();
        assert!(err.to_string().contains("run_retention_days"), "{err}");
    }

    #[test]
    fn knowledge_sources_and_limits() {
        let c = Config::resolve(FileConfig::default(), Overrides::default()).unwrap();
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

        let over = Overrides {
            collections: parse_collections("team-a=/srv/a, team-b=/srv/b").unwrap(),
            ..Overrides::default()
        };
        let c = Config::resolve(FileConfig::default(), over).unwrap();
        let names: Vec<_> = c
            .knowledge
            .sources
            .iter()
            .map(|s| s.collection.as_str())
            .collect();
        assert_eq!(names, ["default", "team-a", "team-b"]);

        assert!(parse_collections("nodir").is_err());
        for bad in ["Bad=/x", "default=/x"] {
            let over = Overrides {
                collections: parse_collections(bad).unwrap(),
                ..Overrides::default()
            };
            assert!(
                Config::resolve(FileConfig::default(), over).is_err(),
                "{bad}"
            );
        }
        let file: FileConfig =
            toml::from_str("[knowledge]\nchunk_tokens = 100\nchunk_overlap = 60\n").unwrap();
        assert!(Config::resolve(file, Overrides::default()).is_err());
    }
}
