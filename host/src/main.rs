//! The `nova` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use nova::config::{AuthMode, Config, FileConfig, Overrides, Role};

// Embedding batches allocate and free many large tensors; mimalloc keeps
// them from turning into page faults (about 1.4x faster batches).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// nova: an automation host for sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once; boxing the serve options would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the host: HTTP API, plugin runtime and hot reload.
    Serve(ServeArgs),
    /// Submit a workflow from a JSON file, and optionally wait for it.
    Submit(nova::cli::SubmitArgs),
    /// Show, list or cancel workflow runs.
    Runs(nova::cli::RunsArgs),
    /// Ingest a directory into the knowledge base of a running host, with progress.
    Ingest(nova::cli::IngestArgs),
    /// Ask the knowledge base of a running host.
    Query(nova::cli::QueryArgs),
    /// List, show, reload, upload, remove or invoke the plugins of a running host (admin).
    Plugins(nova::cli::PluginsArgs),
    /// Make, list or revoke the API keys of a running host (admin).
    Keys(nova::cli::KeysArgs),
    /// Ask a running host whether it is ready, and why not.
    Health(nova::cli::HealthArgs),
    /// Compile one plugin into an artifact for the compile cache. `nova
    /// serve` runs it as a child process, so the compiler's memory is not
    /// the host's.
    #[command(name = nova::plugins::compiler::SUBCOMMAND, hide = true)]
    CompilePlugin(CompilePluginArgs),
}

#[derive(Args)]
struct CompilePluginArgs {
    /// The address space this process may use, in bytes.
    #[arg(long)]
    memory_limit_bytes: u64,
    /// The component to compile.
    wasm: std::path::PathBuf,
    /// Where to write the artifact.
    out: std::path::PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// What this process does: all (API and workers), api, or worker.
    #[arg(long, env = "NOVA_ROLE", value_enum)]
    role: Option<Role>,
    /// Relational store: postgres://… or sqlite://…
    /// [default: SQLite file DATA_DIR/nova.db].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Redis for the work queue and plugins' kv [default: in-process].
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Prefix of the Redis keys of this deployment [default: nova].
    #[arg(long, env = "NOVA_REDIS_PREFIX")]
    redis_prefix: Option<String>,
    /// Runs a worker process executes at once [default: 16].
    #[arg(long, env = "NOVA_WORKERS")]
    workers: Option<usize>,
    /// How long a worker's claim on a run lasts without renewal, in ms:
    /// the runs of a crashed worker are taken over after it [default: 15000].
    #[arg(long, env = "NOVA_LEASE_MS")]
    lease_ms: Option<u64>,
    /// Days a finished run (and its steps) is kept before it is deleted;
    /// 0 keeps runs forever [default: 30].
    #[arg(long, env = "NOVA_RUN_RETENTION_DAYS")]
    run_retention_days: Option<u64>,
    /// Configuration file. Without it, ./nova.toml is read if present.
    #[arg(long, env = "NOVA_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "NOVA_BIND")]
    bind: Option<SocketAddr>,
    /// A second address serving only GET /metrics, without credentials
    /// (bind it to an internal interface) [default: none; /metrics on the
    /// main address needs the metrics:read scope].
    #[arg(long, env = "NOVA_METRICS_BIND")]
    metrics_bind: Option<SocketAddr>,
    /// Whether every route but /health needs credentials. `off` is
    /// accepted only when every address is loopback [default: on].
    #[arg(long, env = "NOVA_AUTH", value_enum)]
    auth: Option<AuthMode>,
    /// Proxies whose X-Forwarded-For names the client: addresses or CIDR
    /// blocks, comma-separated [default: none].
    #[arg(long, env = "NOVA_TRUSTED_PROXIES")]
    trusted_proxies: Option<String>,
    /// Connections served at once; more wait to be accepted [default: 1024].
    #[arg(long, env = "NOVA_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Directory for state: the compile cache, and plugins unless
    /// --plugins-dir says otherwise [default: ./data].
    #[arg(long, env = "NOVA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Directory watched for plugins (NAME.wasm, optional NAME.toml)
    /// [default: DATA_DIR/plugins].
    #[arg(long, env = "NOVA_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Directory for compiled plugins [default: DATA_DIR/cache].
    #[arg(long, env = "NOVA_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Directory of documents for the knowledge base [default: ./knowledge].
    #[arg(long, env = "NOVA_KNOWLEDGE_DIR")]
    knowledge_dir: Option<PathBuf>,
    /// The admin token: a bearer credential with every scope (API keys are
    /// made with it). Unset: one is generated and printed.
    #[arg(long, env = "NOVA_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Default wall-clock limit of one plugin call, in ms [default: 10000].
    #[arg(long, env = "NOVA_PLUGIN_TIMEOUT_MS")]
    plugin_timeout_ms: Option<u64>,
    /// Default memory limit of one plugin instance, in MiB [default: 128].
    #[arg(long, env = "NOVA_PLUGIN_MEMORY_MB")]
    plugin_memory_mb: Option<u64>,
    /// Plugin instances that may run at once [default: 64].
    #[arg(long, env = "NOVA_PLUGIN_CONCURRENCY")]
    plugin_concurrency: Option<u32>,
    /// Load the embedding model and serve the knowledge base [default: true].
    #[arg(long, env = "NOVA_KNOWLEDGE", action = clap::ArgAction::Set)]
    knowledge: Option<bool>,
    /// Embedding model: a BERT-family model directory in Hugging Face
    /// layout [default: models/all-MiniLM-L6-v2, fetched by `just model`].
    #[arg(long, env = "NOVA_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// More collections, each ingested from its directory: NAME=DIR,NAME=DIR.
    #[arg(long, env = "NOVA_COLLECTIONS")]
    collections: Option<String>,
    /// A Qdrant server (gRPC, e.g. http://qdrant:6334) instead of the
    /// embedded index [default: qdrant-edge under DATA_DIR/index].
    #[arg(long, env = "QDRANT_URL")]
    qdrant_url: Option<String>,
    /// API key of the Qdrant server.
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    qdrant_api_key: Option<String>,
    /// How long query answers are cached, in seconds; 0 turns it off [default: 300].
    #[arg(long, env = "NOVA_RAG_CACHE_TTL_S")]
    rag_cache_ttl_s: Option<u64>,
    /// Requests per second each client may make to /rag/*; 0 turns the
    /// limit off [default: 50].
    #[arg(long, env = "NOVA_RAG_RATE_LIMIT")]
    rag_rate_limit: Option<f64>,
    /// Requests a client may make at once before the rate applies [default: 100].
    #[arg(long, env = "NOVA_RAG_RATE_BURST")]
    rag_rate_burst: Option<f64>,
    /// Log lines on stderr: text, or json (one object per line, with the
    /// spans: request id, run and step) [default: text].
    #[arg(long, env = "NOVA_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logs go to stderr (stdout carries the listening address and the
/// generated admin token), filtered by NOVA_LOG, as text or JSON lines.
fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("NOVA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        // Event fields at the top level; the spans (request, run, step)
        // with their fields under "spans", outermost first.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // `serve` validates NOVA_LOG_FORMAT with its flag; the client commands
    // log little and take the variable as is.
    init_logs(match &cli.command {
        Command::Serve(args) => args.log_format.unwrap_or_default(),
        _ => std::env::var("NOVA_LOG_FORMAT")
            .ok()
            .and_then(|v| <LogFormat as clap::ValueEnum>::from_str(&v, true).ok())
            .unwrap_or_default(),
    });
    match cli.command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Submit(args) => Ok(nova::cli::submit(args)),
        Command::Runs(args) => Ok(nova::cli::runs(args)),
        Command::Ingest(args) => Ok(nova::cli::ingest(args)),
        Command::Query(args) => Ok(nova::cli::query(args)),
        Command::Plugins(args) => Ok(nova::cli::plugins(args)),
        Command::Keys(args) => Ok(nova::cli::keys(args)),
        Command::Health(args) => Ok(nova::cli::health(args)),
        Command::CompilePlugin(args) => Ok(compile_plugin(&args)),
    }
}

