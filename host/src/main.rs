//! The `nova` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use nova::config::{Config, FileConfig, Overrides, Role};

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
    /// Configuration file. Without it, ./nova.toml is read if present.
    #[arg(long, env = "NOVA_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "NOVA_BIND")]
    bind: Option<SocketAddr>,
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
    /// Bearer token for /admin routes. Unset: one is generated and printed.
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
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("NOVA_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Submit(args) => Ok(nova::cli::submit(args)),
        Command::Runs(args) => Ok(nova::cli::runs(args)),
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
            bind: args.bind,
            data_dir: args.data_dir,
            plugins_dir: args.plugins_dir,
            knowledge_dir: args.knowledge_dir,
            cache_dir: args.cache_dir,
            admin_token: args.admin_token,
            plugin_timeout_ms: args.plugin_timeout_ms,
            plugin_memory_mb: args.plugin_memory_mb,
            plugin_concurrency: args.plugin_concurrency,
        },
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(nova::server::serve(config))?;
    Ok(())
}
