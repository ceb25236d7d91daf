//! The `nova` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use nova::config::{Config, Settings};

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
    /// Save, list, show or delete workflow definitions (named, versioned workflows).
    Defs(nova::cli::DefsArgs),
    /// Start a run of a saved workflow definition, and optionally wait for it.
    Run(nova::cli::RunArgs),
    /// Run a Python or JavaScript snippet once in the sandbox of a running host, and print what it printed and its result.
    RunCode(nova::cli::RunCodeArgs),
    /// Ingest a directory into the knowledge base of a running host, with progress.
    Ingest(nova::cli::IngestArgs),
    /// Ask the knowledge base of a running host (dense, keyword or hybrid search, with filters).
    Query(nova::cli::QueryArgs),
    /// Create, list, show or delete the knowledge base's collections.
    Collections(nova::cli::CollectionsArgs),
    /// Upload, list, show or delete documents of a collection.
    Docs(nova::cli::DocsArgs),
    /// List, show, reload, upload, remove or invoke the plugins of a running host (admin).
    Plugins(nova::cli::PluginsArgs),
    /// Write plugins: make a project (Rust, Python, JavaScript), build it, run it in the sandbox, or watch and reinstall it.
    Plugin(nova::cli::plugin::PluginArgs),
    /// Make, list or revoke the API keys of a running host (admin).
    Keys(nova::cli::KeysArgs),
    /// Set, list or delete the secrets plugins read through wasi:config (admin).
    Secrets(nova::cli::SecretsArgs),
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
    /// The compiled-function cache to reuse and fill.
    #[arg(long)]
    function_cache: Option<std::path::PathBuf>,
    /// The component to compile.
    wasm: std::path::PathBuf,
    /// Where to write the artifact.
    out: std::path::PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// Configuration file. Without it, ./nova.toml is read if present.
    #[arg(long, env = "NOVA_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines on stderr: text, or json (one object per line, with the
    /// spans: request id, run and step) [default: text].
    #[arg(long, env = "NOVA_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Every other setting: a flag and a variable for each that has one,
    /// over the key of the same name in the file.
    #[command(flatten)]
    settings: Settings,
}

#[derive(Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logs go to stderr (stdout carries the listening address and the
/// generated admin token), filtered by NOVA_LOG, as text or JSON lines.
fn init_logs(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_env("NOVA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
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
    let format = match &cli.command {
        Command::Serve(args) => args.log_format.unwrap_or_default(),
        _ => std::env::var("NOVA_LOG_FORMAT")
            .ok()
            .and_then(|v| <LogFormat as clap::ValueEnum>::from_str(&v, true).ok())
            .unwrap_or_default(),
    };
    // `nova plugin` prints the plugin's own log lines itself; the host
    // parts it runs (the sandbox, an in-memory store) speak up only when
    // something is wrong.
    let default = match &cli.command {
        Command::Plugin(_) => "warn",
        _ => "info",
    };
    init_logs(format, default);
    match cli.command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Submit(args) => Ok(nova::cli::submit(args)),
        Command::Runs(args) => Ok(nova::cli::runs(args)),
        Command::Defs(args) => Ok(nova::cli::defs(args)),
        Command::Run(args) => Ok(nova::cli::run(args)),
        Command::Ingest(args) => Ok(nova::cli::ingest(args)),
        Command::Query(args) => Ok(nova::cli::query(args)),
        Command::RunCode(args) => Ok(nova::cli::run_code(args)),
        Command::Collections(args) => Ok(nova::cli::collections(args)),
        Command::Docs(args) => Ok(nova::cli::docs(args)),
        Command::Plugins(args) => Ok(nova::cli::plugins(args)),
        Command::Plugin(args) => Ok(nova::cli::plugin::plugin(args)),
        Command::Keys(args) => Ok(nova::cli::keys(args)),
        Command::Secrets(args) => Ok(nova::cli::secrets(args)),
        Command::Health(args) => Ok(nova::cli::health(args)),
        Command::CompilePlugin(args) => Ok(compile_plugin(&args)),
    }
}

fn compile_plugin(args: &CompilePluginArgs) -> ExitCode {
    match nova::plugins::compiler::compile_file(
        args.memory_limit_bytes,
        args.function_cache.as_deref(),
        &args.wasm,
        &args.out,
    ) {
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
        Some(path) => Settings::load(path, true)?,
        None => Settings::load(std::path::Path::new("nova.toml"), false)?,
    };
    let config = Config::resolve(file.overlay(args.settings)?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(nova::server::serve(config))?;
    Ok(())
}