fn compile_plugin(args: &CompilePluginArgs) -> ExitCode {
    match nova::plugins::compiler::compile_file(args.memory_limit_bytes, &args.wasm, &args.out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            // The host reports this text as the plugin's compile error.
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path, true)?,
        None => FileConfig::load(std::path::Path::new("nova.toml"), false)?,
    };
    let config = Config::resolve(
        file,
        Overrides {
            role: args.role,
            database_url: args.database_url,
            redis_url: args.redis_url,
            redis_prefix: args.redis_prefix,
            workers: args.workers,
            lease_ms: args.lease_ms,
            run_retention_days: args.run_retention_days,
            bind: args.bind,
            metrics_bind: args.metrics_bind,
            auth: args.auth,
            trusted_proxies: args.trusted_proxies,
            max_connections: args.max_connections,
            data_dir: args.data_dir,
            plugins_dir: args.plugins_dir,
            knowledge_dir: args.knowledge_dir,
            cache_dir: args.cache_dir,
            admin_token: args.admin_token,
            plugin_timeout_ms: args.plugin_timeout_ms,
            plugin_memory_mb: args.plugin_memory_mb,
            plugin_concurrency: args.plugin_concurrency,
            knowledge: args.knowledge,
            model_dir: args.model_dir,
            collections: match &args.collections {
                Some(text) => nova::config::parse_collections(text)
                    .map_err(|e| anyhow::anyhow!("invalid --collections: {e}"))?,
                None => Vec::new(),
            },
            qdrant_url: args.qdrant_url,
            qdrant_api_key: args.qdrant_api_key,
            rag_cache_ttl_s: args.rag_cache_ttl_s,
            rag_rate_limit: args.rag_rate_limit,
            rag_rate_burst: args.rag_rate_burst,
        },
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(nova::server::serve(config))?;
    Ok(())
}
